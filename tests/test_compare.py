"""`aullm compare`: paired subject-bootstrap differences between runs on the same samples, their p-values and
Holm correction, refusal of runs that differ, the JSON contract, and the comparison section of reports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from aullm.cli import app
from aullm.evaluation.compare import bootstrap_p, compare_runs, holm
from aullm.evaluation.metrics import METRICS
from test_metrics import make_run_dir, random_frame

runner = CliRunner()
AUS = ("AU1", "AU2", "AU4")
KEYS = {"metric", "au", "a", "b", "diff", "ci_low", "ci_high", "p", "p_holm"}


@pytest.fixture
def run_a(tmp_path):
    test = random_frame(seeds=(1, 2), folds=12, per_fold=8, aus=AUS, rng_seed=11)
    val = random_frame(seeds=(1, 2), folds=12, per_fold=3, aus=AUS, rng_seed=12, subject_offset=40)
    return make_run_dir(tmp_path / "a", test, val, name="run_a")


def _copy(run_a, tmp_path, name="run_b", change=None):
    import pandas as pd

    test = pd.read_csv(run_a / "predictions.csv", dtype={"subject": str, "fold": str, "sample": str})
    val = pd.read_csv(run_a / "val_predictions.csv", dtype={"subject": str, "fold": str, "sample": str})
    if change is not None:
        change(test)
    return make_run_dir(tmp_path / name, test, val, name=name)


def test_identical_predictions_differ_by_zero_with_p_one(run_a, tmp_path):
    run_b = _copy(run_a, tmp_path)
    result = compare_runs([run_a, run_b], replicates=500)
    rows = result["comparisons"]
    assert {r["metric"] for r in rows} == set(METRICS)
    assert {r["au"] for r in rows} == {*AUS, "avg"}
    for row in rows:
        assert row["a"] == row["b"] and row["diff"] == 0.0, row
        assert (row["ci_low"], row["ci_high"]) == (0.0, 0.0), row
        assert row["p"] == 1.0 and row["p_holm"] == 1.0, row


def test_one_au_flipped_to_wrong_is_significantly_worse_there_and_only_there(run_a, tmp_path):
    def flip(frame):  # AU2's predictions become confidently wrong; the other AUs stay as they were
        frame["prob_AU2"] = np.where(frame["label_AU2"] == 1, 0.05, 0.95)

    run_b = _copy(run_a, tmp_path, change=flip)
    result = compare_runs([run_a, run_b], replicates=1000)
    for row in result["comparisons"]:
        if row["au"] == "AU2":
            assert row["diff"] < 0 and row["ci_high"] < 0, row
            assert row["p_holm"] < 0.05 and row["verdict"] == "b worse", row
        elif row["au"] in ("AU1", "AU4"):
            assert row["diff"] == 0.0 and row["p_holm"] == 1.0 and row["verdict"] == "no significant difference"
    avg = next(r for r in result["comparisons"] if r["metric"] == "f1_macro" and r["au"] == "avg")
    assert avg["diff"] < 0 and avg["p"] < 0.05


def test_a_real_but_small_difference_is_not_declared_on_noise(run_a, tmp_path):
    """Noise added to one AU's scores changes the numbers a little; the interval must straddle 0 there."""
    rng = np.random.default_rng(5)

    def jitter(frame):
        frame["prob_AU4"] = np.clip(frame["prob_AU4"] + rng.normal(0, 0.02, len(frame)), 0, 1)

    run_b = _copy(run_a, tmp_path, change=jitter)
    rows = [r for r in compare_runs([run_a, run_b], replicates=1000)["comparisons"] if r["au"] == "AU4"]
    assert all(r["ci_low"] <= 0 <= r["ci_high"] and r["p_holm"] >= 0.05 for r in rows), rows


def test_p_values_and_holm_by_hand():
    assert bootstrap_p(np.zeros(99)) == 1.0
    assert bootstrap_p(-np.ones(99)) == pytest.approx(2 / 100)  # never exactly 0
    assert bootstrap_p(np.r_[-np.ones(90), np.ones(10)]) == pytest.approx(2 * 11 / 101)
    assert bootstrap_p(np.full(5, np.nan)) is None
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]


