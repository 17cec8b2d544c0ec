"""Hostile inputs, round 3 (issue 32): sample identity, the run lock, verified finished work, and the bad inputs a
third campaign found. Each test failed before its fix."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import aullm
from aullm.cli import app
from aullm.config import load_config
from aullm.core import io
from aullm.core.errors import ConfigError, UserError
from aullm.data.synme import generate_synme
from aullm.training.run_dir import collect_predictions, fold_is_done, read_predictions
from aullm.workflows import experiment as workflows
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
