"""The public Python API, through the API (the command line's own tests are elsewhere): every function, what it
returns, and the errors it raises."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aullm
from aullm import api

pytestmark = pytest.mark.usefixtures("one_thread")
AUS = ["AU1", "AU2", "AU4", "AU14"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("api")
    truth = aullm.synth(base / "synme", subjects=3, clips_per_subject=6, seed=1, preset="demo")
    settings = {
        "name": "api_tiny",
        "data": {"dataset": "synme", "root": str(base / "synme"), "size": 32, "aus": AUS},
        "llm": {"name": "tiny-random"},
        "train": {"epochs": 1, "batch_size": 8, "lr": 1.0e-3},
        "eval": {"bootstrap": 100},
    }
    run = aullm.train(settings, out=base / "run", save_final=True)
    return {"base": base, "truth": truth, "settings": settings, "run": run}


def test_import_aullm_is_light_and_names_resolve() -> None:
    import subprocess
    import sys

    code = "import sys, aullm; print('torch' in sys.modules, aullm.train.__module__, aullm.datasets.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "aullm.api", "aullm.datasets"]
    assert issubclass(aullm.ConfigError, aullm.UserError) and issubclass(aullm.DataError, aullm.UserError)
    assert issubclass(aullm.BundleError, aullm.UserError)
    with pytest.raises(AttributeError):
        aullm.no_such_name  # noqa: B018


def test_load_config_from_a_file_a_dict_and_a_config(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ndata: {dataset: samm}\n")
    from_file = aullm.load_config(path, ["train.epochs=3"])
    assert from_file.data.dataset == "samm" and from_file.train.epochs == 3
    from_dict = aullm.load_config({"name": "x", "data": {"dataset": "samm"}}, ["train.epochs=3"])
    assert from_dict == from_file
    again = aullm.load_config(from_dict, ["model.name=sssnet_led"])
    assert again.model.name == "sssnet_led" and from_dict.model.name == "au_llm"  # the original is untouched
    with pytest.raises(aullm.ConfigError, match=r"unknown config key data\.frame"):
        aullm.load_config({"data": {"frame": 6}})


def test_train_returns_a_run_that_views_its_files(trained) -> None:
    run: aullm.Run = trained["run"]
    assert run.complete and run.unfinished_folds == [] and Path(run) == run.path
    assert run.config.name == "api_tiny" and run.bundle == run.path / "bundle"
    predictions = run.predictions()
    assert len(predictions) == len(trained["truth"]) and {f"prob_{au}" for au in AUS} <= set(predictions.columns)
    metrics = run.metrics
    assert metrics.aus == AUS and metrics.seeds == [1]
    assert 0.0 <= metrics.mean("auc") <= 1.0


def test_evaluate_gives_tidy_metrics_with_intervals(trained) -> None:
    metrics = aullm.evaluate(trained["run"].path)
    frame = metrics.to_frame()
    assert set(frame["metric"]) == {"f1_binary", "f1_macro", "f1_macro_test_tuned", "f1_macro_val_tuned", "auc"}
    assert set(frame["au"]) == {*AUS, "avg"} and set(frame["seed"]) == {"1", "mean"}
    mean_auc = frame.query("seed == 'mean' and au == 'avg' and metric == 'auc'").iloc[0]
    assert mean_auc["value"] == pytest.approx(metrics.mean("auc"))
    assert mean_auc["ci_low"] <= mean_auc["value"] <= mean_auc["ci_high"]
    stored = json.loads((trained["run"].path / "metrics.json").read_text())
    assert stored["summary"]["auc"]["avg"]["mean"] == pytest.approx(metrics.mean("auc"))


def test_compare_and_report(trained, tmp_path) -> None:
    other = aullm.train(
        {**trained["settings"], "name": "api_no_llm", "model": {"reasoner": "none"}}, out=tmp_path / "b"
    )
    comparison = aullm.compare([trained["run"].path, other.path], bootstrap=100)
    frame = comparison.to_frame()
    assert {"metric", "au", "diff", "ci_low", "ci_high", "p", "p_holm", "verdict"} <= set(frame.columns)
    avg = frame.query("metric == 'auc' and au == 'avg'").iloc[0]
    assert avg["diff"] == pytest.approx(avg["b"] - avg["a"])
    assert comparison.data["a"] == str(trained["run"].path)
    report = aullm.report([trained["run"].path, other.path], out=tmp_path / "report")
    assert report == tmp_path / "report" / "report.md" and "Paired comparisons" in report.read_text()


def test_export_writes_a_fold_bundle(trained, tmp_path) -> None:
    fold = sorted(p.name for p in (trained["run"].path / "folds").iterdir())[0]
    bundle = aullm.export(trained["run"].path, tmp_path / "fold_bundle", fold=fold)
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["trained_on"]["fold"] == fold and meta["aus"] == AUS


def test_detector_predicts_folders_arrays_and_lists(trained) -> None:
    detector = aullm.Detector.load(trained["run"].path, device="cpu")
    assert detector.aus == AUS and set(detector.thresholds) == set(AUS)
    folder = sorted(p for p in (trained["base"] / "synme" / "Cropped").glob("sub*/*") if p.is_dir())[0]
    from PIL import Image

    gray = np.stack([np.asarray(Image.open(f).convert("L")) for f in sorted(folder.iterdir())])
    table = detector.predict([folder, gray, gray[:4]], crop="none")
    assert list(table.columns[:1]) == ["clip"] and list(table["status"]) == ["ok"] * 3
    assert {f"{au}_prob" for au in AUS} | set(AUS) <= set(table.columns)
    assert list(table["n_frames"]) == [len(gray), len(gray), 4]
    assert all(table[au].isin([0, 1]).all() for au in AUS)
    # a frame range of an array is that slice of it (float32: predicted alone or in a batch of three, the products
    # are summed in other orders, so the probabilities agree to rounding, not bit for bit)
    sliced = detector.predict(gray, onset=0, offset=3, crop="none")
    np.testing.assert_allclose(
        sliced.filter(like="_prob").to_numpy()[0], table.filter(like="_prob").to_numpy()[2], rtol=1e-5
    )


def test_detector_marks_bad_arrays_in_their_row_and_refuses_bad_arguments(trained) -> None:
    detector = aullm.Detector.load(trained["run"].path, device="cpu")
    good = np.full((6, 64, 64), 120, np.uint8)
    table = detector.predict([good, good.astype(np.float32), np.zeros((6, 4, 4), np.uint8)], crop="none")
    status = list(table["status"])
    assert status[0] == "ok" and "uint8" in status[1] and "too small" in status[2]
    assert table.loc[1:, "AU1_prob"].isna().all()
    with pytest.raises(aullm.UserError, match="crop must be one of"):
        detector.predict(good, crop="rotate")
    with pytest.raises(aullm.UserError, match="a path or a NumPy array"):
        detector.predict([good, 3])
    with pytest.raises(aullm.UserError, match="batch_size"):
        detector.predict(good, batch_size=0)


def test_api_predict_and_explain_take_arrays(trained, tmp_path) -> None:
    frames = np.full((6, 64, 64, 3), 128, np.uint8)
    result = api.predict(frames, trained["run"].path, crop="none", device="cpu")
    assert result.failed == 0 and result.to_json()["clips"][0]["status"] == "ok"
    written = api.explain(frames, trained["run"].path, tmp_path / "explain", crop="none", device="cpu")
    (files,) = written.values()
    assert isinstance(files, list) and any(p.name.startswith("gradcam") for p in files)


def test_datasets_load_stats_and_prepare(trained) -> None:
    root = trained["base"] / "synme"
    index = aullm.datasets.load("synme", root=root)
    assert len(index) == len(trained["truth"]) and {"subject", "sample", "onset", "AU1"} <= set(index.columns)
    stats = aullm.datasets.stats("synme", root=root)
    assert stats["usable"] == len(index) and stats["frames_checked"] is False
    prepared, seconds = aullm.datasets.prepare("synme", root, ["size=32"])
    assert len(prepared) == len(index) and prepared.cache_path is not None and seconds >= 0
    with pytest.raises(aullm.DataError, match=r"give root=DIR .* or annotations=FILE"):
        aullm.datasets.stats("synme")


def test_synth_crop_and_bench_step(tmp_path) -> None:
    truth = aullm.synth(tmp_path / "s", subjects=1, clips_per_subject=2, seed=3, layout="samm")
    assert isinstance(truth, pd.DataFrame) and len(truth) == 2 and truth["subject"].str.len().eq(3).all()
    with pytest.raises(aullm.UserError, match="unknown SynME preset"):
        aullm.synth(tmp_path / "t", preset="hard")
    from fixtures_faces import astronaut  # a real photograph

    clip = tmp_path / "clip"
    clip.mkdir()
    from PIL import Image

    for i in range(3):
        Image.fromarray(astronaut().gray).save(clip / f"img{i + 1}.jpg")
    written = api.crop(clip, tmp_path / "crops", mode="detect", size=64)
    assert [p.name for p in written] == ["img1.jpg", "img2.jpg", "img3.jpg"]
    bench = api.bench_step("tiny-random", batch=2, device="cpu", repeats=1)
    assert bench.contract().keys() >= {"llm", "batch", "naive_s", "fast_s", "speedup", "max_abs_diff"}
    with pytest.raises(aullm.UserError, match="batch must be at least 1"):
        api.bench_step("tiny-random", batch=0)
    with pytest.raises(aullm.UserError, match="repeats must be at least 1"):
        api.bench_step("tiny-random", batch=2, repeats=0)
    with pytest.raises(aullm.UserError, match="prepack"):
        api.bench_step("tiny-random", batch=2, prepack="sometimes")


def test_sweep_runs_every_config(trained, tmp_path) -> None:
    a = {**trained["settings"], "name": "sweep_a", "model": {"name": "sssnet_led"}}
    b = {**trained["settings"], "name": "sweep_b", "model": {"name": "resnet18_led"}}
    result = aullm.sweep([a, b], tmp_path / "sweep", data_roots={"synme": str(trained["base"] / "synme")})
    assert result.complete == ["sweep_a", "sweep_b"] and result.failed == {}
    assert result.report is not None and result.report.is_file()
    assert (tmp_path / "sweep" / "sweep_b" / "metrics.json").is_file()


def test_demo_runs_through_the_api(tmp_path, monkeypatch) -> None:
    """The demo's own chain (SynME generated once, then LOSO), shrunk to test size."""
    from aullm.workflows import demo

    small = dict(demo.DEMO_SYNME, subjects=2, clips_per_subject=4)
    monkeypatch.setattr(demo, "DEMO_SYNME", small)
    original = demo.demo_config

    def tiny_config(root):
        cfg = original(root)
        return aullm.load_config(
            cfg,
            [
                "llm.name=tiny-random",
                "train.epochs=1",
                "data.size=32",
                "data.aus=[AU1, AU4]",
                "eval.validation_subjects=0",
                "eval.bootstrap=50",
            ],
        )

    monkeypatch.setattr(demo, "demo_config", tiny_config)
    run = api.demo(tmp_path / "run", tmp_path / "data")
    assert run.complete and (tmp_path / "data" / "synme.json").is_file()
