"""Hostile inputs, round 3 (issue 32): sample identity, the run lock, verified finished work, and the bad inputs a
third campaign found. Each test failed before its fix."""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aullm.cli import app
from aullm.config import load_config
from aullm.core import io
from aullm.core.errors import ConfigError, UserError
from test_bad_inputs import one_error_line

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
