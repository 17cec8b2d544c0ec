"""`read_truth(path_or_root)`: the long-video ground truth of whatever the user points at (docs/datasets.md, Long
videos) — a SynME long folder, a truth CSV, a CAS(ME)² or SAMM Long Videos workbook, or a dataset root holding
one of these."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from aullm.core.errors import DataError, arg
from aullm.data.longvideo import casme2_long, samm_long
from aullm.data.longvideo.truth import CASME2_LONG_WORKBOOK, SYNME_LONG_META, TRUTH_CSV, read_truth_csv, workbook_sheets


def _workbook_kind(path: Path) -> Optional[str]:
    """`casme` / `samm` by the workbook's sheets (the file name is not trusted: MTSN ships `CASME_sq_gt.xlsx`)."""
    sheets = workbook_sheets(path)
    if casme2_long.SHEET in sheets:
        return "casme"
    if samm_long.SHEET in sheets:
        return "samm"
    return None


def _find_in_root(root: Path) -> Optional[Path]:
    """The annotation file of a dataset root: by the releases' names first, then any workbook with a known sheet;
    the root itself and one level down."""
    folders = [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))]
    for folder in folders:
        if (folder / SYNME_LONG_META).is_file() and (folder / TRUTH_CSV).is_file():
            return folder / TRUTH_CSV
        for pattern in ("CAS(ME)^2code_final*.xlsx", "SAMM_LongVideos_V*_Release.xlsx"):
            found = sorted(p for p in folder.glob(pattern) if not p.name.startswith("~$"))
            if found:
                return found[-1]  # the latest release when several are there ("(Updated)", V3 after V2)
        if (folder / TRUTH_CSV).is_file():
            return folder / TRUTH_CSV
    for folder in folders:
        for candidate in sorted(folder.glob("*.xlsx")):
            if candidate.name.startswith("~$"):
                continue
            try:
                if _workbook_kind(candidate):
                    return candidate
            except DataError:
                continue
    return None


def read_truth(source: Path, root: Optional[Path] = None, corrections: bool = True) -> pd.DataFrame:
    """The ground-truth table (columns `dataset, subject, video, onset, apex, offset, kind, aus, frames_dir`) of
    `source`: a SynME long folder, a truth CSV (SynME long's layout), a CAS(ME)² workbook (sheet
    `CASFEcode_final`), a SAMM Long Videos workbook (sheet `FACS_Movement_Only`), or a folder holding one of them
    (itself or one level down). Frame folders are looked for under `root` (default: the annotation's folder).
    `corrections=False` reads the workbooks without the known fixes (see casme2_long / samm_long)."""
    source = Path(source).expanduser()
    if not source.exists():
        raise DataError(f"{arg('truth', source)} does not exist")
    path = source
    if source.is_dir():
        found = _find_in_root(source)
        if found is None:
            raise DataError(
                f"{arg('truth', source)} holds no truth.csv, CAS(ME)² workbook (CAS(ME)^2code_final.xlsx) "
                "or SAMM Long Videos workbook (SAMM_LongVideos_V*_Release.xlsx)"
            )
        path = found
    frames_root = Path(root) if root is not None else None
    if path.suffix.lower() == ".csv":
        return read_truth_csv(path, frames_root or path.parent)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        kind = _workbook_kind(path)
        if kind == "casme":
            return casme2_long.read_casme2_long(path, frames_root, corrections)
        if kind == "samm":
            return samm_long.read_samm_long(path, frames_root, corrections)
        raise DataError(
            f"{arg('truth', path)} has neither a {casme2_long.SHEET!r} sheet (CAS(ME)²) "
            f"nor a {samm_long.SHEET!r} sheet (SAMM Long Videos)"
        )
    raise DataError(f"{arg('truth', path)} is neither a truth CSV nor an xlsx workbook")


__all__ = ["CASME2_LONG_WORKBOOK", "read_truth"]
