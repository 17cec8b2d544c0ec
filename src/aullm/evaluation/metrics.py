"""The metrics of docs/design.md (Metrics) for one seed's predictions, as pure functions of arrays and frames, and
their mean ± std over seeds.

Conventions, fixed here once so every table and plot agrees:
- Per seed, the predictions of all folds are concatenated and each AU is scored once on the whole set (never a
  mean of per-fold scores: LOSO test folds are tiny and often lack positives, which makes per-fold F1 unstable
  and biased). Then scores are averaged over AUs, and finally mean ± std is taken over seeds.
- A prediction is positive when prob >= threshold. F1 uses sklearn with zero_division=0: a class that is never
  true and never predicted scores 0 (so an AU with no positives has positive-class F1 = 0), AUC is null for an
  AU with a single class and the AUC average skips it.
- std is the sample standard deviation over seeds (ddof=1), defined as 0 for a single seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from aullm.evaluation.predictions import arrays
from aullm.evaluation.thresholds import THRESHOLD_GRID, binarize, class_f1, class_f1_columns, tune_per_au

METRICS: tuple[str, ...] = ("f1_binary", "f1_macro", "f1_macro_test_tuned", "f1_macro_val_tuned", "auc")
HEADLINE = "f1_macro"
OPTIMISTIC: frozenset[str] = frozenset({"f1_macro_test_tuned"})
LABELS: dict[str, str] = {
    "f1_binary": "F1 positive class @ fixed threshold",
    "f1_macro": "F1 macro @ fixed threshold (paper convention)",
    "f1_macro_test_tuned": "F1 macro, thresholds tuned on TEST (OPTIMISTIC)",
    "f1_macro_val_tuned": "F1 macro, thresholds tuned on held-out training subjects",
    "auc": "ROC AUC",
}


def f1_binary(y_true: np.ndarray, probs: np.ndarray, threshold: float) -> float:
    """Positive-class F1 at a fixed threshold."""
    return class_f1(y_true, binarize(probs, threshold))[1]


def f1_macro(y_true: np.ndarray, probs: np.ndarray, threshold: float) -> float:
    """Mean of positive- and negative-class F1 at a fixed threshold (the paper's convention)."""
    return f1_macro_of(y_true, binarize(probs, threshold))


def f1_macro_of(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    neg, pos = class_f1(y_true, y_pred)
    return (neg + pos) / 2.0


def auc(y_true: np.ndarray, probs: np.ndarray) -> Optional[float]:
    """ROC AUC, or None when the labels hold a single class (AUC is undefined there)."""
    if len(np.unique(y_true)) < 2:
        return None
    return float(roc_auc_score(y_true, probs))


def val_tuned_predictions(
    test: pd.DataFrame,
    val: pd.DataFrame,
    aus: Sequence[str],
    threshold: float,
    grid: Sequence[float] = THRESHOLD_GRID,
) -> tuple[np.ndarray, dict[str, dict[str, float]], list[str]]:
    """Binary test predictions [N,K] with each fold's per-AU thresholds chosen on that fold's validation rows.

    Only `val` (held-out training subjects) decides a threshold; the test labels are never looked at. A fold
    without validation rows keeps the fixed threshold and is returned in the third element.
    """
    _, probs = arrays(test, aus)
    pred = np.zeros_like(probs, dtype=int)
    chosen: dict[str, dict[str, float]] = {}
    fallback: list[str] = []
    folds = test["fold"].to_numpy()
    for fold in pd.unique(folds):
        rows = folds == fold
        fold_val = val[val["fold"] == fold]
        if fold_val.empty:
            fallback.append(str(fold))
            thresholds = {au: threshold for au in aus}
        else:
            val_labels, val_probs = arrays(fold_val, aus)
            thresholds = tune_per_au(val_labels, val_probs, aus, grid, prefer=threshold)
        chosen[str(fold)] = thresholds
        for k, au in enumerate(aus):
            pred[rows, k] = binarize(probs[rows, k], thresholds[au])
    return pred, chosen, fallback


def score_seed(
    test: pd.DataFrame,
    val: Optional[pd.DataFrame],
    aus: Sequence[str],
    threshold: float,
    grid: Sequence[float] = THRESHOLD_GRID,
) -> dict[str, Any]:
    """Every metric for one seed: all folds' predictions concatenated, scored per AU, then averaged over AUs."""
    labels, probs = arrays(test, aus)
    per_au: dict[str, dict[str, Optional[float]]] = {m: {} for m in METRICS}
    test_thresholds = tune_per_au(labels, probs, aus, grid, prefer=threshold)
    val_pred = val_thresholds = None
    fallback: list[str] = []
    if val is not None and not val.empty:
        val_pred, val_thresholds, fallback = val_tuned_predictions(test, val, aus, threshold, grid)
    fixed_neg, fixed_pos = class_f1_columns(labels, binarize(probs, threshold))
    tuned = np.column_stack([binarize(probs[:, k], test_thresholds[au]) for k, au in enumerate(aus)])
    tuned_neg, tuned_pos = class_f1_columns(labels, tuned)
    if val_pred is not None:
        val_neg, val_pos = class_f1_columns(labels, val_pred)
    for k, au in enumerate(aus):
        per_au["f1_binary"][au] = float(fixed_pos[k])
        per_au["f1_macro"][au] = float(fixed_neg[k] + fixed_pos[k]) / 2.0
        per_au["f1_macro_test_tuned"][au] = float(tuned_neg[k] + tuned_pos[k]) / 2.0
        per_au["f1_macro_val_tuned"][au] = None if val_pred is None else float(val_neg[k] + val_pos[k]) / 2.0
        per_au["auc"][au] = auc(labels[:, k], probs[:, k])
    result: dict[str, Any] = {
        "per_au": per_au,
        "avg": {m: mean_defined(per_au[m].values()) for m in METRICS},
        "thresholds": {"test_tuned": test_thresholds, "val_tuned": val_thresholds},
        "samples": int(len(test)),
        "positives": {au: int(labels[:, k].sum()) for k, au in enumerate(aus)},
    }
    if fallback:
        result["val_tuned_fixed_threshold_folds"] = fallback
    return result


def mean_defined(values: Any) -> Optional[float]:
    defined = [float(v) for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def mean_std(values: Sequence[Optional[float]]) -> dict[str, Any]:
    """Mean and sample std (ddof=1; 0 for one value) of the defined values, and their count n."""
    defined = np.asarray([v for v in values if v is not None], dtype=float)
    if defined.size == 0:
        return {"mean": None, "std": None, "n": 0}
    std = float(defined.std(ddof=1)) if defined.size > 1 else 0.0
    return {"mean": float(defined.mean()), "std": std, "n": int(defined.size)}


def summarize(per_seed: Sequence[dict[str, Any]], aus: Sequence[str]) -> dict[str, Any]:
    """{metric: {"per_au": {AU: {mean, std}}, "avg": {mean, std}}} over seeds; None when undefined everywhere."""
    out: dict[str, Any] = {}
    for metric in METRICS:
        avg = [s["avg"][metric] for s in per_seed]
        if all(v is None for v in avg):
            out[metric] = None
            continue
        out[metric] = {
            "per_au": {au: mean_std([s["per_au"][metric][au] for s in per_seed]) for au in aus},
            "avg": mean_std(avg),
        }
    return out


def split_seeds(
    test: pd.DataFrame, val: Optional[pd.DataFrame]
) -> list[tuple[int, pd.DataFrame, Optional[pd.DataFrame]]]:
    """(seed, test rows, validation rows or None) for every seed of the predictions, in seed order."""
    out = []
    for seed in sorted(int(s) for s in pd.unique(test["seed"])):
        test_s = test[test["seed"] == seed].reset_index(drop=True)
        val_s = None
        if val is not None:
            val_s = val[val["seed"] == seed].reset_index(drop=True)
            val_s = None if val_s.empty else val_s
        out.append((seed, test_s, val_s))
    return out


__all__ = [
    "HEADLINE",
    "LABELS",
    "METRICS",
    "OPTIMISTIC",
    "auc",
    "f1_binary",
    "f1_macro",
    "f1_macro_of",
    "mean_defined",
    "mean_std",
    "score_seed",
    "split_seeds",
    "summarize",
    "val_tuned_predictions",
]
