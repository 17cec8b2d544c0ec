"""What a run and its bundle say about themselves: `--device` named as the user typed it (train and predict), a
finished run's config.yaml that does not ask for a bundle again, and a bundle without an LLM called so."""

from __future__ import annotations

import logging

import pytest
import torch
from typer.testing import CliRunner

import aullm
from aullm.cli import app
from aullm.data.synme import generate_synme

BAD_GPU = "cuda:99"  # no machine this runs on has 100 GPUs


def cli(args: list[str]):
    """Invoke the CLI in-process; afterwards drop the log handler bound to CliRunner's (then closed) stderr."""
    from aullm.core.console import logger

    try:
        return CliRunner().invoke(app, args)
    finally:
        logger.handlers.clear()
        logger.propagate = True


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread) -> dict:
    """AU-LLM without its LLM (model.reasoner: none: nothing to load), 3 subjects × 3 clips, 1 epoch, with a bundle."""
    base = tmp_path_factory.mktemp("options")
    root = base / "synme"
    generate_synme(root, subjects=3, clips_per_subject=3, seed=3, size=96)
    settings = {
        "name": "no_llm",
        "data": {"dataset": "synme", "root": str(root), "size": 16, "cache_dir": str(base / "cache")},
        "model": {"name": "au_llm", "reasoner": "none"},
        "llm": {"name": "tiny-random"},
        "train": {"epochs": 1, "batch_size": 8, "lr": 1.0e-3},
        "eval": {"bootstrap": 0},
    }
    trained = aullm.train(aullm.load_config(settings), out=base / "run", save_final=True, device="cpu")
    return {"base": base, "run": trained.path, "settings": settings, "clip": next((root / "Cropped").glob("sub*/*"))}


def test_a_finished_runs_config_does_not_ask_for_a_bundle_again(run):
    assert (run["run"] / "bundle").is_dir()
    cfg = aullm.load_config(run["run"] / "config.yaml")
    assert cfg.train.save_final is False and cfg.train.device == "cpu"
    again = aullm.train(cfg, out=run["base"] / "again")
    assert again.complete and not (again.path / "bundle").exists() and not (again.path / "final").exists()


def test_a_bundle_without_an_llm_is_logged_as_such(run):
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    log = logging.getLogger("aullm")
    handler, level = Keep(logging.INFO), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        aullm.Detector.load(run["run"], device="cpu")
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    (line,) = [r for r in records if r.startswith("loaded bundle")]
    assert "au_llm (no LLM)" in line and "(all)" not in line


@pytest.mark.skipif(torch.cuda.device_count() > 99, reason="this machine has a cuda:99")
def test_predict_names_the_device_parameter_the_user_gave(run):
    result = cli(["predict", str(run["clip"]), "--checkpoint", str(run["run"]), "--device", BAD_GPU])
    assert result.exit_code == 2
    assert f"--device {BAD_GPU}" in result.output and "train.device" not in result.output
    with pytest.raises(aullm.UserError, match=f"device={BAD_GPU}") as err:
        aullm.Detector.load(run["run"], device=BAD_GPU)
    assert "train.device" not in str(err.value)
    with pytest.raises(aullm.UserError, match="device=gpu: not a device; use auto, cpu, cuda, cuda:N or mps"):
        aullm.Detector.load(run["run"], device="gpu")


@pytest.mark.skipif(torch.cuda.device_count() > 99, reason="this machine has a cuda:99")
def test_train_takes_device_and_refuses_a_missing_one_before_any_work(run, tmp_path):
    out = tmp_path / "run"
    result = cli(
        ["train", "demo", "--set", f"data.root={tmp_path / 'nothing'}", "--device", BAD_GPU, "--out", str(out)]
    )
    assert result.exit_code == 2 and f"--device {BAD_GPU}" in result.output, result.output
    assert not out.exists()
    result = cli(["train", "demo", "--device", "xpu", "--out", str(out)])
    assert result.exit_code == 2 and "--device xpu: not a device aullm runs on" in result.output, result.output


def test_explain_writes_the_shared_scale_gradcam_view(run):
    written = aullm.Detector.load(run["run"], device="cpu").explain(
        run["clip"], out=run["base"] / "explain", crop="none"
    )
    names = {path.name for path in next(iter(written.values()))}
    assert {"gradcam_all.png", "gradcam_all_shared.png", "se_weights.png"} <= names
