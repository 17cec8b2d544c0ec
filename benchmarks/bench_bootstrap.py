"""Time of the subject-level bootstrap on a CASME II-sized run: 247 clips of 26 subjects, 8 AUs, with validation
predictions (so all five metrics), B replicates at once; also the time of scoring without intervals, and of one
paired comparison of two such runs. With --coverage, how often the 95% interval of the AUC covers the true AUC in
simulated studies with clustered subjects (each with its own score offset and discriminability).

    .venv/bin/python benchmarks/bench_bootstrap.py --replicates 2000 --repeats 7 --seeds 1
    .venv/bin/python benchmarks/bench_bootstrap.py --coverage --studies 300

Not run by the test suite. Prints one JSON object: medians and spreads (min, max) over the repeats, in seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from aullm.evaluation.bootstrap import bootstrap_intervals
from aullm.evaluation.scores import bootstrap_inputs, score_predictions
from aullm.evaluation.thresholds import THRESHOLD_GRID

AUS = ["AU1", "AU2", "AU4", "AU7", "AU12", "AU14", "AU15", "AU17"]
# CASME II's positives per AU among its 247 clips (roughly), as prevalences
PREVALENCE = np.array([27, 21, 105, 33, 29, 27, 15, 39]) / 247


def casme2_sized(seeds: int, rng: np.random.Generator, clips: int = 247, subjects: int = 26) -> pd.DataFrame:
    """Predictions with some signal for `clips` clips spread unevenly over `subjects` subjects, every seed."""
    subject = np.sort(rng.integers(0, subjects, clips)).astype(str)
    labels = (rng.random((clips, len(AUS))) < PREVALENCE).astype(int)
    frames = []
    for seed in range(1, seeds + 1):
        probs = np.clip(0.35 * labels + 0.65 * rng.random(labels.shape), 0, 1)
        frame = pd.DataFrame(
            {"seed": seed, "fold": subject, "subject": subject, "sample": [f"c{i}" for i in range(clips)]}
        )
        frame[[f"prob_{a}" for a in AUS]] = probs
        frame[[f"label_{a}" for a in AUS]] = labels
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def validation_rows(test: pd.DataFrame, rng: np.random.Generator, per_fold: int = 8) -> pd.DataFrame:
    """Some held-out training clips per fold (what eval.validation_subjects writes)."""
    rows = []
    for (seed, fold), _ in test.groupby(["seed", "fold"]):
        labels = (rng.random((per_fold, len(AUS))) < PREVALENCE).astype(int)
        frame = pd.DataFrame({"seed": seed, "fold": fold, "subject": "v", "sample": [f"v{i}" for i in range(per_fold)]})
        frame[[f"prob_{a}" for a in AUS]] = np.clip(0.35 * labels + 0.65 * rng.random(labels.shape), 0, 1)
        frame[[f"label_{a}" for a in AUS]] = labels
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def timed(function: Callable[[], object], repeats: int) -> dict[str, float]:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return {"median_s": float(np.median(times)), "min_s": float(min(times)), "max_s": float(max(times))}


def coverage(studies: int, replicates: int, designs: tuple[tuple[int, int], ...]) -> dict[str, dict[str, float]]:
    """Share of simulated studies whose 95% AUC interval holds the population AUC, per (subjects, clips) design."""
    from scipy.stats import norm
    from threadpoolctl import threadpool_limits

    from aullm.evaluation.bootstrap import (
        draw_multiplicities,
        percentile_interval,
        seed_predictions,
        subject_index,
        weighted_auc,
    )

    d, sigma_u, sigma_d = 1.0, 0.5, 1.0
    truth = norm.cdf(d / np.sqrt(2 + 2 * sigma_u**2 + sigma_d**2))
    out = {}
    for subjects, clips in designs:
        rng = np.random.default_rng(0)
        names = np.repeat([f"{s:02d}" for s in range(subjects)], clips)
        units = {"subject bootstrap": names, "clip bootstrap (ignores subjects)": np.arange(len(names)).astype(str)}
        covered = dict.fromkeys(units, 0)
        with threadpool_limits(1):
            for study in range(studies):
                y = (rng.random((subjects, clips)) < 0.4).astype(int)
                slope = d + rng.normal(0, sigma_d, (subjects, 1))
                score = rng.normal(0, sigma_u, (subjects, 1)) + slope * y + rng.normal(0, 1, (subjects, clips))
                for unit, clusters in units.items():
                    frame = pd.DataFrame({"subject": clusters, "label_AU1": y.ravel(), "prob_AU1": score.ravel()})
                    seed = seed_predictions(frame, ["AU1"], subject_index([frame]))
                    weights = draw_multiplicities(len(set(clusters)), replicates, study)
                    low, high = percentile_interval(
                        weighted_auc(weights, seed.cluster, seed.labels[:, 0], seed.probs[:, 0])
                    )
                    covered[unit] += low <= truth <= high
        out[f"{subjects} subjects x {clips} clips"] = {unit: n / studies for unit, n in covered.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--coverage", action="store_true", help="simulate the intervals' coverage instead")
    parser.add_argument("--studies", type=int, default=300)
    args = parser.parse_args(argv)
    if args.coverage:
        designs = ((6, 20), (10, 12), (26, 10))
        result = {
            "studies": args.studies,
            "replicates": args.replicates,
            "coverage": coverage(args.studies, args.replicates, designs),
        }
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    rng = np.random.default_rng(0)
    test = casme2_sized(args.seeds, rng)
    val = validation_rows(test, rng)
    inputs, subjects = bootstrap_inputs(test, val, AUS, 0.5)

    def intervals() -> object:
        return bootstrap_intervals(inputs, AUS, len(subjects), 0.5, THRESHOLD_GRID, args.replicates, 0)

    result = {
        "clips": int(test["sample"].nunique()),
        "subjects": len(subjects),
        "aus": len(AUS),
        "seeds": args.seeds,
        "replicates": args.replicates,
        "bootstrap_intervals": timed(intervals, args.repeats),
        "score_without_intervals": timed(lambda: score_predictions(test, val, 0.5, AUS, bootstrap=0), args.repeats),
        "score_with_intervals": timed(
            lambda: score_predictions(test, val, 0.5, AUS, bootstrap=args.replicates), args.repeats
        ),
    }
    import tempfile

    from aullm.evaluation.compare import RunPredictions, compare_pair

    other = test.copy()
    other[[f"prob_{a}" for a in AUS]] = np.clip(
        other[[f"prob_{a}" for a in AUS]] + rng.normal(0, 0.1, (len(other), 8)), 0, 1
    )
    info = {"threshold": 0.5, "name": "x", "bootstrap": args.replicates, "bootstrap_seed": 0}
    with tempfile.TemporaryDirectory() as tmp:
        a = RunPredictions(Path(tmp), info, AUS, test, val)
        b = RunPredictions(Path(tmp), info, AUS, other, val)
        result["paired_comparison"] = timed(lambda: compare_pair(a, b, args.replicates, 0), args.repeats)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
