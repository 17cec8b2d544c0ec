"""The common ground-truth table of long videos (docs/datasets.md, Long videos) and the checks every reader
applies to its rows.

One row per annotated expression: `dataset, subject, video, onset, apex, offset, kind, aus, frames_dir`.
`video` is the dataset's canonical video key (`15_0101` for CAS(ME)², `006_1` for SAMM Long Videos, the file's
stem for SynME long); `onset, apex, offset` are inclusive frame numbers in the dataset's own numbering (the frame
files' numbers, 1-based, for CAS(ME)² and SAMM-LV; 0-based indices of the video file for SynME long's
`truth.csv`); `kind` is `micro` or `macro`; `frames_dir` is the video's frames folder when a root holding it was
given, else empty. Rows that cannot be used are skipped with a warning naming them and listed in
`DataFrame.attrs["skipped"]` as `{"row", "reason"}`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from aullm.core.console import logger
from aullm.core.errors import DataError

COLUMNS: tuple[str, ...] = ("dataset", "subject", "video", "onset", "apex", "offset", "kind", "aus", "frames_dir")
KINDS: tuple[str, ...] = ("micro", "macro")
#: SynME long's files (written by `aullm synth --long`, read here): the truth table and the settings record.
TRUTH_CSV = "truth.csv"
SYNME_LONG_META = "synme_long.json"
#: The CAS(ME)² annotation workbook's name as the dataset ships it (and as SynME long writes it).
CASME2_LONG_WORKBOOK = "CAS(ME)^2code_final.xlsx"


@dataclass
class TruthRow:
    """One expression as a reader found it, before the checks; `where` names it in warnings."""

    dataset: str
    subject: str
    video: str
    onset: Optional[int]
    apex: Optional[int]
    offset: Optional[int]
    kind: Optional[str]
    aus: str
    where: str
    frames_dir: str = ""
    problem: str = ""  # set by a reader when a cell cannot be read: the row is skipped with this reason
    notes: list[str] = field(default_factory=list)  # the fixes applied to the row (logged at info level)


def frame_number(value: Any, rounded: bool = False) -> Optional[int]:
    """A frame cell as int; None for a blank. Floats are rounded half up when `rounded` (SAMM-LV writes 566.4),
    otherwise a non-whole number raises ValueError."""
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise ValueError(f"not a frame number: {value!r}")
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
    else:
        text = str(value).strip()
        if text.lower() in ("", "nan", "none", "/", "-", "?"):
            return None
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"not a frame number: {value!r}") from None
    if math.isnan(number):
        return None
    if number.is_integer():
        return int(number)
    if rounded:
        return int(math.floor(number + 0.5))
    raise ValueError(f"not a whole frame number: {value!r}")


def kind_of(value: Any) -> Optional[str]:
    """`micro-expression`, `Micro - 1/2`, `micro` → micro; `macro-expression`, `Macro` → macro; else None."""
    text = str(value).strip().lower() if value is not None else ""
    for kind in KINDS:
        if text.startswith(kind):
            return kind
    return None


def finish(rows: list[TruthRow], first_frame: int) -> pd.DataFrame:
    """The checked table of `rows`: a row with a missing frame, a frame before `first_frame`, onset after offset,
    an unknown kind or a duplicate (same video, kind, onset and offset) is skipped with a warning naming it; an
    apex outside onset..offset is kept with a warning (spotting evaluation uses onset and offset only)."""
    kept: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    seen: set[tuple[str, str, int, int]] = set()

    def skip(row: TruthRow, reason: str) -> None:
        logger.warning("%s: %s; skipped", row.where, reason)
        skipped.append({"row": row.where, "reason": reason})

    for row in rows:
        if row.problem:
            skip(row, row.problem)
            continue
        missing = [n for n in ("onset", "apex", "offset") if getattr(row, n) is None]
        if missing:
            skip(row, f"no {' / '.join(missing)} frame")
            continue
        assert row.onset is not None and row.apex is not None and row.offset is not None
        if row.kind not in KINDS:
            skip(row, "unknown expression type (neither micro nor macro)")
            continue
        if not row.video:
            skip(row, "no video name")
            continue
        low = min(row.onset, row.apex, row.offset)
        if low < first_frame:
            skip(row, f"frame {low} before the first frame {first_frame}")
            continue
        if row.onset > row.offset:
            skip(row, f"onset {row.onset} after offset {row.offset}")
            continue
        key = (row.video, row.kind, row.onset, row.offset)
        if key in seen:
            skip(row, f"duplicate of an earlier {row.kind} interval {row.onset}..{row.offset} of {row.video}")
            continue
        seen.add(key)
        if not row.onset <= row.apex <= row.offset:
            logger.warning(
                "%s: apex %d outside onset..offset %d..%d; kept (spotting uses onset and offset)",
                row.where,
                row.apex,
                row.onset,
                row.offset,
            )
        for note in row.notes:
            logger.info("%s: %s", row.where, note)
        kept.append(
            {
                "dataset": row.dataset,
                "subject": row.subject,
                "video": row.video,
                "onset": row.onset,
                "apex": row.apex,
                "offset": row.offset,
                "kind": row.kind,
                "aus": row.aus,
                "frames_dir": row.frames_dir,
            }
        )
    frame = pd.DataFrame(kept, columns=list(COLUMNS))
    for column in ("onset", "apex", "offset"):
        frame[column] = frame[column].astype("int64")
    for column in ("dataset", "subject", "video", "kind", "aus", "frames_dir"):
        frame[column] = frame[column].astype(str)
    frame.attrs["skipped"] = skipped
    return frame


def workbook_sheets(path: Path) -> list[str]:
    """The sheet names of an xlsx workbook; DataError when it cannot be opened."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True)
    except FileNotFoundError:
        raise DataError(f"annotation workbook not found: {path}") from None
    except Exception as err:  # a damaged or non-xlsx file: openpyxl raises many types
        raise DataError(f"cannot read annotation workbook {path}: {err or type(err).__name__}") from None
    try:
        return list(book.sheetnames)
    finally:
        book.close()


