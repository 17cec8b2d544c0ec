"""Decision thresholds: the fixed one, the test-tuned one (optimistic) and the validation-tuned one (honest).

The AU-LLM reference code picks each AU's threshold from 0.10, 0.15, …, 0.85 on the test predictions and reports
the best F1 — a number that has seen the test labels. We compute it so results can be compared with the paper,
but always next to the honest variant, whose thresholds come from held-out *training* subjects only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

#: The grid of the AU-LLM reference code: 0.10, 0.15, …, 0.85 (16 values).
THRESHOLD_GRID: tuple[float, ...] = tuple(float(t) for t in np.round(np.arange(0.10, 0.8501, 0.05), 2))


def binarize(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Positive when prob >= threshold (ties count as positive)."""
    return (np.asarray(probs, dtype=float) >= threshold).astype(int)


def class_f1(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """(negative-class F1, positive-class F1); a class never true and never predicted scores 0 (zero_division=0)."""
    neg, pos = f1_score(y_true, y_pred, labels=[0, 1], average=None, zero_division=0)
    return float(neg), float(pos)


def class_f1_columns(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`class_f1` for every column of [N, K] label/prediction matrices at once (two sklearn calls, not 2K)."""
    y, pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if y.shape[1] == 1:  # sklearn reads a single column as a binary target, not as multilabel
        neg1, pos1 = class_f1(y[:, 0], pred[:, 0])
        return np.array([neg1]), np.array([pos1])
    pos = f1_score(y, pred, average=None, zero_division=0)
    neg = f1_score(1 - y, 1 - pred, average=None, zero_division=0)
    return np.asarray(neg, dtype=float), np.asarray(pos, dtype=float)


def macro_f1_grid(y_true: np.ndarray, probs: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID) -> np.ndarray:
    """Macro F1 (mean of both classes' F1, zero_division=0) at every threshold of `grid`.

    Counted with numpy rather than one sklearn call per threshold: tuning runs per seed × fold × AU × grid point,
    and sklearn's input validation (~8 ms a call) made re-scoring a CASME II run take tens of seconds. The tests
    check it equals sklearn's f1_score(average="macro", labels=[0, 1]) at every grid point.
    """
    y = np.asarray(y_true, dtype=bool)[:, None]
    pred = np.asarray(probs, dtype=float)[:, None] >= np.asarray(grid, dtype=float)[None, :]
    tp = (pred & y).sum(axis=0)
    fp = (pred & ~y).sum(axis=0)
    fn = (~pred & y).sum(axis=0)
    tn = len(y) - tp - fp - fn
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        neg = np.where(2 * tn + fp + fn > 0, 2 * tn / (2 * tn + fp + fn), 0.0)
    return (pos + neg) / 2.0


def best_threshold(
    y_true: np.ndarray, probs: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID, prefer: float = 0.5
) -> float:
    """The grid threshold with the highest macro F1 on (y_true, probs).

    Ties (common on small validation sets) go to the threshold closest to `prefer` (the configured fixed
    threshold), then to the lower one, so an uninformative tuning set falls back to the default.
    """
    scores = macro_f1_grid(y_true, probs, grid)
    tied = np.asarray(grid, dtype=float)[scores >= scores.max() - 1e-12]
    return float(min(tied, key=lambda t: (abs(t - prefer), t)))


def tune_per_au(
    labels: np.ndarray,
    probs: np.ndarray,
    aus: Sequence[str],
    grid: Sequence[float] = THRESHOLD_GRID,
    prefer: float = 0.5,
) -> dict[str, float]:
    """One threshold per AU (columns of `labels`/`probs`, [N, K]) chosen on these very predictions."""
    return {au: best_threshold(labels[:, k], probs[:, k], grid, prefer) for k, au in enumerate(aus)}


def run_thresholds(
    val: Optional[pd.DataFrame], aus: Sequence[str], threshold: float, *, seed: int, fold: Optional[str] = None
) -> tuple[dict[str, float], str]:
    """Per-AU decision thresholds for a model bundle, and where they came from.

    `val` holds the run's validation predictions (held-out *training* subjects; None when the run has none).
    For one fold's model: the thresholds that fold's validation subjects chose (what f1_macro_val_tuned scores).
    For the final model (`fold` None): tuned on every fold's validation predictions of that seed pooled — each
    comes from subjects the predicting model did not train on, so they are honest, and pooling gives a steadier
    choice. Without validation predictions every AU gets the fixed `threshold`.
    """
    fixed = {au: float(threshold) for au in aus}
    if val is None:
        return fixed, f"eval.threshold ({threshold:g}; the run has no validation predictions)"
    val = val[val["seed"] == seed]
    if fold is not None:
        val = val[val["fold"] == fold]
    if val.empty or not all(f"prob_{au}" in val and f"label_{au}" in val for au in aus):
        return fixed, f"eval.threshold ({threshold:g}; no validation predictions for this model)"
    labels = val[[f"label_{au}" for au in aus]].to_numpy(dtype=float)
    probs = val[[f"prob_{au}" for au in aus]].to_numpy(dtype=float)
    tuned = tune_per_au(labels, probs, list(aus), prefer=threshold)
    where = f"fold {fold}'s" if fold is not None else "all folds' pooled"
    return tuned, f"val_tuned ({where} validation predictions, seed {seed}, {len(val)} clips)"
