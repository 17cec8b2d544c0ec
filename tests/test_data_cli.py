"""`aullm data stats` and `aullm prepare` (docs/design.md, Command line), including the one-line exit-2 errors."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from aullm.cli import app
from fixtures_data import (
    CASME2_HEADER,
    SAMM_EXPECTED,
    Clip,
    _write_xlsx,
    casme2_clips,
    samm_correction_clips,
    write_casme2,
    write_samm,
)

runner = CliRunner()


def test_stats_samm_annotations_only_json(tmp_path):
    sheet = write_samm(tmp_path, samm_correction_clips(), with_frames=False)
    result = runner.invoke(app, ["data", "stats", "samm", "--annotations", str(sheet), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert list(stats)[:6] == ["dataset", "samples", "usable", "subjects", "au_counts", "skipped"]  # the contract
    assert (stats["folders_checked"], stats["frames_checked"]) == (False, False)
    assert stats["dataset"] == "samm"
    for key, value in SAMM_EXPECTED.items():
        assert stats[key] == value, key
    assert stats["skipped"] == [
        {"sample": "023/023_1_1", "reason": "ambiguous Action Units '4 or 7' (or_policy: drop_sample)"}
    ]


def test_stats_casme2_with_frames_table(tmp_path):
    clips = [*casme2_clips(4, frames=5), Clip(9, "EP_gone", 1, 2, 4, "4", frames="none")]
    write_casme2(tmp_path, clips)
    result = runner.invoke(app, ["data", "stats", "casme2", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "usable    4" in result.stdout and "samples   5" in result.stdout
    assert "09/EP_gone: frame folder missing" in result.stdout
    assert "checked   sheet and frame folders, no clip decoded: prepare may skip more" in result.stdout


def test_stats_check_frames_decodes_what_the_plain_stats_cannot_see(tmp_path):
    """A corrupt JPEG passes the folder check; only decoding finds it, as prepare would."""
    clips = casme2_clips(4, frames=6)
    clips[2].frames = "corrupt"
    sheet = write_casme2(tmp_path, clips)
    plain = json.loads(runner.invoke(app, ["data", "stats", "casme2", "--root", str(tmp_path), "--json"]).stdout)
    assert (plain["usable"], plain["skipped"], plain["frames_checked"]) == (4, [], False)
    args = ["data", "stats", "casme2", "--root", str(tmp_path), "--check-frames"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    checked = json.loads(result.stdout)
    assert (checked["samples"], checked["usable"], checked["frames_checked"]) == (4, 3, True)
    ((bad,),) = [[s for s in checked["skipped"]]]
    assert bad["sample"] == f"{clips[2].subject:02d}/{clips[2].filename}" and "unreadable image" in bad["reason"]
    prepared = runner.invoke(app, ["prepare", "casme2", "--root", str(tmp_path)])
    assert "3 casme2 samples" in prepared.stdout and "read from the cache" in prepared.stdout  # same settings
    human = runner.invoke(app, args)
    assert "usable    3" in human.stdout and "checked   every clip decoded as prepare does" in human.stdout
    sheet_only = runner.invoke(app, ["data", "stats", "casme2", "--annotations", str(sheet)])
    assert "checked   the sheet only, no frame read" in sheet_only.stdout
    no_root = runner.invoke(app, ["data", "stats", "casme2", "--annotations", "x.xlsx", "--check-frames"])
    assert no_root.exit_code == 2 and "--check-frames decodes the frames: give --root DIR" in no_root.output


def test_prepare_command_caches(tmp_path):
    write_casme2(tmp_path, casme2_clips(3, frames=5))
    args = ["prepare", "casme2", "--root", str(tmp_path), "--set", "data.size=16"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "3 casme2 samples (clip, 16px) decoded and cached" in first.stdout
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "read from the cache" in second.stdout


def test_missing_column_exit_2(tmp_path):
    header = [c for c in CASME2_HEADER if c != "Action Units"]
    sheet = _write_xlsx(tmp_path / "CASME2-coding-1.xlsx", [("Sheet1", [header])])
    result = runner.invoke(app, ["data", "stats", "casme2", "--annotations", str(sheet)])
    assert result.exit_code == 2
    assert "missing column 'Action Units'" in result.output


def test_usage_errors_exit_2(tmp_path):
    assert runner.invoke(app, ["data", "stats", "casme2"]).exit_code == 2
    bad = runner.invoke(app, ["data", "stats", "kinetics", "--annotations", str(tmp_path / "x.xlsx")])
    assert bad.exit_code == 2 and "data.dataset" in bad.output
    bad_set = runner.invoke(app, ["prepare", "casme2", "--root", str(tmp_path), "--set", "data.size=4"])
    assert bad_set.exit_code == 2 and "data.size" in bad_set.output


def test_missing_root_is_one_line_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aullm", "prepare", "casme2", "--root", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: dataset root not found: {tmp_path / 'nope'}"]
    missing_sheet = subprocess.run(
        [sys.executable, "-m", "aullm", "data", "stats", "samm", "--annotations", str(tmp_path / "no.xlsx")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing_sheet.returncode == 2
    assert missing_sheet.stderr.strip().splitlines() == [f"error: annotation file not found: {tmp_path / 'no.xlsx'}"]
