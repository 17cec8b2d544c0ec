"""The demo: SynME + LOSO AU-LLM with the embedded SmolLM2-135M, end to end on a 2-core CPU in ≤ 10 minutes."""

from __future__ import annotations

import time
from importlib.resources import files
from pathlib import Path

from aullm.config import Config, load_config
from aullm.console import logger
from aullm.data.synthetic import generate_synme

DEMO_SYNME = {"subjects": 6, "clips_per_subject": 20, "seed": 0, "size": 128}


def demo_config(data_root: Path) -> Config:
    """The shipped demo config, pointed at the SynME copy in `data_root`."""
    cfg = load_config(Path(str(files("aullm") / "demo.yaml")))
    cfg.data.root = str(data_root)
    return cfg


def ensure_synme(root: Path) -> Path:
    """Generate the demo's SynME once; later demos reuse it."""
    if not any(root.glob("CASME2-coding-*.xlsx")):
        start = time.perf_counter()
        generate_synme(root, **DEMO_SYNME)
        logger.info("generated SynME in %s (%.1fs)", root, time.perf_counter() - start)
    return root


def run_demo(out: Path, data_root: Path) -> Path:
    from aullm.training.protocols import run_experiment

    cfg = demo_config(ensure_synme(data_root))
    return run_experiment(cfg, out)
