"""Metrics of docs/design.md (Run directories): hand-computed values, aggregation rules, threshold tuning, trivial
rows, `aullm evaluate`."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score
from typer.testing import CliRunner

from aullm.cli import app
from aullm.config import config_from_dict, save_config
from aullm.core.errors import UserError
from aullm.evaluation.metrics import auc, f1_binary, f1_macro, mean_std
from aullm.evaluation.predictions import read_predictions
from aullm.evaluation.run_scores import score_run
from aullm.evaluation.scores import score_predictions
from aullm.evaluation.thresholds import THRESHOLD_GRID, best_threshold, macro_f1_grid
from aullm.evaluation.trivial import expected_class_f1, trivial_seed

runner = CliRunner()


def frame(rows: list[tuple], aus: tuple[str, ...] = ("AU1",)) -> pd.DataFrame:
    """rows: (seed, fold, label..., prob...) → a predictions frame with docs/design.md (Run directories) columns."""
    records = []
    for i, (seed, fold, *rest) in enumerate(rows):
        labels, probs = rest[: len(aus)], rest[len(aus) :]
        record = {"seed": seed, "fold": fold, "subject": fold, "sample": f"s{i}"}
        record.update({f"prob_{au}": float(p) for au, p in zip(aus, probs)})
        record.update({f"label_{au}": int(y) for au, y in zip(aus, labels)})
        records.append(record)
    return pd.DataFrame(records)


def random_frame(
    seeds=(1, 2),
    folds=6,
    per_fold=12,
    aus=("AU1", "AU2", "AU4"),
    prevalence=(0.3, 0.15, 0.5),
    signal=0.35,
    rng_seed=0,
    subject_offset=0,
) -> pd.DataFrame:
    """Predictions with some signal; labels are the same for every seed (as in a real run)."""
    rng = np.random.default_rng(rng_seed)
    labels = rng.random((folds * per_fold, len(aus))) < np.asarray(prevalence)
    records = []
    for seed in seeds:
        for f in range(folds):
            for i in range(per_fold):
                y = labels[f * per_fold + i]
                p = np.clip(signal * y + (1 - signal) * rng.random(len(aus)), 0, 1)
                subject = f"{f + subject_offset:02d}"
                record = {"seed": seed, "fold": f"{f:02d}", "subject": subject, "sample": f"EP{subject}_{i}"}
                record.update({f"prob_{au}": p[k] for k, au in enumerate(aus)})
                record.update({f"label_{au}": int(y[k]) for k, au in enumerate(aus)})
                records.append(record)
    return pd.DataFrame(records)


def make_run_dir(
    path: Path,
    test: pd.DataFrame,
    val: Optional[pd.DataFrame] = None,
    *,
    name: str = "synthetic_run",
    dataset: str = "casme2",
    llm: str = "qwen2-1.5b",
    model: str = "au_llm",
    variant: Optional[str] = None,
    protocol: str = "loso",
    target: Optional[str] = None,
    threshold: float = 0.5,
    logs: bool = True,
) -> Path:
    """A run directory as `aullm train` writes it (docs/design.md, Run directories), built from frames, for scoring
    tests."""
    path.mkdir(parents=True, exist_ok=True)
    aus = [c[5:] for c in test.columns if c.startswith("prob_")]
    raw = {
        "name": name,
        "seeds": sorted(int(s) for s in test["seed"].unique()),
        "data": {"dataset": dataset, "aus": aus},
        "model": {"name": model, **({"variant": variant} if variant is not None else {})},
        "llm": {"name": llm},
        "protocol": {"name": protocol},
        "eval": {"threshold": threshold},
    }
    if target is not None:
        raw["protocol"]["target"] = {"dataset": target, "aus": aus}
    save_config(config_from_dict(raw), path / "config.yaml")
    test.to_csv(path / "predictions.csv", index=False)
    if val is not None:
        val.to_csv(path / "val_predictions.csv", index=False)
    for fold in test["fold"].unique():
        fold_dir = path / "folds" / str(fold)
        fold_dir.mkdir(parents=True, exist_ok=True)
        test[test["fold"] == fold].to_csv(fold_dir / "predictions.csv", index=False)
        if logs:
            epochs = np.arange(1, 11)
            log = pd.concat(
                [pd.DataFrame({"seed": s, "epoch": epochs, "loss": 1.0 / epochs}) for s in test["seed"].unique()]
            )
            log.to_csv(fold_dir / "train_log.csv", index=False)
        (fold_dir / "done").write_text("ok\n")
    return path


# ------------------------------------------------------------------------------------------ per-AU values


def test_hand_computed_f1_and_auc():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.1, 0.2])
    # predictions at 0.5: [1, 0, 1, 0, 0] → TP 1, FP 1, FN 1, TN 2
    assert f1_binary(y, p, 0.5) == pytest.approx(2 / 4)
    assert f1_macro(y, p, 0.5) == pytest.approx((2 / 4 + 4 / 6) / 2)
    assert auc(y, p) == pytest.approx(5 / 6)
    assert f1_binary(y, p, 0.4) == pytest.approx(2 * 2 / (2 * 2 + 1))  # ties count as positive
    assert auc(np.zeros(4, dtype=int), np.linspace(0, 1, 4)) is None


def test_score_predictions_matches_hand_values_per_seed_and_over_seeds():
    rows = [
        (1, "a", 1, 0.9),
        (1, "a", 1, 0.4),
        (1, "b", 0, 0.6),
        (1, "b", 0, 0.1),
        (1, "b", 0, 0.2),
        (2, "a", 1, 0.9),
        (2, "a", 1, 0.8),
        (2, "b", 0, 0.6),
        (2, "b", 0, 0.1),
        (2, "b", 0, 0.2),
    ]
    m = score_predictions(frame(rows), threshold=0.5)
    s1, s2 = m["per_seed"]["1"], m["per_seed"]["2"]
    assert s1["per_au"]["f1_binary"]["AU1"] == pytest.approx(0.5)
    assert s2["per_au"]["f1_binary"]["AU1"] == pytest.approx(2 * 2 / (2 * 2 + 1))
    values = [0.5, 0.8]
    summary = m["summary"]["f1_binary"]
    assert summary["avg"]["mean"] == pytest.approx(np.mean(values))
    assert summary["avg"]["std"] == pytest.approx(np.std(values, ddof=1))
    assert m["seeds"] == [1, 2] and m["aus"] == ["AU1"] and m["samples"] == 5 and m["positives"] == {"AU1": 2}


def test_concatenates_folds_instead_of_averaging_them():
    # fold a: perfect (positive F1 = 1); fold b: no positives and one false alarm (positive F1 = 0).
    rows = [(1, "a", 1, 0.9), (1, "a", 0, 0.1), (1, "b", 0, 0.1), (1, "b", 0, 0.9)]
    m = score_predictions(frame(rows), threshold=0.5)
    concatenated = 2 * 1 / (2 * 1 + 1 + 0)  # TP 1, FP 1, FN 0 over all four samples
    per_fold_mean = (1.0 + 0.0) / 2
    assert m["per_seed"]["1"]["per_au"]["f1_binary"]["AU1"] == pytest.approx(concatenated)
    assert concatenated != pytest.approx(per_fold_mean)


def test_average_over_aus_then_mean_over_seeds_and_single_seed_std_zero():
    test = random_frame(seeds=(7,))
    m = score_predictions(test, threshold=0.5)
    per_au = m["per_seed"]["7"]["per_au"]["f1_macro"]
    assert m["summary"]["f1_macro"]["avg"]["mean"] == pytest.approx(np.mean(list(per_au.values())))
    assert m["summary"]["f1_macro"]["avg"]["std"] == 0.0
    assert all(v["std"] == 0.0 for v in m["summary"]["f1_macro"]["per_au"].values())
    assert mean_std([0.2, None, 0.4]) == {
        "mean": pytest.approx(0.3),
        "std": pytest.approx(np.std([0.2, 0.4], ddof=1)),
        "n": 2,
    }
    assert mean_std([None]) == {"mean": None, "std": None, "n": 0}
    assert mean_std([0.5, 0.5])["std"] == 0.0


def test_au_without_positives():
    rows = [(1, "a", 1, 0, 0.8, 0.7), (1, "a", 0, 0, 0.2, 0.1), (1, "b", 1, 0, 0.6, 0.3), (1, "b", 0, 0, 0.3, 0.2)]
    m = score_predictions(frame(rows, aus=("AU1", "AU2")), threshold=0.5)
    seed = m["per_seed"]["1"]
    assert seed["per_au"]["auc"]["AU2"] is None
    assert seed["per_au"]["f1_binary"]["AU2"] == 0.0  # zero_division=0: never true, one false alarm
    assert seed["per_au"]["f1_macro"]["AU2"] == pytest.approx((0.0 + 2 * 3 / (2 * 3 + 1)) / 2)
    assert seed["avg"]["auc"] == pytest.approx(1.0)  # AUC average skips the single-class AU
    assert m["single_class_aus"] == ["AU2"]
    json.dumps(m, allow_nan=False)  # no NaN anywhere


# ------------------------------------------------------------------------------------------------ thresholds


def test_threshold_grid_is_the_reference_grid():
    assert THRESHOLD_GRID[0] == 0.10 and THRESHOLD_GRID[-1] == 0.85 and len(THRESHOLD_GRID) == 16
    assert np.allclose(np.diff(THRESHOLD_GRID), 0.05)


def test_macro_f1_grid_matches_sklearn_per_threshold():
    rng = np.random.default_rng(3)
    y = (rng.random(40) < 0.3).astype(int)
    p = rng.random(40)
    expected = [
        f1_score(y, (p >= t).astype(int), average="macro", labels=[0, 1], zero_division=0) for t in THRESHOLD_GRID
    ]
    assert np.allclose(macro_f1_grid(y, p), expected)


def test_best_threshold_prefers_the_fixed_threshold_on_ties():
    y = np.array([1, 0])
    p = np.array([0.9, 0.05])  # every threshold in the grid separates them perfectly
    assert best_threshold(y, p, prefer=0.5) == 0.5
    assert best_threshold(y, p, prefer=0.3) == pytest.approx(0.3)


def test_test_tuned_is_at_least_fixed_and_labelled_optimistic():
    m = score_predictions(random_frame(signal=0.2), threshold=0.5)
    for seed in m["per_seed"].values():
        for au in m["aus"]:
            assert seed["per_au"]["f1_macro_test_tuned"][au] >= seed["per_au"]["f1_macro"][au] - 1e-12
    entry = m["summary"]["f1_macro_test_tuned"]
    assert entry["optimistic"] is True and "OPTIMISTIC" in entry["label"]
    assert (
        "OPTIMISTIC" in m["labels"]["f1_macro_test_tuned"] and "optimistic" in m["notes"]["f1_macro_test_tuned"].lower()
    )
    assert m["summary"]["f1_macro"]["optimistic"] is False
    assert m["optimistic"] == ["f1_macro_test_tuned"]


def test_val_tuned_thresholds_depend_only_on_validation_predictions():
    test = random_frame(rng_seed=1)
    val = random_frame(rng_seed=2, subject_offset=50)
    base = score_predictions(test, val, threshold=0.5)
    flipped = test.copy()
    for au in ("AU1", "AU2", "AU4"):
        flipped[f"label_{au}"] = 1 - flipped[f"label_{au}"]
    changed = score_predictions(flipped, val, threshold=0.5)
    for seed in ("1", "2"):
        assert base["per_seed"][seed]["thresholds"]["val_tuned"] == changed["per_seed"][seed]["thresholds"]["val_tuned"]
        assert (
            base["per_seed"][seed]["thresholds"]["test_tuned"] != changed["per_seed"][seed]["thresholds"]["test_tuned"]
        )
    # and they are exactly what tuning on each fold's validation rows gives
    seed1 = base["per_seed"]["1"]["thresholds"]["val_tuned"]
    v = val[(val["seed"] == 1) & (val["fold"] == "03")]
    assert seed1["03"]["AU2"] == best_threshold(v["label_AU2"].to_numpy(), v["prob_AU2"].to_numpy(), prefer=0.5)


def test_val_tuned_applies_each_folds_thresholds_to_that_fold():
    # fold a's validation wants a high threshold, fold b's a low one.
    test = frame([(1, "a", 1, 0.7), (1, "a", 0, 0.5), (1, "b", 1, 0.3), (1, "b", 0, 0.1)])
    val = frame([(1, "a", 1, 0.9), (1, "a", 0, 0.8), (1, "b", 1, 0.2), (1, "b", 0, 0.1)])
    m = score_predictions(test, val, threshold=0.5)
    chosen = m["per_seed"]["1"]["thresholds"]["val_tuned"]
    assert 0.8 < chosen["a"]["AU1"] <= 0.85 and 0.1 < chosen["b"]["AU1"] <= 0.2
    # fold a at 0.85: both negative; fold b at 0.15/0.2: [1, 0] → overall preds [0, 0, 1, 0]
    y, pred = np.array([1, 0, 1, 0]), np.array([0, 0, 1, 0])
    expected = f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0)
    assert m["per_seed"]["1"]["per_au"]["f1_macro_val_tuned"]["AU1"] == pytest.approx(expected)


def test_val_tuned_is_null_without_validation_predictions():
    m = score_predictions(random_frame(), None, threshold=0.5)
    assert m["summary"]["f1_macro_val_tuned"] is None
    assert all(s["avg"]["f1_macro_val_tuned"] is None for s in m["per_seed"].values())
    assert "validation_subjects" in m["notes"]["f1_macro_val_tuned"]


# ------------------------------------------------------------------------------------------------ trivial rows


def test_trivial_constant_rows_hand_values():
    # 2 positives, 6 negatives, two folds
    rows = [
        (1, "a", 1, 0.9),
        (1, "a", 0, 0.2),
        (1, "a", 0, 0.3),
        (1, "a", 0, 0.1),
        (1, "b", 1, 0.6),
        (1, "b", 0, 0.2),
        (1, "b", 0, 0.7),
        (1, "b", 0, 0.1),
    ]
    m = score_predictions(frame(rows), threshold=0.5)
    neg, pos = m["trivial"]["all_negative"], m["trivial"]["all_positive"]
    p, n = 2, 6
    assert neg["f1_binary"]["avg"]["mean"] == 0.0
    assert neg["f1_macro"]["avg"]["mean"] == pytest.approx((2 * n / (2 * n + p)) / 2)
    assert pos["f1_binary"]["avg"]["mean"] == pytest.approx(2 * p / (2 * p + n))
    assert pos["f1_macro"]["avg"]["mean"] == pytest.approx((2 * p / (2 * p + n)) / 2)
    for row in (neg, pos):
        assert row["f1_macro_test_tuned"]["avg"]["mean"] == row["f1_macro"]["avg"]["mean"]
        assert row["auc"]["avg"]["mean"] == 0.5


def _brute_force_expected(y: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    """Enumerate every random prediction vector with its probability, score each with sklearn."""
    e_neg = e_pos = 0.0
    for pred in itertools.product((0, 1), repeat=len(y)):
        pred = np.array(pred)
        weight = float(np.prod(np.where(pred == 1, q, 1 - q)))
        neg, pos = f1_score(y, pred, labels=[0, 1], average=None, zero_division=0)
        e_neg += weight * neg
        e_pos += weight * pos
    return e_neg, e_pos


@pytest.mark.parametrize("y", [[1, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 0]])
def test_expected_f1_of_random_prior_is_exact(y):
    y = np.array(y)
    q = np.linspace(0.1, 0.7, len(y))
    assert expected_class_f1(y, q) == pytest.approx(_brute_force_expected(y, q))


def test_prior_uses_the_other_folds_prevalence_and_expected_f1():
    # fold a: prevalence 1/3, fold b: 2/3 → fold a is predicted with q = 2/3, fold b with q = 1/3.
    rows = [(1, "a", 1, 0.9), (1, "a", 0, 0.2), (1, "a", 0, 0.3), (1, "b", 1, 0.6), (1, "b", 1, 0.2), (1, "b", 0, 0.7)]
    test = frame(rows)
    trivial, source = trivial_seed(test, None, ["AU1"], 0.5)
    assert source == "other_folds"
    y = test["label_AU1"].to_numpy()
    q = np.array([2 / 3] * 3 + [1 / 3] * 3)
    e_neg, e_pos = _brute_force_expected(y, q)
    prior = trivial["prior"]["per_au"]
    assert prior["f1_binary"]["AU1"] == pytest.approx(e_pos)
    assert prior["f1_macro"]["AU1"] == pytest.approx((e_neg + e_pos) / 2)
    assert prior["f1_macro_test_tuned"]["AU1"] == prior["f1_macro"]["AU1"]
    assert prior["f1_macro_val_tuned"]["AU1"] is None  # no validation predictions
    assert prior["auc"]["AU1"] == 0.5


def test_prior_with_one_fold_uses_validation_labels_then_test_labels():
    test = frame([(1, "x_to_y", 1, 0.9), (1, "x_to_y", 0, 0.2), (1, "x_to_y", 0, 0.3)])
    val = frame([(1, "x_to_y", 1, 0.9), (1, "x_to_y", 1, 0.2), (1, "x_to_y", 1, 0.3), (1, "x_to_y", 0, 0.3)])
    _, source = trivial_seed(test, val, ["AU1"], 0.5)
    assert source == "validation_subjects"
    m = score_predictions(test, None, threshold=0.5)
    assert m["prior_source"] == ["test_labels"] and "test labels" in m["notes"]["prior"]


# ------------------------------------------------------------------------------------------------ run dirs / CLI


def test_score_run_writes_metrics_json_equal_to_direct_computation(tmp_path):
    test, val = random_frame(rng_seed=4), random_frame(rng_seed=5, subject_offset=50)
    run = make_run_dir(tmp_path / "run", test, val, threshold=0.4)
    direct = score_predictions(
        read_predictions(run / "predictions.csv"), read_predictions(run / "val_predictions.csv"), threshold=0.4
    )
    result = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    written = json.loads((run / "metrics.json").read_text())
    assert printed == written
    assert written["summary"] == json.loads(json.dumps(direct["summary"]))  # same numbers, exactly
    assert written["trivial"] == json.loads(json.dumps(direct["trivial"]))
    for metric in ("f1_binary", "f1_macro", "f1_macro_test_tuned", "f1_macro_val_tuned", "auc"):
        assert written["summary"][metric]["avg"]["mean"] == pytest.approx(direct["summary"][metric]["avg"]["mean"])
        assert written["trivial"]["prior"][metric]["avg"] == pytest.approx(direct["trivial"]["prior"][metric]["avg"])
    assert written["threshold"] == 0.4 and written["run"]["name"] == "synthetic_run"
    assert written["run"]["unfinished_folds"] == []
    assert set(written) >= {"aus", "seeds", "per_seed", "summary", "trivial", "notes"}


def test_evaluate_prints_a_per_au_table(tmp_path):
    run = make_run_dir(tmp_path / "run", random_frame())
    result = runner.invoke(app, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    for needle in ("AU1", "AU4", "Avg.", "OPTIMISTIC", "all negative", "prior"):
        assert needle in result.output


def test_unfinished_folds_are_reported(tmp_path):
    run = make_run_dir(tmp_path / "run", random_frame())
    (run / "folds" / "99").mkdir()
    metrics = score_run(run)
    assert metrics["run"]["unfinished_folds"] == ["99"] and "incomplete" in metrics["notes"]


def test_evaluate_missing_dir_is_one_line_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aullm", "evaluate", str(tmp_path / "nope")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: run directory not found"), result.stderr


def test_evaluate_non_run_dir_is_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["evaluate", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "not a run directory" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda df: df.assign(prob_AU1=np.nan), "NaN"),
        (lambda df: df.drop(columns=["label_AU2"]), "label_AU2"),
        (lambda df: df.drop(columns=["fold"]), "fold"),
        (lambda df: df.assign(label_AU1=2), "0 or 1"),
        (lambda df: df.assign(prob_AU1=1.5), "[0, 1]"),
    ],
)
def test_bad_predictions_are_user_errors(tmp_path, mutate, needle):
    path = tmp_path / "predictions.csv"
    mutate(random_frame(seeds=(1,), folds=2)).to_csv(path, index=False)
    with pytest.raises(UserError, match=None) as err:
        read_predictions(path)
    assert needle in str(err.value)


def test_columnwise_class_f1_equals_per_column_sklearn():
    from aullm.evaluation.thresholds import class_f1, class_f1_columns

    rng = np.random.default_rng(11)
    for k in (1, 3):
        y = (rng.random((30, k)) < 0.3).astype(int)
        y[:, 0] = 0  # a column without positives
        pred = (rng.random((30, k)) < 0.4).astype(int)
        neg, pos = class_f1_columns(y, pred)
        for j in range(k):
            assert (neg[j], pos[j]) == pytest.approx(class_f1(y[:, j], pred[:, j]))
