"""Preprocessed datasets on disk, so training never decodes a JPEG twice (docs/design.md, Datasets).

One compressed `.npz` per dataset and preprocessing settings, named by a hash of those settings and of the
annotation file's bytes: editing the sheet or changing `size`, `input`, `face_crop`, … selects a new file, so a
stale cache is never read. Written to a temporary file and renamed, so a crash never leaves a half-written cache
under the real name. Loaded with `allow_pickle=False`: the index travels as JSON text, not as pickled objects.
Settings that do not change the stored pixels (`frames`, `aus`, `include_unknown`) are applied after loading.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from aullm.config import DataConfig
from aullm.core.console import logger, track
from aullm.core.errors import DataError, arg
from aullm.core.hashing import sha256_file
from aullm.core.io import atomic_path
from aullm.data.clips import FrameError
from aullm.data.decode import DecodeSettings, crop_signature, decode_clip
from aullm.data.index import (
    BASE_COLUMNS,
    ClipSource,
    DatasetIndex,
    au_columns,
    check_root,
    find_annotation,
    load_index,
    normalise_dtypes,
    sample_id,
)

#: Bump when the stored arrays' meaning changes, so old caches are not reused.
CACHE_VERSION = 5  # 5: CAS(ME)³ samples named <video>_<onset>; AU sides after the number, full-width text
CACHE_DIRNAME = ".aullm_cache"


@dataclass
class PreparedDataset:
    """Usable samples ready for batching: the index (rows 0..N-1), pixels, labels for `aus`, subjects.

    Clip pixels live in one contiguous array `frames` [total, size, size]; clip i is
    `frames[offsets[i] : offsets[i] + lengths[i]]` (`clips[i]` is that view), so a batch is one fancy-index gather.
    """

    index: pd.DataFrame
    frames: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    flow: Optional[np.ndarray]
    labels: np.ndarray
    subjects: np.ndarray
    aus: list[str]
    skipped: list[dict[str, str]]
    size: int
    input: str
    dataset: str
    cache_path: Optional[Path] = None
    from_cache: bool = False
    sources_digest: str = ""  # sha256 of the source files' paths (relative to the root) and sizes
    clips: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.clips and self.flow is None:
            self.clips = [self.frames[o : o + n] for o, n in zip(self.offsets.tolist(), self.lengths.tolist())]

    def __len__(self) -> int:
        return len(self.index)


# ----------------------------------------------------------------------------------------------- the key


def data_fingerprint(data: PreparedDataset) -> str:
    """sha256 of what a run depends on: the source files (relative paths and sizes), samples, subjects, labels.

    A run directory stores it, so resuming after the dataset changed on disk (e.g. SynME regenerated with other
    settings) is refused instead of silently mixing folds trained on different data. It hashes no pixels, so two
    machines sharing one run with their own copies of a dataset agree even if their JPEG decoders differ slightly.
    """
    digest = hashlib.sha256(data.sources_digest.encode())
    for array in (data.lengths, data.labels):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update("\n".join(data.subjects.astype(str).tolist()).encode())
    digest.update("\n".join(data.index["sample"].astype(str).tolist()).encode())
    digest.update(",".join(data.aus).encode())
    return digest.hexdigest()


def settings_key(cfg: DataConfig, annotation: Path) -> str:
    """Hash of everything that changes the stored arrays: settings, root, and the annotation file's bytes."""
    settings = {
        "version": CACHE_VERSION,
        "dataset": cfg.dataset,
        "root": str(Path(cfg.root).expanduser().resolve()) if cfg.root else None,
        "annotation_sha256": sha256_file(annotation),
        "frames_dir": cfg.frames_dir,
        "face_crop": crop_signature(cfg.face_crop),
        "input": cfg.input,
        "size": cfg.size,
        "or_policy": cfg.or_policy,
        "corrections": cfg.corrections,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def cache_dir(cfg: DataConfig) -> Path:
    """`data.cache_dir`, else `<root>/.aullm_cache`."""
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    if not cfg.root:
        raise DataError(f"no dataset root given (set data.root or {arg('root')})")
    return Path(cfg.root).expanduser() / CACHE_DIRNAME


def cache_path(cfg: DataConfig) -> Path:
    """Where prepare_dataset keeps this dataset+settings."""
    annotation = find_annotation(cfg)
    key = settings_key(cfg, annotation)
    return cache_dir(cfg) / f"{cfg.dataset}-{cfg.input}-{cfg.size}px-{key[:16]}.npz"


# ------------------------------------------------------------------------------------------- decoding


@dataclass
class _Decoded:
    clip: Optional[np.ndarray] = None
    flow: Optional[np.ndarray] = None
    error: Optional[str] = None


def _decode(source: ClipSource, settings: DecodeSettings) -> _Decoded:
    """Decode one sample (the one decoding path, `aullm.data.decode`); a failure becomes a message, never an
    exception, so one bad clip — or one without a face — is skipped and the others go on."""
    try:
        decoded = decode_clip(source, settings)
    except FrameError as err:
        return _Decoded(error=str(err))
    return _Decoded(clip=decoded.clip, flow=decoded.flow)


def source_files(sources: list[ClipSource]) -> list[str]:
    """Every file the samples are decoded from, sorted: what a cache's contents depend on besides the settings."""
    return sorted({str(p) for source in sources for p in source.paths})


def file_signatures(files: list[str], root: Optional[str]) -> tuple[str, str]:
    """Two sha256 digests from one stat of each file (no reading, so a cache hit stays cheap):

    - local: path, size and mtime. A cache stores it, so frames rewritten on disk under an unchanged sheet (e.g.
      SynME regenerated with other settings) are noticed and decoded again.
    - portable: path relative to the root, and size. The same for two copies of a dataset on different machines,
      different when files were rewritten with other content; runs record it (`data_fingerprint`).
    """
    local, portable = hashlib.sha256(), hashlib.sha256()
    base = os.path.abspath(os.path.expanduser(root)) if root else None
    for name in files:
        shown = os.path.relpath(name, base) if base else os.path.basename(name)
        try:
            st = os.stat(name)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        local.update(f"{name}\t{size}\t{mtime}\n".encode())
        portable.update(f"{shown}\t{size}\n".encode())
    return local.hexdigest(), portable.hexdigest()


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _build(cfg: DataConfig, index: DatasetIndex) -> dict[str, Any]:
    """Decode every indexed sample (threads: Pillow and OpenCV release the GIL while decoding)."""
    assert index.sources is not None
    df = index.df
    names = [sample_id(s, m) for s, m in zip(df["subject"], df["sample"])]
    settings = DecodeSettings.of(cfg)
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        results = list(
            track(
                pool.map(lambda source: _decode(source, settings), index.sources),
                f"decoding {cfg.dataset}",
                total=len(names),
            )
        )
    skipped = list(index.skipped)
    keep: list[int] = []
    for i, (result, name) in enumerate(zip(results, names)):
        if result.error is not None:
            logger.warning("%s: skipping sample %s: %s", cfg.dataset, name, result.error)
            skipped.append({"sample": name, "reason": result.error})
        else:
            keep.append(i)
    kept_df = df.iloc[keep].reset_index(drop=True)
    files = source_files(index.sources)
    signature, digest = file_signatures(files, cfg.root)
    arrays: dict[str, Any] = {
        "index": kept_df,
        "skipped": skipped,
        "files": files,
        "files_signature": signature,
        "sources_digest": digest,
    }
    if cfg.input == "clip":
        clips = [clip for i in keep if (clip := results[i].clip) is not None]
        arrays["frames"] = np.concatenate(clips) if clips else np.zeros((0, cfg.size, cfg.size), np.uint8)
        arrays["lengths"] = np.array([len(c) for c in clips], dtype=np.int64)
        arrays["flow"] = None
    else:
        arrays["flow"] = (
            np.stack([flow for i in keep if (flow := results[i].flow) is not None]).astype(np.float32)
            if keep
            else np.zeros((0, 3, cfg.size, cfg.size), np.float32)
        )
        arrays["frames"] = np.zeros((0, cfg.size, cfg.size), np.uint8)
        arrays["lengths"] = np.zeros(len(keep), dtype=np.int64)
    return arrays


# ----------------------------------------------------------------------------------------- file format


def index_to_json(df: pd.DataFrame) -> str:
    """Serialise an index without pickle (for the cache); inverse of index_from_json."""
    data = {}
    for column in df.columns:
        values = df[column].tolist()
        data[column] = [
            None
            if (v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)))
            else (int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v)
            for v in values
        ]
    return json.dumps({"columns": list(df.columns), "data": data})


