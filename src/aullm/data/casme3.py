"""CAS(ME)³ part A (`casme3a`, optional) (docs/design.md, Datasets).

Sheet `label` with `Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion`. Frames are looked up
as `<frames root>/<Subject>/<Filename>/` (or its `color/` subfolder, as the release stores RGB and depth side by
side); `data.frames_dir` names the frames root when it is not the dataset root itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from aullm.config import DataConfig
from aullm.data.readers import RawRow, SheetRows, configured_frames_dir
from aullm.data.sheets import cell_text, is_blank, read_sheet

SHEET = "label"
REQUIRED = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU"]


class CASME3Reader:
    """CAS(ME)³ part A's label sheet and frame folders."""

    def find_annotation(self, root: Path) -> Optional[Path]:
        """An xlsx in the root with a `label` sheet (the release names it after part A and the version)."""
        candidates = sorted(p for p in root.glob("*.xlsx") if not p.name.startswith("~$"))
        candidates.sort(key=lambda p: "label" not in p.name.lower())
        for path in candidates:
            try:
                if SHEET in pd.ExcelFile(path, engine="openpyxl").sheet_names:
                    return path
            except Exception:
                continue
        return None

    def frames_root(self, root: Path, cfg: DataConfig) -> Path:
        if cfg.frames_dir:
            return configured_frames_dir(root, cfg.frames_dir)
        return root

    def read_rows(self, annotation: Path, root: Optional[Path], cfg: DataConfig) -> SheetRows:
        df, header_row = read_sheet(annotation, SHEET, REQUIRED)
        base = self.frames_root(root, cfg) if root is not None else None
        rows: list[RawRow] = []
        for i, rec in enumerate(df.to_dict("records")):
            if all(is_blank(rec.get(c)) for c in ("Subject", "Filename", "Onset", "Offset")):
                continue
            subject = cell_text(rec["Subject"])
            sample = cell_text(rec["Filename"])
            clip_dir = None
            if base is not None and sample:
                clip_dir = base / subject / sample
                if (clip_dir / "color").is_dir():
                    clip_dir = clip_dir / "color"
            rows.append(
                RawRow(
                    subject=subject,
                    sample=sample,
                    onset=rec["Onset"],
                    apex=rec["Apex"],
                    offset=rec["Offset"],
                    au=rec["AU"],
                    clip_dir=clip_dir,
                    where=f"{annotation.name} row {header_row + 1 + i}",
                )
            )
        return SheetRows(rows=rows, annotation=annotation, root=root)
