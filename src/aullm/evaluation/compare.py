"""Paired comparison of runs on the same samples: B − A per metric and AU, with a subject-bootstrap interval,
a two-sided p-value and a Holm correction across AUs.

Paired means that every bootstrap replicate draws the same subjects for both runs, so what the two runs share
(hard subjects, easy subjects) cancels in the difference; only where they disagree is left. That is why two runs
must have scored the very same samples with the very same labels, and are refused otherwise.

The p-value inverts the percentile interval: twice the smaller share of replicates on either side of zero
(with the usual +1 so that it is never exactly 0), capped at 1 — a difference whose 95% interval excludes 0 has
p < 0.05. Per metric, the AUs' p-values are one family and get Holm's step-down correction (written out here: SciPy
only offers Benjamini-Hochberg, and statsmodels would be a new dependency for five lines); the average over AUs
is a single test and keeps its own p.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from aullm.config import MAX_BOOTSTRAP
from aullm.core.console import logger
from aullm.core.errors import UserError, arg
from aullm.evaluation.bootstrap import (
    DEFAULT_REPLICATES,
    LEVEL,
    draw_multiplicities,
    percentile_interval,
    reduce_replicates,
    replicate_scores,
    subject_index,
)
from aullm.evaluation.metrics import METRICS
from aullm.evaluation.run_scores import no_predictions, read_run
from aullm.evaluation.scores import bootstrap_inputs, score_predictions
from aullm.evaluation.thresholds import THRESHOLD_GRID

ALPHA = 0.05


@dataclass
class RunPredictions:
    """What a paired comparison needs of a run: its predictions, validation predictions and settings."""

    dir: Path
    info: dict[str, Any]
    aus: list[str]
    test: pd.DataFrame
    val: Optional[pd.DataFrame]

    @property
    def threshold(self) -> float:
        return float(self.info["threshold"])


def load_run_predictions(run_dir: Path) -> RunPredictions:
    """Read a run directory's predictions (and validation predictions when present), checked as scoring checks
    them: against what the run's config and finished folds say."""
    run_dir = Path(run_dir)
    if run_dir.is_dir() and not (run_dir / "predictions.csv").is_file():
        raise no_predictions(run_dir)
    info, aus, test, val = read_run(run_dir)
    return RunPredictions(run_dir, info, aus, test, val)


# ------------------------------------------------------------------------------------------------ checks


