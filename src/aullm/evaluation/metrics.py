"""Metrics of docs/design.md (Run directories) as pure functions of prediction frames, and `score_run` that writes
metrics.json.

Conventions, fixed here once so every table and plot agrees:
- Per seed, the predictions of all folds are concatenated and each AU is scored once on the whole set (never a
  mean of per-fold scores: LOSO test folds are tiny and often lack positives, which makes per-fold F1 unstable
  and biased). Then scores are averaged over AUs, and finally mean ± std is taken over seeds.
- A prediction is positive when prob >= threshold. F1 uses sklearn with zero_division=0: a class that is never
  true and never predicted scores 0 (so an AU with no positives has positive-class F1 = 0), AUC is null for an
  AU with a single class and the AUC average skips it.
- std is the sample standard deviation over seeds (ddof=1), defined as 0 for a single seed.
- Trivial reference rows are computed on the same labels: all-negative, all-positive and the per-AU prior. The
  prior predicts "positive" at random with probability q = the AU's prevalence in the fold's training pool; its
  F1 is the exact expected value over that randomness (TP and FP are Poisson-binomial), not one random draw.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
from scipy.stats import binom
from sklearn.metrics import roc_auc_score

from aullm.core.console import logger
from aullm.core.errors import UserError
from aullm.core.io import write_text
from aullm.core.provenance import reconstruction_note
from aullm.evaluation.bootstrap import (
    DEFAULT_REPLICATES,
    LEVEL,
    SeedPredictions,
    bootstrap_intervals,
    seed_predictions,
    subject_index,
)
from aullm.evaluation.thresholds import THRESHOLD_GRID, binarize, class_f1, class_f1_columns, tune_per_au
from aullm.evaluation.validate import check_predictions

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
TRIVIAL: tuple[str, ...] = ("all_negative", "all_positive", "prior")
TRIVIAL_LABELS: dict[str, str] = {
    "all_negative": "trivial: all negative",
    "all_positive": "trivial: all positive",
    "prior": "trivial: per-AU prior (expected)",
}
ID_COLUMNS = ("seed", "fold", "subject", "sample")
_DTYPES = {"subject": str, "fold": str, "sample": str}


# ------------------------------------------------------------------------------------------------ reading


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


# ------------------------------------------------------------------------------------------ per-AU metrics


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
        "avg": {m: _mean_defined(per_au[m].values()) for m in METRICS},
        "thresholds": {"test_tuned": test_thresholds, "val_tuned": val_thresholds},
        "samples": int(len(test)),
        "positives": {au: int(labels[:, k].sum()) for k, au in enumerate(aus)},
    }
    if fallback:
        result["val_tuned_fixed_threshold_folds"] = fallback
    return result


# -------------------------------------------------------------------------------------------- trivial rows


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
    rows["prior"] = {"per_au": per_au, "avg": {m: _mean_defined(per_au[m].values()) for m in METRICS}}
    return rows, source


def _constant_scores(frame: pd.DataFrame, aus: Sequence[str], value: float) -> pd.DataFrame:
    out = frame.copy()
    for au in aus:
        out[f"prob_{au}"] = value
    return out


# -------------------------------------------------------------------------------------- over seeds and runs


def _mean_defined(values: Any) -> Optional[float]:
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


def bootstrap_inputs(
    test: pd.DataFrame,
    val: Optional[pd.DataFrame],
    aus: Sequence[str],
    threshold: float,
    grid: Sequence[float] = THRESHOLD_GRID,
    subjects: Optional[Sequence[str]] = None,
) -> tuple[dict[str, SeedPredictions], list[str]]:
    """Each seed's predictions as arrays for the subject bootstrap (validation-tuned decisions included)."""
    if val is not None and val.empty:
        val = None
    subjects = list(subjects) if subjects is not None else subject_index([test])
    seeds: dict[str, SeedPredictions] = {}
    for seed, test_s, val_s in split_seeds(test, val):
        val_pred = None if val_s is None else val_tuned_predictions(test_s, val_s, aus, threshold, grid)[0]
        seeds[str(seed)] = seed_predictions(test_s, aus, subjects, val_pred)
    return seeds, subjects


def add_intervals(
    summary: dict[str, Any],
    per_seed: dict[str, dict[str, Any]],
    intervals: Optional[dict[str, Any]],
) -> None:
    """Put `ci95: [low, high]` (None when intervals are off or undefined) beside every summary {mean, std, n}
    and a `ci95` block into every seed's scores."""
    for metric, entry in summary.items():
        if entry is None:
            continue
        block = None if intervals is None else intervals["summary"].get(metric)
        for au, stat in entry["per_au"].items():
            stat["ci95"] = None if block is None or stat["mean"] is None else block["per_au"][au]
        entry["avg"]["ci95"] = None if block is None or entry["avg"]["mean"] is None else block["avg"]
    for name, scores in per_seed.items():
        scores["ci95"] = None if intervals is None else intervals["per_seed"][name]


