"""An untrained model bundle, written in seconds (no training): for tests of what predict does with a bundle's
outputs (tables, frame numbers, files), not of what a trained model predicts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

AUS = ["AU1", "AU2", "AU4", "AU7", "AU12", "AU14", "AU15", "AU17"]


def untrained_bundle(out: Path, *, longest_clip_frames: Optional[int] = 40, size: int = 32) -> Path:
    """au_llm on the tiny random LLM, its trainable weights as initialised, thresholds 0.5."""
    from aullm.config import config_from_dict
    from aullm.inference.bundle import write_bundle
    from aullm.models.factory import build_model
    from aullm.models.llm.loading import load_llm

    cfg = config_from_dict(
        {
            "name": "untrained",
            "seeds": [1],
            "data": {"dataset": "synme", "root": str(out.parent), "size": size, "frames": 6},
            "model": {"name": "au_llm"},
            "llm": {"name": "tiny-random"},
            "train": {"device": "cpu"},
        }
    )
    llm = load_llm(cfg.llm, torch.device("cpu"))
    model = build_model(cfg, AUS, llm)
    trained_on = {"fold": "untrained"}
    if longest_clip_frames is not None:
        trained_on["longest_clip_frames"] = longest_clip_frames
    return write_bundle(
        out,
        cfg,
        model.trainable_state_dict(),
        llm_reference=llm.reference,
        thresholds=dict.fromkeys(AUS, 0.5),
        threshold_source="untrained",
        trained_on=trained_on,
    )
