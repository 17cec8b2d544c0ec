"""The dataset index: one row per sample, the same columns for every dataset (docs/design.md, "Datasets").

Each reader (`readers/`: casme2, samm, casme3, manifest) only reads its annotation file into `RawRow`s and says
where a sample's frames live; everything else — AU parsing, `or_policy`, onset/apex/offset checks, frame discovery,
skipping bad samples with a warning — happens here once, so all datasets obey the same rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import pandas as pd

from aullm.config import DataConfig
from aullm.core.console import logger
from aullm.core.errors import DataError, arg
from aullm.core.names import name_problem
from aullm.core.paths import describe
from aullm.data.aus import ParsedAUs, au_name, parse_au_string
from aullm.data.clips import frame_number, list_frames
from aullm.data.readers.registry import RawRow, SheetRows, get_reader
from aullm.data.readers.sheets import cell_text, is_blank, to_int

BASE_COLUMNS = ["dataset", "subject", "sample", "onset", "apex", "offset", "au_raw", "au_unknown", "clip_dir"]
_AU_COLUMN = re.compile(r"^AU(\d+)$")
#: Cells that mean "not known" in the sheets' frame columns (CASME II writes `/` for an unknown apex).
_BLANK_MARKS = {"", "/", "-", "?", "nan", "none", "n/a", "na"}


@dataclass
class ClipSource:
    """Where one sample's pixels are: frame files onset..offset, a video (0-based frame range), a flow image, or
    frames already in memory (`array`: uint8 [T, H, W] gray or [T, H, W, 3] RGB, the clip's frames only)."""

    kind: Literal["frames", "video", "flow_image", "array"]
    paths: list[Path]
    start: int = 0
    stop: Optional[int] = None
    apex_pos: Optional[int] = None  # position of the apex frame inside the clip, None when unknown
    array: Optional[np.ndarray] = None


@dataclass
class DatasetIndex:
    """The index plus what was skipped and why; `sources` is aligned with df rows when frames were checked."""

    df: pd.DataFrame
    skipped: list[dict[str, str]]
    dataset: str
    annotation: Optional[Path] = None
    root: Optional[Path] = None
    sources: Optional[list[ClipSource]] = None

    @property
    def aus(self) -> list[str]:
        return au_columns(self.df)


# ------------------------------------------------------------------------------------------ small helpers


def au_columns(df: pd.DataFrame) -> list[str]:
    """The `AUk` columns of an index, in AU-number order."""
    cols = [c for c in df.columns if _AU_COLUMN.match(str(c))]
    return sorted(cols, key=lambda c: int(c[2:]))


def resolve_annotation(cfg: DataConfig, root: Optional[Path], find: Any) -> Path:
    """The annotation file: `data.annotations` (absolute, or relative to cwd or to the root) or found in the root."""
    if cfg.annotations:
        given = Path(cfg.annotations).expanduser()
        candidates = [given, *([root / given] if root is not None and not given.is_absolute() else [])]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        problems = [describe(c, "annotation file", "file") for c in candidates]
        raise DataError(next((p for p in problems if "not found" not in p), problems[0]))
    if root is None:
        raise DataError(f"no dataset root and no annotation file given (set data.root or {arg('root')})")
    found = find(root)
    if found is None:
        raise DataError(
            f"no annotation file found in {root} (pass {arg('annotations', 'FILE')} or set data.annotations)"
        )
    return found


def check_root(cfg: DataConfig, required: bool) -> Optional[Path]:
    """The dataset root as a Path; a missing one is a DataError when frames are needed."""
    if not cfg.root:
        if required:
            raise DataError(f"no dataset root given for {cfg.dataset} (set data.root or {arg('root')})")
        return None
    root = Path(cfg.root).expanduser()
    problem = describe(root, "dataset root", "folder")
    if problem:
        raise DataError(problem)
    return root


# ---------------------------------------------------------------------------------------------- building


def find_annotation(cfg: DataConfig) -> Path:
    """The annotation file load_index would read (used by the cache key without building the index)."""
    root = check_root(cfg, required=False)
    return resolve_annotation(cfg, root, get_reader(cfg.dataset).find_annotation)


def load_index(cfg: DataConfig, *, frames: bool = True) -> DatasetIndex:
    """Read a dataset's annotation into the index of docs/design.md (Datasets); with `frames`, also check every frame
    folder.

    Raises DataError for a missing root or annotation file or a sheet without a required column; a bad sample is
    skipped with a warning and listed in `.skipped`. An annotation with no usable row at all is a DataError.
    """
    reader = get_reader(cfg.dataset)
    root = check_root(cfg, required=frames)
    annotation = resolve_annotation(cfg, root, reader.find_annotation)
    if frames and root is not None:
        frames_root = reader.frames_root(root, cfg)
        problem = describe(frames_root, "frames folder", "folder") if frames_root is not None else ""
        if problem:
            raise DataError(f"{problem} (set data.frames_dir to the folder holding the sample folders)")
    sheet: SheetRows = reader.read_rows(annotation, root, cfg)
    index = build_index(sheet, cfg, frames=frames)
    if index.df.empty:
        reasons = "; ".join(f"{s['sample']}: {s['reason']}" for s in index.skipped[:3])
        more = f" (e.g. {reasons})" if reasons else ""
        raise DataError(f"no usable samples in {annotation}{more}")
    return index


def sample_id(subject: str, sample: str) -> str:
    """How a skipped sample is named: subject/sample (CASME II file names repeat across subjects)."""
    return f"{subject}/{sample}" if subject else sample


def _skip(skipped: list[dict[str, str]], dataset: str, subject: str, sample: str, reason: str) -> None:
    name = sample_id(subject, sample)
    logger.warning("%s: skipping sample %s: %s", dataset, name, reason)
    skipped.append({"sample": name, "reason": reason})


def _resolve_aus(parsed: ParsedAUs, policy: str) -> tuple[Optional[frozenset[int]], Optional[str]]:
    """The sample's AU set, or (None, reason) when it must be dropped."""
    if not parsed.ok:
        return None, f"unparseable Action Units {parsed.raw!r}: {'; '.join(parsed.errors)}"
    if parsed.ambiguous:
        chosen = parsed.resolve(policy)
        if chosen is None:
            return None, f"ambiguous Action Units {parsed.raw!r} (or_policy: drop_sample)"
        logger.warning(
            "ambiguous Action Units %r resolved by or_policy %s to %s",
            parsed.raw,
            policy,
            "+".join(str(a) for a in sorted(chosen)),
        )
        return chosen, None
    return parsed.aus, None


def discover_frames(folder: Optional[Path], onset: int, offset: int) -> tuple[Optional[list[Path]], str]:
    """Frame files onset..offset (inclusive, by the number in the file name), or (None, reason)."""
    if folder is None:
        return None, "no frame folder"
    problem = describe(folder, "frame folder", "folder", missing="missing")
    if problem:
        return None, problem
    files = list_frames(folder)
    if not files:
        return None, f"frame folder empty: {folder}"
    by_number: dict[int, Path] = {}
    for path in files:
        number = frame_number(path)
        if number is not None:
            by_number.setdefault(number, path)
    # Sized by the files on disk, never by the sheet: a typo like offset 1000000000 must cost nothing.
    present = sorted(n for n in by_number if onset <= n <= offset)
    span = offset - onset + 1
    if len(present) < span:
        first_missing = next((onset + i for i, n in enumerate(present) if n != onset + i), onset + len(present))
        return None, (
            f"too few frames in {folder}: {len(present)} of {span} frames "
            f"{onset}..{offset} present (first missing: {first_missing})"
        )
    return [by_number[n] for n in present], ""


class _Skip(Exception):
    """A row that cannot be a sample; the message is the reason listed under `skipped`."""


def _frame_range(row: RawRow, cfg: DataConfig) -> tuple[Optional[int], Optional[int], Optional[int]]:
    """(onset, apex, offset) of a row: onset and offset as written (both needed unless the row names a whole clip),
    apex None where it is not a frame number inside the clip."""
    subject, sample = row.subject, row.sample
    try:
        onset = to_int(row.onset)
        offset = to_int(row.offset)
    except ValueError as err:
        raise _Skip(f"onset/offset: {err}") from None
    if row.kind is None and (onset is None or offset is None):
        raise _Skip("onset or offset frame missing")
    if onset is not None and offset is not None and onset > offset:
        raise _Skip(f"onset {onset} > offset {offset}")
    try:
        apex = to_int(row.apex)
    except ValueError:
        logger.warning(
            "%s: sample %s: apex %r is not a frame number; treated as unknown",
            cfg.dataset,
            sample_id(subject, sample),
            row.apex,
        )
        apex = None
    if apex is not None and onset is not None and offset is not None and not onset <= apex <= offset:
        reason = f"apex {apex} outside the clip {onset}..{offset}"
        if cfg.or_policy == "drop_sample":
            raise _Skip(reason)
        logger.warning("%s: sample %s: %s; apex treated as unknown", cfg.dataset, sample_id(subject, sample), reason)
        apex = None
    return onset, apex, offset


def _row_labels(row: RawRow, cfg: DataConfig) -> tuple[dict[str, int], bool, str]:
    """(AU columns set to 1, whether the AUs are unknown, the AU text as written) of a row."""
    where = f"{cfg.dataset}: sample {sample_id(row.subject, row.sample)} ({row.where})"
    if row.labels is not None:
        labels, unknown, au_raw, reason, label_warnings = _manifest_labels(row.labels)
        for text in label_warnings:
            logger.warning("%s: %s", where, text)
        if reason:
            raise _Skip(reason)
        return labels, bool(unknown), au_raw
    parsed = parse_au_string(row.au)
    if "empty term" in parsed.flags:  # `4++7`: a code may have been lost between the `+` signs
        read_as = "+".join(str(a) for a in sorted(parsed.aus)) or "no AU"
        logger.warning(
            "%s: Action Units %r has an empty code between '+' signs; read as %s", where, parsed.raw, read_as
        )
    chosen, why = _resolve_aus(parsed, cfg.or_policy)
    if chosen is None:
        raise _Skip(why or "bad Action Units")
    return {au_name(a): 1 for a in chosen}, bool(parsed.unknown), parsed.raw


def _check_identity(row: RawRow, seen: dict[tuple[str, str], str]) -> None:
    """A sample is (subject, sample): both must be named, and the pair may appear once. A subject names a fold
    folder (`folds/<subject>`), so it must be one plain name; a row that names its own clip (a manifest) must
    name a path."""
    if not row.sample.strip():
        raise _Skip(f"no sample name ({row.where})")
    if not row.subject.strip():
        raise _Skip(f"no subject ({row.where})")
    problem = name_problem(row.subject)
    if problem:
        raise _Skip(f"subject {row.subject!r} cannot name a fold folder: {problem} ({row.where})")
    if row.kind is not None and row.clip_dir is None:
        raise _Skip(f"no path ({row.where})")
    if (row.subject, row.sample) in seen:  # the same sample twice is a data error: keep the first, name both
        raise _Skip(f"duplicate sample ({row.where}; first in {seen[row.subject, row.sample]})")


def build_index(sheet: SheetRows, cfg: DataConfig, *, frames: bool) -> DatasetIndex:
    """Check every raw row, apply the policies, discover frames; the shared half of every loader."""
    skipped: list[dict[str, str]] = list(sheet.extra_skipped)
    records: list[dict[str, Any]] = []
    sources: list[ClipSource] = []
    seen: dict[tuple[str, str], str] = {}  # a kept sample → where it was read
    for row in sheet.rows:
        try:
            _check_identity(row, seen)
            onset, apex, offset = _frame_range(row, cfg)
            labels, unknown, au_raw = _row_labels(row, cfg)
            source: Optional[ClipSource] = None
            if frames:
                source, reason = _source(row, onset, apex, offset, cfg)
                if source is None:
                    raise _Skip(reason)
                if source.kind == "frames":
                    onset = onset if onset is not None else frame_number(source.paths[0])
                    offset = offset if offset is not None else frame_number(source.paths[-1])
        except _Skip as why:
            _skip(skipped, cfg.dataset, row.subject, row.sample or f"({row.where})", str(why))
            continue
        seen[row.subject, row.sample] = row.where
        records.append(
            {
                "dataset": cfg.dataset,
                "subject": row.subject,
                "sample": row.sample,
                "onset": onset,
                "apex": apex,
                "offset": offset,
                "au_raw": au_raw,
                "au_unknown": unknown,
                "clip_dir": str(row.clip_dir) if row.clip_dir is not None else "",
                **labels,
            }
        )
        if source is not None:
            sources.append(source)
    return DatasetIndex(
        df=make_index_frame(records),
        skipped=skipped,
        dataset=cfg.dataset,
        annotation=sheet.annotation,
        root=sheet.root,
        sources=sources if frames else None,
    )


_ONE, _ZERO = {"1", "1.0"}, {"0", "0.0"}
#: Words read as 0/1 in a manifest, with a warning: the format is 0/1, so a word may mean the file is not one.
_YES, _NO = {"true", "yes"}, {"false", "no"}


def _manifest_labels(values: dict[str, Any]) -> tuple[dict[str, int], bool, str, str, list[str]]:
    """Manifest AU columns: 0/1 each; `?` or blank marks the sample's AUs unknown.

    Returns (labels, unknown, au_raw, reason to skip or "", warnings)."""
    labels: dict[str, int] = {}
    unknown = False
    warnings: list[str] = []
    for name, value in values.items():
        if is_blank(value) or (isinstance(value, str) and value.strip() == "?"):
            unknown = True
            continue
        text = cell_text(value).lower()
        if text in _YES | _NO:
            warnings.append(f"{name} value {value!r} read as {int(text in _YES)} (the manifest format is 0/1)")
        if text in _ONE | _YES:
            labels[name] = 1
        elif text not in _ZERO | _NO:
            return {}, False, "", f"{name} value {value!r} is not 0 or 1", warnings
    if unknown:
        return {}, True, "?", "", warnings
    raw = "+".join(str(int(n[2:])) for n in sorted(labels, key=lambda c: int(c[2:])))
    return labels, False, raw, "", warnings


def _source(
    row: RawRow, onset: Optional[int], apex: Optional[int], offset: Optional[int], cfg: DataConfig
) -> tuple[Optional[ClipSource], str]:
    """Find the sample's pixels on disk; None and a reason when they are not usable."""
    path = row.clip_dir
    kind = row.kind or "frames"
    if kind == "flow_image":
        if cfg.input != "flow":
            return None, f"{path} is a pre-computed flow image; it needs data.input: flow"
        if path is None or not path.is_file():
            return None, describe(path, "flow image", "file", missing="missing") if path else "no flow image"
        return ClipSource("flow_image", [path]), ""
    if kind == "video":
        if path is None or not path.is_file():
            return None, describe(path, "video", "file", missing="missing") if path else "no video"
        start = onset or 0
        apex_pos = None if apex is None else apex - start
        return ClipSource("video", [path], start=start, stop=offset, apex_pos=apex_pos), ""
    if onset is None or offset is None:  # manifest folder without onset/offset: the whole folder
        if path is None or not path.is_dir():
            return None, describe(path, "frame folder", "folder", missing="missing") if path else "no frame folder"
        files = list_frames(path)
        if not files:
            return None, f"frame folder empty: {path}"
        if len(files) < 2:
            return None, f"too few frames in {path}: {len(files)} (need at least 2)"
        numbers = [frame_number(p) for p in files]
        apex_pos = numbers.index(apex) if apex is not None and apex in numbers else None
        return ClipSource("frames", files, apex_pos=apex_pos), ""
    paths, reason = discover_frames(path, onset, offset)
    if paths is None:
        return None, reason
    if len(paths) < 2:
        return None, f"too few frames in {path}: onset {onset} = offset {offset} (need at least 2)"
    return ClipSource("frames", paths, apex_pos=None if apex is None else apex - onset), ""


def make_index_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records → the index DataFrame with the contract's dtypes and every occurring AU as a 0/1 column."""
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=BASE_COLUMNS)
    for column in BASE_COLUMNS:
        if column not in df.columns:
            df[column] = pd.Series(dtype=object)
    aus = sorted({c for c in df.columns if _AU_COLUMN.match(str(c))}, key=lambda c: int(c[2:]))
    for au in aus:
        df[au] = df[au].fillna(0).astype("int64")
    df = df[BASE_COLUMNS + aus]
    return normalise_dtypes(df)


def normalise_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    """subject/sample/… as str, frames as nullable Int64 (apex can be unknown), au_unknown bool, AUs int64."""
    df = df.copy()
    for column in ("dataset", "subject", "sample", "au_raw", "clip_dir"):
        df[column] = df[column].fillna("").astype(str)
    for column in ("onset", "apex", "offset"):
        df[column] = pd.array([None if is_blank(v) or pd.isna(v) else int(v) for v in df[column]], dtype="Int64")
    df["au_unknown"] = df["au_unknown"].fillna(False).astype(bool)
    for au in au_columns(df):
        df[au] = df[au].astype("int64")
    return df.reset_index(drop=True)


__all__ = [
    "BASE_COLUMNS",
    "ClipSource",
    "DatasetIndex",
    "au_columns",
    "build_index",
    "check_root",
    "discover_frames",
    "find_annotation",
    "load_index",
    "make_index_frame",
    "normalise_dtypes",
    "resolve_annotation",
    "sample_id",
]