def test_cli_json_follows_the_contract_and_compares_every_later_run_with_the_first(run_a, tmp_path):
    run_b = _copy(run_a, tmp_path, "run_b")
    run_c = _copy(run_a, tmp_path, "run_c", change=lambda f: f.__setitem__("prob_AU1", 1 - f["prob_AU1"]))
    result = runner.invoke(app, ["compare", str(run_a), str(run_b), str(run_c), "--json", "--bootstrap", "300"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["a"], data["b"]) == (str(run_a), str(run_b))
    assert all(set(row) >= KEYS for row in data["comparisons"])
    assert [(p["a"], p["b"]) for p in data["pairs"]] == [(str(run_a), str(run_b)), (str(run_a), str(run_c))]
    assert data["bootstrap"]["replicates"] == 300
    worse = next(r for r in data["pairs"][1]["comparisons"] if r["au"] == "AU1" and r["metric"] == "auc")
    assert worse["diff"] < 0 and worse["p_holm"] < 0.05
    # the table form names both runs and the verdict
    text = runner.invoke(app, ["compare", str(run_a), str(run_c), "--bootstrap", "300"]).output
    assert "run_c worse" in text and "p Holm" in text


def _cli_error(args):
    result = runner.invoke(app, args)
    return result.exit_code, result.stderr.strip().splitlines()


def test_compare_refuses_runs_that_differ_with_one_clear_line(run_a, tmp_path):
    fewer = make_run_dir(
        tmp_path / "fewer", random_frame(seeds=(1,), folds=11, per_fold=8, aus=AUS, rng_seed=11), name="fewer"
    )

    def relabel(frame):
        frame.loc[frame["sample"] == frame["sample"].iloc[0], "label_AU4"] ^= 1

    relabelled = _copy(run_a, tmp_path, "relabelled", change=relabel)
    other_aus = make_run_dir(
        tmp_path / "aus", random_frame(seeds=(1,), folds=12, per_fold=8, aus=("AU1", "AU2"), prevalence=(0.3, 0.2))
    )
    for other, words in (
        (fewer, "scored different samples (8 only in the first"),
        (relabelled, "AU4 labels differ on 1 sample(s)"),
        (other_aus, "score different AUs (only in the first: AU4"),
    ):
        code, lines = _cli_error(["compare", str(run_a), str(other)])
        assert code == 2 and len(lines) == 1, lines
        assert lines[0].startswith("error: cannot compare") and words in lines[0], lines[0]
    # the real command line: exit status 2, one line on stderr, no traceback
    proc = subprocess.run(
        [sys.executable, "-m", "aullm", "compare", str(run_a), str(fewer)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    code, lines = _cli_error(["compare", str(run_a)])
    assert code == 2 and len(lines) == 1 and "at least two" in lines[0]
    code, lines = _cli_error(["compare", str(run_a), str(tmp_path / "missing")])
    assert code == 2 and len(lines) == 1 and "not found" in lines[0]


def test_report_of_several_runs_compares_each_with_the_first(run_a, tmp_path):
    run_b = _copy(run_a, tmp_path, change=lambda f: f.__setitem__("prob_AU2", 1 - f["prob_AU2"]))
    fewer = make_run_dir(
        tmp_path / "fewer", random_frame(seeds=(1,), folds=11, per_fold=8, aus=AUS, rng_seed=11), name="fewer"
    )
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", str(run_a), str(run_b), str(fewer), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    assert "## Paired comparisons against run_a" in text and "### run_b − run_a" in text
    row = next(line for line in text.splitlines() if line.startswith("| AU2 |") and "run_b worse" in line)
    assert "[" in row and "]" in row  # the difference carries its interval
    assert "### fewer − run_a" in text and "Not compared: cannot compare" in text
    assert (out / "comparisons.png").stat().st_size > 1000
