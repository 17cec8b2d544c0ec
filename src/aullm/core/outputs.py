"""Outputs never destroy what the user has: the rule `train` applies to its run directory, for every command that
writes files (`predict`, `explain`, `crop`).

- An output is never one of the command's inputs, nor inside one (`aullm crop X --out X` would overwrite the
  frames with their crops; `aullm predict m.csv --out m.csv` the manifest).
- An output folder is new, empty, or one aullm wrote for the same command (it holds the marker file `MARKER`,
  naming the command): a folder of the user's own files is refused, since its files could be overwritten.
- An output file is new, or one aullm wrote (recognised by the caller's `ours` test, e.g. a predictions header).

`force=True` (`--force`) lifts the last two rules, never the first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

from aullm.core.errors import UserError, arg
from aullm.core.io import check_not_inside_inputs, check_output_dir, check_output_file, write_text

MARKER = ".aullm-output"


def folder_command(folder: Path) -> Optional[str]:
    """The command that wrote `folder` (its marker), None when aullm did not mark it."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return None
    try:
        return str(json.loads(marker.read_text(encoding="utf-8")).get("command"))
    except (OSError, ValueError, AttributeError):
        return None


def check_output_folder(
    folder: Path,
    command: str,
    inputs: Sequence[Path] = (),
    *,
    force: bool = False,
    what: str = "output folder",
    also_ours: Optional[Callable[[Path], bool]] = None,
) -> None:
    """Refuse, before any work, an output folder that is an input or inside one, cannot be written, or holds
    files aullm did not write for `command` (`also_ours(folder)`: another sign it did, e.g. an older version's
    files)."""
    folder = Path(folder).expanduser()
    check_output_dir(folder, what)
    check_not_inside_inputs(folder, inputs, what)
    if force or not folder.is_dir():
        return
    entries = sorted(p.name for p in folder.iterdir())
    if not entries or folder_command(folder) == command or (also_ours is not None and also_ours(folder)):
        return
    writer = folder_command(folder)
    whose = f"aullm {writer}'s output" if writer else "files aullm did not write"
    raise UserError(
        f"{what} {folder} holds {whose} ({', '.join(entries[:3])}{', …' if len(entries) > 3 else ''}); refusing to "
        f"write into it: choose a new or empty folder, or pass {arg('force', True)} to overwrite"
    )


def mark_output_folder(folder: Path, command: str) -> None:
    """Record that aullm `command` wrote `folder` (so that it may write there again)."""
    from aullm.core.version import __version__

    write_text(Path(folder) / MARKER, json.dumps({"command": command, "aullm": __version__}) + "\n")


def check_output_path(
    path: Path,
    inputs: Sequence[Path] = (),
    *,
    ours: Callable[[Path], bool],
    force: bool = False,
    what: str = "output file",
) -> None:
    """Refuse an output file that is an input or inside one, cannot be written, or exists and is not aullm's
    (`ours(path)`)."""
    path = Path(path).expanduser()
    check_output_file(path, what)
    check_not_inside_inputs(path, inputs, what)
    if path.exists() and not force and not ours(path):
        raise UserError(
            f"{what} {path} exists and was not written by aullm; refusing to overwrite it: choose another name, "
            f"or pass {arg('force', True)}"
        )


def first_line(path: Path, limit: int = 4096) -> str:
    """The file's first line (at most `limit` bytes), '' when unreadable or binary."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(limit)
        return head.split(b"\n", 1)[0].decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


__all__ = [
    "MARKER",
    "check_output_folder",
    "check_output_path",
    "first_line",
    "folder_command",
    "mark_output_folder",
]
