"""How far aullm's AU-LLM is from the authors' Net_EnhancedFusion_LLM on the same weights: the largest logit gap
against the re-implementation in tests/reference_au_llm.py, with aullm's earlier LED stabiliser and SE biases
(set to zero, since the reference has none) and with the reference's.

    .venv/bin/python benchmarks/led_reference_gap.py --llm smollm2-135m
    .venv/bin/python benchmarks/led_reference_gap.py --llm tiny-random --clips synme:data/synme

Clips are uniform random frames, or the first clips of a SynME copy (`synme:PATH`). Float32 on the CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from aullm.config import config_from_dict
from aullm.models.au_llm.modeling_au_llm import AULLM
from aullm.models.factory import build_model
from aullm.models.llm.loading import load_llm
from reference_au_llm import REFERENCE_PROMPT, reference_au_llm_logits

AUS = ["AU1", "AU2", "AU4", "AU7", "AU12", "AU14", "AU15", "AU17"]


def _clips(source: str, count: int) -> torch.Tensor:
    if source == "random":
        return torch.rand(count, 6, 64, 64, generator=torch.Generator().manual_seed(0))
    from aullm.data.cache import prepare_dataset
    from aullm.data.clips import sample_batch

    root = source.split(":", 1)[1]
    cfg = config_from_dict({"data": {"dataset": "synme", "root": root}})
    data = prepare_dataset(cfg.data)
    return sample_batch(data, np.arange(count), train=False, rng=None, frames=6)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--clips", default="random", help="random, or synme:PATH")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    clips = _clips(args.clips, args.count)
    llm = load_llm(config_from_dict({"llm": {"name": args.llm}}).llm, torch.device("cpu"))
    for label, model_keys in (
        ("aullm before (stabiliser 1.0 on [0,1] pixels, SE biases zeroed)", {"led_stability": 255.0, "se_bias": True}),
        ("aullm now (reference stabiliser 1e-8 on 0-255 pixels, no SE biases)", {}),
    ):
        cfg = config_from_dict(
            {
                "data": {"frames": 6, "size": 64, "aus": AUS},
                "model": {"name": "au_llm", "prompt": REFERENCE_PROMPT, **model_keys},
                "llm": {"name": args.llm, "prefix_cache": False},
            }
        )
        model = build_model(cfg, AUS, llm, seed=args.seed)
        assert isinstance(model, AULLM)
        model.eval()
        with torch.no_grad():
            if model_keys.get("se_bias"):
                model.backbone.se.fc1.bias.zero_()
                model.backbone.se.fc2.bias.zero_()
            ours = model(clips).logits
            theirs = reference_au_llm_logits(model, clips)
        gap = (ours - theirs).abs().max().item()
        print(f"{label}: max |logit gap| {gap:.2e} (logits up to {theirs.abs().max().item():.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
