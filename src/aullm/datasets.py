"""`aullm.datasets`: the datasets from Python — the index of a dataset, its statistics, and preparing it.

    >>> index = aullm.datasets.load("casme2", root="/data/CASME2")        # one row per sample (docs/formats.md)
    >>> aullm.datasets.stats("samm", annotations="/data/SAMM/SAMM_Micro_FACS_Codes_v2.xlsx")["usable"]

Dataset names: casme2, samm, casme3a, manifest, synme. Any `data.*` config key can be given as a keyword
(`face_crop="align"`, `frames_dir="..."`, `or_policy="union"`, …).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional, Union

import pandas as pd

from aullm.config import DataConfig, apply_overrides, config_from_dict
from aullm.core.errors import DataError, arg
from aullm.core.io import check_output_dir
from aullm.data.cache import PreparedDataset, cache_dir, prepare_dataset
from aullm.data.index import check_root, load_index
from aullm.data.stats import dataset_stats

PathLike = Union[str, Path]


def data_config(
    name: str,
    root: Optional[PathLike] = None,
    annotations: Optional[PathLike] = None,
    overrides: tuple[str, ...] | list[str] = (),
    **data: Any,
) -> DataConfig:
    """A validated `data` section: the dataset, its root and sheet, any other keys, then `key=value` overrides."""
    section: dict[str, Any] = {"dataset": name, **data}
    if root is not None:
        section["root"] = str(root)
    if annotations is not None:
        section["annotations"] = str(annotations)
    raw = apply_overrides({"data": section}, [f"data.{o}" if not o.startswith("data.") else o for o in overrides])
    return config_from_dict(raw).data


def load(
    name: str, root: Optional[PathLike] = None, annotations: Optional[PathLike] = None, **data: Any
) -> pd.DataFrame:
    """The dataset's index: one row per sample (`dataset, subject, sample, onset, apex, offset, au_raw, au_unknown,
    clip_dir`, one 0/1 column per AU). With a root the frame folders are checked; with only `annotations` the sheet
    is read alone. Bad samples are left out with a warning naming them (see `stats` for the list)."""
    cfg = data_config(name, root, annotations, **data)
    return load_index(cfg, frames=root is not None).df


def stats(
    name: str,
    root: Optional[PathLike] = None,
    annotations: Optional[PathLike] = None,
    *,
    check_frames: bool = False,
    **data: Any,
) -> dict[str, Any]:
    """`aullm data stats`: samples, usable samples, subjects, AU positives among the usable ones, every skipped
    sample and why. `check_frames` decodes every clip as `prepare` does, so `usable` is what training will use."""
    if root is None and annotations is None:
        raise DataError(f"give {arg('root', 'DIR')} (frames and sheet) or {arg('annotations', 'FILE')} (sheet only)")
    if check_frames and root is None:
        raise DataError(f"{arg('check_frames', True)} decodes the frames: give {arg('root', 'DIR')}")
    cfg = data_config(name, root, annotations, **data)
    return dataset_stats(cfg, frames=root is not None, check_frames=check_frames)


def prepare(
    name: str, root: PathLike, overrides: tuple[str, ...] | list[str] = (), **data: Any
) -> tuple[PreparedDataset, float]:
    """`aullm prepare`: decode, sample and resize every clip once into the cache (so training reads no JPEG);
    returns the prepared data and the seconds it took. An unwritable cache folder is an error before any work."""
    cfg = data_config(name, root, None, overrides, **data)
    check_root(cfg, required=True)  # a root that is a file is the problem, not the cache folder inside it
    check_output_dir(cache_dir(cfg), "cache folder (set data.cache_dir to another)")
    start = time.perf_counter()
    prepared = prepare_dataset(cfg)
    if prepared.cache_path is None:
        raise DataError(f"decoded {len(prepared)} samples but could not write the cache into {cache_dir(cfg)}")
    return prepared, time.perf_counter() - start


__all__ = ["data_config", "load", "prepare", "stats"]
