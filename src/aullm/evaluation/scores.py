"""Everything metrics.json holds about a set of predictions: every metric per seed and over seeds, the trivial
rows, the subject-bootstrap intervals, and the notes that say how each number was made."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Optional

import pandas as pd

from aullm.core.console import logger
from aullm.evaluation.bootstrap import (
    DEFAULT_REPLICATES,
    LEVEL,
    SeedPredictions,
    bootstrap_intervals,
    seed_predictions,
    subject_index,
)
from aullm.evaluation.metrics import (
    HEADLINE,
    LABELS,
    METRICS,
    OPTIMISTIC,
    score_seed,
    split_seeds,
    summarize,
    val_tuned_predictions,
)
from aullm.evaluation.predictions import prediction_aus
from aullm.evaluation.thresholds import THRESHOLD_GRID
from aullm.evaluation.trivial import TRIVIAL, TRIVIAL_LABELS, trivial_seed


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


def _notes(
    has_val: bool, bootstrap: int, bootstrap_seed: int, subjects: int, sources: set[str], single_class: list[str]
) -> dict[str, str]:
    """How each number of metrics.json was made, in words (metrics.json `notes`)."""
    notes = {
        "f1_macro_test_tuned": "OPTIMISTIC: each AU's threshold is chosen on the test predictions themselves "
        "(grid 0.10..0.85, as the AU-LLM reference code does)",
        "f1_macro_val_tuned": (
            "thresholds chosen per fold on held-out training subjects (val_predictions.csv) and "
            "applied to that fold's test predictions"
            if has_val
            else "null: no val_predictions.csv (set eval.validation_subjects > 0)"
        ),
        "aggregation": "per seed: all folds concatenated, scored per AU, averaged over AUs; then mean and sample "
        "std (ddof=1, 0 for one seed) over seeds",
        "intervals": (
            f"ci95: 95% percentile interval of {bootstrap} subject-level bootstrap replicates (seed "
            f"{bootstrap_seed}; {subjects} subjects resampled with replacement, all their clips kept; the same "
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
    return notes


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
    notes = _notes(val is not None, bootstrap, bootstrap_seed, len(subjects), sources, single_class)
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


__all__ = ["add_intervals", "bootstrap_inputs", "score_predictions"]
