"""Hostile inputs, round 3 (issue 32): sample identity, the run lock, verified finished work, and the bad inputs a
third campaign found. Each test failed before its fix."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

import aullm
import aullm.datasets
from aullm.cli import app
from aullm.config import DataConfig, load_config
from aullm.core import io
from aullm.core.errors import ConfigError, UserError
from aullm.data.index import load_index
from aullm.data.synme import generate_synme
from aullm.training.run_dir import collect_predictions, fold_dir, fold_is_done, read_predictions
from aullm.workflows import experiment as workflows
from fixtures_data import casme2_clips, write_casme2, write_frames
from test_bad_inputs import one_error_line, tiny_config
from test_metrics import make_run_dir

runner = CliRunner()

# ------------------------------------------------------------------------------------ item 6: permissions


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it after."""
    before = os.umask(0o022)
    os.umask(before)

    def set_to(mask: int) -> None:
        os.umask(mask)

    yield set_to
    os.umask(before)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_written_files_and_folders_get_the_permissions_the_umask_gives(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    io.write_text(tmp_path / "report.md", "# report\n")
    io.write_bytes(tmp_path / "sub" / "weights.bin", b"\0" * 8)
    with io.atomic_path(tmp_path / "cache.npz") as tmp:
        tmp.write_bytes(b"npz")
    with io.atomic_dir(tmp_path / "bundle") as tmp:
        (tmp / "bundle.json").write_text("{}")
    for name in ("report.md", "sub/weights.bin", "cache.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == file_mode, name
    for name in ("sub", "bundle"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == dir_mode, name


# ------------------------------------------------------------------------------------ item 11: a full disk


def _full_disk(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "predictions.csv"
    target.write_text("old\n")
    monkeypatch.setattr(io.os, "fsync", _full_disk)
    with pytest.raises(UserError, match=r"cannot write .*predictions\.csv: no space left on the device"):
        io.write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]

    def save(_tmp: Path) -> None:
        _full_disk()

    with pytest.raises(UserError, match="no space left"), io.atomic_dir(tmp_path / "bundle") as tmp:
        save(tmp)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]


# ------------------------------------------------------------------------------------ item 4: YAML


def test_a_key_written_twice_is_refused_naming_the_key_and_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("name: twice\ntrain:\n  epochs: 3\nseeds: [1]\ntrain:\n  epochs: 5\n")
    with pytest.raises(ConfigError, match=r"twice\.yaml: key 'train' is written twice .*lines 2 and 5"):
        load_config(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text("train:\n  lr: 1.0e-4\n  epochs: 2\n  lr: 1.0e-3\n")
    with pytest.raises(ConfigError, match=r"key 'lr' is written twice .*lines 2 and 4"):
        load_config(nested)
    result = runner.invoke(app, ["train", str(path)])
    one_error_line(result, "'train'", "lines 2 and 5")


def test_anchors_and_merge_keys_of_ordinary_size_still_work(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "name: a\nseeds: &s [1, 2]\ndata: &d {frames: 6, size: 32}\ntrain:\n  <<: {epochs: 2, lr: 0.1}\n  lr: 0.2\n"
    )
    cfg = load_config(path)
    assert cfg.seeds == [1, 2] and cfg.train.epochs == 2 and cfg.train.lr == 0.2


def test_a_yaml_alias_bomb_is_refused_before_it_is_expanded(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nname: bomb\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"expands to more than .* aliases"):
        load_config(path)
    assert time.perf_counter() - start < 5
    levels = ["&l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 7)]
    with pytest.raises(ConfigError, match="expands to more than"):
        load_config(None, ["seeds=[" + ", ".join(levels) + "]"])


# ------------------------------------------------------------------------------------ config values (11, 12, 20)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.size=100000", "invalid value for data.size: 100000 (must be at most 1024"),
        ("data.frames=100000", "invalid value for data.frames: 100000 (must be at most 256"),
        ("llm.lora.r=1000000", "invalid value for llm.lora.r"),
        ("eval.bootstrap=10000000000", "invalid value for eval.bootstrap"),
        ("train.weight_decay=-1", "invalid value for train.weight_decay: -1"),
        ("train.lr=.inf", "invalid value for train.lr: inf"),
        ("train.lr=inf", "invalid value for train.lr: inf"),
        ("train.lr=.nan", "invalid value for train.lr: nan"),
        ("llm.lora.dropout=2", "invalid value for llm.lora.dropout: 2"),
        ("llm.lora.alpha=-5", "invalid value for llm.lora.alpha: -5"),
        ("train.loss.gamma_neg=-1", "invalid value for train.loss.gamma_neg"),
        ("seeds=[1.5]", "invalid value for seeds: [1.5]"),
        ("seeds=[true]", "invalid value for seeds: [True]"),
        ("seeds=[1, 2, 1]", "seed 1 is listed twice"),
        ("seeds={a: 1}", "invalid value for seeds: {'a': 1} (expected a list of int"),
        ("data.aus=AU1", "invalid value for data.aus: 'AU1' (expected a list of str"),
        ("protocol.folds=[1, [2]]", "invalid value for protocol.folds"),
        ("name=../elsewhere", "invalid value for name: '../elsewhere'"),
        ("name=/tmp/abs", "invalid value for name: '/tmp/abs'"),
        ("name=..", "invalid value for name: '..'"),
        ("name=''", "invalid value for name: ''"),
        ("protocol.folds=['../x']", "invalid value for protocol.folds: '../x'"),
    ],
)
def test_config_values_that_would_break_later_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value)
    assert "generator object" not in str(err.value)


# ------------------------------------------------------------------------------------ item 1: (subject, sample)


def repeated_names_frame(seeds=(1, 2), subjects=8, names=("EP02_01f", "EP03_02f", "EP04_03f", "EP05_01"), seed=3):
    """Predictions where every subject has clips of the same names, as in CASME II and SynME."""
    rng = np.random.default_rng(seed)
    labels = rng.random((subjects, len(names), 3)) < 0.4
    records = []
    for s in seeds:
        for i in range(subjects):
            for j, name in enumerate(names):
                y = labels[i, j]
                p = np.clip(0.4 * y + 0.6 * rng.random(3), 0, 1)
                record = {"seed": s, "fold": f"{i + 1:02d}", "subject": f"{i + 1:02d}", "sample": name}
                record.update({f"prob_AU{k}": p[n] for n, k in enumerate((1, 2, 4))})
                record.update({f"label_AU{k}": int(y[n]) for n, k in enumerate((1, 2, 4))})
                records.append(record)
    return pd.DataFrame(records)


def test_compare_keys_samples_by_subject_and_name_and_ignores_row_order(tmp_path):
    frame = repeated_names_frame()
    run_a = make_run_dir(tmp_path / "a", frame, name="a")
    run_b = make_run_dir(tmp_path / "b", frame.sample(frac=1.0, random_state=7).reset_index(drop=True), name="b")
    result = runner.invoke(app, ["compare", str(run_a), str(run_b), "--json", "--bootstrap", "200"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["pairs"][0]["samples"] == 8 * 4  # not 4: names repeat across subjects
    assert all(row["diff"] == 0.0 for row in data["comparisons"] if row["diff"] is not None)
    assert aullm.evaluate(run_b).data["samples"] == 8 * 4  # evaluate's duplicate check keys the same way


def test_compare_names_subject_and_sample_when_a_clip_moves_to_another_subject(tmp_path):
    frame = repeated_names_frame()
    run_a = make_run_dir(tmp_path / "a", frame, name="a")
    moved = frame.copy()
    moved.loc[(moved["subject"] == "03") & (moved["sample"] == "EP05_01"), "subject"] = "09"
    run_b = make_run_dir(tmp_path / "b", moved, name="b")
    line = one_error_line(runner.invoke(app, ["compare", str(run_a), str(run_b)]), "different samples")
    assert "03/EP05_01" in line and "09/EP05_01" in line


def test_the_merged_predictions_are_ordered_by_subject_and_sample(tmp_path):
    frame = repeated_names_frame(seeds=(1,), subjects=3).assign(fold="casme2_to_samm")
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    folder = tmp_path / "folds" / "casme2_to_samm"
    folder.mkdir(parents=True)
    io.write_csv(shuffled, folder / "predictions.csv")
    io.write_csv(pd.DataFrame({"seed": [1], "epoch": [1], "loss": [0.5]}), folder / "train_log.csv")
    files = {n: (folder / n).stat().st_size for n in ("predictions.csv", "train_log.csv")}
    (folder / "done").write_text(json.dumps({"files": files}))
    assert collect_predictions(tmp_path, ["casme2_to_samm"]) == []
    merged = read_predictions(tmp_path / "predictions.csv")
    assert list(zip(merged["subject"], merged["sample"])) == sorted(zip(frame["subject"], frame["sample"]))


def test_a_run_compared_with_itself_is_warned_about(tmp_path, warnings_log):
    run_a = make_run_dir(tmp_path / "a", repeated_names_frame(), name="a")
    aullm.compare([run_a, tmp_path / "." / "a"], bootstrap=50)
    assert any("compared with itself" in m for m in warnings_log)


# ------------------------------------------------------------------------------------ item 9: verified finished work


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished tiny LOSO run (2 subjects) and its own copy of the data, copied fresh by each test."""
    base = tmp_path_factory.mktemp("trained")
    root = base / "synme"
    generate_synme(root, subjects=2, clips_per_subject=4, seed=2, size=96)
    config = tiny_config(base, root)
    workflows.train(load_config(config), base / "run")
    return base


@pytest.fixture
def run_copy(trained, tmp_path):
    """(config, run directory, data root) copied from the trained run, paths unchanged inside the config."""
    shutil.copytree(trained, tmp_path / "t")
    base = tmp_path / "t"
    config = base / "tiny.yaml"
    config.write_text(config.read_text().replace(str(trained), str(base)))
    cfg_file = base / "run" / "config.yaml"
    cfg_file.write_text(cfg_file.read_text().replace(str(trained), str(base)))
    return config, base / "run", base / "synme"


def _same_size_garbage(path: Path) -> None:
    text = path.read_text()
    digits = [i for i, c in enumerate(text) if c in "12345678" and text[i - 1] in "0123456789"]
    i = digits[len(digits) // 2]
    path.write_text(text[:i] + str(int(text[i]) + 1) + text[i + 1 :])


def test_a_fold_file_changed_at_the_same_size_is_trained_again_not_merged(run_copy, warnings_log):
    config, run, _ = run_copy
    before = (run / "predictions.csv").read_bytes()
    fold = sorted((run / "folds").iterdir())[0]
    size = (fold / "predictions.csv").stat().st_size
    _same_size_garbage(fold / "predictions.csv")
    assert (fold / "predictions.csv").stat().st_size == size
    assert not fold_is_done(fold)
    assert any("sha256 differs" in m and "predictions.csv" in m for m in warnings_log)
    workflows.train(load_config(config), run)
    assert fold_is_done(fold)
    assert (run / "predictions.csv").read_bytes() == before  # retrained to the same numbers, garbage not merged


def test_export_refuses_bit_flipped_fold_weights_naming_the_file(run_copy, tmp_path):
    _, run, _ = run_copy
    fold = sorted((run / "folds").iterdir())[0]
    weights = fold / "weights_seed1.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    result = runner.invoke(app, ["export", str(run), "--fold", fold.name, "--out", str(tmp_path / "b")])
    one_error_line(result, "weights_seed1.safetensors", "sha256")
    assert not (tmp_path / "b").exists()


def test_a_deleted_data_json_cannot_hide_changed_data(run_copy, warnings_log):
    config, run, root = run_copy
    (run / "data.json").unlink()
    folds = sorted(p.name for p in (run / "folds").iterdir())
    gone = root / "Cropped" / "sub01" / "EP17_04f"  # AUs 1+2, which other clips have too
    shutil.rmtree(gone)
    workflows.train(load_config(config), run)
    assert any("trained on other data" in m for m in warnings_log)
    data = json.loads((run / "data.json").read_text())
    assert any(gone.name in s["sample"] for s in data["skipped"]["train"])
    merged = read_predictions(run / "predictions.csv")
    assert gone.name not in set(merged.loc[merged["subject"] == "01", "sample"])
    for fold in folds:
        marker = json.loads((run / "folds" / fold / "done").read_text())
        assert marker["data"] == {"train": data["train"], "test": data["test"]}
        assert set(marker["sha256"]) == set(marker["files"])


# ------------------------------------------------------------------------------------ item 2: the run lock


def _lock_for(path: Path, pid: int, host: str | None = None) -> None:
    from aullm.core.lock import _proc_start

    holder = {
        "pid": pid,
        "host": host or socket.gethostname(),
        "started": "2025-01-01 10:00:00",
        "proc_start": _proc_start(pid),
        "command": "aullm train tiny.yaml",
    }
    path.write_text(json.dumps(holder))


def test_a_second_run_into_a_run_directory_in_use_is_refused_naming_the_holder(run_copy):
    config, run, _ = run_copy
    run = run.rename(run.parent / "tiny")  # where a sweep of tiny.yaml writes
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock_for(run / "lock", other.pid)
        start = time.perf_counter()
        line = one_error_line(runner.invoke(app, ["train", str(config), "--out", str(run)]), f"pid {other.pid}")
        assert "in use by" in line and socket.gethostname() in line
        assert time.perf_counter() - start < 20  # before preparing data or loading an LLM
        # a sweep into the same run directory, and a run of one fold of it, are refused the same way
        sweep = runner.invoke(app, ["sweep", str(config), "--out-root", str(run.parent)])
        one_error_line(sweep, f"pid {other.pid}")
        one_fold = runner.invoke(app, ["train", str(config), "--out", str(run), "--set", "protocol.folds=[1]"])
        one_error_line(one_fold, f"pid {other.pid}")
        on_ray = runner.invoke(app, ["train", str(config), "--out", str(run), "--executor", "ray"])
        one_error_line(on_ray, f"pid {other.pid}")  # the Ray driver holds the run directory the same way
    finally:
        other.kill()
        other.wait()
    # the holder is gone: its lock is stale, taken over with a warning, and released at the end
    result = runner.invoke(app, ["train", str(config), "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert f"taking over the lock of pid {other.pid}" in result.output and "no longer runs" in result.output
    assert not (run / "lock").exists()


def test_a_lock_from_another_host_is_refused_with_how_to_clear_it(run_copy):
    config, run, _ = run_copy
    _lock_for(run / "lock", 12345, host="gpu-node-7")
    line = one_error_line(runner.invoke(app, ["train", str(config), "--out", str(run)]), "pid 12345 on gpu-node-7")
    assert f"delete {run / 'lock'}" in line


def test_machines_sharing_a_run_directory_lock_only_their_own_folds(run_copy):
    from aullm.training import run_dir as rd

    config, run, _ = run_copy
    first = load_config(config, ["protocol.folds=[1]"])
    with rd.run_lock(first, run):
        assert (run / "lock.fold-1").is_file()
        with rd.run_lock(load_config(config, ["protocol.folds=[2]"]), run):
            assert (run / "lock.fold-2").is_file()
        again = load_config(config, ["protocol.folds=['01']"])
        with pytest.raises(UserError, match="already in use by this process"), rd.run_lock(again, run):
            pass
    assert not list(run.glob("lock*"))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # another machine's process training fold 3: a run of every fold is refused, one of fold 1 is not
        _lock_for(run / "lock.fold-3", other.pid)
        with pytest.raises(UserError, match=f"in use by pid {other.pid}"), rd.run_lock(load_config(config), run):
            pass
        with rd.run_lock(first, run):
            pass
    finally:
        other.kill()
        other.wait()


# ------------------------------------------------------------------------------------ item 20: run directories


def test_a_start_that_failed_after_writing_config_yaml_does_not_block_the_corrected_command(tmp_path, trained):
    root = trained / "synme"
    out = tmp_path / "run"
    bad = load_config(tiny_config(tmp_path, root), ["llm.name=no-such-llm-xyz"])
    with pytest.raises(UserError):  # fails where the LLM is loaded: after config.yaml, as on a Ray worker
        workflows.train(bad, out, executor=_LLMFailsAfterPlanning())
    assert (out / "config.yaml").is_file()
    good = load_config(tiny_config(tmp_path, root), ["train.epochs=1"])
    workflows.train(good, out)
    assert load_config(out / "config.yaml", resolved=True) == good
    assert (out / "metrics.json").is_file()


class _LLMFailsAfterPlanning:
    """An executor whose workers load the LLM (as Ray's do): the failure comes after the run was planned."""

    def run(self, plans, sink, progress):
        for plan in plans:
            plan.open_session()


def test_an_interrupted_or_running_run_is_not_called_not_a_run_directory(run_copy):
    _, run, _ = run_copy
    (run / "predictions.csv").unlink()
    (run / "metrics.json").unlink()
    line = one_error_line(runner.invoke(app, ["evaluate", str(run)]), "interrupted", "--out")
    assert "not a run directory" not in line and "2 fold(s) finished" in line
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock_for(run / "lock", other.pid)
        one_error_line(runner.invoke(app, ["evaluate", str(run)]), "still training", f"pid {other.pid}")
        one_error_line(runner.invoke(app, ["compare", str(run), str(run)]), "still training")
    finally:
        other.kill()
        other.wait()


def test_sweep_refuses_a_data_root_for_an_unknown_dataset(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("name: c\n")
    result = runner.invoke(app, ["sweep", str(config), "--out-root", str(tmp_path / "s"), "--data-root", "casme=/d"])
    one_error_line(result, "--data-root casme=/d", "unknown dataset 'casme'", "casme2")


# ------------------------------------------------------------------------------------ item 3: blank identity


def _manifest_root(tmp_path: Path, rows: str) -> Path:
    root = tmp_path / "m"
    for name in ("a", "b", "c"):
        write_frames(root / name, range(1, 7), "img{}.jpg")
    (root / "manifest.csv").write_text("subject,sample,path,AU1,AU2\n" + rows)
    return root


@pytest.mark.parametrize("frames", [True, False])
def test_a_manifest_row_with_a_blank_subject_sample_or_path_is_skipped_naming_the_row(tmp_path, frames):
    root = _manifest_root(tmp_path, "01,s1,a,1,0\n  ,s2,b,0,1\n02,   ,c,1,1\n02,s4,  ,1,0\n03,s5,c,0,1\n04,s6,b,1,1\n")
    cfg = DataConfig(dataset="manifest", root=str(root), aus=["AU1", "AU2"])
    index = load_index(cfg, frames=frames)
    assert list(index.df["sample"]) == ["s1", "s5", "s6"]
    reasons = [s["reason"] for s in index.skipped]
    assert reasons == [
        "no subject (manifest.csv line 3)",
        "no sample name (manifest.csv line 4)",
        "no path (manifest.csv line 5)",
    ]


def test_a_subject_that_would_lead_out_of_the_run_is_skipped(tmp_path):
    root = _manifest_root(tmp_path, "01,s1,a,1,0\n../../x,s2,b,0,1\n02,s3,c,1,1\n..,s4,a,1,0\n")
    index = load_index(DataConfig(dataset="manifest", root=str(root), aus=["AU1", "AU2"]), frames=True)
    assert sorted(index.df["subject"]) == ["01", "02"]
    assert [s["reason"].split(":")[0] for s in index.skipped] == [
        "subject '../../x' cannot name a fold folder",
        "subject '..' cannot name a fold folder",
    ]
    with pytest.raises(UserError, match="fold name"):
        fold_dir(tmp_path / "run", "..")


def test_a_clip_named_dot_dot_gets_a_folder_inside_out():
    from aullm.inference.explain import _folder_name

    assert _folder_name("..") == "clip" and _folder_name(".") == "clip"
    for name in ("../../etc", "01/EP02_01f", "/abs/clip", "...", "a\\..\\b"):
        folder = _folder_name(name)
        assert "/" not in folder and "\\" not in folder and folder.strip(".") != "", (name, folder)


# ------------------------------------------------------------------------------------ item 5: file or folder


def test_not_found_messages_say_file_or_folder(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    a_folder = tmp_path / "a_folder"
    a_folder.mkdir()
    write_casme2(tmp_path / "c2", casme2_clips(3, frames=6))
    (tmp_path / "c2" / "frames_file").write_text("x")
    cases = [
        (["data", "stats", "casme2", "--root", str(a_file)], f"dataset root {a_file} is a file, not a folder"),
        (["prepare", "casme2", "--root", str(a_file)], f"dataset root {a_file} is a file, not a folder"),
        (["data", "stats", "manifest", "--annotations", str(a_folder)], "is a folder, not a file"),
        (
            ["prepare", "casme2", "--root", str(tmp_path / "c2"), "--set", "data.frames_dir=frames_file"],
            "frames folder " + str(tmp_path / "c2" / "frames_file") + " is a file, not a folder",
        ),
        (["evaluate", str(a_file)], f"run directory {a_file} is a file, not a folder"),
        (["train", str(a_folder)], f"{a_folder} is a folder, not a"),
        (["data", "stats", "casme2", "--root", str(tmp_path / "nope")], "dataset root not found"),
    ]
    for args, words in cases:
        one_error_line(runner.invoke(app, args), words)


# ------------------------------------------------------------------------------------ item 20: data


def test_a_frame_folder_that_is_a_symlink_loop_is_named_so(tmp_path):
    write_casme2(tmp_path, casme2_clips(3, frames=6))
    folder = tmp_path / "Cropped" / "sub01" / "EP00_00f"
    shutil.rmtree(folder)
    folder.symlink_to(folder.name)
    index = load_index(DataConfig(dataset="casme2", root=str(tmp_path)), frames=True)
    (skipped,) = index.skipped
    assert "symbolic link that loops" in skipped["reason"] and "missing" not in skipped["reason"]


def test_two_coding_sheets_say_which_is_read(tmp_path, warnings_log):
    write_casme2(tmp_path, casme2_clips(3, frames=6))
    shutil.copy(tmp_path / "CASME2-coding-20140508.xlsx", tmp_path / "CASME2-coding-20130101.xlsx")
    load_index(DataConfig(dataset="casme2", root=str(tmp_path)), frames=False)
    (said,) = [m for m in warnings_log if "coding sheets" in m]
    assert "reading CASME2-coding-20140508.xlsx" in said and "CASME2-coding-20130101.xlsx" in said
    assert "data.annotations" in said


def test_a_blank_subject_in_a_sheet_is_named_as_such(tmp_path):
    clips = casme2_clips(3, frames=6)
    clips[1].subject = None
    clips[2].subject = "   "
    write_casme2(tmp_path, clips)
    index = load_index(DataConfig(dataset="casme2", root=str(tmp_path)), frames=True)
    assert [s["reason"].split(" (")[0] for s in index.skipped] == ["no subject", "no subject"]


def test_frames_of_different_sizes_under_a_face_crop_skip_the_clip_naming_it(tmp_path):
    from aullm.data.clips import FrameError
    from aullm.data.decode import read_frames
    from aullm.data.index import ClipSource

    folder = tmp_path / "clip"
    paths = write_frames(folder, range(1, 7), "img{}.jpg", size=48)
    Image.new("L", (96, 96), 100).save(folder / "img3.jpg")
    with pytest.raises(FrameError, match=r"different sizes \(48×48, 96×96\).*face crop"):
        read_frames(ClipSource("frames", paths), 32, (4, 4, 40, 40))
    assert read_frames(ClipSource("frames", paths), 32, None).shape == (6, 32, 32)  # no crop: resized, warned


# ------------------------------------------------------------------------------------ item 11: tracebacks


def test_evaluate_on_a_run_it_cannot_write_says_so_and_offers_out(run_copy, tmp_path, monkeypatch):
    from aullm.evaluation import run_scores

    _, run, _ = run_copy
    real = os.access

    def access(path, mode):  # as on a read-only file system: readable, not writable
        return False if Path(path) == run and mode & os.W_OK else real(path, mode)

    monkeypatch.setattr(run_scores.os, "access", access)
    line = one_error_line(runner.invoke(app, ["evaluate", str(run)]), "cannot write metrics.json", "--out DIR")
    assert "read-only" in line
    result = runner.invoke(app, ["evaluate", str(run), "--out", str(tmp_path / "elsewhere")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "elsewhere" / "metrics.json").read_text())["samples"] == 8
    aullm.report([run], tmp_path / "report")  # a report of a read-only run still works


def test_a_fold_folder_replaced_by_a_file_is_one_line_before_training(run_copy):
    config, run, _ = run_copy
    fold = sorted((run / "folds").iterdir())[0]
    shutil.rmtree(fold)
    fold.write_text("not a folder")
    line = one_error_line(runner.invoke(app, ["train", str(config), "--out", str(run)]), str(fold), "is a file")
    assert "move it away" in line
    assert fold.read_text() == "not a folder"


def test_a_stray_fold_folder_is_named_with_advice_that_works(run_copy):
    config, run, _ = run_copy
    shutil.copytree(sorted((run / "folds").iterdir())[0], run / "folds" / "99")
    line = one_error_line(runner.invoke(app, ["evaluate", str(run)]), "lacks fold 99", "move folds/99 out")
    line = one_error_line(runner.invoke(app, ["train", str(config), "--out", str(run)]), "99", "no fold of this run")
    assert "move it out of the run directory" in line
    shutil.move(run / "folds" / "99", run.parent / "99")  # the advice works
    assert runner.invoke(app, ["evaluate", str(run)]).exit_code == 0


def test_crop_out_and_size_problems_are_one_line_before_any_work(tmp_path):
    clip = tmp_path / "clip"
    write_frames(clip, range(1, 7), "img{}.jpg", size=48)
    blocker = tmp_path / "a_file"
    blocker.write_text("mine")
    base = ["crop", str(clip), "--mode", "detect"]
    one_error_line(runner.invoke(app, [*base, "--out", str(blocker)]), str(blocker), "is an existing file")
    one_error_line(runner.invoke(app, [*base, "--out", str(blocker / "x")]), "is a file, not a folder")
    one_error_line(runner.invoke(app, [*base, "--out", "/proc/1/crops"]), "not writable")
    one_error_line(runner.invoke(app, [*base, "--out", str(tmp_path / "o"), "--size", "100000"]), "--size 100000")
    assert blocker.read_text() == "mine"


def test_bootstrap_counts_and_seeds_are_bounded(tmp_path):
    run_a = make_run_dir(tmp_path / "a", repeated_names_frame(), name="a")
    run_b = make_run_dir(tmp_path / "b", repeated_names_frame(), name="b")
    result = runner.invoke(app, ["compare", str(run_a), str(run_b), "--bootstrap", "100000000000"])
    one_error_line(result, "--bootstrap 100000000000", "at most")
    one_error_line(runner.invoke(app, ["compare", str(run_a), str(run_b), "--seed", "-1"]), "--seed -1")
    with pytest.raises(ConfigError, match=r"eval\.bootstrap_seed"):
        load_config(None, ["eval.bootstrap_seed=-1"])


def _video_without_frames(path: Path) -> Path:
    import av

    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height = 64, 64
    container.start_encoding()
    container.close()
    return path


def test_a_video_with_no_frames_is_skipped_or_one_line(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    _video_without_frames(root / "empty.mp4")
    write_frames(root / "a", range(1, 7), "img{}.jpg")
    write_frames(root / "b", range(1, 7), "img{}.jpg")
    (root / "manifest.csv").write_text("subject,sample,path,AU1\n01,s1,empty.mp4,1\n01,s2,a,1\n02,s3,b,0\n")
    stats = aullm.datasets.stats("manifest", root, check_frames=True, face_crop="none", aus=["AU1"])
    (skipped,) = stats["skipped"]
    assert skipped["sample"] == "01/s1" and "has no frames" in skipped["reason"]
    one_error_line(runner.invoke(app, ["crop", str(root / "empty.mp4"), "--out", str(tmp_path / "o")]), "no frames")


# ------------------------------------------------------------------------------------ item 20: bundles and folds


def test_a_bundle_threshold_outside_0_1_is_refused(run_copy, tmp_path):
    from aullm.core.hashing import sha256_file
    from aullm.inference.bundle import BundleError

    _, run, _ = run_copy
    bundle = aullm.export(run, tmp_path / "bundle", fold="01")
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["thresholds"]["AU4"] = 5
    (bundle / "bundle.json").write_text(json.dumps(meta))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["bundle.json"] = sha256_file(bundle / "bundle.json")  # edited with the manifest updated
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="gives AU4 the threshold 5"):
        aullm.Detector.load(bundle)


def test_a_fold_with_no_positive_of_an_au_in_its_training_clips_is_named(run_copy, warnings_log):
    config, run, _ = run_copy
    workflows.train(load_config(config), run.parent / "again")
    # SynME seed 2: AU14 occurs only in subject 01, so fold 01 trains without a positive of it
    assert any(m.startswith("fold 01: ") and "AU14" in m and "no positive" in m for m in warnings_log)


def test_save_final_on_a_subset_of_folds_says_when_the_bundle_comes(run_copy, warnings_log):
    config, run, _ = run_copy
    cfg = load_config(config, ["protocol.folds=[1]", "train.save_final=true"])
    workflows.train(cfg, run.parent / "part")
    said = [m for m in warnings_log if "model bundle is written once every fold is done" in m]
    assert said and "02" in said[0]
    assert not (run.parent / "part" / "bundle").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["synth", "OUT", "--subjects", "100000000", "--clips-per-subject", "100000000"], "at most 1000 subjects"),
        (["synth", "OUT", "--long", "--videos", "100000000"], "--videos 100000000 must be 1..10000"),
        (["bench", "step", "--llm", "tiny-random", "--batch", "100000000"], "--batch must be at most 4096"),
    ],
)
def test_counts_a_flag_sets_are_bounded_before_anything_is_allocated(tmp_path, args, words):
    args = [str(tmp_path / "synme") if a == "OUT" else a for a in args]
    start = time.perf_counter()
    one_error_line(runner.invoke(app, args), words)
    assert time.perf_counter() - start < 20
    assert not (tmp_path / "synme").exists()


def test_a_full_disk_on_the_command_line_is_one_line(tmp_path, monkeypatch):
    run = make_run_dir(tmp_path / "run", repeated_names_frame(), name="run")
    monkeypatch.setattr(io.os, "fsync", _full_disk)
    line = one_error_line(runner.invoke(app, ["evaluate", str(run)]), "metrics.json", "no space left")
    assert "nothing half-written" in line
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
