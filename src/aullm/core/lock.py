"""Lock files: which process is using a folder for what, so that a second process refuses instead of interleaving
its work with the first's.

A lock is a small JSON file created with O_EXCL (atomic on local and NFS file systems), holding the holder's pid,
host, start time and command. It is removed when the holder ends, however it ends short of being killed; a lock
left by a process that was killed is recognised as stale when its pid no longer runs on this host (or runs a
process started at another time: a reused pid), and taken over with a warning. A lock held from another host
cannot be checked from here: the refusal names the host, the pid and the file to delete if that process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from aullm.core.console import logger
from aullm.core.errors import UserError


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: process id, host name, when it started, its process start stamp and its command."""

    pid: int
    host: str
    started: str
    proc_start: Optional[str]
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (since {self.started}: {self.command})"


def _proc_start(pid: int) -> Optional[str]:
    """The kernel's start time of `pid` (Linux), to tell a live holder from a new process that reuses its pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()[19]


def me() -> Holder:
    return Holder(
        pid=os.getpid(),
        host=socket.gethostname(),
        started=time.strftime("%Y-%m-%d %H:%M:%S"),
        proc_start=_proc_start(os.getpid()),
        command=" ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:200] or "python",
    )


def read_holder(path: Path) -> Optional[Holder]:
    """The holder a lock file names (None when it is gone or unreadable: being written, or damaged)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return Holder(
            int(raw["pid"]), str(raw["host"]), str(raw["started"]), raw.get("proc_start"), str(raw["command"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_alive(holder: Holder) -> Optional[bool]:
    """Whether the holder still runs: True/False on this host, None (cannot tell) for another host."""
    if holder.host != socket.gethostname():
        return None
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    if holder.proc_start is not None:
        now = _proc_start(holder.pid)
        if now is not None and now != holder.proc_start:
            return False  # the pid was reused by a later process
    return True


def _create(path: Path, holder: Holder) -> bool:
    """Create the lock file with `holder` in it; False when it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(holder.__dict__, handle)
    return True


def _take(path: Path, holder: Holder, what: str) -> None:
    """Take the lock at `path` or raise UserError naming its holder; a stale lock is taken over."""
    for _ in range(3):
        if _create(path, holder):
            return
        other = read_holder(path)
        if other is None:  # being written this instant, or damaged: look again shortly
            time.sleep(0.2)
            other = read_holder(path)
            if other is None:
                raise UserError(f"{what} is locked by {path}, which is unreadable; delete it if no aullm is using it")
        alive = is_alive(other)
        if alive is False:
            logger.warning("%s: taking over the lock of %s, which no longer runs", what, other.describe())
            path.unlink(missing_ok=True)
            continue
        if other.pid == holder.pid and other.host == holder.host:
            raise UserError(f"{what} is already in use by this process")
        hint = "" if alive else f"; if that process is gone, delete {path}"
        raise UserError(f"{what} is in use by {other.describe()}: wait for it to finish{hint}")
    raise UserError(f"{what}: could not take the lock {path}")


@contextlib.contextmanager
def locked(paths: Sequence[Path], what: str) -> Iterator[None]:
    """Hold every lock in `paths` (taken in order) for the block; each is released at the end. If one is held by
    a live process, the ones already taken are released and UserError names the holder."""
    holder = me()
    taken: list[Path] = []
    try:
        for path in paths:
            _take(Path(path), holder, what)
            taken.append(Path(path))
        yield
    finally:
        for path in reversed(taken):
            current = read_holder(path)
            if current is None or (current.pid, current.host) == (holder.pid, holder.host):
                path.unlink(missing_ok=True)


def live_holders(paths: Sequence[Path]) -> list[Holder]:
    """The holders of those of `paths` that exist and are not known to be stale."""
    found = []
    for path in paths:
        holder = read_holder(path)
        if holder is not None and is_alive(holder) is not False:
            found.append(holder)
    return found


__all__ = ["Holder", "is_alive", "live_holders", "locked", "me", "read_holder"]
