"""`aullm data stats`: what a dataset holds and what of it is usable, with every skipped sample and why."""

from __future__ import annotations

from typing import Any

import pandas as pd

from aullm.config import DataConfig
from aullm.data.index import au_columns, load_index, sample_id


def au_counts(df: pd.DataFrame) -> dict[str, int]:
    """Positives per AU column."""
    return {au: int(df[au].sum()) for au in au_columns(df)}


def dataset_stats(cfg: DataConfig, *, frames: bool) -> dict[str, Any]:
    """`aullm data stats` (docs/design.md, Command line): samples, usable samples, subjects, AU positives among
    usable, skipped.

    With `frames=False` only the sheet is read. Samples with unknown AUs (`?`) stay in the index but are not
    usable unless `data.include_unknown`; they are listed under `skipped` with that reason.
    """
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
    }


__all__ = ["au_counts", "dataset_stats"]
