"""How fast this CPU could train at best: its peak float32 GEMM rate and memory bandwidth, the arithmetic of the
backbone's and of a demo step's forward + backward (torch's FLOP counter), and the lower bounds on time they give.

    .venv/bin/python benchmarks/bench_bounds.py            # 2048³ GEMM and a 512 MB copy, medians of 7

A target below its bound cannot be met on this machine by any implementation of the same arithmetic; one just above
it needs every product at nearly the peak rate. The README's Speed section quotes these numbers. The bound counts
the arithmetic and Adam's memory traffic only (no pooling, normalisation or Python); it is an underestimate.
Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from aullm.config import config_from_dict, load_config
from aullm.data.synme import DEMO_SYNME
from aullm.models.blocks.backbone import AUBackbone
from aullm.models.factory import build_model
from aullm.models.llm.loading import load_llm
from reference_backbone import reference_forward


def demo_steps() -> int:
    """Training steps of `make demo`: one LOSO fold per subject, each training on the subjects that are neither
    tested nor held out for validation, for the demo config's epochs (read from the shipped `demo` config and
    DEMO_SYNME)."""
    import math

    cfg = load_config("demo")
    subjects, clips = DEMO_SYNME["subjects"], DEMO_SYNME["clips_per_subject"]
    training_clips = (subjects - 1 - cfg.eval.validation_subjects) * clips
    return subjects * cfg.train.epochs * math.ceil(training_clips / cfg.train.batch_size)


def _median_rate(work: Callable[[], object], amount: float, repeats: int) -> tuple[float, float, float]:
    """amount / seconds of `work`: median, min, max over `repeats` after two untimed runs."""
    for _ in range(2):
        work()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        rates.append(amount / (time.perf_counter() - start))
    return statistics.median(rates), min(rates), max(rates)


def _flops(step: Callable[[], torch.Tensor]) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        step().backward()
    return float(counter.get_total_flops())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=2048, help="side of the square GEMM that measures the peak")
    args = parser.parse_args(argv)

    a, b = torch.randn(args.size, args.size), torch.randn(args.size, args.size)
    gemm = _median_rate(lambda: a @ b, 2 * args.size**3 / 1e9, args.repeats)
    source = torch.empty(128 * 2**20)
    target = torch.empty_like(source)
    copy = _median_rate(lambda: target.copy_(source), 2 * source.numel() * 4 / 1e9, args.repeats)
    peak = gemm[0]

    torch.manual_seed(0)
    backbone = AUBackbone(frames=6, size=64).train()

    def backbone_flops(batch: int, reference: bool) -> float:
        clips = torch.rand(batch, 6, 64, 64)

        def step() -> torch.Tensor:
            out = reference_forward(backbone, clips) if reference else backbone(clips)
            return out.f_mid.sum() + out.f_high.sum()

        return _flops(step) / 1e9

    backbone_gflop = backbone_flops(256, reference=True)

    # Pre-packed products run outside the ops the FLOP counter sees: count with torch's own products.
    llm = {"name": "smollm2-135m", "prepack": False}
    cfg = config_from_dict({"data": {"size": 64}, "llm": llm, "train": {"batch_size": 16}})
    model = build_model(cfg, cfg.data.aus, load_llm(cfg.llm, torch.device("cpu")), seed=1).train()
    demo_clips = torch.rand(16, 1, cfg.data.frames, cfg.data.size, cfg.data.size)
    labels = (torch.rand(16, len(cfg.data.aus)) < 0.3).float()

    def demo_step() -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(model(demo_clips).logits, labels)

    # The first block computes candidates it then discards (docs: conv_pool); the bound counts the convolution's own.
    demo_gflop = _flops(demo_step) / 1e9 - backbone_flops(16, reference=False) + backbone_flops(16, reference=True)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    adam_gb = 7 * 4 * trainable / 1e9  # reads parameter, gradient and two moments, writes three (float32)
    demo_step_s = demo_gflop / peak + adam_gb / copy[0]

    print(f"{torch.get_num_threads()} threads, medians of {args.repeats}")
    print("| measurement | value |\n|---|---|")
    print(f"| float32 GEMM {args.size}³ | {gemm[0]:.1f} GFLOP/s ({gemm[1]:.1f}–{gemm[2]:.1f}) |")
    print(f"| copy 512 MB (read + write) | {copy[0]:.1f} GB/s ({copy[1]:.1f}–{copy[2]:.1f}) |")
    print(f"| backbone forward + backward, batch 256 | {backbone_gflop:.1f} GFLOP: ≥ {backbone_gflop / peak:.2f} s |")
    print(
        f"| demo step (AU-LLM, SmolLM2, batch 16) | {demo_gflop:.1f} GFLOP + Adam {adam_gb:.2f} GB "
        f"({trainable / 1e6:.1f} M parameters): ≥ {demo_step_s * 1000:.0f} ms |"
    )
    steps = demo_steps()
    print(f"| demo training ({steps} steps) | ≥ {steps * demo_step_s:.0f} s |")
    load = os.getloadavg()
    print(f"\nload average (1, 5, 15 min): {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
