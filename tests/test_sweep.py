"""`aullm sweep` and the execution options of `aullm train` (local executor; Ray is in test_ray_executor.py), the
run progress display, and train.threads."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from aullm.cli import app
from aullm.config import load_config
from aullm.core import console
from aullm.core.errors import ConfigError
from aullm.data.synme import generate_synme
from aullm.training.execution import torch_threads

runner = CliRunner()


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synme")
    generate_synme(path, subjects=3, clips_per_subject=5, seed=3, size=128)
    return path


def write_config(folder: Path, name: str, lr: str = "1.0e-3", root: str = "/nonexistent/synme") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nseeds: [1]\ndata: {{dataset: synme, root: {root}, size: 32, cache_dir: {folder / 'cache'}}}\n"
        f"model: {{name: au_llm}}\nllm: {{name: tiny-random}}\ntrain: {{epochs: 2, batch_size: 8, lr: {lr}}}\n"
    )
    return path


def test_sweep_writes_each_config_run_and_one_report(tmp_path, root, one_thread):
    """Two configs whose data.root is wrong get it from --data-root; each run lands in <out-root>/<name>/ with its
    metrics, and one report covers both."""
    a, b = write_config(tmp_path, "sweep_a"), write_config(tmp_path, "sweep_b", lr="2.0e-3")
    out = tmp_path / "runs"
    result = runner.invoke(app, ["sweep", str(a), str(b), "--out-root", str(out), "--data-root", f"synme={root}"])
    assert result.exit_code == 0, result.output
    for name in ("sweep_a", "sweep_b"):
        metrics = json.loads((out / name / "metrics.json").read_text())
        assert metrics["run"]["name"] == name
        assert load_config(out / name / "config.yaml", resolved=True).data.root == str(root)
        assert len(list((out / name / "folds").glob("*/done"))) == 3
    report = (out / "report.md").read_text()
    assert "sweep_a" in report and "sweep_b" in report


def test_sweep_checks_every_config_before_training(tmp_path, root):
    good = write_config(tmp_path, "good", root=str(root))
    bad = write_config(tmp_path, "bad")  # its dataset root does not exist
    out = tmp_path / "runs"
    result = runner.invoke(app, ["sweep", str(good), str(bad), "--out-root", str(out)])
    assert result.exit_code == 2
    assert "nonexistent" in result.output
    assert not list(out.glob("*/folds"))  # nothing trained for the good config either


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--address", "auto"], "--address only apply with --executor ray"),
        (["--cpus-per-task", "2"], "--cpus-per-task only apply with --executor ray"),
        (["--executor", "spark"], "--executor 'spark': choose local or ray"),
        (["--track", "wandb"], "--track 'wandb': choose from mlflow, tensorboard"),
    ],
)
def test_bad_execution_options_are_usage_errors(tmp_path, root, args, message):
    config = write_config(tmp_path, "tiny", root=str(root))
    result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "run").exists()


def test_sweep_usage_errors(tmp_path, root):
    a = write_config(tmp_path, "same", root=str(root))
    (tmp_path / "copy").mkdir()
    b = write_config(tmp_path / "copy", "same", root=str(root))
    twice = runner.invoke(app, ["sweep", str(a), str(b), "--out-root", str(tmp_path / "runs")])
    assert twice.exit_code == 2 and "names same more than once" in twice.output
    no_equals = runner.invoke(app, ["sweep", str(a), "--out-root", str(tmp_path / "runs"), "--data-root", "synme"])
    assert no_equals.exit_code == 2 and "write DATASET=DIR" in no_equals.output
    assert not (tmp_path / "runs").exists()


def test_train_threads_is_validated_and_restored(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.threads"):
        load_config(write_config(tmp_path, "t"), ["train.threads=-1"])
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    with torch_threads(0):
        assert torch.get_num_threads() == before  # 0 leaves torch's setting alone
    assert torch.get_num_threads() == before


def test_progress_counts_running_epochs_and_logs_each_task(warnings_log, caplog):
    progress = console.RunProgress(4)
    with caplog.at_level(logging.INFO, logger="aullm"):
        progress.started("fold 01 seed 1")
        progress.epoch("fold 01 seed 1", 5, 10)
        assert progress.completed() == pytest.approx(0.5)
        progress.finished("fold 01 seed 1")
        progress.epoch("fold 02 seed 1", 1, 4)
        assert progress.completed() == pytest.approx(1.25)
        training = console.time.perf_counter() - progress.clock  # measured from when training began
        assert progress.eta() == pytest.approx(training / 1.25 * 2.75, rel=0.05)
        progress.finished("fold 02 seed 1", ok=False)
    lines = [r.getMessage() for r in caplog.records]
    assert any("fold 01 seed 1 done (1/4 tasks" in line and "ETA" in line for line in lines)
    assert any("fold 02 seed 1 FAILED (2/4 tasks, 1 failed" in line for line in lines)


def test_progress_is_one_live_bar_on_a_terminal(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(console, "is_interactive", lambda: True)
    monkeypatch.setattr(console, "stderr_console", Console(file=buffer, force_terminal=True, width=160))
    monkeypatch.setattr(console.logger, "level", logging.INFO)
    with console.RunProgress(4, "sweep") as progress:
        progress.finished("a fold 01 seed 1")
        progress.epoch("a fold 02 seed 1", 3, 10)
        progress._refresh()
        assert progress._live is not None
        progress._live.refresh()
    text = buffer.getvalue()
    assert "sweep" in text and "1/4 tasks" in text and "a fold 02 seed 1 ep 3/10" in text and "ETA" in text