def score_predictions(
    test: pd.DataFrame,
    val: Optional[pd.DataFrame] = None,
    threshold: float = 0.5,
    aus: Optional[Sequence[str]] = None,
    grid: Sequence[float] = THRESHOLD_GRID,
    bootstrap: int = DEFAULT_REPLICATES,
    bootstrap_seed: int = 0,
) -> dict[str, Any]:
    """Everything metrics.json holds about the predictions (no run information), as plain JSON-able data.

    `bootstrap` subject-level replicates (0: none) give every summary and per-seed value its 95% interval.
    """
    aus = list(aus) if aus is not None else prediction_aus(test)
    if val is not None and val.empty:
        val = None
    per_seed: dict[str, dict[str, Any]] = {}
    trivial_per_seed: dict[str, list[dict[str, Any]]] = {name: [] for name in TRIVIAL}
    sources = set()
    for seed, test_s, val_s in split_seeds(test, val):
        per_seed[str(seed)] = score_seed(test_s, val_s, aus, threshold, grid)
        rows, source = trivial_seed(test_s, val_s, aus, threshold, grid)
        sources.add(source)
        for name in TRIVIAL:
            trivial_per_seed[name].append(rows[name])
    seeds = [int(s) for s in per_seed]
    first = per_seed[str(seeds[0])]
    single_class = [au for au in aus if first["positives"][au] in (0, first["samples"])]
    summary = summarize(list(per_seed.values()), aus)
    intervals = None
    subjects = subject_index([test])
    if bootstrap > 0:
        start = time.perf_counter()
        arrays_by_seed, subjects = bootstrap_inputs(test, val, aus, threshold, grid, subjects)
        intervals = bootstrap_intervals(arrays_by_seed, aus, len(subjects), threshold, grid, bootstrap, bootstrap_seed)
        logger.debug("bootstrap: %d replicates in %.3fs", bootstrap, time.perf_counter() - start)
    add_intervals(summary, per_seed, intervals)
    for metric, entry in summary.items():
        if entry is not None:
            entry["label"] = LABELS[metric]
            entry["optimistic"] = metric in OPTIMISTIC
    notes = {
        "f1_macro_test_tuned": "OPTIMISTIC: each AU's threshold is chosen on the test predictions themselves "
        "(grid 0.10..0.85, as the AU-LLM reference code does)",
        "f1_macro_val_tuned": (
            "thresholds chosen per fold on held-out training subjects (val_predictions.csv) and "
            "applied to that fold's test predictions"
            if val is not None
            else "null: no val_predictions.csv (set eval.validation_subjects > 0)"
        ),
        "aggregation": "per seed: all folds concatenated, scored per AU, averaged over AUs; then mean and sample "
        "std (ddof=1, 0 for one seed) over seeds",
        "intervals": (
            f"ci95: 95% percentile interval of {bootstrap} subject-level bootstrap replicates (seed "
            f"{bootstrap_seed}; {len(subjects)} subjects resampled with replacement, all their clips kept; the same "
            "draws for every seed, so a summary interval is that of the mean over seeds); it reflects which "
            "subjects were recorded, not retraining noise (see std over seeds); test-tuned thresholds are re-chosen "
            "in every replicate, validation-tuned ones stay fixed; AUC replicates with one class are skipped; with "
            "few subjects the interval is too narrow (simulated coverage of a nominal 95%: about 86% with 6 "
            "subjects, 90% with 26)"
            if bootstrap > 0
            else "off (eval.bootstrap: 0): ci95 is null"
        ),
        "decision": "positive when prob >= threshold; F1 with zero_division=0 (an AU with no positives has "
        "positive-class F1 0); AUC null for a single-class AU and skipped in its average",
        "prior": "predicts positive at random with probability q = the AU's prevalence in the fold's training pool "
        f"(estimated from: {', '.join(sorted(sources))}); F1 is the exact expectation; no score to tune, "
        "so its tuned conventions equal its fixed-threshold value",
    }
    if "test_labels" in sources:
        notes["prior"] += "; NOTE: no training labels in the run directory, so q came from the test labels"
    if single_class:
        notes["single_class_aus"] = f"{', '.join(single_class)}: one class only in the test labels"
    return {
        "aus": aus,
        "seeds": seeds,
        "folds": [str(f) for f in pd.unique(test["fold"])],
        "threshold": float(threshold),
        "threshold_grid": list(grid),
        "samples": first["samples"],
        "positives": first["positives"],
        "single_class_aus": single_class,
        "metrics": list(METRICS),
        "labels": dict(LABELS),
        "optimistic": sorted(OPTIMISTIC),
        "headline": HEADLINE,
        "subjects": len(subjects),
        "bootstrap": {"replicates": int(bootstrap), "seed": int(bootstrap_seed), "level": LEVEL, "unit": "subject"},
        "per_seed": per_seed,
        "summary": summary,
        "trivial": {name: summarize(trivial_per_seed[name], aus) for name in TRIVIAL},
        "trivial_labels": dict(TRIVIAL_LABELS),
        "prior_source": sorted(sources),
        "notes": notes,
    }


# --------------------------------------------------------------------------------------------- run dirs


