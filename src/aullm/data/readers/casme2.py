"""CASME II (`casme2`) and SynME (`synme`, written in CASME II's cropped layout) (docs/design.md, Datasets).

Sheet 1 of `CASME2-coding-*.xlsx`: `Subject, Filename, (blank), OnsetFrame, ApexFrame, OffsetFrame, (blank),
Action Units, Estimated Emotion`. `Subject` is an int (1) or text ("01") depending on the file version; both
become "01", matching the `sub01` folders. Frames: `Cropped/sub01/EP02_01f/reg_img46.jpg` when `Cropped` exists,
else `CASME2_RAW_selected/sub01/EP02_01f/img46.jpg`, or whatever `data.frames_dir` names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from aullm.config import DataConfig
from aullm.data.readers.registry import RawRow, SheetRows, configured_frames_dir
from aullm.data.readers.sheets import cell_text, is_blank, newest, read_sheet

SHEET = 0
REQUIRED = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units"]
CROPPED = "Cropped"
RAW = "CASME2_RAW_selected"


def subject_id(value: Any) -> str:
    """1, 1.0, '1', '01', 'sub01' → '01'."""
    text = cell_text(value)
    text = re.sub(r"^sub", "", text, flags=re.IGNORECASE).strip()
    return text.zfill(2) if text.isdigit() else text


class CASME2Reader:
    """CASME II's coding sheet and frame folders (also SynME, written in the same layout)."""

    def find_annotation(self, root: Path) -> Optional[Path]:
        """The newest `CASME2-coding-*.xlsx` in the root (names carry the date), else the root's only xlsx."""
        candidates = sorted(
            p for p in root.glob("*.xlsx") if p.name.lower().startswith("casme2-coding") and not p.name.startswith("~$")
        )
        if candidates:
            return newest(candidates, "CASME II coding sheets")
        others = [p for p in root.glob("*.xlsx") if not p.name.startswith("~$")]
        return others[0] if len(others) == 1 else None

    def frames_root(self, root: Path, cfg: DataConfig) -> Path:
        """`data.frames_dir` (absolute or under the root), else `Cropped` when present, else the raw folder."""
        if cfg.frames_dir:
            return configured_frames_dir(root, cfg.frames_dir)
        cropped = root / CROPPED
        return cropped if cropped.is_dir() else root / RAW

    def read_rows(self, annotation: Path, root: Optional[Path], cfg: DataConfig) -> SheetRows:
        df, header_row = read_sheet(annotation, SHEET, REQUIRED)
        base = self.frames_root(root, cfg) if root is not None else None
        rows: list[RawRow] = []
        for i, rec in enumerate(df.to_dict("records")):
            if all(is_blank(rec.get(c)) for c in ("Subject", "Filename", "OnsetFrame", "OffsetFrame")):
                continue  # trailing empty rows
            subject = subject_id(rec["Subject"])
            sample = cell_text(rec["Filename"])
            rows.append(
                RawRow(
                    subject=subject,
                    sample=sample,
                    onset=rec["OnsetFrame"],
                    apex=rec["ApexFrame"],
                    offset=rec["OffsetFrame"],
                    au=rec["Action Units"],
                    clip_dir=(base / f"sub{subject}" / sample) if base is not None and sample else None,
                    where=f"{annotation.name} row {header_row + 1 + i}",
                )
            )
        return SheetRows(rows=rows, annotation=annotation, root=root)