def read_raw_sheet(path: Path, sheet: str) -> pd.DataFrame:
    """Every cell of one sheet as written (no header row, object dtype), blank rows dropped; the index is the
    0-based sheet row (so `index + 1` is the row number Excel shows). DataError for a missing sheet."""
    if sheet not in workbook_sheets(path):
        raise DataError(f"annotation workbook {path} has no sheet {sheet!r}")
    try:
        raw = pd.read_excel(path, sheet_name=sheet, header=None, dtype=object, engine="openpyxl")
    except Exception as err:
        raise DataError(f"cannot read sheet {sheet!r} of {path}: {err or type(err).__name__}") from None
    return raw.dropna(how="all")


def subject_of(video: str) -> str:
    """The subject part of a video key: `15_0101` → `15`, `006_1` → `006` (the key itself when it has no `_`)."""
    return video.split("_", 1)[0]


def read_truth_csv(path: Path, frames_root: Optional[Path] = None) -> pd.DataFrame:
    """A plain truth CSV in SynME long's layout: `video, onset, apex, offset, kind` (+ optional `subject, aus,
    dataset, frames_dir`; `fps, frames` are ignored). Frames are taken as written (SynME: 0-based video indices).

    `frames_root`: a folder holding `rawpic/s<subject>/<video>/` (SynME long written with frames) for `frames_dir`.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"truth file not found: {path}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"cannot read truth file {path}: {err}") from None
    lacking = [c for c in ("video", "onset", "apex", "offset", "kind") if c not in raw.columns]
    if lacking:
        raise DataError(f"truth file {path} is missing column(s) {', '.join(lacking)}")
    in_synme = (path.parent / SYNME_LONG_META).is_file()
    rows: list[TruthRow] = []
    for i, rec in enumerate(raw.to_dict("records")):
        where = f"{path.name} row {i + 2}"
        video = str(rec["video"]).strip()
        subject = str(rec.get("subject", "")).strip() or subject_of(video)
        values: dict[str, Optional[int]] = {}
        bad = ""
        for name in ("onset", "apex", "offset"):
            try:
                values[name] = frame_number(rec[name])
            except ValueError as err:
                bad = f"{name}: {err}"
                values[name] = None
        row = TruthRow(
            dataset=str(rec.get("dataset", "")).strip() or ("synme_long" if in_synme else "csv"),
            subject=subject,
            video=video,
            onset=values["onset"],
            apex=values["apex"],
            offset=values["offset"],
            kind=kind_of(rec["kind"]),
            aus=str(rec.get("aus", "")).strip(),
            where=where,
            frames_dir=str(rec.get("frames_dir", "")).strip(),
        )
        row.problem = bad
        if not row.frames_dir and frames_root is not None:
            folder = frames_root / "rawpic" / f"s{subject}" / video
            if folder.is_dir():
                row.frames_dir = str(folder)
        rows.append(row)
    return finish(rows, first_frame=0)


__all__ = [
    "CASME2_LONG_WORKBOOK",
    "COLUMNS",
    "KINDS",
    "SYNME_LONG_META",
    "TRUTH_CSV",
    "TruthRow",
    "finish",
    "frame_number",
    "kind_of",
    "read_raw_sheet",
    "read_truth_csv",
    "subject_of",
    "workbook_sheets",
]
