"""The README's Python example runs as written, from a folder outside the repository, against the installed package,
and the configs it names by name ship inside the package (a wheel holds them)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import aullm

ROOT = Path(__file__).resolve().parents[1]
#: The demo config trains a 135M LLM for 18 epochs; the test swaps in tiny settings through the example's own
#: override list and runs every other line as written.
TINY = ["llm.name=tiny-random", "train.epochs=1", "train.batch_size=8", "data.size=32", "eval.bootstrap=50"]
#: What the example presumes (it says so): `aullm demo` ran in this folder (data/synme, runs/demo), and `frames`
#: is a clip the reader decoded. runs/demo is trained with the same tiny settings.
SETUP = f"""
from pathlib import Path
import numpy as np
from PIL import Image
import aullm
assert not Path(aullm.__file__).resolve().is_relative_to(Path.cwd().resolve())
aullm.synth("data/synme", subjects=6, clips_per_subject=20, preset="demo")  # the demo's data (README, SynME)
aullm.train(aullm.load_config("demo", ["data.root=data/synme", *{TINY!r}]), out="runs/demo")
clip = Path("data/synme/Cropped/sub01/EP01_03")
frames = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sorted(clip.iterdir())])
"""


def readme_python_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python\n", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]


@pytest.mark.slow
def test_the_readme_python_example_runs_outside_the_repository(tmp_path: Path) -> None:
    example = readme_python_example()
    overrides = '["data.root=data/synme"]'
    assert example.count(overrides) == 1, "the example's override list changed: update TINY's substitution"
    example = example.replace(overrides, repr(["data.root=data/synme", *TINY]))
    env = {**os.environ, "PYTHONPATH": str(Path(aullm.__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SETUP + example + "\nprint('EXAMPLE-DONE', run.bundle is not None)\n"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "EXAMPLE-DONE True" in done.stdout
    assert "f1_macro" in done.stdout and "AU4_prob" in done.stdout  # the scores, the predictions, the comparison


def test_every_shipped_config_is_loadable_by_name_and_listed() -> None:
    from aullm.config import load_config, shipped_configs

    shipped = aullm.configs()
    assert {"demo", "casme2_au_llm_qwen2", "samm_au_llm_qwen2.5", "synme_demo_sssnet_led"} <= set(shipped)
    assert set(shipped) == set(shipped_configs()) and len(shipped) > 100
    assert all(description for description in shipped.values())
    assert len(set(shipped.values())) == len(shipped), "two configs share a description"
    assert load_config("casme2_au_llm_qwen2").name == "casme2_au_llm_qwen2"
    assert aullm.load_config("demo", ["train.epochs=2"]).train.epochs == 2


def test_a_config_argument_that_is_no_file_and_no_name_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(aullm.ConfigError, match="did you mean casme2_au_llm_qwen2"):
        aullm.load_config("casme2_au_lm_qwen2")
    with pytest.raises(aullm.ConfigError, match="the shipped config of that name is demo"):
        aullm.load_config("demo.yaml")
    with pytest.raises(aullm.ConfigError, match="is a folder"):
        aullm.load_config(tmp_path)


def test_a_file_wins_over_the_shipped_config_of_the_same_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("demo").write_text("name: mine\n")
    assert aullm.load_config("demo").name == "mine"


def test_aullm_configs_lists_names_and_descriptions(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aullm.cli import app

    result = CliRunner().invoke(app, ["configs"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "Table 1 (CASME II), row AU-Qwen2(1.5B)" in lines["casme2_au_llm_qwen2"]
    assert "aullm demo" in lines["demo"]
    bad = CliRunner().invoke(app, ["train", "no_such_config", "--out", str(tmp_path / "run")])
    assert bad.exit_code == 2 and "neither a file nor the name of a shipped config" in bad.output
    bad = CliRunner().invoke(app, ["sweep", "demo", "synme_demo_resnet99", "--out-root", str(tmp_path / "runs")])
    assert bad.exit_code == 2 and "did you mean synme_demo_resnet34" in bad.output


@pytest.mark.slow
def test_the_wheel_ships_every_config(tmp_path: Path) -> None:
    """What `pip install aullm` gets: the built wheel holds src/aullm/configs/*.yaml (package data)."""
    pytest.importorskip("setuptools")
    source = tmp_path / "source"  # a copy: building in place would leave build/ and *.egg-info in the checkout
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("aullm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"aullm/configs/{p.name}" for p in (ROOT / "src" / "aullm" / "configs").glob("*.yaml")}
    assert shipped and shipped <= names
    assert "aullm/reporting/templates/video_report.html.j2" in names  # predict --report's template
