"""benchmarks/device_check.sh --smoke: the GPU check's own code, run on the CPU with the tiny-random LLM, so the
script is known to work on the day a GPU is available."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_device_check_smoke_runs_every_section_and_writes_its_report(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    out, work = tmp_path / "check", tmp_path / "scratch"
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--smoke", "--out", str(out), "--work", str(work)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    # Only the report lands in --out (a folder copied back from a GPU machine); data and runs go to --work.
    assert sorted(p.name for p in out.iterdir()) == ["device_check.json", "device_check.md"]
    assert (work / "loso_run" / "metrics.json").is_file()
    report = json.loads((out / "device_check.json").read_text())
    assert report["smoke"] and report["ok"] and report["finished"]
    assert set(report["sections"]) == {"step", "fold", "loso"}
    step, fold, loso = (report["sections"][k] for k in ("step", "fold", "loso"))
    assert step["max_abs_diff"] < 1e-4 and step["bf16_exactness"]["ok"]
    assert step["bf16_exactness"]["dtype"] == "bfloat16"  # the check ran in bf16, as on a GPU
    assert 0 < step["bf16_exactness"]["naive_vs_float32"] < 0.1
    assert fold["fast"]["epoch_s"] > 0 and fold["naive"]["projected_26x350_min"] > 0
    assert loso["folds"] == ["01", "02"] and loso["missing_files"] == []
    markdown = (out / "device_check.md").read_text()
    for heading in ("LLM training step", "Fold-sized training", "2-fold LOSO of SynME"):
        assert heading in markdown


# A Python without dacite, as on the lent GPU image: imports of it fail unless they come from the folder that
# device_check.sh installs the carried wheels into.
_WITHOUT_DACITE = """
import importlib.abc, importlib.machinery, sys

class _NoDacite(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] != "dacite":
            return None
        kit = [p for p in sys.path if "aullm-device-site" in p]
        spec = importlib.machinery.PathFinder.find_spec(name, path if path is not None else kit) if kit else None
        if spec is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return spec

sys.meta_path.insert(0, _NoDacite())
"""


def _python_without_dacite(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "no_dacite"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_WITHOUT_DACITE)
    return {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(site)}


def _dacite_wheel(into: Path) -> Path:
    """A wheel of the installed dacite (its files and dist-info, zipped as a wheel is)."""
    import zipfile
    from importlib.metadata import distribution

    dist = distribution("dacite")
    wheel = into / f"dacite-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if source.is_file() and "__pycache__" not in file.parts:
                archive.write(source, str(file))
    return wheel


def test_device_check_names_a_missing_dependency_and_how_to_carry_it(tmp_path: Path) -> None:
    env = {**_python_without_dacite(tmp_path), "DEVICE_KIT": str(tmp_path / "no_kit")}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--smoke", "--out", str(tmp_path / "check")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "'dacite'" in done.stderr and "device_kit.sh" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "check" / "device_check.json").exists()


def test_device_check_installs_the_carried_wheels_for_its_run_only(tmp_path: Path) -> None:
    kit = tmp_path / "kit"
    (kit / "wheels").mkdir(parents=True)
    _dacite_wheel(kit / "wheels")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**_python_without_dacite(tmp_path), "DEVICE_KIT": str(kit), "TMPDIR": str(scratch)}
    out = tmp_path / "check"
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--smoke", "--out", str(out), "--sections", "loso"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "installed 1 carried wheels" in done.stdout
    report = json.loads((out / "device_check.json").read_text())
    assert report["ok"] and report["sections"]["loso"]["missing_files"] == []
    assert not list(scratch.glob("aullm-device-site*"))  # the temporary install is gone
