"""Subject-level bootstrap intervals: each replicate equals scoring the physically resampled data with sklearn,
a perfect predictor's interval is a point, intervals are reproducible for a seed, they cover the truth about 95% of
the time on clustered data, and they reach metrics.json, `aullm evaluate` and report.md."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from aullm.cli import app
from aullm.evaluation.bootstrap import (
    draw_multiplicities,
    percentile_interval,
    replicate_scores,
    seed_predictions,
    subject_index,
    weighted_auc,
)
from aullm.evaluation.metrics import METRICS, score_seed
from aullm.evaluation.scores import bootstrap_inputs, score_predictions
from aullm.evaluation.thresholds import THRESHOLD_GRID
from test_metrics import make_run_dir, random_frame

runner = CliRunner()
AUS = ("AU1", "AU2", "AU4")


def _resampled(frame: pd.DataFrame, subjects: list[str], multiplicity: np.ndarray) -> pd.DataFrame:
    """The data a replicate stands for: each subject's rows repeated as often as it was drawn (renamed apart)."""
    parts = []
    for subject, times in zip(subjects, multiplicity.astype(int)):
        rows = frame[frame["subject"] == subject]
        for copy in range(times):
            parts.append(rows.assign(sample=rows["sample"] + f"#{copy}"))
    return pd.concat(parts, ignore_index=True)


def test_every_replicate_equals_scoring_the_resampled_subjects_with_sklearn():
    test = random_frame(seeds=(1,), folds=7, per_fold=9, aus=AUS, rng_seed=4)
    val = random_frame(seeds=(1,), folds=7, per_fold=4, aus=AUS, rng_seed=8, subject_offset=20)
    val["fold"] = test["fold"].unique().repeat(4)  # each fold's held-out training subjects
    seeds, subjects = bootstrap_inputs(test, val, list(AUS), 0.5)
    weights = draw_multiplicities(len(subjects), 12, seed=3)
    scores = replicate_scores(list(seeds.values()), weights, 0.5, THRESHOLD_GRID)
    assert set(scores) == set(METRICS)
    for b in range(len(weights)):
        resampled = _resampled(test, subjects, weights[b])
        expected = score_seed(resampled, val, list(AUS), 0.5)["per_au"]
        for metric in METRICS:
            for k, au in enumerate(AUS):
                want = expected[metric][au]
                got = scores[metric][b, 0, k]
                if want is None:
                    assert np.isnan(got), (metric, au, b)
                else:
                    assert got == pytest.approx(want, abs=1e-12), (metric, au, b)
        # and the AUC straight from sklearn with the multiplicities as sample weights
        weight = weights[b][[subjects.index(s) for s in test["subject"]]]
        for k, au in enumerate(AUS):
            y = test[f"label_{au}"].to_numpy()
            if len(np.unique(y[weight > 0])) == 2:
                want = roc_auc_score(y, test[f"prob_{au}"], sample_weight=weight)
                assert scores["auc"][b, 0, k] == pytest.approx(want, abs=1e-12)


def test_all_ones_multiplicities_reproduce_the_point_estimates_of_every_seed():
    test = random_frame(seeds=(1, 2), folds=6, per_fold=10, aus=AUS, rng_seed=1)
    point = score_predictions(test, threshold=0.4, bootstrap=0)
    seeds, subjects = bootstrap_inputs(test, None, list(AUS), 0.4)
    scores = replicate_scores(list(seeds.values()), np.ones((1, len(subjects))), 0.4, THRESHOLD_GRID)
    assert scores["f1_macro_val_tuned"] is None  # no validation predictions
    for i, seed in enumerate(("1", "2")):
        for metric in ("f1_binary", "f1_macro", "f1_macro_test_tuned", "auc"):
            for k, au in enumerate(AUS):
                assert scores[metric][0, i, k] == pytest.approx(point["per_seed"][seed]["per_au"][metric][au])


def test_a_perfect_predictor_has_a_point_interval():
    test = random_frame(seeds=(1, 2), folds=8, per_fold=10, aus=AUS, rng_seed=2)
    for au in AUS:
        test[f"prob_{au}"] = test[f"label_{au}"].astype(float)
    summary = score_predictions(test, bootstrap=500)["summary"]
    for metric in ("f1_macro", "f1_macro_test_tuned", "auc"):
        assert summary[metric]["avg"]["ci95"] == [1.0, 1.0], metric
        for au in AUS:
            assert summary[metric]["per_au"][au]["ci95"] == [1.0, 1.0], (metric, au)


