"""Reading annotation sheets as the datasets ship them: locate the header row, match column names loosely, and
read frame-number and text cells whatever type Excel stored them as. Shared by every dataset reader."""

from __future__ import annotations

import math
import numbers
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from aullm.core.console import logger
from aullm.core.errors import DataError

#: Cells that mean "not known" in the sheets' frame columns (CASME II writes `/` for an unknown apex).
_BLANK_MARKS = {"", "/", "-", "?", "nan", "none", "n/a", "na"}


_SAID: set[tuple[Path, ...]] = set()


def newest(candidates: Sequence[Path], what: str) -> Optional[Path]:
    """The last of `candidates` by name (annotation files carry their version or date in the name); when there
    are several, say which one is read and how to choose another, since two sheets can disagree."""
    if not candidates:
        return None
    chosen = sorted(candidates)[-1]
    key = tuple(sorted(candidates))
    if len(candidates) > 1 and key not in _SAID:  # once per process: the annotation is looked up several times
        _SAID.add(key)
        others = ", ".join(p.name for p in sorted(candidates)[:-1])
        logger.warning(
            "%d %s in %s; reading %s (the newest by name), not %s — set data.annotations to read another",
            len(candidates),
            what,
            chosen.parent,
            chosen.name,
            others,
        )
    return chosen


def normalise_name(name: Any) -> str:
    """Column-name matching that ignores case, spaces and punctuation (`Onset Frame` == `OnsetFrame`)."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def to_int(value: Any) -> Optional[int]:
    """An Excel frame cell as int (12, 12.0, '12', ' 12 '), None for a blank or unknown mark; ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a frame number: {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if math.isnan(float(value)):
            return None
        if float(value).is_integer():
            return int(float(value))
        raise ValueError(f"not a whole frame number: {value!r}")
    text = str(value).strip()
    if text.lower() in _BLANK_MARKS:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"not a frame number: {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"not a whole frame number: {value!r}")
    return int(number)


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def cell_text(value: Any) -> str:
    """A text cell as written; integral floats lose their '.0' (Excel stores 6 as 6.0)."""
    if is_blank(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_sheet(path: Path, sheet: Any, required: Sequence[str], search_rows: int = 40) -> tuple[pd.DataFrame, int]:
    """Read an xlsx sheet as text/number cells, locating the header row (SAMM has 13 legend rows above it).

    Returns the frame with the header's names as columns (blank header cells become `Unnamed: i`, as pandas
    names them) and the 1-based sheet row number of the header. Raises DataError naming a missing column.
    """
    try:
        raw = pd.read_excel(path, sheet_name=sheet, header=None, dtype=object, engine="openpyxl")
    except FileNotFoundError:
        raise DataError(f"annotation file not found: {path}") from None
    except ValueError as err:
        if "not found" in str(err).lower() or "worksheet" in str(err).lower():
            raise DataError(f"annotation file {path} has no sheet {sheet!r}") from None
        raise DataError(f"cannot read annotation file {path}: {err}") from None
    except (zipfile.BadZipFile, OSError, KeyError, TypeError) as err:
        raise DataError(f"cannot read annotation file {path}: {err or type(err).__name__}") from None
    except Exception as err:
        raise DataError(f"cannot read annotation file {path}: {err or type(err).__name__}") from None
    if isinstance(raw, dict):  # sheet_name=None would give all sheets; not used, but keep the type honest
        raise DataError(f"cannot read annotation file {path}: several sheets")
    wanted = {normalise_name(c): c for c in required}
    best_row, best_hits = -1, -1
    for i in range(min(search_rows, len(raw))):
        names = {normalise_name(v) for v in raw.iloc[i].tolist() if not is_blank(v)}
        hits = len(names & set(wanted))
        if hits > best_hits:
            best_row, best_hits = i, hits
    if best_row < 0:
        raise DataError(f"annotation file {path} (sheet {sheet!r}) is empty: missing column {required[0]!r}")
    header = raw.iloc[best_row].tolist()
    columns = [f"Unnamed: {j}" if is_blank(v) else str(v).strip() for j, v in enumerate(header)]
    present = {normalise_name(c) for c in columns}
    for name in required:
        if normalise_name(name) not in present:
            raise DataError(f"annotation file {path} (sheet {sheet!r}) is missing column {name!r}")
    df = raw.iloc[best_row + 1 :].copy()
    df.columns = columns
    rename = {c: wanted[normalise_name(c)] for c in columns if normalise_name(c) in wanted}
    df = df.rename(columns=rename)
    return df.reset_index(drop=True), best_row + 1


__all__ = ["cell_text", "is_blank", "normalise_name", "read_sheet", "to_int"]
