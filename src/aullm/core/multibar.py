"""Two-level progress for work over many items that each take a while (videos, each read frame by frame).

On a terminal: one live display holding a bar over the items and, under it, a bar for the current item (rich
allows one live display at a time, so nested `progress_bar`s cannot do this). Otherwise: nothing live; the caller
logs one line per finished item.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Optional

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from aullm.core.console import is_interactive, logger, stderr_console


class ItemsProgress:
    """`item(description, total)` opens the current item's bar and returns its `advance(steps)`; `done()` closes it
    and advances the bar over items."""

    def __init__(self, progress: Optional[Progress], total: int, description: str) -> None:
        self._progress = progress
        self._outer: Optional[TaskID] = None
        self._inner: Optional[TaskID] = None
        if progress is not None:
            self._outer = progress.add_task(description, total=total)

    def item(self, description: str, total: Optional[int] = None) -> Callable[[int], None]:
        progress = self._progress
        if progress is None:
            return _nothing
        if self._inner is not None:
            progress.remove_task(self._inner)
        inner = progress.add_task(f"  {description}", total=total)
        self._inner = inner

        def advance(steps: int = 1) -> None:
            progress.advance(inner, steps)

        return advance

    def done(self) -> None:
        if self._progress is None or self._outer is None:
            return
        if self._inner is not None:
            self._progress.remove_task(self._inner)
            self._inner = None
        self._progress.advance(self._outer, 1)


def _nothing(steps: int = 1) -> None:
    return None


@contextlib.contextmanager
def items_progress(total: int, description: str) -> Iterator[ItemsProgress]:
    if not is_interactive() or logger.level > logging.INFO:
        yield ItemsProgress(None, total, description)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr_console, transient=True) as progress:
        yield ItemsProgress(progress, total, description)


__all__ = ["ItemsProgress", "items_progress"]
