"""`aullm data stats`: what a dataset holds and what of it is usable, with every skipped sample and why."""

from __future__ import annotations

from typing import Any

import pandas as pd

from aullm.config import DataConfig
from aullm.data.index import au_columns, load_index, sample_id


def au_counts(df: pd.DataFrame) -> dict[str, int]:
    """Positives per AU column."""
    return {au: int(df[au].sum()) for au in au_columns(df)}


def dataset_stats(cfg: DataConfig, *, frames: bool, check_frames: bool = False) -> dict[str, Any]:
    """`aullm data stats` (docs/design.md, Command line): samples, usable samples, subjects, AU positives among
    usable, skipped.

    With `frames=False` only the sheet is read; with `frames=True` every frame folder is listed but no image is
    decoded, so `prepare` may still skip samples (a corrupt image, no face found, too few frames once decoded).
    `check_frames` decodes every clip exactly as `prepare` does (and caches them, so the next `prepare` is free):
    `usable` is then what training will use. `folders_checked` and `frames_checked` say which was done.
    Samples with unknown AUs (`?`) stay in the index but are not usable unless `data.include_unknown`; they are
    listed under `skipped` with that reason.
    """
    if check_frames:
        return _decoded_stats(cfg)
    index = load_index(cfg, frames=frames)
    df = index.df
    skipped = list(index.skipped)
    usable = df
    if not cfg.include_unknown:
        usable = df[~df["au_unknown"]]
        for subject, sample in zip(df.loc[df["au_unknown"], "subject"], df.loc[df["au_unknown"], "sample"]):
            skipped.append(
                {
                    "sample": sample_id(subject, sample),
                    "reason": "Action Units unknown ('?'): excluded from training and scoring",
                }
            )
    return {
        "dataset": cfg.dataset,
        "samples": int(len(df) + len(index.skipped)),
        "usable": int(len(usable)),
        "subjects": int(usable["subject"].nunique()),
        "au_counts": au_counts(usable),
        "skipped": skipped,
        "folders_checked": frames,
        "frames_checked": False,
    }


def _decoded_stats(cfg: DataConfig) -> dict[str, Any]:
    """The counts of the prepared dataset itself, so they cannot disagree with what `prepare` keeps."""
    from aullm.data.cache import prepare_dataset

    prepared = prepare_dataset(cfg)
    usable = prepared.index
    return {
        "dataset": cfg.dataset,
        "samples": int(len(usable) + len(prepared.skipped)),
        "usable": int(len(usable)),
        "subjects": int(usable["subject"].nunique()),
        "au_counts": au_counts(usable),
        "skipped": list(prepared.skipped),
        "folders_checked": True,
        "frames_checked": True,
    }


__all__ = ["au_counts", "dataset_stats"]
