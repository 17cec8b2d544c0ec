"""What the Python API shows: progress as the command line shows it, when asked (`progress=True`) or when logging
is configured, and nothing by Python's default; short reprs of Run, Metrics and Comparison (`print(comparison)`
must not dump the whole JSON)."""

from __future__ import annotations

import logging

import pytest

import aullm
from aullm.core.console import logger
from aullm.data.synme import generate_synme


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("api_output")
    generate_synme(base / "synme", subjects=3, clips_per_subject=3, seed=5, size=96)
    return base


def settings(base, name: str, **model) -> dict:
    return {
        "name": name,
        "data": {
            "dataset": "synme",
            "root": str(base / "synme"),
            "size": 16,
            "cache_dir": str(base / "cache"),
            "aus": ["AU1", "AU4", "AU12"],
        },
        "model": {"name": "au_llm", "reasoner": "none", **model},
        "llm": {"name": "tiny-random"},
        "train": {"epochs": 1, "batch_size": 8, "lr": 1.0e-3},
        "eval": {"bootstrap": 50},
    }


@pytest.fixture
def plain_logging():
    """The `aullm` logger as a fresh Python session has it: no handler, no level, propagating to a quiet root."""
    saved = (logger.level, list(logger.handlers), logger.propagate)
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    yield
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]


def test_progress_true_shows_the_command_lines_progress_and_default_shows_none(
    data, tmp_path, capsys, plain_logging, one_thread
):
    aullm.train(aullm.load_config(settings(data, "quiet")), out=tmp_path / "quiet")
    assert "tasks" not in capsys.readouterr().err  # Python's default: a library says nothing below WARNING

    handlers = list(logger.handlers)
    aullm.train(aullm.load_config(settings(data, "loud")), out=tmp_path / "loud", progress=True)
    err = capsys.readouterr().err
    assert "training: fold 01 seed 1 done (1/3 tasks" in err and "3 of 3 tasks finished" in err
    assert logger.handlers == handlers and logger.level == logging.NOTSET  # restored afterwards


def test_standard_logging_configuration_shows_the_progress(data, tmp_path, caplog, plain_logging, one_thread):
    caplog.set_level(logging.INFO, logger="aullm")
    aullm.train(aullm.load_config(settings(data, "logged")), out=tmp_path / "logged")
    messages = [r.getMessage() for r in caplog.records]
    assert any("fold 01 seed 1 done (1/3 tasks" in m for m in messages) and any(
        "3 of 3 tasks finished" in m for m in messages
    )


@pytest.fixture(scope="module")
def two_runs(data, tmp_path_factory, one_thread):
    """Two runs on the same data and folds (with validation subjects: every metric is defined)."""
    out = tmp_path_factory.mktemp("two_runs")
    runs = []
    for name, model in (("a", {}), ("b", {"dropout": 0.0})):
        cfg = aullm.load_config(settings(data, name, **model), ["eval.validation_subjects=1"])
        runs.append(aullm.train(cfg, out=out / name))
    return runs


def test_run_metrics_and_comparison_have_short_useful_reprs(two_runs, tmp_path):
    a, b = two_runs
    run = repr(b)
    assert run.startswith(f"Run({str(b.path)!r}: b, au_llm (no LLM), synme, complete, f1_macro 0.") and len(run) < 300
    metrics = repr(b.metrics)
    assert metrics.startswith("Metrics(b, 3 AUs, 1 seed: f1_macro 0.") and "auc" in metrics and len(metrics) < 200
    comparison = aullm.compare([a.path, b.path])
    text = str(comparison)
    assert len(text) < 400 and text.count("\n") == 1, text
    assert "b − a: f1_macro " in text and "auc " in text and "p=" in text
    assert repr(aullm.Run(tmp_path / "nothing")).endswith("not a run directory)")


def test_a_multi_run_report_plots_the_paired_differences_of_every_metric(two_runs, tmp_path):
    """reporting/comparisons.py: one picture per metric the comparison has, each named in report.md."""
    from aullm.evaluation.metrics import METRICS

    report = aullm.report([run.path for run in two_runs], out=tmp_path / "report")
    compared = {item["metric"] for item in aullm.compare([run.path for run in two_runs]).data["comparisons"]}
    assert compared == set(METRICS)
    text = report.read_text()
    for metric in METRICS:
        name = "comparisons.png" if metric == "f1_macro" else f"comparisons_{metric}.png"
        assert (tmp_path / "report" / name).is_file(), name
        assert f"]({name})" in text, name
