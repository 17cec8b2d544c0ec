"""Open an HTML page in headless Chromium the way a person would, and report what happened.

Debian's `chromium` is driven from the command line (no WebDriver, no DevTools client): a screenshot of the page
itself, and a `--dump-dom` of a copy carrying a small probe script that, once the page has loaded, writes into the
DOM the errors it saw (script errors, failed resource loads in the capture phase, `console.error` calls), every
image's natural width and the number of rows of each events table. Console messages of the page itself are read
from Chromium's log (`--enable-logging=stderr`), where each one is a `CONSOLE` line.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    errors.push(String(e.message || (e.target && (e.target.src || e.target.href)) || 'error'));
  }, true);
  ['alert', 'confirm', 'prompt'].forEach(function (name) {  // a dialog would block the headless browser
    window[name] = function (message) { errors.push(name + ': ' + message); };
  });
  var original = console.error;
  console.error = function () {
    errors.push(Array.prototype.join.call(arguments, ' '));
    original.apply(console, arguments);
  };
  window.addEventListener('load', function () {
    var images = Array.prototype.map.call(document.images, function (img) {
      return {alt: img.alt, width: img.naturalWidth, complete: img.complete};
    });
    var tables = Array.prototype.map.call(document.querySelectorAll('table.events'), function (t) {
      return t.querySelectorAll('tbody tr').length;
    });
    var out = document.createElement('pre');
    out.id = 'aullm-probe';
    var text = document.body.innerText;
    out.textContent = JSON.stringify({errors: errors, images: images, event_rows: tables, text: text});
    document.body.appendChild(out);
  });
})();
</script>"""
_PROBE_OUT = re.compile(r'<pre id="aullm-probe">(.*?)</pre>', re.S)


def chromium() -> Optional[str]:
    """The Chromium executable, or None where it is not installed (`apt-get install -y chromium`)."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageCheck:
    """What the browser saw: console messages of the page, errors the probe caught, images, event rows, text."""

    console: list[str]
    errors: list[str]
    images: list[dict[str, Any]]
    event_rows: list[int]
    text: str


def _run(browser: str, profile: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Chromium in a session of its own, so that a page that hangs it (a dialog) ends with all its processes."""
    process = subprocess.Popen(
        [browser, *FLAGS, f"--user-data-dir={profile}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"chromium did not finish within {timeout:g} s: {stderr[-1000:]}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def check_page(page: Path, work: Path, screenshot: Optional[Path] = None, width: int = 1280, height: int = 2400):
    """Load `page` in headless Chromium; returns a PageCheck (and writes `screenshot` of the page as it is)."""
    browser = chromium()
    assert browser is not None, "chromium is not installed"
    work.mkdir(parents=True, exist_ok=True)
    profile = work / "profile"
    probed = work / f"probed_{page.name}"
    source = page.read_text(encoding="utf-8")
    probed.write_text(source.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    dumped = _run(
        browser, profile, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom",
        probed.resolve().as_uri(),
    )  # fmt: skip
    found = _PROBE_OUT.search(dumped.stdout)
    assert found, f"the probe did not run: {dumped.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    if screenshot is not None and not result["errors"]:  # a page that opened a dialog would hang it
        shot = _run(
            browser, profile, "--enable-logging=stderr", "--v=0", f"--window-size={width},{height}",
            f"--screenshot={screenshot}", page.resolve().as_uri(),
        )  # fmt: skip
        assert screenshot.is_file(), shot.stderr[-2000:]
        console += [line for line in shot.stderr.splitlines() if ":CONSOLE" in line]
    return PageCheck(console, result["errors"], result["images"], result["event_rows"], result["text"])
