"""Manifest (`manifest`): a CSV describing any other dataset or pre-computed input (docs/design.md, Datasets).

Columns `subject, sample, path` plus `AU1`, `AU2`, … (0/1; `?` or blank = unknown) and optional
`onset, apex, offset`. `path` (absolute, or relative to the CSV's folder, then to the root) is a folder of frames,
a video (onset/offset are then 0-based frame indices) or one image holding a pre-computed flow triple
(u, v, strain as R, G, B; needs `data.input: flow`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import pandas as pd

from aullm.config import DataConfig
from aullm.core.errors import DataError
from aullm.data.clips import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from aullm.data.readers.registry import RawRow, SheetRows
from aullm.data.readers.sheets import normalise_name

REQUIRED = ["subject", "sample", "path"]
OPTIONAL = ["onset", "apex", "offset"]
_AU = re.compile(r"^au(\d+)$")


def _kind(path: Path) -> str:
    if path.is_dir():
        return "frames"
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "flow_image"
    return "frames"


def _resolve(text: str, manifest: Path, root: Optional[Path]) -> Path:
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    first = manifest.parent / path
    if not first.exists() and root is not None and (root / path).exists():
        return root / path
    return first


class ManifestReader:
    """A manifest CSV: every row names its own clip."""

    def find_annotation(self, root: Path) -> Optional[Path]:
        """`manifest.csv` in the root, else the root's only CSV."""
        if (root / "manifest.csv").is_file():
            return root / "manifest.csv"
        found = list(root.glob("*.csv"))
        return found[0] if len(found) == 1 else None

    def frames_root(self, root: Path, cfg: DataConfig) -> Optional[Path]:
        return None  # every row names its own path

    def read_rows(self, annotation: Path, root: Optional[Path], cfg: DataConfig) -> SheetRows:
        try:
            df = pd.read_csv(annotation, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (OSError, ValueError, pd.errors.ParserError) as err:
            raise DataError(f"cannot read manifest {annotation}: {err}") from None
        names = {normalise_name(c): c for c in df.columns}
        for column in REQUIRED:
            if column not in names:
                raise DataError(f"manifest {annotation} is missing column {column!r}")
        au_cols = {}
        for c in df.columns:
            match = _AU.match(normalise_name(c))
            if match:
                au_cols[f"AU{int(match.group(1))}"] = c
        if not au_cols:
            raise DataError(f"manifest {annotation} is missing AU columns (AU1, AU2, …)")
        rows: list[RawRow] = []
        for i, rec in enumerate(df.to_dict("records")):

            def get(name: str, rec: dict = rec) -> str:
                return rec[names[name]].strip() if name in names else ""

            if not any(get(c) for c in REQUIRED):
                continue
            path_text = get("path")
            path = _resolve(path_text, annotation, root) if path_text else None
            rows.append(
                RawRow(
                    subject=get("subject"),
                    sample=get("sample"),
                    onset=get("onset") or None,
                    apex=get("apex") or None,
                    offset=get("offset") or None,
                    au=None,
                    clip_dir=path,
                    where=f"{annotation.name} line {i + 2}",
                    labels={au: rec[col] for au, col in au_cols.items()},
                    kind=_kind(path) if path is not None else "frames",
                )
            )
        return SheetRows(rows=rows, annotation=annotation, root=root)
