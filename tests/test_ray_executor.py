"""Folds as Ray tasks on a local Ray instance (2 CPUs, started and stopped here): the same bytes as a local run,
retries after a raising task or a killed worker, failures reported by fold while the rest is kept, resume
submitting only unfinished folds, Ctrl-C cancelling what is outstanding, workers reusing their loaded session."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ray = pytest.importorskip("ray")

from aullm.config import Config, load_config  # noqa: E402
from aullm.core.errors import RunFailed  # noqa: E402
from aullm.data.synme import generate_synme  # noqa: E402
from aullm.training import run_dir as rd  # noqa: E402
from aullm.training.execution import execute  # noqa: E402
from aullm.training.protocols import plan_run  # noqa: E402
from aullm.training.ray_executor import FAULT_ENV, RayExecutor  # noqa: E402
from aullm.workflows import experiment as workflows  # noqa: E402

FOLDS = ["01", "02", "03"]


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synme")
    generate_synme(path, subjects=3, clips_per_subject=5, seed=3, size=128)
    return path


def tiny_config(folder: Path, root: Path, name: str = "tiny", seeds: str = "[1]", lr: str = "1.0e-3") -> Config:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nseeds: {seeds}\n"
        f"data: {{dataset: synme, root: {root}, size: 32, cache_dir: {folder / 'cache'}}}\n"
        "model: {name: au_llm, dropout: 0.1}\nllm: {name: tiny-random}\n"
        f"train: {{epochs: 2, batch_size: 8, lr: {lr}, threads: 1}}\n"
    )
    return load_config(path)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, root) -> Path:
    """The reference: the tiny config trained in this process."""
    folder = tmp_path_factory.mktemp("local")
    return workflows.train(tiny_config(folder, root), folder / "run")


def same_predictions(a: Path, b: Path) -> bool:
    return (a / rd.PREDICTIONS).read_bytes() == (b / rd.PREDICTIONS).read_bytes()


def test_ray_sweep_gives_the_local_bytes_and_workers_reuse_their_session(tmp_path, root, ray_cluster, monkeypatch):
    """A two-config sweep on Ray writes the same predictions.csv, metrics.json and fold files, byte for byte, as the
    same sweep in this process (equal torch thread counts); its tasks reuse the workers' loaded sessions."""
    cfgs = [tiny_config(tmp_path, root, "tiny_a", "[1, 2]"), tiny_config(tmp_path, root, "tiny_b", "[1]", "2.0e-3")]
    for place in ("local", "ray"):
        (tmp_path / place).mkdir()
    monkeypatch.chdir(tmp_path / "local")  # run from two folders with the same relative --out-root: paths match
    local = workflows.sweep(cfgs, Path("runs"))
    monkeypatch.chdir(tmp_path / "ray")
    executor = RayExecutor()
    remote = workflows.sweep(cfgs, Path("runs"), executor=executor)
    assert local.complete == remote.complete == ["tiny_a", "tiny_b"]
    for name in ("tiny_a", "tiny_b"):
        a, b = tmp_path / "local" / "runs" / name, tmp_path / "ray" / "runs" / name
        files = sorted(
            p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.suffix in (".csv", ".json", ".safetensors")
        )
        assert Path("predictions.csv") in files and Path("metrics.json") in files
        assert Path("folds/02/weights_seed1.safetensors") in files
        for rel in files:
            if rel.suffix == ".safetensors":  # its header's key order varies between processes: compare tensors
                ta, tb = load_file(a / rel), load_file(b / rel)
                assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta), f"{name}/{rel}"
            else:
                assert (a / rel).read_bytes() == (b / rel).read_bytes(), f"{name}/{rel} differs between local and Ray"
    assert (tmp_path / "ray" / "runs" / "report.md").is_file()
    assert len(executor.stats) == 9  # (2 seeds + 1 seed) × 3 folds
    opened = [s for s in executor.stats if not s.reused_session]
    assert len(opened) < len(executor.stats), "no task reused its worker's loaded session"
    assert all(s.session_seconds > 0 for s in opened)


def test_a_failed_first_attempt_is_retried(tmp_path, root, local_run, ray_cluster, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, f"raise_once:02:{tmp_path}")
    out = workflows.train(tiny_config(tmp_path, root), tmp_path / "run", executor=RayExecutor(max_retries=1))
    assert len((tmp_path / "fault-02").read_text().split()) == 2  # the failed attempt and its retry
    assert same_predictions(out, local_run)
    assert (out / "metrics.json").is_file()


def test_a_fold_failing_every_attempt_is_reported_and_a_restart_submits_only_it(
    tmp_path, root, local_run, ray_cluster, monkeypatch
):
    cfg = tiny_config(tmp_path, root)
    monkeypatch.setenv(FAULT_ENV, f"raise_always:02:{tmp_path}")
    with pytest.raises(RunFailed, match=r"1 fold\(s\) failed \(02\)"):
        workflows.train(cfg, tmp_path / "run", executor=RayExecutor(max_retries=1))
    assert len((tmp_path / "fault-02").read_text().split()) == 2
    run = tmp_path / "run"
    assert [f for f in FOLDS if rd.fold_is_done(rd.fold_dir(run, f))] == ["01", "03"]  # the others finished
    assert "injected test fault in fold 02" in (rd.fold_dir(run, "02") / rd.FAILED).read_text()
    assert not (run / "metrics.json").exists()
    monkeypatch.delenv(FAULT_ENV)
    cfg.train.save_final = True  # may be added when resuming; the final model is one more Ray task
    again = RayExecutor()
    workflows.train(cfg, run, executor=again)
    assert again.submitted == ["fold 02 seed 1", "fold final seed 1"]
    assert same_predictions(run, local_run)
    assert rd.fold_is_done(run / rd.FINAL) and (run / "bundle" / "manifest.json").is_file()


def test_a_killed_worker_is_retried(tmp_path, root, local_run, ray_cluster, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, f"hang_once:03:{tmp_path}")
    marker = tmp_path / "fault-03"
    killed: list[int] = []

    def kill_the_worker() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not marker.exists():
            time.sleep(0.1)
        time.sleep(0.2)
        pid = int(marker.read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_the_worker, daemon=True)
    killer.start()
    out = workflows.train(tiny_config(tmp_path, root), tmp_path / "run", executor=RayExecutor(max_retries=1))
    killer.join(5)
    pids = [int(p) for p in marker.read_text().split()]
    assert killed == pids[:1] and len(pids) == 2 and pids[1] != pids[0]  # retried in another worker process
    assert same_predictions(out, local_run)


def test_ctrl_c_cancels_the_outstanding_tasks(tmp_path, root, local_run, ray_cluster):
    cfg = tiny_config(tmp_path, root, seeds="[1, 2]")
    written: list[str] = []

    def interrupt_after_the_first_fold(plan, fold) -> None:
        written.append(fold.name)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute([plan_run(cfg, tmp_path / "run")], RayExecutor(), on_fold=interrupt_after_the_first_fold)
    deadline = time.time() + 30
    while time.time() < deadline and ray.available_resources().get("CPU", 0) < 2:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 2, "cancelled tasks still hold the CPUs"
    time.sleep(1.0)
    done = [f for f in FOLDS if rd.fold_is_done(rd.fold_dir(tmp_path / "run", f))]
    assert done == written  # nothing is written after the interrupt
    resumed = RayExecutor()
    execute([plan_run(cfg, tmp_path / "run")], resumed)
    assert sorted(resumed.submitted) == sorted(f"fold {f} seed {s}" for f in FOLDS if f not in done for s in (1, 2))
