"""Prediction files (`predictions.csv`, `val_predictions.csv`; docs/formats.md): reading them with every check, and
their AUs and arrays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aullm.core.errors import UserError

ID_COLUMNS = ("seed", "fold", "subject", "sample")
_DTYPES = {"subject": str, "fold": str, "sample": str}


def read_predictions(path: Path) -> pd.DataFrame:
    """Read and check a predictions CSV (docs/design.md, Run directories); every problem is one UserError naming the
    file."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=_DTYPES)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {path}: {err}") from None
    missing = [c for c in ID_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"{path} lacks column(s) {', '.join(missing)}")
    aus = prediction_aus(frame, path)
    if frame.empty:
        raise UserError(f"{path} holds no predictions")
    probs = frame[[f"prob_{au}" for au in aus]]
    labels = frame[[f"label_{au}" for au in aus]]
    if probs.isna().to_numpy().any() or labels.isna().to_numpy().any():
        raise UserError(
            f"{path} has empty or NaN probabilities/labels ({int(probs.isna().to_numpy().sum())} "
            "NaN probabilities); refusing to score garbage"
        )
    values = probs.to_numpy(dtype=float)
    if (values < 0).any() or (values > 1).any():
        raise UserError(f"{path}: probabilities must lie in [0, 1] (found {values.min():.3g}..{values.max():.3g})")
    if not np.isin(labels.to_numpy(), (0, 1)).all():
        raise UserError(f"{path}: label columns must hold 0 or 1")
    frame[list(labels.columns)] = labels.astype(int)
    frame["seed"] = frame["seed"].astype(int)
    return frame


def prediction_aus(frame: pd.DataFrame, source: object = "predictions") -> list[str]:
    """The AUs of a frame, in column order: every `prob_X` must have its `label_X`."""
    aus = [c[len("prob_") :] for c in frame.columns if c.startswith("prob_")]
    if not aus:
        raise UserError(f"{source} has no prob_<AU> columns")
    lacking = [au for au in aus if f"label_{au}" not in frame.columns]
    if lacking:
        raise UserError(f"{source} lacks label column(s) {', '.join('label_' + a for a in lacking)}")
    return aus


def arrays(frame: pd.DataFrame, aus: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(labels int [N,K], probs float [N,K])."""
    labels = frame[[f"label_{au}" for au in aus]].to_numpy(dtype=int)
    probs = frame[[f"prob_{au}" for au in aus]].to_numpy(dtype=float)
    return labels, probs


__all__ = ["ID_COLUMNS", "arrays", "prediction_aus", "read_predictions"]
