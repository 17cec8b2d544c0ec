"""Hostile inputs: every failure a bad-input campaign found, each one line and exit code 2 (or a warning naming
the sample) instead of a traceback, a killed process, silent garbage or lost files."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from aullm.cli import app
from aullm.config import DataConfig, load_config
from aullm.core.errors import UserError
from aullm.data.cache import prepare_dataset
from aullm.data.clips import FrameError, load_frames, read_gray
from aullm.data.index import load_index
from aullm.data.synme import generate_synme
from aullm.training.run_dir import fold_is_done
from aullm.workflows import experiment as workflows
from fixtures_data import Clip, casme2_clips, write_casme2, write_frames, write_manifest
from test_metrics import make_run_dir, random_frame

runner = CliRunner()
#: A folder even root cannot write into (the kernel refuses), for "not writable" cases.
UNWRITABLE = Path("/proc/1")


def one_error_line(result, *needles: str) -> str:
    """The command failed with exit code 2 and its last line is the only `error:` line, mentioning every needle;
    no traceback (log lines before it are the progress of the work done until the problem was found)."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [lines[-1]], result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    return lines[-1]


@pytest.fixture(scope="module")
def synme_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synme_bad")
    generate_synme(root, subjects=2, clips_per_subject=4, seed=2, size=128)
    return root


def tiny_config(tmp_path: Path, root: Path, llm: str = "tiny-random") -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        f"name: tiny\nseeds: [1]\n"
        f"data: {{dataset: synme, root: {root}, size: 32, cache_dir: {tmp_path / 'cache'}}}\n"
        f"model: {{name: au_llm, dropout: 0.1}}\nllm: {{name: {llm}}}\n"
        "train: {epochs: 1, batch_size: 8, lr: 1.0e-3}\n"
    )
    return path


# ------------------------------------------------------------------------------------------- data


def test_an_absurd_frame_range_skips_only_its_sample_and_allocates_nothing(tmp_path):
    clips = [*casme2_clips(3, frames=6), Clip(9, "EP_huge", 1, 5, 1_000_000_000, "4", frames="skip")]
    write_casme2(tmp_path, clips)
    write_frames(tmp_path / "Cropped" / "sub09" / "EP_huge", range(1, 11), "reg_img{}.jpg")
    start = time.perf_counter()
    result = runner.invoke(app, ["data", "stats", "casme2", "--root", str(tmp_path), "--json"])
    assert time.perf_counter() - start < 30
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output.strip().splitlines()[-1])
    assert stats["usable"] == 3
    (skipped,) = [s for s in stats["skipped"] if "EP_huge" in s["sample"]]
    assert "10 of 1000000000 frames" in skipped["reason"]


def test_one_pixel_frames_are_skipped_naming_the_clip(tmp_path, warnings_log):
    clips = casme2_clips(3, frames=6)
    write_casme2(tmp_path, clips)
    tiny = tmp_path / "Cropped" / "sub01" / clips[0].filename
    for path in tiny.iterdir():
        Image.new("L", (1, 1), 128).save(path)
    data = prepare_dataset(DataConfig(dataset="casme2", root=str(tmp_path), cache_dir=str(tmp_path / "c")))
    assert len(data) == 2
    (skipped,) = data.skipped
    assert clips[0].filename in skipped["sample"] and "1×1 px" in skipped["reason"]
    assert any("1×1 px" in m and clips[0].filename in m for m in warnings_log)


def test_frames_of_different_sizes_warn_naming_the_clip_and_go_on(tmp_path, warnings_log):
    folder = tmp_path / "clip"
    write_frames(folder, range(1, 7), "img{}.jpg", size=48)
    Image.new("L", (64, 64), 100).save(folder / "img3.jpg")
    paths = sorted(folder.iterdir(), key=lambda p: int(p.stem[3:]))
    clip = load_frames(paths, 32)
    assert clip.shape == (6, 32, 32)
    assert any("different sizes" in m and str(folder) in m for m in warnings_log)


def test_a_decompression_bomb_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "huge.jpg"
    Image.new("L", (10000, 10000), 128).save(path, quality=10)
    with pytest.raises(FrameError, match=r"huge\.jpg is too large to decode safely"):
        read_gray(path, 64)


def test_manifest_words_for_labels_warn(tmp_path, warnings_log):
    rows = []
    for i in range(2):
        write_frames(tmp_path / f"c{i}", range(1, 7), "f{}.jpg")
        rows.append({"subject": f"s{i}", "sample": f"c{i}", "path": f"c{i}", "AU4": "yes" if i else "1"})
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    index = load_index(DataConfig(dataset="manifest", root=str(tmp_path), annotations=str(manifest)))
    assert index.df["AU4"].tolist() == [1, 1]
    assert any("AU4 value 'yes' read as 1" in m and "s1/c1" in m for m in warnings_log)


