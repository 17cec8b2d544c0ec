"""What an AU flip does inside trained AULLM++ fold models (issue #31, rounds 3–4).

Loads a finished run's fold weights (`folds/F/weights_seedS.safetensors`) and, on each fold's test clips, reports
how decided R-AUGNN's node states are and how far flipping every state moves the Instruction Token and the
predicted probabilities: the soft flip CCR used (s → 1 − s) and the hard one (s → 1 if s < 0.5 else 0). And how
much per-clip information the prediction takes from each token: how far the probabilities move when the IT (or
the CT) handed to the LLM is replaced by its mean over the fold's test clips (`prob_moved_it_mean`, `_ct_mean`).

    python benchmarks/probe_aullmpp_states.py RUN_DIR DATA_ROOT [--folds 01 02] [--seeds 1]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from aullm.config import load_config
from aullm.data.cache import prepare_dataset
from aullm.data.clips import sample_batch
from aullm.models.aullmpp.graph import RAUGNN
from aullm.models.factory import build_model
from aullm.models.llm.loading import load_llm
from aullm.training import run_dir
from aullm.training.session import subject_key


def _clip_mean(tokens: torch.Tensor) -> torch.Tensor:
    """Every clip's tokens replaced by their mean over the clips: what is left carries no per-clip information."""
    return tokens.mean(dim=0, keepdim=True).expand_as(tokens)


def probe(model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Node-state spread and the IT / probability change of flipping every state, soft and hard."""
    with torch.no_grad():
        ct, x_att = model.content_token(x)
        nodes, state_logits = model.graph.encode_nodes(x_att)
        states = torch.sigmoid(state_logits)

        def read(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            it = model.graph.propagate(nodes, s).tokens
            return it, torch.sigmoid(model._logits(model.sequence(ct, it)))

        it, p = read(states)
        every = torch.ones_like(states, dtype=torch.bool)
        result = {
            "state_mean": states.mean().item(),
            "state_sd": states.std().item(),
            "state_max_from_half": (states - 0.5).abs().max().item(),
            "it_norm": it.norm(dim=-1).mean().item(),
        }
        for kind in ("soft", "hard"):
            it_f, p_f = read(RAUGNN.apply_flip(states, every, kind))
            result[f"it_moved_{kind}"] = (it_f - it).norm(dim=-1).mean().item()
            result[f"prob_moved_{kind}"] = (p_f - p).abs().mean().item()
        for name, seq in (("it", model.sequence(ct, _clip_mean(it))), ("ct", model.sequence(_clip_mean(ct), it))):
            result[f"prob_moved_{name}_mean"] = (torch.sigmoid(model._logits(seq)) - p).abs().mean().item()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("data", help="the run's data root (as data.root)")
    parser.add_argument("--folds", nargs="*", default=None, help="fold folders (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[1])
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.run / "config.yaml")
    cfg.data.root = args.data
    data = prepare_dataset(cfg.data)
    aus = list(cfg.data.aus)
    llm = load_llm(cfg.llm, torch.device("cpu"))
    subjects = sorted(set(data.subjects.tolist()))
    rows = np.arange(len(data))
    folds_dir = args.run / run_dir.FOLDS
    folds = sorted(p.name for p in folds_dir.iterdir() if p.is_dir())
    model = build_model(cfg, aus, llm, seed=0).eval()  # every trained tensor is replaced per fold-seed (strict load)
    for fold in args.folds or folds:
        subject = next(s for s in subjects if subject_key(s) == subject_key(fold))  # fold folders name subjects
        x = sample_batch(
            data, rows[data.subjects == subject], train=False, rng=np.random.default_rng(0), frames=cfg.data.frames
        )
        for seed in args.seeds:
            model.load_trainable_state_dict(load_file(str(folds_dir / fold / run_dir.weights_name(seed))))
            row = {"fold": fold, "subject": str(subject), "seed": seed, **probe(model, x)}
            print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()
