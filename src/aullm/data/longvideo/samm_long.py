"""SAMM Long Videos (docs/datasets.md, Long videos): the workbook `SAMM_LongVideos_V*_Release.xlsx`.

Layout (established from the spotting codes that read it: MEGC2020 baseline, SOFTNet/MEAN, ZH21, MTSN's
`SAMMLV_gt.xlsx`; /work/notes/spotting_research.md §5): sheet `FACS_Movement_Only`, legend rows above the header
row (row 10 in the releases; found here by its column names), columns `Subject, Filename, Inducement Code, Onset,
Apex, Offset, Duration, Type, Action Units, Notes`. `Subject` is text (`006`); `Filename` is `006_1_3` = subject,
video, expression, so the video key is `006_1`; `Type` is `Macro` or `Micro - 1/2`. Frames:
`SAMM_longvideos/006_1/006_1_0001.jpg` (1-based; zero padding of 4 or 5 digits, varying by video), and the
sheet's frame numbers are those file numbers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from aullm.data.longvideo.truth import TruthRow, finish, frame_number, kind_of
from aullm.data.readers.sheets import cell_text, is_blank, read_sheet

DATASET = "samm_lv"
SHEET = "FACS_Movement_Only"
REQUIRED = ["Subject", "Filename", "Onset", "Apex", "Offset", "Type"]
FRAMES = "SAMM_longvideos"

# The known annotation quirks, handled by default (`corrections=False` reads the sheet as it is: the rows below are
# then skipped by the common checks, which reproduces SOFTNet / MEAN / MTSN dropping the onset-0 rows):
# - fractional frame numbers (178 rows, e.g. 566.4): rounded half up, as ZH21 (`round`) and the MEGC2020 baseline
#   (`int(x + 0.5)`) do. This one is applied either way: a frame number has to be whole;
# - onset 0 (10 macro rows, e.g. 011_6_10, 018_4_4): onset := apex, as ZH21 does. SOFTNet, MEAN and MTSN drop
#   these rows instead (their macro count is 333, not 343): pass `corrections=False` for that;
# - apex -1 ("not annotated", 6 rows, e.g. 010_1_3, 036_6_2): apex := the midpoint (onset + offset) // 2;
# - offset beyond the video's last frame (020_6_5: 5476 of 5001 frames, 036_7_4: 8298 of 8201): clipped to the
#   last frame, as ZH21 does; only when the frames folder is there to count. An interval starting after the last
#   frame (012_4_1, onset 1341 in a 1000-frame video) cannot be fixed and is skipped.


def _frame(value: Any) -> Optional[int]:
    return frame_number(value, rounded=True)


def frames_root_of(root: Optional[Path]) -> Optional[Path]:
    """The `SAMM_longvideos` folder: `root` itself, inside it, or one level down; None when there is none."""
    if root is None or not root.is_dir():
        return None
    if root.name == FRAMES:
        return root
    if (root / FRAMES).is_dir():
        return root / FRAMES
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if (child / FRAMES).is_dir():
            return child / FRAMES
    return None


def last_frame(folder: Path) -> Optional[int]:
    """The largest frame number of `<video>_<N>.jpg` in a video's frames folder (None when it holds none)."""
    pattern = re.compile(rf"^{re.escape(folder.name)}_(\d+)\.jpg$", re.IGNORECASE)
    numbers = [int(m.group(1)) for entry in os.scandir(folder) if (m := pattern.match(entry.name))]
    return max(numbers) if numbers else None


def read_samm_long(path: Path, root: Optional[Path] = None, corrections: bool = True) -> pd.DataFrame:
    """The truth table (docs/datasets.md, Long videos) of a SAMM Long Videos workbook; frame folders under `root`
    (or next to the workbook) fill `frames_dir` and bound the offsets. Known quirks are fixed unless
    `corrections=False`."""
    path = Path(path)
    df, header_row = read_sheet(path, SHEET, REQUIRED)
    base = frames_root_of(Path(root) if root is not None else path.parent)
    lengths: dict[str, Optional[int]] = {}
    rows: list[TruthRow] = []
    for i, rec in enumerate(df.to_dict("records")):
        if all(is_blank(rec.get(c)) for c in ("Filename", "Onset", "Offset")):
            continue  # blank and trailing rows
        name = cell_text(rec["Filename"])
        parts = name.split("_")
        video = "_".join(parts[:2]) if len(parts) >= 2 else ""
        subject = cell_text(rec["Subject"]) or (parts[0] if parts else "")
        subject = subject.zfill(3) if subject.isdigit() else subject
        row = TruthRow(
            dataset=DATASET,
            subject=subject,
            video=video,
            onset=None,
            apex=None,
            offset=None,
            kind=kind_of(rec["Type"]),
            aus=cell_text(rec.get("Action Units")),
            where=f"{path.name} sheet {SHEET} row {header_row + 1 + i} ({name or 'no name'})",
        )
        try:
            row.onset, row.apex, row.offset = (_frame(rec[c]) for c in ("Onset", "Apex", "Offset"))
        except ValueError as err:
            row.problem = str(err)
        folder = base / video if base is not None and video else None
        if folder is not None and folder.is_dir():
            row.frames_dir = str(folder)
            if video not in lengths:
                lengths[video] = last_frame(folder)
        if corrections and not row.problem:
            _correct(row, lengths.get(video) if row.frames_dir else None)
        rows.append(row)
    return finish(rows, first_frame=1)


def _correct(row: TruthRow, frames: Optional[int]) -> None:
    """The known fixes (see the list at the top of this module), noted on the row."""
    if row.onset == 0 and row.apex is not None and row.apex > 0:
        row.notes.append(f"onset 0 set to the apex {row.apex}")
        row.onset = row.apex
    if row.apex == -1 and row.onset is not None and row.offset is not None:
        row.apex = (row.onset + row.offset) // 2
        row.notes.append(f"apex -1 (not annotated) set to the midpoint {row.apex}")
    if frames is not None and row.offset is not None and row.offset > frames:
        if row.onset is not None and row.onset > frames:
            row.problem = f"onset {row.onset} after the video's last frame {frames}"
            return
        row.notes.append(f"offset {row.offset} clipped to the video's last frame {frames}")
        row.offset = frames
        if row.apex is not None and row.apex > frames:
            row.apex = frames


__all__ = ["DATASET", "SHEET", "last_frame", "read_samm_long"]
