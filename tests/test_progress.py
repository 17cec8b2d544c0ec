"""The run progress bar says what a run waits for (starting Ray, starting workers, loading the LLM) instead of
`0/N tasks … ETA -`, shows an ETA only once it is measured on training, and keeps other libraries' log lines
(Ray's warnings) above the bar instead of inside its line."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from rich.console import Console

from aullm.core import console


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(console.time, "perf_counter", fake)
    return fake


@pytest.fixture
def terminal(monkeypatch) -> io.StringIO:
    buffer = io.StringIO()
    monkeypatch.setattr(console, "is_interactive", lambda: True)
    monkeypatch.setattr(console, "stderr_console", Console(file=buffer, force_terminal=True, width=200))
    monkeypatch.setattr(console.logger, "level", logging.INFO)
    return buffer


def bar_line(progress: console.RunProgress, buffer: io.StringIO) -> str:
    progress._refresh()
    assert progress._live is not None
    progress._live.refresh()
    return buffer.getvalue().replace("\r", "\n").splitlines()[-1]


def test_the_bar_names_what_the_run_waits_for_and_has_no_eta_before_training(clock, terminal):
    with console.RunProgress(2) as progress:
        progress.set_status("starting Ray")
        assert "starting Ray" in bar_line(progress, terminal)
        clock.now += 15
        progress.set_status("starting workers")
        line = bar_line(progress, terminal)
        assert "0/2 tasks" in line and "starting workers" in line and "ETA" not in line
        clock.now += 20
        progress.phase("fold 01 seed 1", "loading data and LLM")
        line = bar_line(progress, terminal)
        assert "fold 01 seed 1 loading data and LLM" in line and "starting workers" not in line and "ETA" not in line
        assert progress.eta() is None
        clock.now += 10
        progress.phase("fold 01 seed 1", "training")
        assert "fold 01 seed 1 training" in bar_line(progress, terminal) and progress.eta() is None
        clock.now += 10
        progress.epoch("fold 01 seed 1", 5, 10)  # half a task in the 10 s since training began
        assert progress.eta() == pytest.approx(10 / 0.5 * 1.5)  # not counting the 45 s of start-up
        assert "ETA 0:30" in bar_line(progress, terminal)
        progress.finished("fold 01 seed 1")
        assert "waiting for a free worker" in bar_line(progress, terminal)


def test_the_eta_waits_for_a_share_of_the_work(clock):
    progress = console.RunProgress(100)
    progress.started("fold 01 seed 1")
    clock.now += 60
    progress.epoch("fold 01 seed 1", 1, 350)  # 1/350 of one task out of 100: says nothing yet
    assert progress.eta() is None
    progress.epoch("fold 01 seed 1", 350, 350)
    assert progress.eta() == pytest.approx(60 / 1 * 99)


def test_other_libraries_log_lines_print_above_the_bar_not_into_it(terminal):
    library = logging.getLogger("some_library_like_ray")
    handler = logging.StreamHandler(sys.stderr)  # bound to the terminal's stream before the bar starts
    library.addHandler(handler)
    library.propagate = False
    try:
        with console.RunProgress(2) as progress:
            progress.set_status("starting Ray")
            bar_line(progress, terminal)
            library.warning("Token authentication is enabled for this Ray cluster")
            bar_line(progress, terminal)
        assert handler.stream is sys.stderr  # restored
    finally:
        library.removeHandler(handler)
    lines = terminal.getvalue().replace("\r", "\n").splitlines()
    (warning,) = [line for line in lines if "Token authentication" in line]
    assert "tasks" not in warning and "training" not in warning
