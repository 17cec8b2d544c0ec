"""Subject-level (cluster) bootstrap of every metric, all replicates at once.

LOSO predictions are not independent samples: clips of one subject share a face, a camera session and one
held-out model. So the resampling unit is the subject: a replicate draws as many subjects as there are, with
replacement, and scores the clips of every drawn subject (a subject drawn twice counts twice). The interval says
how much a number could move had other subjects been recorded; it does not cover retraining noise (the spread
over seeds shows that).

Why by hand and not `scipy.stats.bootstrap`: SciPy resamples elements of its data arrays and offers no cluster
resampling; it could be driven with subject indices as the data, but (1) its percentile interval turns NaN for a
whole statistic as soon as one replicate is undefined (an AUC whose resampled subjects hold one class only), where
we drop those replicates per statistic, and (2) the paired comparison needs the replicate distribution of the
difference for its p-value, which is not what SciPy's result is built around. The method is SciPy's `percentile`.

How it is vectorised: a replicate is a vector of subject multiplicities m (multinomial, sum = number of subjects).
Every F1-type metric is a function of confusion counts, and a subject's counts simply add, so the counts of all
replicates are one matrix product `m @ counts_per_subject` (also over the 16 candidate thresholds of the
test-tuned convention). The AUC with integer sample weights is the Mann-Whitney statistic: its pair counts add
per (subject, subject) pair, so each replicate is a quadratic form of the multiplicities with one S×S matrix per AU.
With all-ones multiplicities every function here reproduces the point estimates of `metrics.score_seed` exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

#: Replicates by default (`eval.bootstrap`), and the interval's coverage.
DEFAULT_REPLICATES = 2000
LEVEL = 0.95
F1_METRICS: tuple[str, ...] = ("f1_binary", "f1_macro", "f1_macro_test_tuned", "f1_macro_val_tuned")


@dataclass(frozen=True)
class SeedPredictions:
    """One seed's concatenated test predictions, with each row's subject as an index into a shared subject list.

    `val_pred` holds the binary predictions at the validation-tuned thresholds (None when the run has none): those
    thresholds come from training subjects only, so they stay fixed while the test subjects are resampled.
    """

    labels: np.ndarray  # [N, K] int 0/1
    probs: np.ndarray  # [N, K] float
    cluster: np.ndarray  # [N] int in [0, S)
    val_pred: Optional[np.ndarray] = None  # [N, K] int 0/1


def subject_index(frames: Sequence[pd.DataFrame]) -> list[str]:
    """The sorted subjects over all frames: the clusters every replicate resamples."""
    subjects: set[str] = set()
    for frame in frames:
        subjects.update(str(s) for s in frame["subject"])
    return sorted(subjects)


def seed_predictions(
    frame: pd.DataFrame, aus: Sequence[str], subjects: Sequence[str], val_pred: Optional[np.ndarray] = None
) -> SeedPredictions:
    """Arrays of one seed's prediction frame (`prob_AU`, `label_AU`, `subject` columns)."""
    position = {s: i for i, s in enumerate(subjects)}
    return SeedPredictions(
        labels=frame[[f"label_{au}" for au in aus]].to_numpy(dtype=np.int64),
        probs=frame[[f"prob_{au}" for au in aus]].to_numpy(dtype=float),
        cluster=np.array([position[str(s)] for s in frame["subject"]], dtype=np.int64),
        val_pred=None if val_pred is None else np.asarray(val_pred, dtype=np.int64),
    )


def draw_multiplicities(subjects: int, replicates: int, seed: int) -> np.ndarray:
    """[B, S] how often each subject is drawn in each replicate (S draws with replacement), from `seed`."""
    draws = np.random.default_rng(seed).integers(0, subjects, size=(replicates, subjects))
    flat = (draws + subjects * np.arange(replicates)[:, None]).ravel()
    return np.bincount(flat, minlength=replicates * subjects).reshape(replicates, subjects).astype(float)


# ------------------------------------------------------------------------------------------- replicate scores


def _per_subject(cluster: np.ndarray, values: np.ndarray, subjects: int) -> np.ndarray:
    """Sum rows of `values` [N, ...] per subject → [S, ...] (as one matrix product)."""
    member = np.zeros((subjects, len(cluster)))
    member[cluster, np.arange(len(cluster))] = 1.0
    return (member @ values.reshape(len(cluster), -1)).reshape(subjects, *values.shape[1:])


