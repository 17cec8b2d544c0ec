"""--track mlflow / tensorboard: the logged config, per-epoch losses of every fold and final metrics, read back
with each library's own reader and compared with the run directory (the source of truth); a resumed run continues
its MLflow run and logs nothing twice; the documented store (./mlflow.db) is what `mlflow ui` opens; an unreachable
tracking server is refused at once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its tables made (MLflow takes ~15 s to create them), copied by each test."""
    folder = tmp_path_factory.mktemp("store")
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def here(tmp_path, empty_store, monkeypatch) -> Path:
    """A working folder with no MLFLOW_TRACKING_URI: the default store is ./mlflow.db (a copy of an empty one)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    return tmp_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_resumed_run_is_tracked_whole_in_mlflow_and_tensorboard(here, root, one_thread):
    """Fold 01 trains untracked; the resumed run (tracked) logs its loss from train_log.csv, the other folds as
    they finish, the config and the metrics — in ./mlflow.db by default and in <run>/tensorboard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tmp_path = here
    out = tmp_path / "run"
    workflows.train(tiny(tmp_path, root, "protocol.folds=['01']"), out)
    workflows.train(tiny(tmp_path, root), out, track=["mlflow", "tensorboard"])
    metrics = json.loads((out / "metrics.json").read_text())
    f1 = metrics["summary"]["f1_macro"]["avg"]["mean"]

    client = mlflow.MlflowClient()  # MLflow's default store in this folder: what `mlflow ui` opens here
    assert not list(tmp_path.glob("mlruns/*/meta.yaml"))  # ./mlruns holds artifacts only, no file store
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


def test_mlflow_tracking_uri_is_respected(tmp_path, root, empty_store, monkeypatch, one_thread):
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(empty_store, tmp_path / "elsewhere" / "store.db")
    store = f"sqlite:///{tmp_path / 'elsewhere' / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    workflows.train(tiny(tmp_path, root, "protocol.folds=['02']"), out, track=["mlflow"])
    assert not (tmp_path / "mlflow.db").exists()
    client = mlflow.MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("aullm").experiment_id])
    history = client.get_metric_history(run.info.run_id, "loss/fold_02/seed_1")
    assert [m.value for m in history] == pytest.approx(losses(out, "02"), rel=1e-12)


def test_an_unknown_tracker_is_refused():
    with pytest.raises(UserError, match="track='wandb': choose from mlflow, tensorboard"):
        open_trackers(["wandb"])


def test_a_resumed_tracked_run_continues_its_mlflow_run_and_logs_nothing_twice(here, root, one_thread):
    """Started tracked on fold 01, resumed tracked: one MLflow run (the same id), every loss series once, in
    MLflow and in TensorBoard, and the config once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = here / "run"
    workflows.train(tiny(here, root, "protocol.folds=['01']"), out, track=["mlflow", "tensorboard"])
    first = json.loads((out / "tracking.json").read_text())["mlflow"]["run_id"]
    workflows.train(tiny(here, root), out, track=["mlflow", "tensorboard"])
    assert json.loads((out / "tracking.json").read_text())["mlflow"]["run_id"] == first

    client = mlflow.MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("aullm").experiment_id])
    assert run.info.run_id == first and run.info.status == "FINISHED"
    for fold in FOLDS:
        history = client.get_metric_history(first, f"loss/fold_{fold}/seed_1")
        assert [m.step for m in history] == [1, 2, 3], fold
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    for fold in FOLDS:
        assert [s.step for s in events.Scalars(f"loss/fold_{fold}/seed_1")] == [1, 2, 3], fold
    assert len([t for t in events.Tags()["tensors"] if "config" in t]) == 1


@pytest.mark.parametrize("address", ["http://127.0.0.1:{port}", "http://no-such-host.invalid:5000"])
def test_an_unreachable_mlflow_server_is_refused_at_once_in_one_line(address, monkeypatch, tmp_path):
    uri = address.format(port=free_port())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    with pytest.raises(UserError) as err:
        open_trackers(["mlflow"])
    assert time.perf_counter() - start < 30
    message = str(err.value)
    assert uri in message and "MLFLOW_TRACKING_URI" in message and "\n" not in message
    assert "Connection refused" in message or "Failed to resolve" in message


def test_a_tracking_server_that_never_answers_is_refused_within_the_timeout(monkeypatch, tmp_path):
    """Something listens but never answers: refused after the probe's timeout, not after MLflow's minutes."""
    from aullm.workflows.tracking import MLflowTracker

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        start = time.perf_counter()
        with pytest.raises(UserError, match=r"cannot be used .*timed out"):
            MLflowTracker(probe_timeout=2)
        assert time.perf_counter() - start < 15


def test_a_tracking_store_that_fails_mid_run_stops_tracking_not_training(here, root, one_thread, warnings_log):
    from aullm.workflows.tracking import Trackers

    class Broken:
        def start(self, cfg, out):
            pass

        def has_losses(self, fold, seed):
            return False

        def log_losses(self, fold, seed, losses):
            raise ConnectionError("store went away")

        def log_metrics(self, values):
            raise AssertionError("dropped after its first failure")

        def end(self, status="FINISHED"):
            pass

    trackers = Trackers([Broken()])
    out = here / "run"
    workflows.train(tiny(here, root, "protocol.folds=['01']"), out)
    trackers.start(tiny(here, root), out)  # fold 01 is done: its losses go to the tracker, which fails
    assert not trackers.trackers
    assert any("Broken tracking stopped" in m and "store went away" in m for m in warnings_log)


@pytest.mark.slow
def test_mlflow_ui_as_documented_shows_the_run(here, root, one_thread):
    """docs/cluster.md: train with --track mlflow, then `mlflow ui` in the same folder serves the run (here on a
    free port, as 5000 may be taken, and with one worker, as four take a minute to start on a 2-core machine)."""
    workflows.train(tiny(here, root, "protocol.folds=['03']"), here / "run", track=["mlflow"])
    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [str(mlflow_cli), "ui", "--port", str(port), "--workers", "1"],
        cwd=here,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the server's workers are stopped with it
    )
    try:
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=aullm"
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    experiment = json.load(answer)["experiment"]
                break
            except OSError:
                assert server.poll() is None, "mlflow ui exited"
                assert time.monotonic() < deadline, "mlflow ui did not answer within 180 s"
                time.sleep(1)
        search = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search",
            data=json.dumps({"experiment_ids": [experiment["experiment_id"]]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(search, timeout=10) as answer:
            runs = json.load(answer)["runs"]
        assert [r["info"]["run_name"] for r in runs] == ["tiny"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
