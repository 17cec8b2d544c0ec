"""SAMM (`samm`) (docs/design.md, Datasets).

Sheet `MICRO_ONLY` of `SAMM_Micro_FACS_Codes_v2.xlsx`: 13 rows of legend text, the header in row 14, subjects as
text ("006"). Frames: `SAMM/006/006_1_2/006_05562.jpg`. The v2 sheet has a few ambiguous AU strings and apex
frames outside their clips; the benchmark's standard corrections (below) are applied by default so results are
comparable with published SAMM numbers (`data.corrections: false` reads the sheet as it is).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from aullm.config import DataConfig
from aullm.core.console import logger
from aullm.data.readers.registry import RawRow, SheetRows, configured_frames_dir
from aullm.data.readers.sheets import cell_text, is_blank, newest, read_sheet, to_int

SHEET = "MICRO_ONLY"
REQUIRED = ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Action Units"]
ANNOTATION = "SAMM_Micro_FACS_Codes_v2.xlsx"

# The benchmark's standard corrections of the v2 sheet, exactly as tabulated in docs/design.md (Datasets), keyed by
# sample:
# field -> (value in the v2 sheet, corrected value). Five ambiguous `X or Y` AU strings get one reading and
# three apex frames (two of them outside their onset..offset clip in v2) get the corrected frame number.
# Applied whatever the cell holds (a log line says when it differs from v2); `data.corrections: false` turns
# the whole table off, and the loader's or_policy / apex checks then handle these rows like any others.
SAMM_CORRECTIONS: dict[str, dict[str, tuple[Any, Any]]] = {
    "007_6_1": {"Action Units": ("(R6 or R12)+R15", "R12+R15")},
    "007_6_5": {"Action Units": ("(R6 or R12) + R15", "R12+R15")},
    "011_4_2": {"Action Units": ("L12 or L14", "L14")},
    "014_5_2": {"Action Units": ("R12 or R14", "R14")},
    "035_7_2": {"Action Units": ("R14A or 17A or 24A", "R14A")},
    "028_4_1": {"Apex Frame": (1143, 1105)},  # v2 apex after offset 1134
    "032_3_1": {"Apex Frame": (1930, 4945)},  # v2 apex before onset 4896
    "032_3_2": {"Apex Frame": (5127, 5130)},
}


def subject_id(value: Any, sample: str) -> str:
    """'006', 6, 6.0 → '006'; a blank cell falls back to the file name's prefix (006_1_2)."""
    text = cell_text(value)
    if not text and re.match(r"^\d+_", sample):
        text = sample.split("_")[0]
    return text.zfill(3) if text.isdigit() else text


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, int):
        try:
            return to_int(a) == b
        except ValueError:
            return False
    return re.sub(r"\s", "", str(a)).casefold() == re.sub(r"\s", "", str(b)).casefold()


def apply_corrections(rows: list[RawRow]) -> int:
    """Apply SAMM_CORRECTIONS in place; returns how many fields changed. Logs when the sheet differs from v2."""
    field_attr = {"Action Units": "au", "Apex Frame": "apex"}
    changed = 0
    for row in rows:
        for field, (v2_value, corrected) in SAMM_CORRECTIONS.get(row.sample, {}).items():
            attr = field_attr[field]
            current = getattr(row, attr)
            if _same(current, corrected):
                continue
            if not _same(current, v2_value):
                logger.info(
                    "SAMM correction for %s %s: sheet has %r, v2 had %r; using %r",
                    row.sample,
                    field,
                    current,
                    v2_value,
                    corrected,
                )
            setattr(row, attr, corrected)
            changed += 1
    return changed


class SAMMReader:
    """SAMM's MICRO_ONLY sheet (with the standard corrections) and frame folders."""

    def find_annotation(self, root: Path) -> Optional[Path]:
        """`SAMM_Micro_FACS_Codes_v2.xlsx` (or another version) in the root or its `SAMM` folder."""
        for folder in (root, root / "SAMM"):
            exact = folder / ANNOTATION
            if exact.is_file():
                return exact
            found = sorted(p for p in folder.glob("SAMM_Micro_FACS_Codes*.xlsx") if not p.name.startswith("~$"))
            if found:
                return newest(found, "SAMM coding sheets")
        return None

    def frames_root(self, root: Path, cfg: DataConfig) -> Path:
        """`data.frames_dir`, else `<root>/SAMM` when present, else the root itself."""
        if cfg.frames_dir:
            return configured_frames_dir(root, cfg.frames_dir)
        inner = root / "SAMM"
        return inner if inner.is_dir() else root

    def read_rows(self, annotation: Path, root: Optional[Path], cfg: DataConfig) -> SheetRows:
        df, header_row = read_sheet(annotation, SHEET, REQUIRED)
        base = self.frames_root(root, cfg) if root is not None else None
        rows: list[RawRow] = []
        for i, rec in enumerate(df.to_dict("records")):
            if all(is_blank(rec.get(c)) for c in ("Filename", "Onset Frame", "Offset Frame")):
                continue  # blank and trailing rows
            sample = cell_text(rec["Filename"])
            subject = subject_id(rec["Subject"], sample)
            rows.append(
                RawRow(
                    subject=subject,
                    sample=sample,
                    onset=rec["Onset Frame"],
                    apex=rec["Apex Frame"],
                    offset=rec["Offset Frame"],
                    au=rec["Action Units"],
                    clip_dir=(base / subject / sample) if base is not None and sample else None,
                    where=f"{annotation.name} row {header_row + 1 + i}",
                )
            )
        if cfg.corrections:
            changed = apply_corrections(rows)
            logger.debug("SAMM: %d standard corrections applied", changed)
        return SheetRows(rows=rows, annotation=annotation, root=root)