def _examples(items: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (", …" if len(items) > limit else "")


#: A sample is (subject, sample): CASME II and SynME reuse clip names across subjects (docs/design.md, Datasets).
KEY = ["subject", "sample"]


def _named(keys: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{subject}/{sample}" for subject, sample in keys]


def _samples(run: RunPredictions) -> pd.DataFrame:
    """One row per sample, indexed by (subject, sample) and sorted, with its labels; checks that every seed of the
    run scored the same samples. Row order in predictions.csv does not matter."""
    per_seed = [set(zip(frame["subject"], frame["sample"])) for _, frame in run.test.groupby("seed")]
    if any(s != per_seed[0] for s in per_seed[1:]):
        raise UserError(f"{run.dir}: its seeds scored different samples (an unfinished run?); finish it first")
    keyed = run.test.set_index(KEY)
    return keyed[~keyed.index.duplicated()][[f"label_{au}" for au in run.aus]].sort_index()


def sample_count(run: RunPredictions) -> int:
    """How many distinct (subject, sample) clips a run scored."""
    return int(len(run.test.drop_duplicates(KEY)))


def check_comparable(a: RunPredictions, b: RunPredictions) -> None:
    """Refuse, with one line naming the difference, unless both runs scored the same samples (subject, sample) with
    the same labels for the same AUs."""
    if set(a.aus) != set(b.aus):
        only_a = sorted(set(a.aus) - set(b.aus))
        only_b = sorted(set(b.aus) - set(a.aus))
        raise UserError(
            f"cannot compare {a.dir} and {b.dir}: they score different AUs "
            f"(only in the first: {', '.join(only_a) or 'none'}; only in the second: {', '.join(only_b) or 'none'})"
        )
    sa, sb = _samples(a), _samples(b)
    missing = sorted(set(sa.index) - set(sb.index))
    extra = sorted(set(sb.index) - set(sa.index))
    if missing or extra:
        moved = sorted({m for _, m in missing} & {m for _, m in extra})
        why = f"; {len(moved)} sample name(s) belong to other subjects ({_examples(moved)})" if moved else ""
        raise UserError(
            f"cannot compare {a.dir} and {b.dir}: they scored different samples ({len(missing)} only in the first"
            f"{': ' + _examples(_named(missing)) if missing else ''}; {len(extra)} only in the second"
            f"{': ' + _examples(_named(extra)) if extra else ''}{why})"
        )
    sb = sb.loc[sa.index]
    for au in a.aus:
        differ = sa.index[sa[f"label_{au}"].to_numpy() != sb[f"label_{au}"].to_numpy()].tolist()
        if differ:
            raise UserError(
                f"cannot compare {a.dir} and {b.dir}: their {au} labels differ on {len(differ)} sample(s) "
                f"({_examples(_named(differ))}); were they trained on different annotations?"
            )


# ------------------------------------------------------------------------------------------------ statistics


def bootstrap_p(differences: np.ndarray) -> Optional[float]:
    """Two-sided p-value of "no difference" from replicate differences: twice the smaller share on either side
    of 0, +1-corrected, capped at 1 (None when no replicate is defined)."""
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return None
    below = (1.0 + float((d <= 0).sum())) / (d.size + 1.0)
    above = (1.0 + float((d >= 0).sum())) / (d.size + 1.0)
    return float(min(1.0, 2.0 * min(below, above)))


def holm(pvalues: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Holm's step-down adjusted p-values (None stays None and does not count as a test)."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[Optional[float]] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted


def _verdict(diff: Optional[float], p: Optional[float], alpha: float) -> str:
    if diff is None or p is None or p >= alpha:
        return "no significant difference"
    return "b better" if diff > 0 else "b worse"


def compare_pair(
    a: RunPredictions,
    b: RunPredictions,
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
    grid: Sequence[float] = THRESHOLD_GRID,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """B − A for every metric and AU (and "avg"): values, difference, paired 95% interval, p and Holm's p.

    Each run is scored as in its metrics.json (its own threshold, the mean over its own seeds); every replicate
    resamples the same subjects for both runs.
    """
    if replicates < 1:
        raise UserError(f"a paired comparison needs bootstrap replicates ({arg('bootstrap', 'N')} with N > 0)")
    if replicates > MAX_BOOTSTRAP:
        raise UserError(
            f"{arg('bootstrap', replicates)}: at most {MAX_BOOTSTRAP:,} replicates (each one is a row of subject "
            "weights held in memory and a scoring pass)"
        )
    check_comparable(a, b)
    aus = list(a.aus)
    subjects = subject_index([a.test, b.test])
    weights = draw_multiplicities(len(subjects), replicates, seed)
    point: dict[str, dict[str, Any]] = {}
    replicas: dict[str, dict[str, Optional[np.ndarray]]] = {}
    for key, run in (("a", a), ("b", b)):
        point[key] = score_predictions(run.test, run.val, run.threshold, aus, grid, bootstrap=0)["summary"]
        inputs, _ = bootstrap_inputs(run.test, run.val, aus, run.threshold, grid, subjects)
        replicas[key] = replicate_scores(list(inputs.values()), weights, run.threshold, grid)
    comparisons: list[dict[str, Any]] = []
    skipped: list[str] = []
    for metric in METRICS:
        entry_a, entry_b = point["a"].get(metric), point["b"].get(metric)
        rep_a, rep_b = replicas["a"][metric], replicas["b"][metric]
        if entry_a is None or entry_b is None or rep_a is None or rep_b is None:
            skipped.append(metric)
            continue
        _, _, per_au_a, avg_a = reduce_replicates(rep_a)
        _, _, per_au_b, avg_b = reduce_replicates(rep_b)
        rows = []
        columns = [*((au, per_au_b[:, k] - per_au_a[:, k]) for k, au in enumerate(aus)), ("avg", avg_b - avg_a)]
        for au, differences in columns:
            value_a = (entry_a["avg"] if au == "avg" else entry_a["per_au"][au])["mean"]
            value_b = (entry_b["avg"] if au == "avg" else entry_b["per_au"][au])["mean"]
            diff = None if value_a is None or value_b is None else float(value_b - value_a)
            interval = percentile_interval(differences) if diff is not None else None
            rows.append(
                {
                    "metric": metric,
                    "au": au,
                    "a": value_a,
                    "b": value_b,
                    "diff": diff,
                    "ci_low": None if interval is None else interval[0],
                    "ci_high": None if interval is None else interval[1],
                    "p": bootstrap_p(differences) if diff is not None else None,
                }
            )
        adjusted = [*holm([r["p"] for r in rows[:-1]]), rows[-1]["p"]]
        for row, p_holm in zip(rows, adjusted):
            row["p_holm"] = p_holm
            row["verdict"] = _verdict(row["diff"], p_holm, alpha)
        comparisons += rows
    return {
        "a": str(a.dir),
        "b": str(b.dir),
        "a_name": a.info.get("name"),
        "b_name": b.info.get("name"),
        "comparisons": comparisons,
        "skipped_metrics": skipped,
        "samples": sample_count(a),
        "subjects": len(subjects),
        "seeds": {
            "a": sorted(int(s) for s in a.test["seed"].unique()),
            "b": sorted(int(s) for s in b.test["seed"].unique()),
        },
    }


def compare_runs(
    run_dirs: Sequence[Path],
    replicates: Optional[int] = None,
    seed: Optional[int] = None,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """Every later run against the first: `aullm compare`'s JSON. The top-level a, b and comparisons are the first
    pair's; `pairs` holds every pair. Replicates and seed default to the first run's eval settings."""
    if len(run_dirs) < 2:
        raise UserError("compare needs at least two run directories")
    runs = [load_run_predictions(Path(d)) for d in run_dirs]
    first = runs[0]
    for other in runs[1:]:
        if other.dir.resolve() == first.dir.resolve():
            logger.warning(
                "%s is compared with itself (%s): every difference is 0 by construction", first.dir, other.dir
            )
    if replicates is None:
        replicates = int(first.info["bootstrap"])
        if replicates < 1:
            raise UserError(
                f"{first.dir} has intervals off (eval.bootstrap: 0); pass {arg('bootstrap', 'N')} to compare"
            )
    seed = int(first.info["bootstrap_seed"]) if seed is None else int(seed)
    if seed < 0:
        raise UserError(f"{arg('seed', seed)}: a bootstrap seed is a non-negative integer")
    pairs = [compare_pair(first, other, replicates, seed, alpha=alpha) for other in runs[1:]]
    return {
        "a": pairs[0]["a"],
        "b": pairs[0]["b"],
        "comparisons": pairs[0]["comparisons"],
        "bootstrap": {"replicates": replicates, "seed": seed, "level": LEVEL, "unit": "subject", "paired": True},
        "alpha": alpha,
        "correction": "holm across AUs, per metric (avg: uncorrected, a single test)",
        "pairs": pairs,
    }
