"""The timeline picture and the HTML report of `predict --report`, checked as a person sees them: the page is
opened in headless Chromium (Debian's `chromium`; `.ci/run` installs it), which must load it without a console
error, render every image and show every event row. Built from plain tables: no model is needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aullm.reporting.timeline import TimelineData, format_seconds, plot_timeline, tick_step
from aullm.reporting.video_report import VideoPage, render_report
from fixtures_browser import check_page, chromium

AUS = ["AU1", "AU4", "AU12"]
THRESHOLDS = np.array([0.5, 0.4, 0.6])
EVIL = "<img src=x onerror=alert(1)>"  # a video file may be called this; the page must show it as text


def _events(name: str, spans: list[tuple[int, int, str]], fps: float = 30.0) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i, (onset, offset, kind) in enumerate(spans, start=1):
        probs = rng.uniform(0, 1, len(AUS))
        row = {
            "video": name, "event": i, "onset": onset, "apex": (onset + offset) // 2, "offset": offset,
            "t_onset_s": onset / fps, "t_offset_s": offset / fps, "spot_score": 2.0 + i, "kind": kind,
        }  # fmt: skip
        row.update({f"{au}_prob": p for au, p in zip(AUS, probs)})
        row.update({au: int(p >= t) for au, p, t in zip(AUS, probs, THRESHOLDS)})
        row["status"] = "ok"
        rows.append(row)
    return pd.DataFrame(rows)


def _windows(name: str, seconds: float) -> pd.DataFrame:
    starts = np.arange(0, seconds - 1, 0.5)
    table = pd.DataFrame({"video": name, "t_start_s": starts, "t_end_s": starts + 1.0})
    for k, au in enumerate(AUS):
        table[f"{au}_prob"] = 0.5 + 0.45 * np.sin(starts / (3 + k))
    for k, au in enumerate(AUS):
        table[au] = (table[f"{au}_prob"] >= THRESHOLDS[k]).astype(int)
    table["start_frame"] = (starts * 30).astype(int)
    table["end_frame"] = table["start_frame"] + 29
    table["status"] = "ok"
    return table


def _pages() -> list[VideoPage]:
    face = (np.add.outer(np.arange(96), np.arange(96)) % 256).astype(np.uint8)
    events = _events(EVIL, [(30, 40, "micro"), (120, 180, "macro"), (400, 409, "micro")])
    signal = pd.DataFrame({"time_s": np.arange(600) / 30, "score": np.abs(np.sin(np.arange(600) / 20))})
    timeline = plot_timeline(
        TimelineData(EVIL, 20.0, AUS, THRESHOLDS, events, "events", signal, 0.8, dict.fromkeys((1, 2, 3), face))
    )
    windows = _windows("interview", 600.0)
    return [
        VideoPage(EVIL, f"videos/{EVIL}.mp4", "ok", "events", events, 20.0, 30.0, timeline,
                  dict.fromkeys((1, 2, 3), face), {2: f"{EVIL}_explain/event2/gradcam_all.png"}, f"{EVIL}.csv"),
        VideoPage("interview", "videos/interview.mp4", "ok", "windows", windows, 600.0, 30.0,
                  plot_timeline(TimelineData("interview", 600.0, AUS, THRESHOLDS, windows, "windows"))),
        VideoPage("broken", "videos/broken.mp4", "failed: unreadable video videos/broken.mp4"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    page = tmp_path_factory.mktemp("report") / "report.html"
    page.write_text(render_report(_pages(), AUS, THRESHOLDS, bundle="runs/<b>demo</b>", model="au_llm", version="x"))
    return page


def test_ticks_suit_a_short_clip_and_a_long_interview() -> None:
    assert tick_step(10.0) == 1 and tick_step(0.3) == 0.05 and tick_step(600.0) == 60 and tick_step(3600.0) == 600
    assert format_seconds(4.0, 1.0) == "4" and format_seconds(0.5, 0.1) == "0.5"
    assert format_seconds(270.0, 60.0) == "4:30" and format_seconds(3900.0, 600.0) == "1:05:00"


def test_the_report_is_one_offline_file_and_escapes_file_names(report: Path) -> None:
    text = report.read_text()
    assert EVIL not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<b>demo</b>" not in text and "&lt;b&gt;demo&lt;/b&gt;" in text
    assert "<script" not in text and "http://" not in text and "https://" not in text and "<link" not in text
    sources = [part.split('"', 1)[0] for part in text.split('src="')[1:]]
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert 'href="&lt;img src=x onerror=alert(1)&gt;_explain/event2/gradcam_all.png"' in text
    assert "failed: unreadable video" in text


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run does)")
def test_the_report_renders_in_a_real_browser(report: Path, tmp_path: Path) -> None:
    screenshot = tmp_path / "report.png"
    seen = check_page(report, tmp_path / "browser", screenshot=screenshot)
    assert seen.console == [] and seen.errors == []
    assert len(seen.images) == 2 + 3  # two timelines and three apex thumbnails
    assert all(image["complete"] and image["width"] > 0 for image in seen.images), seen.images
    windows_with_au = int((_windows("interview", 600.0)[AUS] == 1).any(axis=1).sum())
    assert seen.event_rows == [3, min(windows_with_au, 100)]
    assert EVIL in seen.text  # shown as text, not run as markup
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