def test_an_empty_code_between_plus_signs_warns(tmp_path, warnings_log):
    clips = [*casme2_clips(2, frames=6), Clip(3, "EP_pp", 200, 203, 205, "4++7")]
    write_casme2(tmp_path, clips)
    index = load_index(DataConfig(dataset="casme2", root=str(tmp_path)))
    row = index.df[index.df["sample"] == "EP_pp"].iloc[0]
    assert row["AU4"] == 1 and row["AU7"] == 1
    assert any("'4++7'" in m and "empty code" in m and "EP_pp" in m for m in warnings_log)


def test_prepare_with_an_unwritable_cache_folder_fails_before_decoding(tmp_path):
    write_casme2(tmp_path, casme2_clips(2, frames=6))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    result = runner.invoke(
        app, ["prepare", "casme2", "--root", str(tmp_path), "--set", f"data.cache_dir={blocker / 'cache'}"]
    )
    one_error_line(result, "cache folder", str(blocker))


# --------------------------------------------------------------------------------------- configs


def test_a_config_that_is_not_text_is_one_line(tmp_path):
    path = tmp_path / "random.yaml"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    one_error_line(runner.invoke(app, ["train", str(path)]), "not text")


def test_an_au_nobody_has_is_refused_before_training(tmp_path, synme_root):
    config = tiny_config(tmp_path, synme_root)
    result = runner.invoke(app, ["train", str(config), "--set", "data.aus=[AU99]", "--out", str(tmp_path / "r")])
    one_error_line(result, "AU99 has no positive sample", "remove it from data.aus")
    assert not (tmp_path / "r").exists()


