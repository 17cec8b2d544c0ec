"""The trivial reference rows every report shows beside a model, computed on the same labels: all-negative,
all-positive and the per-AU prior. The prior predicts "positive" at random with probability q = the AU's
prevalence in the fold's training pool; its F1 is the exact expected value over that randomness (TP and FP are
Poisson-binomial counts), not one random draw."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import pandas as pd
from scipy.stats import binom

from aullm.evaluation.metrics import METRICS, mean_defined, score_seed
from aullm.evaluation.predictions import arrays
from aullm.evaluation.thresholds import THRESHOLD_GRID

TRIVIAL: tuple[str, ...] = ("all_negative", "all_positive", "prior")
TRIVIAL_LABELS: dict[str, str] = {
    "all_negative": "trivial: all negative",
    "all_positive": "trivial: all positive",
    "prior": "trivial: per-AU prior (expected)",
}


def poisson_binomial_pmf(probs: np.ndarray) -> np.ndarray:
    """pmf of a sum of independent Bernoulli(p_i); equal p's are grouped into one binomial (one per fold)."""
    pmf = np.ones(1)
    values, counts = np.unique(np.asarray(probs, dtype=float), return_counts=True)
    for p, n in zip(values, counts):
        pmf = np.convolve(pmf, binom.pmf(np.arange(n + 1), n, p))
    return pmf


def expected_class_f1(y_true: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    """Exact expected (negative F1, positive F1) of predicting sample i positive at random with prob q[i].

    TP (over the positives) and FP (over the negatives) are independent Poisson-binomial counts, so the
    expectation is a finite double sum; zero_division=0 as in `class_f1`.
    """
    y = np.asarray(y_true, dtype=int)
    q = np.asarray(q, dtype=float)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    pmf_tp = poisson_binomial_pmf(q[y == 1])[:, None]
    pmf_fp = poisson_binomial_pmf(q[y == 0])[None, :]
    tp = np.arange(n_pos + 1, dtype=float)[:, None]
    fp = np.arange(n_neg + 1, dtype=float)[None, :]
    weight = pmf_tp * pmf_fp
    pos_den = tp + fp + n_pos
    tn, fn = n_neg - fp, n_pos - tp
    neg_den = tn + fn + n_neg
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = np.where(pos_den > 0, 2 * tp / pos_den, 0.0)
        neg = np.where(neg_den > 0, 2 * tn / neg_den, 0.0)
    return float((weight * neg).sum()), float((weight * pos).sum())


def training_prevalence(test: pd.DataFrame, val: Optional[pd.DataFrame], aus: Sequence[str]) -> tuple[np.ndarray, str]:
    """Per test row and AU, the AU's prevalence in that row's training pool, and where it was estimated.

    With several folds (LOSO) a fold's training pool is every other fold's subjects, all present in the test
    predictions. With one fold (cross-domain), the training set is not in the run directory: the validation rows
    (held-out training subjects) are used when present, else the test labels themselves (marked as such).
    """
    labels, _ = arrays(test, aus)
    folds = test["fold"].to_numpy()
    q = np.zeros(labels.shape, dtype=float)
    unique = pd.unique(folds)
    if len(unique) >= 2:
        for fold in unique:
            rows = folds == fold
            q[rows] = labels[~rows].mean(axis=0)
        return q, "other_folds"
    if val is not None and not val.empty:
        val_labels, _ = arrays(val, aus)
        q[:] = val_labels.mean(axis=0)
        return q, "validation_subjects"
    q[:] = labels.mean(axis=0)
    return q, "test_labels"


def trivial_seed(
    test: pd.DataFrame,
    val: Optional[pd.DataFrame],
    aus: Sequence[str],
    threshold: float,
    grid: Sequence[float] = THRESHOLD_GRID,
) -> tuple[dict[str, dict[str, Any]], str]:
    """The trivial rows for one seed, under every convention, on the same labels as the model.

    All-negative / all-positive are constant scores 0 / 1 run through `score_seed`, so they get exactly the
    same treatment as the model (no threshold can change them; their AUC is 0.5). The prior has no score to
    threshold, so its tuned conventions equal its fixed-threshold value and its AUC is 0.5 by construction.
    """
    rows: dict[str, dict[str, Any]] = {}
    for name, constant in (("all_negative", 0.0), ("all_positive", 1.0)):
        t = _constant_scores(test, aus, constant)
        v = None if val is None else _constant_scores(val, aus, constant)
        scored = score_seed(t, v, aus, threshold, grid)
        rows[name] = {"per_au": scored["per_au"], "avg": scored["avg"]}
    labels, _ = arrays(test, aus)
    q, source = training_prevalence(test, val, aus)
    per_au: dict[str, dict[str, Optional[float]]] = {m: {} for m in METRICS}
    has_val = val is not None and not val.empty
    for k, au in enumerate(aus):
        neg, pos = expected_class_f1(labels[:, k], q[:, k])
        macro = (neg + pos) / 2.0
        per_au["f1_binary"][au] = pos
        per_au["f1_macro"][au] = macro
        per_au["f1_macro_test_tuned"][au] = macro
        per_au["f1_macro_val_tuned"][au] = macro if has_val else None
        per_au["auc"][au] = 0.5 if len(np.unique(labels[:, k])) == 2 else None
    rows["prior"] = {"per_au": per_au, "avg": {m: mean_defined(per_au[m].values()) for m in METRICS}}
    return rows, source


def _constant_scores(frame: pd.DataFrame, aus: Sequence[str], value: float) -> pd.DataFrame:
    out = frame.copy()
    for au in aus:
        out[f"prob_{au}"] = value
    return out


__all__ = [
    "TRIVIAL",
    "TRIVIAL_LABELS",
    "expected_class_f1",
    "poisson_binomial_pmf",
    "training_prevalence",
    "trivial_seed",
]
