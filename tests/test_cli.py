from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from aullm.cli import app

runner = CliRunner()

COMMANDS = [
    ["synth"],
    ["data", "stats"],
    ["prepare"],
    ["train"],
    ["evaluate"],
    ["report"],
    ["predict"],
    ["bench", "step"],
    ["demo"],
]


def test_root_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("synth", "data", "prepare", "train", "evaluate", "report", "predict", "bench", "demo"):
        assert name in result.output


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    assert len(result.output.strip().splitlines()) > 3


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aullm", *args], capture_output=True, text=True, timeout=120)


def test_bad_yaml_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  frames: [1, 2\n")
    result = run_cli("train", str(bad), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot parse config file"), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "overrides", "needle"),
    [
        ("data: {frame: 6}\n", [], "unknown config key data.frame"),
        ("train: {epochs: many}\n", [], "invalid value for train.epochs"),
        ("", ["--set", "model.variant=everything"], "invalid value for model.variant"),
        ("", ["--set", "train.epochs"], "error: --set expects section.key=value, got 'train.epochs'"),
    ],
)
def test_bad_config_values_exit_2(tmp_path, text, overrides, needle):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    result = runner.invoke(app, ["train", str(cfg), *overrides, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("aullm ")