def run_info(run_dir: Path) -> dict[str, Any]:
    """What the report needs to know about a run, read from its config.yaml (defaults when it has none)."""
    from aullm.config import Config, load_config

    path = Path(run_dir) / "config.yaml"
    if path.is_file():
        cfg = load_config(path, resolved=True)
    else:
        logger.warning("%s has no config.yaml; scoring with the default settings (threshold 0.5)", run_dir)
        cfg = Config(name=Path(run_dir).resolve().name)
    target = cfg.protocol.target.dataset if cfg.protocol.target is not None else None
    return {
        "name": cfg.name,
        "dir": str(run_dir),
        "dataset": cfg.data.dataset,
        "protocol": cfg.protocol.name,
        "target": target if cfg.protocol.name == "cross_domain" else None,
        "model": cfg.model.name,
        "variant": cfg.model.variant_label,
        "llm": cfg.llm.name,
        "input": cfg.data.input,
        "threshold": cfg.eval.threshold,
        "validation_subjects": cfg.eval.validation_subjects,
        "bootstrap": cfg.eval.bootstrap,
        "bootstrap_seed": cfg.eval.bootstrap_seed,
        "llm_init": cfg.llm.init if cfg.model.needs_llm else None,
        "reasoner": getattr(cfg.model, "reasoner", None),
        "config_seeds": list(cfg.seeds),
        "aus": list(cfg.data.aus),
    }


def unfinished_folds(run_dir: Path) -> list[str]:
    """Fold folders without their `done` marker or predictions (a run still going, stopped, or damaged)."""
    folds = Path(run_dir) / "folds"
    if not folds.is_dir():
        return []
    return sorted(
        p.name
        for p in folds.iterdir()
        if p.is_dir() and not ((p / "done").exists() and (p / "predictions.csv").is_file())
    )


def finished_fold_rows(run_dir: Path) -> Optional[dict[str, int]]:
    """Rows per seed in each finished fold's own predictions.csv (None for a run without fold folders)."""
    folds = Path(run_dir) / "folds"
    if not folds.is_dir():
        return None
    rows: dict[str, int] = {}
    for folder in sorted(p for p in folds.iterdir() if p.is_dir() and p.name not in unfinished_folds(run_dir)):
        frame = read_predictions(folder / "predictions.csv")
        rows[folder.name] = len(frame) // max(1, frame["seed"].nunique())
    return rows


def read_run(run_dir: Path) -> tuple[dict[str, Any], list[str], pd.DataFrame, Optional[pd.DataFrame]]:
    """A run's info, AUs, test predictions and validation predictions (None when it held none out), checked
    against the run's config and finished folds: what scoring and paired comparisons read."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    pred_path = run_dir / "predictions.csv"
    if not pred_path.is_file():
        raise UserError(f"{run_dir} is not a run directory: no predictions.csv (written by aullm train)")
    info = run_info(run_dir)
    test = read_predictions(pred_path)
    aus = prediction_aus(test, pred_path)
    if (run_dir / "config.yaml").is_file():
        check_predictions(
            test, pred_path, aus=info["aus"], seeds=info["config_seeds"], fold_rows=finished_fold_rows(run_dir)
        )
    val = None
    val_path = run_dir / "val_predictions.csv"
    if val_path.is_file():
        val = read_predictions(val_path)
        if prediction_aus(val, val_path) != aus:
            raise UserError(f"{val_path} and {pred_path} name different AUs")
    return info, aus, test, val


def score_run(run_dir: Path) -> dict[str, Any]:
    """Score a run directory from its CSVs, write metrics.json next to them, and return its content."""
    run_dir = Path(run_dir)
    info, aus, test, val = read_run(run_dir)
    scores = score_predictions(
        test, val, info["threshold"], aus, bootstrap=info["bootstrap"], bootstrap_seed=info["bootstrap_seed"]
    )
    metrics = {"schema": 1, "run": info, **scores}
    unfinished = unfinished_folds(run_dir)
    metrics["run"]["unfinished_folds"] = unfinished
    note = reconstruction_note(info["model"])
    metrics["run"]["reconstruction"] = note is not None
    if note is not None:
        metrics["notes"]["reconstruction"] = note
    if unfinished:
        metrics["notes"]["incomplete"] = (
            f"{len(unfinished)} fold(s) not finished ({', '.join(unfinished[:8])}"
            f"{', ...' if len(unfinished) > 8 else ''}); scores cover finished folds"
        )
    write_json(metrics, run_dir / "metrics.json")
    return metrics


def load_metrics(run_dir: Path) -> dict[str, Any]:
    """Re-score a run when its predictions are there (always current), else read its metrics.json."""
    run_dir = Path(run_dir)
    if (run_dir / "predictions.csv").is_file():
        return score_run(run_dir)
    path = run_dir / "metrics.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read {path}: {err}") from None
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    raise UserError(f"{run_dir} is not a run directory: no predictions.csv or metrics.json")


def write_json(data: dict[str, Any], path: Path) -> None:
    """Atomic write; NaN would not be valid JSON, so it is refused rather than written."""
    text = json.dumps(_check_finite(data), indent=2, allow_nan=False)
    write_text(path, text + "\n")


def _check_finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _check_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_check_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError("non-finite metric value")
        return value
    if isinstance(value, np.integer):
        return int(value)
    return value
