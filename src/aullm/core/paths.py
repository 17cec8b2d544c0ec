"""What is wrong with a path the user gave: missing, a file where a folder is needed (or the reverse), a symbolic
link that loops or points nowhere. "Not found" for a path that exists as the wrong kind sends the user looking
for a missing file that is there, so every such message says which it is.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Literal

Kind = Literal["file", "folder"]


def path_problem(path: Path, want: Kind) -> str:
    """Why `path` is not a usable `want` ("" when it is): "missing", "a file, not a folder", "a folder, not a
    file", "a symbolic link that loops", "a broken symbolic link (to …)", or "not readable (…)"."""
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symbolic link that loops (it points back to itself)"
        if path.is_symlink():
            return f"a broken symbolic link (to {os.readlink(path)}, which does not exist)"
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return "missing"
        return f"not readable ({err.strerror})"
    is_dir = os.path.isdir(path) if info else False
    if want == "folder" and not is_dir:
        return "a file, not a folder"
    if want == "file" and is_dir:
        return "a folder, not a file"
    return ""


def describe(path: Path, what: str, want: Kind, missing: str = "not found") -> str:
    """`<what> not found: <path>` when missing (`missing` says it otherwise), else `<what> <path> is <problem>`
    ("" when `path` is usable)."""
    problem = path_problem(path, want)
    if not problem:
        return ""
    if problem == "missing":
        return f"{what} {missing}: {path}"
    return f"{what} {path} is {problem}"


__all__ = ["describe", "path_problem"]
