"""Where one training step of the demo's AU-LLM (batch 16, SmolLM2-135M, 6 × 64 × 64 clips) spends its wall time:
backbone, Enhanced Fusion Projector and LLM forward, the whole backward pass, and the trainer's (fused) Adam.

    .venv/bin/python benchmarks/bench_demo_step.py              # 8 steps, the first 2 untimed
    .venv/bin/python benchmarks/bench_demo_step.py --batch 256  # a fold-sized batch

Not run by the test suite. Medians with (min–max) over the timed steps, and the machine's load average.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from typing import Any

import torch

from aullm.config import config_from_dict
from aullm.core.memory import keep_freed_memory
from aullm.models.factory import build_model
from aullm.models.llm.loading import load_llm
from aullm.training.trainer import make_optimizer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="steps in all; the first 2 are warm-up")
    parser.add_argument("--llm", default="smollm2-135m")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the CLI does

    cfg = config_from_dict({"data": {"size": 64}, "llm": {"name": args.llm}, "train": {"batch_size": args.batch}})
    loaded = load_llm(cfg.llm, torch.device("cpu"))
    model: Any = build_model(cfg, cfg.data.aus, loaded, seed=1)
    model.train()
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], lr=5e-4, weight_decay=0.005)
    generator = torch.Generator().manual_seed(0)
    clips = torch.rand(args.batch, 1, cfg.data.frames, cfg.data.size, cfg.data.size, generator=generator)
    labels = (torch.rand(args.batch, len(cfg.data.aus), generator=generator) < 0.3).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()

    parts = ["backbone forward", "EFP forward", "LLM forward", "head + loss", "backward (all parts)", "Adam", "step"]
    times: dict[str, list[float]] = {name: [] for name in parts}
    marks: list[float] = []
    # The model's own forward runs; hooks mark the end of each part, so the split holds for every variant.
    for module in (model.backbone, model.projector, model.reasoner):
        module.register_forward_hook(lambda *_: marks.append(time.perf_counter()))
    for step in range(args.steps):
        marks.clear()
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(clips).logits, labels)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        if step >= 2:  # warm-up: allocations, the LLM's first passes
            spans = [end - begin for begin, end in itertools.pairwise(marks)] + [marks[-1] - marks[0]]
            for name, seconds in zip(parts, spans, strict=True):
                times[name].append(seconds)

    whole = statistics.median(times["step"])
    print(f"\nAU-LLM ({args.llm}), batch {args.batch}, {torch.get_num_threads()} threads, median of {args.steps - 2}")
    print("| part | ms | (min–max) | share of the step |")
    print("|---|---:|---:|---:|")
    for name in parts:
        values = times[name]
        median = statistics.median(values)
        print(
            f"| {name} | {median * 1000:.1f} | {min(values) * 1000:.0f}–{max(values) * 1000:.0f} "
            f"| {100 * median / whole:.0f}% |"
        )
    load = os.getloadavg()
    print(f"\nload average (1, 5, 15 min): {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
