"""Console output: a rich progress bar on a terminal, plain log lines otherwise (CI, pipes, files)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import Optional, TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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


def track(items: Iterable[T], description: str, total: Optional[int] = None) -> Iterator[T]:
    """Iterate with progress: a live bar on a terminal, a log line every ~10% otherwise."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    quiet = logger.level > logging.INFO
    if is_interactive() and not quiet:
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