def index_from_json(text: str) -> pd.DataFrame:
    payload = json.loads(text)
    df = pd.DataFrame({c: payload["data"][c] for c in payload["columns"]}, columns=payload["columns"])
    for column in BASE_COLUMNS:
        if column not in df.columns:
            df[column] = pd.Series(dtype=object)
    return normalise_dtypes(df)


def _text(value: str) -> np.ndarray:
    return np.frombuffer(value.encode("utf-8"), dtype=np.uint8)


def _untext(array: np.ndarray) -> str:
    return array.tobytes().decode("utf-8")


def write_cache(path: Path, arrays: dict[str, Any], key: str) -> None:
    """Atomic write: a temporary file in the same folder, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": _text(
            json.dumps(
                {
                    "key": key,
                    "version": CACHE_VERSION,
                    "files_signature": arrays["files_signature"],
                    "sources_digest": arrays["sources_digest"],
                }
            )
        ),
        "files": _text(json.dumps(arrays["files"])),
        "index": _text(index_to_json(arrays["index"])),
        "skipped": _text(json.dumps(arrays["skipped"])),
        "frames": arrays["frames"],
        "lengths": arrays["lengths"],
    }
    if arrays["flow"] is not None:
        payload["flow"] = arrays["flow"]
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **payload)
        fh.flush()
        os.fsync(fh.fileno())


def read_cache(path: Path, key: str) -> Optional[dict[str, Any]]:
    """The cached arrays, or None when the file is missing, damaged or for other settings."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(_untext(data["meta"]))
            if meta.get("key") != key or meta.get("version") != CACHE_VERSION:
                return None
            signature, _ = file_signatures(json.loads(_untext(data["files"])), None)
            if signature != meta.get("files_signature"):
                logger.info("frames under the dataset root changed since %s was written; decoding them again", path)
                return None
            return {
                "sources_digest": meta["sources_digest"],
                "index": index_from_json(_untext(data["index"])),
                "skipped": json.loads(_untext(data["skipped"])),
                "frames": data["frames"],
                "lengths": data["lengths"],
                "flow": data["flow"] if "flow" in data.files else None,
            }
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, EOFError) as err:
        logger.warning("ignoring unreadable cache %s (%s); rebuilding it", path, err)
        return None


