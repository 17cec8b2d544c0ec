"""Atomic file and folder writes: a reader (or a second machine sharing a run directory) sees the old file or the
new one, never half of one.

Every write goes to a temporary name made unique by a random suffix in the destination's own folder (so the final
rename stays on one file system, where it is atomic) and is renamed into place only when complete. Unique names
matter because several machines may write into one shared run directory at once; a fixed `x.tmp` would let two
writers interleave.

The temporary file is created as `open(..., "w")` creates a file (mode 0666, then the process's umask) and a
temporary folder as `mkdir` does (0777 less the umask), not as `tempfile.mkstemp`/`mkdtemp` do (0600/0700): a
report, a bundle or a predictions.csv must be as readable by a lab-mate as any file the user writes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aullm.core.errors import UserError

if TYPE_CHECKING:
    import pandas as pd


#: Why a write can fail that the user, not aullm, must fix: a full disk or quota, a read-only or forbidden place.
_CANNOT_WRITE = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "no permission",
    errno.EPERM: "not permitted",
}


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


@contextlib.contextmanager
def _writing(path: Path, *, creating: bool = False) -> Iterator[None]:
    """Turn a write that the user's machine refused (full disk, read-only, and when `creating`, no permission)
    into one UserError naming the file; the temporary file is removed by the caller, so nothing half-written is
    left. (While writing, a permission error may be about a file being read, so only `creating` claims it.)"""
    try:
        yield
    except OSError as err:
        why = _CANNOT_WRITE.get(err.errno or 0)
        if why is None or not (creating or err.errno in _FULL):
            raise
        raise UserError(
            f"cannot write {path}: {why}; nothing half-written was left (an earlier file there is unchanged)"
        ) from None


def _unique(path: Path, create: Callable[[Path], None]) -> Path:
    """A new temporary name `.<name>.<random>.tmp` beside `path`, created by `create` (which must fail with
    FileExistsError when the name is taken: O_EXCL, mkdir), with the permissions the umask gives."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            create(tmp)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside `path`; on success it replaces `path`, on error it is removed.

    For writers that insist on a file name (safetensors, numpy): `with atomic_path(p) as tmp: save(tmp)`.
    """
    path = Path(path)
    with _writing(path, creating=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _unique(path, lambda name: os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))
    try:
        with _writing(path):
            yield tmp
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as CSV (no index) atomically."""
    write_text(path, frame.to_csv(index=False))


@contextlib.contextmanager
def atomic_dir(path: Path, *, replace: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `path`; on success it takes `path`'s place, on error it is deleted.

    An existing folder at `path` is removed first (`replace=True`; the caller decides beforehand whether that is
    allowed) or kept, discarding the new one (`replace=False`: for caches that another process may fill first).
    """
    path = Path(path)
    with _writing(path, creating=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _unique(path, lambda name: os.mkdir(name, 0o777))
    try:
        with _writing(path):
            yield tmp
            if path.exists():
                if not replace:
                    return
                shutil.rmtree(path)
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _nearest_existing(path: Path) -> Path:
    """`path` itself or its closest ancestor that exists."""
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_output_dir(path: Path, what: str = "output folder") -> None:
    """Refuse, before any work, a folder that cannot be written: an existing file, a path under a file, or a
    location without write permission. One line naming the path (UserError → exit code 2)."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is an existing file, not a folder")
    anchor = _nearest_existing(path)
    if not anchor.is_dir():
        raise UserError(f"{what} {path} cannot be created: {anchor} is a file, not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} is not writable (no write permission on {anchor})")


def check_output_file(path: Path, what: str = "output file") -> None:
    """Refuse, before any work, a file path that cannot be written: an existing folder, a path under a file, or a
    location without write permission."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{what} {path} is not writable")
    check_output_dir(path.parent, f"{what} {path}: its folder")


def check_not_inside_inputs(out: Path, inputs: Sequence[Path], what: str = "output") -> None:
    """Refuse an output path that is, or lies inside, one of the command's inputs: outputs never overwrite what
    the user gave aullm to read."""
    target = Path(out).expanduser().resolve()
    for given in inputs:
        source = Path(given).expanduser().resolve()
        if target == source or source in target.parents:
            raise UserError(f"{what} {out} is inside the input {given}; choose a folder outside it")


__all__ = [
    "atomic_dir",
    "atomic_path",
    "check_not_inside_inputs",
    "check_output_dir",
    "check_output_file",
    "write_bytes",
    "write_csv",
    "write_text",
]
