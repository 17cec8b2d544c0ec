"""--track mlflow / tensorboard: the logged config, per-epoch losses of every fold and final metrics, read back
with each library's own reader and compared with the run directory (the source of truth)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from aullm.config import Config, load_config
from aullm.core.errors import UserError
from aullm.data.synme import generate_synme
from aullm.training import run_dir as rd
from aullm.workflows import experiment as workflows
from aullm.workflows.tracking import open_trackers

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

FOLDS = ["01", "02", "03"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synme")
    generate_synme(path, subjects=3, clips_per_subject=4, seed=4, size=128)
    return path


def tiny(folder: Path, root: Path, *overrides: str) -> Config:
    path = folder / "tiny.yaml"
    path.write_text(
        f"name: tiny\nseeds: [1]\ndata: {{dataset: synme, root: {root}, size: 32, cache_dir: {folder / 'cache'}}}\n"
        "model: {name: au_llm}\nllm: {name: tiny-random}\ntrain: {epochs: 3, batch_size: 8, lr: 1.0e-3}\n"
    )
    return load_config(path, list(overrides))


def losses(out: Path, fold: str) -> list[float]:
    return pd.read_csv(out / rd.FOLDS / fold / rd.TRAIN_LOG)["loss"].tolist()


def test_a_resumed_run_is_tracked_whole_in_mlflow_and_tensorboard(tmp_path, root, monkeypatch, one_thread):
    """Fold 01 trains untracked; the resumed run (tracked) logs its loss from train_log.csv, the other folds as
    they finish, the config and the metrics — in ./mlruns by default and in <run>/tensorboard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    workflows.train(tiny(tmp_path, root, "protocol.folds=['01']"), out)
    workflows.train(tiny(tmp_path, root), out, track=["mlflow", "tensorboard"])
    metrics = json.loads((out / "metrics.json").read_text())
    f1 = metrics["summary"]["f1_macro"]["avg"]["mean"]

    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("aullm")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    assert run.data.params["train.epochs"] == "3" and run.data.params["llm.name"] == "tiny-random"
    assert run.data.tags["aullm.run_dir"] == str(out.resolve())
    for fold in FOLDS:
        history = client.get_metric_history(run.info.run_id, f"loss/fold_{fold}/seed_1")
        assert [m.step for m in history] == [1, 2, 3]
        assert [m.value for m in history] == pytest.approx(losses(out, fold), rel=1e-12)
    assert run.data.metrics["f1_macro/avg"] == pytest.approx(f1, rel=1e-12)
    assert run.data.metrics["auc/AU12"] == pytest.approx(metrics["summary"]["auc"]["per_au"]["AU12"]["mean"])

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    for fold in FOLDS:
        scalars = events.Scalars(f"loss/fold_{fold}/seed_1")
        assert [s.step for s in scalars] == [1, 2, 3]
        assert [s.value for s in scalars] == pytest.approx(losses(out, fold), rel=1e-6)  # stored as float32
    assert events.Scalars("metrics/f1_macro/avg")[0].value == pytest.approx(f1, rel=1e-6)
    assert "config" in "".join(events.Tags()["tensors"])


def test_mlflow_tracking_uri_is_respected(tmp_path, root, monkeypatch, one_thread):
    store = tmp_path / "elsewhere"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    workflows.train(tiny(tmp_path, root, "protocol.folds=['02']"), out, track=["mlflow"])
    assert not (tmp_path / "mlruns").exists()
    client = mlflow.MlflowClient(tracking_uri=store.as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("aullm").experiment_id])
    history = client.get_metric_history(run.info.run_id, "loss/fold_02/seed_1")
    assert [m.value for m in history] == pytest.approx(losses(out, "02"), rel=1e-12)


def test_an_unknown_tracker_is_refused():
    with pytest.raises(UserError, match="--track 'wandb': choose from mlflow, tensorboard"):
        open_trackers(["wandb"])
