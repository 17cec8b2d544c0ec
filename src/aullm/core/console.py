"""Console output: a rich progress bar on a terminal, plain log lines otherwise (CI, pipes, files)."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Optional, TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from aullm.core.errors import ARG_FILTER

T = TypeVar("T")
logger = logging.getLogger("aullm")
logger.addFilter(ARG_FILTER)  # parameters named in warnings: Python keywords, or flags on the command line
stderr_console = Console(stderr=True)


def is_interactive() -> bool:
    return sys.stderr.isatty()


def setup_logging(verbosity: int = 0) -> None:
    """verbosity: -1 quiet (warnings only), 0 normal, 1 verbose (debug)."""
    level = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    logger.setLevel(level)
    logger.handlers.clear()
    if is_interactive():
        handler: logging.Handler = RichHandler(console=stderr_console, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.propagate = False


def shows_progress() -> bool:
    """Whether progress is wanted: the `aullm` logger passes INFO, as the command line sets it (without -q) and as
    `logging.basicConfig(level=logging.INFO)` or `aullm.train(..., progress=True)` set it from Python."""
    return logger.getEffectiveLevel() <= logging.INFO


@contextlib.contextmanager
def progress_output(enabled: Optional[bool]) -> Iterator[None]:
    """Progress for one call of the Python API. True: what the command line shows (log lines on stderr, a live bar
    on a terminal), whatever logging is configured; False: warnings only; None: as logging is configured (nothing
    by Python's default). The logger's settings are restored afterwards."""
    if enabled is None:
        yield
        return
    saved = (logger.level, list(logger.handlers), logger.propagate)
    if enabled:
        setup_logging(0)
    else:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]
        logger.propagate = saved[2]


def track(items: Iterable[T], description: str, total: Optional[int] = None) -> Iterator[T]:
    """Iterate with progress: a live bar on a terminal, a log line every ~10% otherwise."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    if is_interactive() and shows_progress():
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=stderr_console, transient=True) as progress:
            task = progress.add_task(description, total=total)
            for item in items:
                yield item
                progress.advance(task)
        return
    step = max(1, (total or 10) // 10)
    start = time.perf_counter()
    for done, item in enumerate(items, start=1):
        yield item
        if done % step == 0 or done == total:
            of = f"/{total}" if total else ""
            logger.info("%s: %d%s (%.1fs)", description, done, of, time.perf_counter() - start)


@contextlib.contextmanager
def progress_bar(description: str, total: Optional[int] = None) -> Iterator[Callable[[int], None]]:
    """A live bar on a terminal for work counted in steps; yields `advance(steps)`. Off a terminal it prints
    nothing: the caller logs one line when the work is done (a log of many videos stays one line per video)."""

    def nothing(steps: int = 1) -> None:
        return None

    if not is_interactive() or not shows_progress():
        yield nothing
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr_console, transient=True) as progress:
        task = progress.add_task(description, total=total)

        def advance(steps: int = 1) -> None:
            progress.advance(task, steps)

        yield advance


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


#: How much of a run must be done before its ETA is shown: a share of the tasks, at most one task's worth.
ETA_AFTER_SHARE = 0.05