def test_a_failed_start_leaves_nothing_so_the_corrected_rerun_works(tmp_path, synme_root):
    out = tmp_path / "run"
    bad = tiny_config(tmp_path, synme_root, llm="no-such-llm-preset-xyz")
    assert runner.invoke(app, ["train", str(bad), "--out", str(out)]).exit_code == 2
    assert not out.exists() or not any(out.iterdir())
    good = tiny_config(tmp_path, synme_root)
    result = runner.invoke(app, ["train", str(good), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "metrics.json").is_file()


# ------------------------------------------------------------------------------------- output paths


@pytest.mark.parametrize("case", ["file", "under_file", "unwritable"])
def test_train_out_problems_are_one_line_before_any_work(tmp_path, synme_root, case):
    blocker = tmp_path / "a_file"
    blocker.write_text("mine")
    out = {"file": blocker, "under_file": blocker / "run", "unwritable": UNWRITABLE / "aullm_run"}[case]
    config = tiny_config(tmp_path, synme_root)
    start = time.perf_counter()
    one_error_line(runner.invoke(app, ["train", str(config), "--out", str(out)]), str(out))
    assert time.perf_counter() - start < 20  # refused before preparing data or loading an LLM
    assert blocker.read_text() == "mine"


def test_train_refuses_a_folder_of_someone_elses_files(tmp_path, synme_root):
    theirs = tmp_path / "results"
    theirs.mkdir()
    (theirs / "predictions.csv").write_text("my own predictions\n")
    config = tiny_config(tmp_path, synme_root)
    one_error_line(runner.invoke(app, ["train", str(config), "--out", str(theirs)]), "not an aullm run directory")
    assert (theirs / "predictions.csv").read_text() == "my own predictions\n"


def test_report_out_that_is_a_file_is_one_line(tmp_path):
    run = make_run_dir(tmp_path / "run", random_frame())
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    one_error_line(runner.invoke(app, ["report", str(run), "--out", str(blocker)]), str(blocker), "is an existing file")
    one_error_line(runner.invoke(app, ["report", str(run), "--out", str(UNWRITABLE / "r")]), "not writable")


def test_predict_out_and_batch_problems_are_one_line(tmp_path):
    clip = tmp_path / "clip"
    write_frames(clip, range(1, 7), "f{}.jpg")
    folder = tmp_path / "somedir"
    folder.mkdir()
    base = ["predict", str(clip), "--checkpoint", str(tmp_path / "no_bundle")]
    one_error_line(runner.invoke(app, [*base, "--out", str(folder)]), str(folder), "is a folder")
    one_error_line(runner.invoke(app, [*base, "--out", str(UNWRITABLE / "x.csv")]), "not writable")
    one_error_line(runner.invoke(app, [*base, "--batch", "0"]), "--batch must be at least 1")


@pytest.mark.parametrize("case", ["file", "under_file", "unwritable"])
def test_synth_out_problems_are_one_line(tmp_path, case):
    blocker = tmp_path / "a_file"
    blocker.write_text("mine")
    out = {"file": blocker, "under_file": blocker / "synme", "unwritable": UNWRITABLE / "synme"}[case]
    one_error_line(runner.invoke(app, ["synth", str(out), "--subjects", "1", "--clips-per-subject", "1"]), str(out))
    assert blocker.read_text() == "mine"


# ------------------------------------------------------------------------------------- run files


def test_a_fold_whose_predictions_vanished_is_trained_again(tmp_path, synme_root):
    cfg = load_config(tiny_config(tmp_path, synme_root))
    out = workflows.train(cfg, tmp_path / "run")
    before = pd.read_csv(out / "predictions.csv")
    fold = sorted((out / "folds").iterdir())[0]
    (fold / "predictions.csv").unlink()
    assert not fold_is_done(fold)
    workflows.train(cfg, out)
    assert fold_is_done(fold)
    pd.testing.assert_frame_equal(before, pd.read_csv(out / "predictions.csv"))


def _evaluated_run(tmp_path: Path) -> Path:
    run = make_run_dir(tmp_path / "run", random_frame())
    assert runner.invoke(app, ["evaluate", str(run)]).exit_code == 0
    return run


def test_evaluate_refuses_predictions_with_an_au_missing(tmp_path):
    run = _evaluated_run(tmp_path)
    metrics = (run / "metrics.json").read_bytes()
    preds = pd.read_csv(run / "predictions.csv")
    au = next(c for c in preds.columns if c.startswith("prob_"))
    preds.drop(columns=[au, "label_" + au[5:]]).to_csv(run / "predictions.csv", index=False)
    one_error_line(runner.invoke(app, ["evaluate", str(run)]), f"lacks {au}")
    assert (run / "metrics.json").read_bytes() == metrics


def test_evaluate_refuses_duplicated_rows(tmp_path):
    run = _evaluated_run(tmp_path)
    metrics = (run / "metrics.json").read_bytes()
    preds = pd.read_csv(run / "predictions.csv")
    pd.concat([preds, preds.iloc[:3]]).to_csv(run / "predictions.csv", index=False)
    one_error_line(runner.invoke(app, ["evaluate", str(run)]), "duplicated rows")
    assert (run / "metrics.json").read_bytes() == metrics


def test_evaluate_refuses_predictions_that_do_not_match_the_folds(tmp_path):
    run = _evaluated_run(tmp_path)
    preds = pd.read_csv(run / "predictions.csv", dtype={"fold": str})
    dropped = preds["fold"].iloc[0]
    preds[preds["fold"] != dropped].to_csv(run / "predictions.csv", index=False)
    one_error_line(runner.invoke(app, ["evaluate", str(run)]), "does not match the run's finished folds")
    shutil.rmtree(run / "folds" / str(dropped))  # that fold is unfinished now: the rest is consistent again
    assert runner.invoke(app, ["evaluate", str(run)]).exit_code == 0


def test_config_paths_are_checked_before_work_in_python_too(tmp_path, synme_root):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="is an existing file"):
        workflows.train(load_config(tiny_config(tmp_path, synme_root)), blocker)


# ------------------------------------------------------------------- files a later command reads back


def test_a_damaged_data_json_refuses_the_resume_with_one_line(tmp_path, synme_root):
    config = tiny_config(tmp_path, synme_root)
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", str(config), "--out", str(out), "--set", "protocol.folds=['1']"]).exit_code == 0
    (out / "data.json").write_bytes(b"\x00\xff garbage")
    result = runner.invoke(app, ["train", str(config), "--out", str(out), "--set", "protocol.folds=['2']"])
    one_error_line(result, "data.json is unreadable")


def test_a_damaged_train_log_leaves_its_curve_out_of_the_report(tmp_path, warnings_log):
    run = make_run_dir(tmp_path / "run", random_frame())
    log = sorted(run.glob("folds/*/train_log.csv"))[0]
    log.write_bytes(b"\xff\xfe\x00garbage")
    from aullm.reporting.report import write_report

    assert write_report([run]).is_file()  # (the CLI would replace the log handler this test listens on)
    assert any("train_log.csv is unreadable" in m for m in warnings_log)


def test_a_damaged_synme_settings_file_means_regenerate(tmp_path):
    from aullm.data.synme import written_with

    root = tmp_path / "s"
    generate_synme(root, subjects=1, clips_per_subject=1, seed=0, size=128)
    assert written_with(root, subjects=1, clips_per_subject=1, seed=0, size=128)
    (root / "synme.json").write_text("{not json")
    assert not written_with(root, subjects=1, clips_per_subject=1, seed=0, size=128)
