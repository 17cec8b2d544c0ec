"""CAS(ME)² long videos (docs/datasets.md, Long videos): the annotation workbook `CAS(ME)^2code_final.xlsx`.

Layout (established from the spotting codes that read it: MEGC2020 baseline `CASME_2.py`, SOFTNet, MEAN, MTSN's
`CASME_sq_gt.xlsx`; /work/notes/spotting_research.md §4):

- sheet `CASFEcode_final`, no header row, 9 columns: participant index (1..22), expression name
  `<videoname>_<n>` (`anger1_1`), onset, apex, offset, AUs (`4+10+14`, or a number), estimated emotion,
  `micro-expression` / `macro-expression`, self-reported emotion;
- sheet `naming rule1`, row-aligned with the first: `[15, 's15', 1]` = folder number, folder, participant index;
- sheet `naming rule2`: `['0101', 'disgust1']` = the video code (text; a number loses its leading zero, so it is
  padded back to 4 digits) and the video name used in the expression names.

The canonical video key is `<NN>_<CODE>` (`15_0101`); frames are `rawpic/s<NN>/<NN>_<CODE><description>/img<N>.jpg`
(`15_0101disgustingteeth/img001.jpg`: 1-based, zero-padded to at least 3 digits), and the sheet's frame numbers are
those file numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pandas as pd

from aullm.core.errors import DataError
from aullm.data.longvideo.truth import TruthRow, finish, frame_number, kind_of, read_raw_sheet

DATASET = "casme_sq"
SHEET = "CASFEcode_final"
RULE1 = "naming rule1"
RULE2 = "naming rule2"
COLUMNS = ("participant", "expression", "onset", "apex", "offset", "aus", "emotion", "type", "self_report")
FRAMES = "rawpic"

# The known annotation errors, fixed by default (`corrections=False` reads the sheet as it is, and these rows are
# then skipped or kept with a warning by the common checks):
# - offset 0 (44 macro rows of the release): offset := apex, as the MEGC2020 baseline, SOFTNet, MEAN, MTSN and
#   the MEGC2021 entry ZH21 all do (ZHAO22 / QIN23 use apex + 2/3 s instead);
# - apex 0 (1 row, s34 `anger1_1`: 1763, 0, 1787): apex := the midpoint (onset + offset) // 2, as the MEGC2020
#   baseline does.
# Three rows have offset < apex (s27 `disgust1_5`, s31 `happy2_1`, s32 `anger1_12`); no published code fixes them
# and they are kept with a warning: the evaluation uses onset and offset only.


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _int_cell(value: Any) -> Optional[int]:
    try:
        return frame_number(value)
    except ValueError:
        return None


def naming_rules(path: Path) -> tuple[dict[int, str], dict[str, str]]:
    """(participant index → folder number `15`, video name → 4-digit code `0101`) from the naming-rule sheets."""
    rule1 = read_raw_sheet(path, RULE1)
    rule2 = read_raw_sheet(path, RULE2)
    if rule1.shape[1] < 3:
        raise DataError(f"sheet {RULE1!r} of {path} has {rule1.shape[1]} columns, expected 3 (15, s15, 1)")
    if rule2.shape[1] < 2:
        raise DataError(f"sheet {RULE2!r} of {path} has {rule2.shape[1]} columns, expected 2 (0101, disgust1)")
    folders: dict[int, str] = {}
    for _, rec in rule1.iterrows():
        number, participant = _int_cell(rec.iloc[0]), _int_cell(rec.iloc[2])
        if number is None or participant is None:
            continue  # a header or note row
        if folders.get(participant, str(number)) != str(number):
            raise DataError(f"sheet {RULE1!r} of {path} maps participant {participant} to two folders")
        folders[participant] = str(number)
    codes: dict[str, str] = {}
    for _, rec in rule2.iterrows():
        code, name = _cell(rec.iloc[0]), _cell(rec.iloc[1])
        if code.isdigit() and name:
            codes[name] = code.zfill(4)
    if not folders or not codes:
        raise DataError(f"the naming-rule sheets of {path} hold no participant or video mapping")
    return folders, codes


def video_name(expression: str) -> str:
    """`anger1_1` → `anger1` (the expression number after the last `_` removed)."""
    head, sep, tail = expression.rpartition("_")
    return head if sep and tail.isdigit() else expression


def find_frames(root: Path, number: str, code: str) -> Optional[Path]:
    """`rawpic/s<NN>/<NN>_<CODE>*/` under `root` (the description after the code varies: `disgustingteeth`)."""
    subject_dir = root / FRAMES / f"s{number}"
    if not subject_dir.is_dir():
        return None
    key = f"{number}_{code}"
    found = sorted(
        p
        for p in subject_dir.iterdir()
        if p.is_dir() and p.name.startswith(key) and not p.name[len(key) :][:1].isdigit()
    )
    return found[0] if found else None


def frames_root_of(root: Optional[Path]) -> Optional[Path]:
    """The folder holding `rawpic/`: `root` itself or one level down; None when there is none."""
    if root is None:
        return None
    if (root / FRAMES).is_dir():
        return root
    for child in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if (child / FRAMES).is_dir():
            return child
    return None


def read_casme2_long(path: Path, root: Optional[Path] = None, corrections: bool = True) -> pd.DataFrame:
    """The truth table (docs/datasets.md, Long videos) of a CAS(ME)² workbook; frame folders under `root`
    (or next to the workbook) fill `frames_dir`. The known errors are fixed unless `corrections=False`."""
    path = Path(path)
    raw = read_raw_sheet(path, SHEET)
    if raw.shape[1] < 8:
        raise DataError(
            f"sheet {SHEET!r} of {path} has {raw.shape[1]} columns, expected 9 "
            "(participant, expression, onset, apex, offset, AUs, emotion, type, self-report)"
        )
    folders, codes = naming_rules(path)
    lower_codes = {k.casefold(): v for k, v in codes.items()}
    base = frames_root_of(Path(root) if root is not None else path.parent)
    rows: list[TruthRow] = []
    for index, rec in raw.iterrows():
        cells = list(rec.iloc[:9]) + [None] * max(0, 9 - len(rec))
        where = f"{path.name} sheet {SHEET} row {int(str(index)) + 1}"
        participant = _int_cell(cells[0])
        if participant is None and kind_of(cells[7]) is None and _int_cell(cells[2]) is None:
            continue  # a header row someone added, or a note
        expression = _cell(cells[1])
        name = video_name(expression)
        number = folders.get(participant) if participant is not None else None
        code = codes.get(name) or lower_codes.get(name.casefold())
        row = TruthRow(
            dataset=DATASET,
            subject=number or "",
            video=f"{number}_{code}" if number and code else "",
            onset=None,
            apex=None,
            offset=None,
            kind=kind_of(cells[7]),
            aus=_cell(cells[5]),
            where=f"{where} ({expression or 'no name'})",
        )
        if number is None:
            row.problem = f"participant {_cell(cells[0]) or '(blank)'} is not in sheet {RULE1!r}"
        elif code is None:
            row.problem = f"video {name!r} is not in sheet {RULE2!r}"
        try:
            row.onset, row.apex, row.offset = (frame_number(cells[i]) for i in (2, 3, 4))
        except ValueError as err:
            row.problem = row.problem or str(err)
        if corrections and not row.problem:
            _correct(row)
        if base is not None and number and code:
            folder = find_frames(base, number, code)
            row.frames_dir = str(folder) if folder is not None else ""
        rows.append(row)
    return finish(rows, first_frame=1)


def _correct(row: TruthRow) -> None:
    """The known fixes (see the list at the top of this module), noted on the row."""
    if row.offset == 0 and row.apex:
        row.notes.append(f"offset 0 set to the apex {row.apex}")
        row.offset = row.apex
    if row.apex == 0 and row.onset is not None and row.offset:
        row.apex = (row.onset + row.offset) // 2
        row.notes.append(f"apex 0 set to the midpoint {row.apex}")


__all__ = ["DATASET", "SHEET", "find_frames", "naming_rules", "read_casme2_long", "video_name"]