class RunProgress:
    """Progress of a run or a sweep: tasks (seed × fold) done out of all, the running ones' epochs or what they are
    doing before their first epoch ("loading LLM"), what the run is waiting for ("starting workers"), elapsed, ETA.

    On a terminal: one live bar (the log lines, and other libraries' log lines, scroll above it). Otherwise (logs,
    CI, pipes): one line per finished task. Progress counts finished tasks plus the finished share of the running
    ones' epochs, so the estimate moves during a long fold, not only between folds. The ETA is measured from the
    moment the first task began training (start-up and loading are not training speed) and is shown only once
    ETA_AFTER_SHARE of the work is done.
    """

    def __init__(self, total: int, description: str = "training") -> None:
        self.total = total
        self.description = description
        self.done = 0
        self.failed = 0
        self.running: dict[str, tuple[int, int]] = {}
        self.phases: dict[str, str] = {}  # a running task's phase before its first epoch
        self.status = ""  # what the run waits for while no task runs
        self.start = time.perf_counter()
        self.clock: Optional[float] = None  # when the first task began training
        self._live: Optional[Progress] = None
        self._bar: Optional[TaskID] = None
        self._streams: list[tuple[logging.StreamHandler, object]] = []

    # --- the numbers ------------------------------------------------------------------------------------------

    def completed(self) -> float:
        partial = sum(epoch / epochs for epoch, epochs in self.running.values() if epochs)
        return self.done + self.failed + partial

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def eta(self) -> Optional[float]:
        """Seconds left, from the training speed so far; None until it means something."""
        completed = self.completed()
        if self.clock is None or self.total <= 0 or completed < min(1.0, ETA_AFTER_SHARE * self.total):
            return None
        training = time.perf_counter() - self.clock
        return training / completed * (self.total - completed) if training > 0 else None

    def running_text(self, limit: int = 3) -> str:
        if not self.running:
            remaining = self.done + self.failed < self.total
            return (self.status or "waiting for a free worker") if remaining else ""
        items = []
        for label, (epoch, epochs) in list(self.running.items())[:limit]:
            phase = self.phases.get(label)
            items.append(f"{label} {phase}" if phase and not epochs else f"{label} ep {epoch}/{epochs}")
        more = len(self.running) - limit
        return ", ".join(items) + (f" +{more} more" if more > 0 else "")

    # --- events -----------------------------------------------------------------------------------------------

    def set_status(self, text: str) -> None:
        """What the run is doing while no task runs: "starting Ray", "starting workers"."""
        self.status = text
        self._refresh()

    def phase(self, label: str, text: str) -> None:
        """A task that runs but has not begun training: "loading LLM"; "training" starts it (and the ETA clock)."""
        self.running.setdefault(label, (0, 0))
        self.phases[label] = text
        self.status = ""
        if text == "training":
            self._start_clock()
        self._refresh()

    def started(self, label: str) -> None:
        """A task begins training now (in this process: its session is open)."""
        self.running.setdefault(label, (0, 0))
        self.phases[label] = "training"
        self.status = ""
        self._start_clock()
        self._refresh()

    def epoch(self, label: str, epoch: int, epochs: int) -> None:
        self.running[label] = (epoch, epochs)
        self.phases.pop(label, None)
        self.status = ""
        self._start_clock()
        self._refresh()

    def _start_clock(self) -> None:
        if self.clock is None:
            self.clock = time.perf_counter()

    def finished(self, label: str, ok: bool = True) -> None:
        self.running.pop(label, None)
        self.phases.pop(label, None)
        self.status = ""
        self._start_clock()
        if ok:
            self.done += 1
        else:
            self.failed += 1
        self._refresh()
        if self._live is None:
            eta = self.eta()
            logger.info(
                "%s: %s %s (%d/%d tasks%s, %s elapsed%s)",
                self.description,
                label,
                "done" if ok else "FAILED",
                self.done + self.failed,
                self.total,
                f", {self.failed} failed" if self.failed else "",
                _duration(self.elapsed()),
                f", ETA {_duration(eta)}" if eta is not None and self.done + self.failed < self.total else "",
            )

    # --- display ----------------------------------------------------------------------------------------------

    def __enter__(self) -> RunProgress:
        self.start = time.perf_counter()
        if is_interactive() and shows_progress():
            self._live = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[count]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[eta]}"),
                TextColumn("{task.fields[running]}"),
                console=stderr_console,
                transient=True,
            )
            terminal = sys.stderr
            self._live.start()  # on a terminal, sys.stderr becomes a proxy that prints above the bar
            self._streams = _lines_above_the_bar(terminal, sys.stderr)
            self._bar = self._live.add_task(self.description, total=self.total, count="", eta="", running="")
            self._refresh()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            for handler, stream in self._streams:
                handler.setStream(stream)
            self._streams = []
            self._live.stop()
            self._live = None
        logger.info(
            "%s: %d of %d tasks finished%s in %s",
            self.description,
            self.done,
            self.total,
            f", {self.failed} failed" if self.failed else "",
            _duration(self.elapsed()),
        )

    def _refresh(self) -> None:
        if self._live is None or self._bar is None:
            return
        eta = self.eta()
        self._live.update(
            self._bar,
            completed=self.completed(),
            count=f"{self.done}/{self.total} tasks" + (f" ({self.failed} failed)" if self.failed else ""),
            eta=f"ETA {_duration(eta)}" if eta is not None else "",
            running=self.running_text(),
        )


def _lines_above_the_bar(terminal: object, proxy: object) -> list[tuple[logging.StreamHandler, object]]:
    """Point other libraries' log handlers that write to the terminal (Ray's, say) at the live display's `proxy`
    of stderr, which prints their lines above the bar instead of into it; returns what to restore."""
    if proxy is terminal:
        return []
    streams = {id(terminal), id(sys.__stderr__), id(sys.__stdout__)}
    named = (v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger))
    changed: list[tuple[logging.StreamHandler, object]] = []
    for log in [logging.getLogger(), *named]:
        for handler in log.handlers:
            if isinstance(handler, logging.StreamHandler) and id(getattr(handler, "stream", None)) in streams:
                changed.append((handler, handler.stream))
                handler.setStream(proxy)
    return changed
