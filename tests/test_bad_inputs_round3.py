"""Hostile inputs, round 3 (issue 32): sample identity, the run lock, verified finished work, and the bad inputs a
third campaign found. Each test failed before its fix."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from aullm.core import io
from aullm.core.errors import UserError

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
