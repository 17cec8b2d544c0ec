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
    out = tmp_path / "check"
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--smoke", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads((out / "device_check.json").read_text())
    assert report["smoke"] and report["ok"]
    assert set(report["sections"]) == {"step", "fold", "loso"}
    step, fold, loso = (report["sections"][k] for k in ("step", "fold", "loso"))
    assert step["max_abs_diff"] < 1e-4 and step["bf16_exactness"]["ok"]
    assert fold["fast"]["epoch_s"] > 0 and fold["naive"]["projected_26x350_min"] > 0
    assert loso["folds"] == ["01", "02"] and loso["missing_files"] == []
    markdown = (out / "device_check.md").read_text()
    for heading in ("LLM training step", "Fold-sized training", "2-fold LOSO of SynME"):
        assert heading in markdown
