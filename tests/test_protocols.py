"""End-to-end protocol tests: LOSO and cross-domain on a tiny SynME with the tiny-random LLM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from aullm.cli import app
from aullm.config import load_config
from aullm.core.errors import UserError
from aullm.data.synme import generate_synme
from aullm.training.protocols import RunFailed
from aullm.workflows import experiment as workflows

runner = CliRunner()

AUS = ["AU1", "AU2", "AU4", "AU7", "AU12", "AU14", "AU15", "AU17"]


@pytest.fixture(scope="module")
def synme_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synme")
    generate_synme(root, subjects=3, clips_per_subject=5, seed=3, size=128)
    return root


def tiny_config(tmp_path: Path, root: Path, **extra: str) -> Path:
    text = f"""
name: tiny
seeds: [1]
data: {{dataset: synme, root: {root}, size: 32, cache_dir: {tmp_path / "cache"}}}
model: {{name: au_llm, dropout: 0.1}}
llm: {{name: tiny-random}}
train: {{epochs: 2, batch_size: 8, lr: 1.0e-3}}
"""
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def test_loso_run_writes_every_file(tmp_path, synme_root):
    cfg = load_config(tiny_config(tmp_path, synme_root), ["seeds=[1, 2]"])
    out = workflows.train(cfg, tmp_path / "run")
    folds = sorted(p.name for p in (out / "folds").iterdir())
    assert len(folds) == 3
    for fold in folds:
        assert (out / "folds" / fold / "done").exists()
        assert (out / "folds" / fold / "weights_seed1.safetensors").exists()
        log = pd.read_csv(out / "folds" / fold / "train_log.csv")
        assert list(log.columns) == ["seed", "epoch", "loss"] and len(log) == 4  # 2 seeds × 2 epochs
    preds = pd.read_csv(out / "predictions.csv", dtype={"subject": str, "sample": str, "fold": str})
    assert list(preds.columns[:4]) == ["seed", "fold", "subject", "sample"]
    assert [c for c in preds.columns if c.startswith("prob_")] == [f"prob_{a}" for a in AUS]
    assert len(preds) == 2 * 15
    # every sample is predicted exactly once per seed, in the fold of its own subject (leave-one-subject-out)
    assert (preds["fold"] == preds["subject"]).all()
    assert preds.groupby("seed")["sample"].nunique().tolist() == [15, 15]
    assert preds.filter(like="prob_").apply(lambda c: c.between(0, 1)).all().all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert "f1_macro" in json.dumps(metrics)
    assert (out / "report.md").exists()
    assert load_config(out / "config.yaml") == cfg


def test_killed_run_resumes_to_identical_numbers(tmp_path, synme_root):
    config = tiny_config(tmp_path, synme_root)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    whole = tmp_path / "whole"
    subprocess.run(
        [sys.executable, "-m", "aullm", "-q", "train", str(config), "--out", str(whole)],
        check=True,
        env=env,
        timeout=600,
    )
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "aullm", "-q", "train", str(config), "--out", str(killed)], env=env)
    deadline = time.time() + 300
    while time.time() < deadline and not list(killed.glob("folds/*/done")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(killed.glob("folds/*/done")))
    assert 1 <= done_before < 3, "the kill must land mid-run for this test to mean anything"
    assert not (killed / "metrics.json").exists()
    result = runner.invoke(app, ["train", str(config), "--out", str(killed)])
    assert result.exit_code == 0, result.output
    a = pd.read_csv(whole / "predictions.csv")
    b = pd.read_csv(killed / "predictions.csv")
    pd.testing.assert_frame_equal(a, b)


def test_refuses_to_resume_with_another_config(tmp_path, synme_root):
    config = tiny_config(tmp_path, synme_root)
    out = tmp_path / "run"
    workflows.train(load_config(config, ["protocol.folds=['1']"]), out)
    with pytest.raises(UserError, match=r"different config \(differs in train.lr\)"):
        workflows.train(load_config(config, ["train.lr=0.5"]), out)
    # another fold subset of the same config may share the run (several machines, one LOSO run)
    workflows.train(load_config(config, ["protocol.folds=['2', '3']"]), out)
    assert (out / "metrics.json").exists()


def test_refuses_to_resume_when_the_data_changed(tmp_path):
    """Same config, but the dataset on disk was regenerated: finished folds were trained on other data."""
    from aullm.data.synme import SynMEParams

    root = tmp_path / "synme"
    generate_synme(root, subjects=3, clips_per_subject=4, seed=5, size=128)
    config = tiny_config(tmp_path, root)
    out = tmp_path / "run"
    workflows.train(load_config(config, ["protocol.folds=['1']"]), out)
    assert json.loads((out / "data.json").read_text())["samples"]["train"] == 12
    workflows.train(load_config(config, ["protocol.folds=['2']"]), out)  # same data: may share the run
    generate_synme(root, subjects=3, clips_per_subject=4, seed=5, size=128, params=SynMEParams(noise_sigma=9.0))
    with pytest.raises(UserError, match="trained on different data"):
        workflows.train(load_config(config, ["protocol.folds=['3']"]), out)
    assert len(list((out / "folds").iterdir())) == 2  # fold 3 never started


def test_cli_missing_dataset_is_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{dataset: casme2, root: {tmp_path / 'nowhere'}}}\nllm: {{name: tiny-random}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "aullm", "train", str(config), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "nowhere" in result.stderr


def test_nan_loss_stops_the_fold_with_a_message(tmp_path, synme_root):
    cfg = load_config(tiny_config(tmp_path, synme_root), ["train.lr=1.0e+30", "train.epochs=3"])
    with pytest.raises(RunFailed, match="fold"):
        workflows.train(cfg, tmp_path / "run")
    failed = list((tmp_path / "run").glob("folds/*/failed"))
    assert failed and "loss became" in failed[0].read_text()
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_cross_domain_trains_on_one_and_tests_on_the_other(tmp_path, synme_root):
    other = tmp_path / "other"
    generate_synme(other, subjects=2, clips_per_subject=4, seed=9, size=128, layout="samm")
    cfg = load_config(
        tiny_config(tmp_path, synme_root),
        [
            "data.aus=[AU2, AU4, AU7, AU12]",
            "protocol.name=cross_domain",
            f"protocol.target={{dataset: samm, root: {other}, size: 32, cache_dir: {tmp_path / 'cache'}}}",
        ],
    )
    out = workflows.train(cfg, tmp_path / "run")
    preds = pd.read_csv(out / "predictions.csv", dtype={"subject": str})
    assert set(preds["fold"]) == {"synme_to_samm"}
    assert len(preds) == 8 and preds["subject"].str.len().eq(3).all()  # SAMM subjects like "006"
    assert [c for c in preds.columns if c.startswith("label_")] == ["label_AU2", "label_AU4", "label_AU7", "label_AU12"]
    assert np.isfinite(preds.filter(like="prob_").to_numpy()).all()
