"""The demo: SynME + LOSO AU-LLM with the embedded SmolLM2-135M, end to end on a 2-core CPU in minutes."""

from __future__ import annotations

import time
from pathlib import Path

from aullm.config import Config, load_config
from aullm.core.console import logger
from aullm.data.synme import DEMO_SYNME, generate_synme, written_with


def demo_config(data_root: Path) -> Config:
    """The shipped demo config, pointed at the SynME copy in `data_root`."""
    cfg = load_config("demo")
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
    from aullm.training.run_dir import check_run_dir
    from aullm.workflows.experiment import train

    cfg = demo_config(data_root)
    check_run_dir(cfg, out)  # before generating any data
    ensure_synme(data_root)
    return train(cfg, out)