def test_intervals_are_reproducible_for_a_seed_and_move_with_it():
    test = random_frame(seeds=(1,), folds=10, per_fold=8, aus=AUS, rng_seed=6)
    first = score_predictions(test, bootstrap=300, bootstrap_seed=7)
    again = score_predictions(test, bootstrap=300, bootstrap_seed=7)
    other = score_predictions(test, bootstrap=300, bootstrap_seed=8)
    assert json.dumps(first) == json.dumps(again)
    assert first["summary"]["f1_macro"]["avg"]["ci95"] != other["summary"]["f1_macro"]["avg"]["ci95"]
    # the estimate itself does not depend on the bootstrap seed
    assert first["summary"]["f1_macro"]["avg"]["mean"] == other["summary"]["f1_macro"]["avg"]["mean"]


def test_intervals_cover_the_true_auc_about_95_percent_of_the_time_on_clustered_data():
    """Each subject shifts its clips' scores and has its own discriminability (random effects), so clips are not
    independent. The population AUC is known in closed form; over 150 simulated studies of 20 subjects, the
    subject bootstrap's 95% interval covers it about 95% of the time, while resampling clips as if independent
    covers it clearly less often — resampling subjects is what makes the interval honest."""
    rng = np.random.default_rng(0)
    d, sigma_u, sigma_d, subjects, clips, studies = 1.0, 0.5, 1.0, 20, 12, 150
    truth = norm.cdf(d / np.sqrt(2 + 2 * sigma_u**2 + sigma_d**2))  # P(positive's score > negative's), any subjects
    names = np.repeat([f"{s:02d}" for s in range(subjects)], clips)
    units = {"subjects": names, "clips": np.arange(len(names)).astype(str)}
    covered = dict.fromkeys(units, 0)
    with threadpool_limits(1):  # small matrix products: BLAS threads only contend on a busy 2-core machine
        for study in range(studies):
            y = (rng.random((subjects, clips)) < 0.4).astype(int)
            slope = d + rng.normal(0, sigma_d, (subjects, 1))
            score = rng.normal(0, sigma_u, (subjects, 1)) + slope * y + rng.normal(0, 1, (subjects, clips))
            for unit, clusters in units.items():
                frame = pd.DataFrame({"subject": clusters, "label_AU1": y.ravel(), "prob_AU1": score.ravel()})
                seed = seed_predictions(frame, ["AU1"], subject_index([frame]))
                weights = draw_multiplicities(len(set(clusters)), 400, seed=study)
                auc = weighted_auc(weights, seed.cluster, seed.labels[:, 0], seed.probs[:, 0])
                low, high = percentile_interval(auc)
                covered[unit] += low <= truth <= high
    assert 0.88 <= covered["subjects"] / studies <= 0.99, covered
    assert covered["clips"] / studies < covered["subjects"] / studies - 0.05, covered


def test_metrics_json_console_and_report_carry_the_intervals(tmp_path):
    test = random_frame(seeds=(1, 2), folds=8, per_fold=8, aus=AUS, rng_seed=3)
    run = make_run_dir(tmp_path / "run", test, name="ci_run")
    result = runner.invoke(app, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["bootstrap"] == {"replicates": 2000, "seed": 0, "level": 0.95, "unit": "subject"}
    for metric, entry in metrics["summary"].items():
        if entry is None:
            continue
        for stat in [*entry["per_au"].values(), entry["avg"]]:
            low, high = stat["ci95"]
            assert set(stat) >= {"mean", "std", "n", "ci95"} and 0.0 <= low <= high <= 1.0, metric
    avg = metrics["summary"]["f1_macro"]["avg"]
    assert avg["ci95"][0] <= avg["mean"] <= avg["ci95"][1]
    assert metrics["per_seed"]["1"]["ci95"]["f1_macro"]["avg"] is not None
    value = f"{100 * avg['mean']:.1f} ± {100 * avg['std']:.1f}"
    interval = f"[{100 * avg['ci95'][0]:.1f}, {100 * avg['ci95'][1]:.1f}]"
    assert value in result.output and interval in result.output  # the interval on the line below the value
    assert "intervals:" in result.output  # the note saying what the interval covers
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert f"{value} {interval}" in (run / "report.md").read_text()


def test_bootstrap_zero_turns_intervals_off(tmp_path):
    test = random_frame(seeds=(1,), folds=5, per_fold=6, aus=AUS)
    metrics = score_predictions(test, bootstrap=0)
    assert metrics["summary"]["f1_macro"]["avg"]["ci95"] is None
    assert metrics["per_seed"]["1"]["ci95"] is None
    assert "off" in metrics["notes"]["intervals"]
    run = make_run_dir(tmp_path / "run", test)
    text = (run / "config.yaml").read_text().replace("bootstrap: 2000", "bootstrap: 0")
    (run / "config.yaml").write_text(text)
    result = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert json.loads(result.output)["summary"]["auc"]["avg"]["ci95"] is None