def _macro_f1(
    tp: np.ndarray, predicted: np.ndarray, positives: np.ndarray, total: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(positive-class F1, macro F1) from weighted counts, zero_division=0 as in sklearn."""
    fp = predicted - tp
    fn = positives - tp
    tn = total - tp - fp - fn
    with np.errstate(invalid="ignore", divide="ignore"):
        pos_den, neg_den = 2 * tp + fp + fn, 2 * tn + fp + fn
        pos = np.where(pos_den > 0, 2 * tp / np.where(pos_den > 0, pos_den, 1), 0.0)
        neg = np.where(neg_den > 0, 2 * tn / np.where(neg_den > 0, neg_den, 1), 0.0)
    return pos, (pos + neg) / 2.0


def _f1_counts(
    weights: np.ndarray, cluster: np.ndarray, labels: np.ndarray, pred: np.ndarray, subjects: int
) -> tuple[np.ndarray, np.ndarray]:
    """(positive F1, macro F1) of binary predictions [N, ...] for every replicate → [B, ...]."""
    y = labels.reshape(labels.shape + (1,) * (pred.ndim - labels.ndim)).astype(float)
    p = pred.astype(float)
    stacked = np.stack(np.broadcast_arrays(y * p, p, y + 0 * p, np.ones_like(p)), axis=1)  # [N, 4, ...]
    counts = np.tensordot(weights, _per_subject(cluster, stacked, subjects), axes=(1, 0))  # [B, 4, ...]
    return _macro_f1(counts[:, 0], counts[:, 1], counts[:, 2], counts[:, 3])


def weighted_auc(weights: np.ndarray, cluster: np.ndarray, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """ROC AUC [B] of one AU under every replicate's subject multiplicities; NaN where one class is absent.

    Mann-Whitney form of the trapezoidal AUC (what sklearn computes): over every (positive, negative) pair, 1 when
    the positive scores higher and 1/2 on a tie, weighted by both clips' multiplicities, divided by the weighted
    number of pairs. Pairs are summed once per (subject of the positive, subject of the negative) into an S×S
    matrix, so each replicate costs a quadratic form `m A mᵀ`.
    """
    subjects = weights.shape[1]
    positive = labels == 1
    pos_scores, neg_scores = probs[positive], probs[~positive]
    wins = (pos_scores[:, None] > neg_scores[None, :]) + 0.5 * (pos_scores[:, None] == neg_scores[None, :])
    pos_subject = np.zeros((len(pos_scores), subjects))
    pos_subject[np.arange(len(pos_scores)), cluster[positive]] = 1.0
    neg_subject = np.zeros((len(neg_scores), subjects))
    neg_subject[np.arange(len(neg_scores)), cluster[~positive]] = 1.0
    pairs = pos_subject.T @ wins @ neg_subject  # [S, S]
    numerator = ((weights @ pairs) * weights).sum(axis=1)
    denominator = (weights @ pos_subject.sum(axis=0)) * (weights @ neg_subject.sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def replicate_scores(
    seeds: Sequence[SeedPredictions],
    weights: np.ndarray,
    threshold: float,
    grid: Sequence[float],
) -> dict[str, Optional[np.ndarray]]:
    """Every metric under every replicate: {metric: [B, n_seeds, K]} (None: the metric is undefined for the run).

    `weights` [B, S] are subject multiplicities; all-ones rows give the point estimates.
    """
    # The matrices are small (replicates × subjects): BLAS threads gain nothing and only contend on a busy machine
    # (measured 3× slower with them on a loaded 2-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        return _replicate_scores(seeds, np.asarray(weights, dtype=float), threshold, grid)


def _replicate_scores(
    seeds: Sequence[SeedPredictions], weights: np.ndarray, threshold: float, grid: Sequence[float]
) -> dict[str, Optional[np.ndarray]]:
    subjects = weights.shape[1]
    grid_array = np.asarray(grid, dtype=float)
    out: dict[str, list[np.ndarray]] = {m: [] for m in (*F1_METRICS, "auc")}
    has_val = all(s.val_pred is not None for s in seeds)
    for seed in seeds:
        fixed = (seed.probs >= threshold).astype(np.int64)
        binary, macro = _f1_counts(weights, seed.cluster, seed.labels, fixed, subjects)
        out["f1_binary"].append(binary)
        out["f1_macro"].append(macro)
        tuned = (seed.probs[:, :, None] >= grid_array[None, None, :]).astype(np.int64)  # [N, K, G]
        _, tuned_macro = _f1_counts(weights, seed.cluster, seed.labels, tuned, subjects)
        out["f1_macro_test_tuned"].append(tuned_macro.max(axis=2))  # the threshold is re-chosen per replicate
        if has_val:
            assert seed.val_pred is not None
            _, val_macro = _f1_counts(weights, seed.cluster, seed.labels, seed.val_pred, subjects)
            out["f1_macro_val_tuned"].append(val_macro)
        out["auc"].append(
            np.stack(
                [
                    weighted_auc(weights, seed.cluster, seed.labels[:, k], seed.probs[:, k])
                    for k in range(seed.labels.shape[1])
                ],
                axis=1,
            )
        )
    return {m: (np.stack(v, axis=1) if v else None) for m, v in out.items()}


# ------------------------------------------------------------------------------------------- summaries


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean of the defined values along `axis`; NaN where none is defined (no RuntimeWarning)."""
    defined = ~np.isnan(values)
    count = defined.sum(axis=axis)
    total = np.where(defined, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)


def reduce_replicates(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """[B, n_seeds, K] → (per seed per AU [B, n_seeds, K], per seed avg [B, n_seeds], per AU over seeds [B, K],
    avg over AUs then seeds [B]), following the point estimates' aggregation: undefined values are skipped."""
    per_seed_avg = _nanmean(scores, axis=2)
    return scores, per_seed_avg, _nanmean(scores, axis=1), _nanmean(per_seed_avg, axis=1)


def percentile_intervals(replicates: np.ndarray, level: float = LEVEL) -> list[Optional[list[float]]]:
    """[low, high] percentile interval of each column of [B, M] over its defined replicates (None: none is)."""
    values = np.asarray(replicates, dtype=float).reshape(len(replicates), -1)
    tail = (1.0 - level) / 2.0
    defined = ~np.isnan(values).all(axis=0)
    bounds = np.full((2, values.shape[1]), np.nan)
    if defined.any():
        bounds[:, defined] = np.nanquantile(values[:, defined], [tail, 1.0 - tail], axis=0)
    return [[float(lo), float(hi)] if ok else None for lo, hi, ok in zip(bounds[0], bounds[1], defined)]


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> Optional[list[float]]:
    """[low, high] percentile interval of the defined replicates [B] (None when none is defined)."""
    return percentile_intervals(np.asarray(replicates, dtype=float)[:, None], level)[0]


def _intervals_of(per_au: np.ndarray, avg: np.ndarray, aus: Sequence[str]) -> dict[str, Any]:
    bounds = percentile_intervals(np.column_stack([per_au, avg]))
    return {"per_au": dict(zip(aus, bounds[:-1])), "avg": bounds[-1]}


def bootstrap_intervals(
    seeds: Mapping[str, SeedPredictions],
    aus: Sequence[str],
    subjects: int,
    threshold: float,
    grid: Sequence[float],
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
) -> dict[str, Any]:
    """95% intervals of every metric: {"summary": {metric: {"per_au": {AU: [lo, hi]}, "avg": [lo, hi]}},
    "per_seed": {seed: {metric: ...}}} — the summary's are intervals of the mean over seeds (each replicate draws
    the same subjects for every seed)."""
    weights = draw_multiplicities(subjects, replicates, seed)
    scores = replicate_scores(list(seeds.values()), weights, threshold, grid)
    summary: dict[str, Any] = {}
    per_seed: dict[str, dict[str, Any]] = {name: {} for name in seeds}
    for metric, values in scores.items():
        if values is None:
            summary[metric] = None
            continue
        per_seed_au, per_seed_avg, per_au, avg = reduce_replicates(values)
        summary[metric] = _intervals_of(per_au, avg, aus)
        for i, name in enumerate(seeds):
            per_seed[name][metric] = _intervals_of(per_seed_au[:, i], per_seed_avg[:, i], aus)
    return {"summary": summary, "per_seed": per_seed}
