"""The LED backbone's training step (forward + backward), fast implementation vs the straightforward 3D reference
kept in the tests, side by side in one process on the same weights and batch.

    .venv/bin/python benchmarks/bench_backbone.py                 # batch 256, 7 repeats, all CPU threads
    .venv/bin/python benchmarks/bench_backbone.py --batch 16 --repeats 11

The two alternate within every repeat, so a change in machine load affects both alike; the medians, their
spread (min–max) and the machine's load average are printed. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from aullm.memory import keep_freed_memory
from aullm.models.backbone import AUBackbone, BackboneOutput
from reference_backbone import reference_forward


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--eval", action="store_true", help="time forward only, in eval mode without gradients")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the CLI does (AULLM_KEEP_FREED_MEMORY=0 to measure without)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    backbone = AUBackbone(frames=6, size=64).train(not args.eval)
    clips = torch.rand(args.batch, 6, 64, 64)

    def step(forward: object) -> None:
        for param in backbone.parameters():
            param.grad = None
        with torch.set_grad_enabled(not args.eval):
            out: BackboneOutput = forward(backbone, clips)  # type: ignore[operator]
            if not args.eval:
                (out.f_mid.sum() * 1e-3 + out.f_high.sum()).backward()

    steps = {"reference": lambda: step(reference_forward), "fast": lambda: step(lambda m, x: m(x))}
    for run in steps.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in steps}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for name, run in steps.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    load_after = os.getloadavg()
    ref, fast = statistics.median(times["reference"]), statistics.median(times["fast"])
    ratios = [r / f for r, f in zip(times["reference"], times["fast"])]
    what = "forward (eval, no grad)" if args.eval else "forward + backward (train)"
    print(f"backbone {what}, batch {args.batch}, {torch.get_num_threads()} threads, median of {args.repeats}")
    for name, values in times.items():
        print(f"  {name:9s} {statistics.median(values):7.3f} s   (min {min(values):.3f}, max {max(values):.3f})")
    print(f"  speed-up  {ref / fast:7.2f}x   (per-repeat ratios {min(ratios):.2f}–{max(ratios):.2f})")
    print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
