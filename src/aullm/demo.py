"""The demo: SynME + LOSO AU-LLM with the embedded SmolLM2-135M, end to end on a 2-core CPU in ≤ 10 minutes."""

from __future__ import annotations

import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from aullm.config import Config, load_config
from aullm.console import logger
from aullm.data.synthetic import SynMEParams, generate_synme, written_with

# The demo's SynME is easier than the default one, so that a 10-minute CPU run can show learning on all 8 AUs:
# - more repression and sadness clips than CASME II's marginals, so the mouth AUs 14, 15, 17 have ~20 positives
#   each in 6 subjects' 120 clips instead of ~9;
# - those mouth AUs (whose bumps move little texture) at 1.25-1.4x amplitude;
# - milder head motion (about half), fewer blinks, apex in the first half of the clip. Head motion alone is then
#   smaller than the AU motion, though all nuisances together still change the frames more than the AUs do.
# The default SynME (`aullm synth`) keeps CASME II-like rates and nuisances stronger than the signal.
DEMO_PARAMS = SynMEParams(
    head_shift_px=(0.2, 0.8),
    head_rot_deg=(0.0, 0.4),
    head_scale=0.004,
    tremor_px=0.05,
    blink_prob=0.25,
    apex_at=(0.25, 0.5),
    emotions=(
        ("others", 0.26),
        ("disgust", 0.21),
        ("happiness", 0.14),
        ("repression", 0.18),
        ("surprise", 0.10),
        ("sadness", 0.11),
    ),
    au_gain=((14, 1.25), (15, 1.25), (17, 1.4)),
)
DEMO_SYNME: dict[str, Any] = {"subjects": 6, "clips_per_subject": 20, "seed": 0, "size": 128, "params": DEMO_PARAMS}


def demo_config(data_root: Path) -> Config:
    """The shipped demo config, pointed at the SynME copy in `data_root`."""
    cfg = load_config(Path(str(files("aullm") / "demo.yaml")))
    cfg.data.root = str(data_root)
    return cfg


def ensure_synme(root: Path) -> Path:
    """Generate the demo's SynME once; later demos reuse it, and regenerate a copy made with other settings."""
    if not written_with(root, **DEMO_SYNME):
        if (root / "synme.json").is_file():
            logger.info("%s holds SynME with other settings than the demo's: regenerating it", root)
        start = time.perf_counter()
        generate_synme(root, **DEMO_SYNME)
        logger.info("generated SynME in %s (%.1fs)", root, time.perf_counter() - start)
    return root


def run_demo(out: Path, data_root: Path) -> Path:
    from aullm.training.protocols import run_experiment

    cfg = demo_config(ensure_synme(data_root))
    return run_experiment(cfg, out)