# ------------------------------------------------------------------------------------------------ public


def prepare_dataset(cfg: DataConfig) -> PreparedDataset:
    """The dataset's usable samples, preprocessed; decoded once and then read from the cache.

    `au_unknown` samples are kept in the cache but left out here unless `data.include_unknown`.
    """
    check_root(cfg, required=True)
    annotation = find_annotation(cfg)
    key = settings_key(cfg, annotation)
    path = cache_dir(cfg) / f"{cfg.dataset}-{cfg.input}-{cfg.size}px-{key[:16]}.npz"
    start = time.perf_counter()
    arrays = read_cache(path, key)
    from_cache = arrays is not None
    cached = from_cache
    if arrays is None:
        index = load_index(cfg, frames=True)
        arrays = _build(cfg, index)
        if arrays["index"].empty:
            raise DataError(f"no usable samples in {cfg.dataset} at {cfg.root}: every clip failed to decode")
        try:
            write_cache(path, arrays, key)
            cached = True
            logger.info(
                "prepared %d %s samples in %.1fs; cached in %s",
                len(arrays["index"]),
                cfg.dataset,
                time.perf_counter() - start,
                path,
            )
        except OSError as err:
            logger.warning("could not write the cache %s (%s); continuing without it", path, err)
    else:
        logger.info(
            "loaded %d %s samples from the cache %s (%.2fs)",
            len(arrays["index"]),
            cfg.dataset,
            path,
            time.perf_counter() - start,
        )
    return _finalise(cfg, arrays, path if cached else None, from_cache)


def _finalise(cfg: DataConfig, arrays: dict[str, Any], path: Optional[Path], from_cache: bool) -> PreparedDataset:
    """Apply the settings that do not change pixels: drop unknown-AU samples, select label columns."""
    df: pd.DataFrame = arrays["index"]
    skipped = list(arrays["skipped"])
    lengths_all = np.asarray(arrays["lengths"], dtype=np.int64)
    offsets_all = (
        np.concatenate([[0], np.cumsum(lengths_all)[:-1]]).astype(np.int64)
        if len(lengths_all)
        else np.zeros(0, np.int64)
    )
    keep = np.ones(len(df), dtype=bool)
    if not cfg.include_unknown:
        keep = ~df["au_unknown"].to_numpy(dtype=bool)
        for subject, sample in zip(df.loc[~keep, "subject"], df.loc[~keep, "sample"]):
            skipped.append(
                {
                    "sample": sample_id(subject, sample),
                    "reason": "Action Units unknown ('?'): excluded from training and scoring",
                }
            )
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise DataError(f"no usable samples in {cfg.dataset}: every sample has unknown Action Units")
    index = df.iloc[rows].reset_index(drop=True)
    present = {int(c[2:]): c for c in au_columns(index)}
    labels = np.zeros((len(index), len(cfg.aus)), dtype=np.float32)
    for k, au in enumerate(cfg.aus):
        column = present.get(int(au[2:]))  # "AU01" in a config means the index's "AU1"
        if column is not None:
            labels[:, k] = index[column].to_numpy(dtype=np.float32)
        else:
            logger.warning("%s does not occur in %s; its labels are all 0", au, cfg.dataset)
    flow_arr = arrays["flow"]
    return PreparedDataset(
        index=index,
        frames=arrays["frames"],
        offsets=offsets_all[rows] if cfg.input == "clip" else np.zeros(len(rows), np.int64),
        lengths=lengths_all[rows],
        flow=None if flow_arr is None else np.ascontiguousarray(flow_arr[rows]),
        labels=labels,
        sources_digest=arrays["sources_digest"],
        subjects=index["subject"].to_numpy(dtype=str),
        aus=list(cfg.aus),
        skipped=skipped,
        size=cfg.size,
        input=cfg.input,
        dataset=cfg.dataset,
        cache_path=path,
        from_cache=from_cache,
    )


__all__ = [
    "CACHE_VERSION",
    "PreparedDataset",
    "cache_dir",
    "cache_path",
    "prepare_dataset",
    "read_cache",
    "settings_key",
    "write_cache",
]
