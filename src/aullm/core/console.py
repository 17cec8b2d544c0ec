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

T = TypeVar("T")
logger = logging.getLogger("aullm")
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


class RunProgress:
    """Progress of a run or a sweep: tasks (seed × fold) done out of all, the running ones' epochs, elapsed, ETA.

    On a terminal: one live bar (the log lines scroll above it). Otherwise (logs, CI, pipes): one line per finished
    task. Progress counts finished tasks plus the finished share of the running ones' epochs, so the estimate moves
    during a long fold, not only between folds.
    """

    def __init__(self, total: int, description: str = "training") -> None:
        self.total = total
        self.description = description
        self.done = 0
        self.failed = 0
        self.running: dict[str, tuple[int, int]] = {}
        self.start = time.perf_counter()
        self._live: Optional[Progress] = None
        self._bar: Optional[TaskID] = None

    # --- the numbers ------------------------------------------------------------------------------------------

    def completed(self) -> float:
        partial = sum(epoch / epochs for epoch, epochs in self.running.values() if epochs)
        return self.done + self.failed + partial

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def eta(self) -> Optional[float]:
        completed = self.completed()
        if completed <= 0 or self.total <= 0:
            return None
        return self.elapsed() / completed * (self.total - completed)

    def running_text(self, limit: int = 3) -> str:
        items = [f"{label} ep {e}/{n}" for label, (e, n) in list(self.running.items())[:limit]]
        more = len(self.running) - limit
        return ", ".join(items) + (f" +{more} more" if more > 0 else "")

    # --- events -----------------------------------------------------------------------------------------------

    def started(self, label: str) -> None:
        self.running.setdefault(label, (0, 0))
        self._refresh()

    def epoch(self, label: str, epoch: int, epochs: int) -> None:
        self.running[label] = (epoch, epochs)
        self._refresh()

    def finished(self, label: str, ok: bool = True) -> None:
        self.running.pop(label, None)
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
                TextColumn("ETA {task.fields[eta]}"),
                TextColumn("{task.fields[running]}"),
                console=stderr_console,
                transient=True,
            )
            self._live.start()
            self._bar = self._live.add_task(self.description, total=self.total, count="", eta="-", running="")
            self._refresh()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
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
            eta=_duration(eta) if eta is not None else "-",
            running=self.running_text(),
        )
