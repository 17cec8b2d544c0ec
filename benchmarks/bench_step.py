"""Step time of the naive (full sequence per sample) and fast (shared prompt prefix) LLM paths across batch sizes.

    .venv/bin/python benchmarks/bench_step.py --llm smollm2-135m --batches 1 8 32 64
    .venv/bin/python benchmarks/bench_step.py --llm qwen2.5-1.5b-random --device cuda --batches 32 64 128 256
    .venv/bin/python benchmarks/bench_step.py --batches 64 --compile     # decoder under torch.compile, both paths

Not run by the test suite. Prints a Markdown table (and JSON lines with --json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from aullm.core.memory import keep_freed_memory
from aullm.workflows.bench import bench_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: auto)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per path (median)")
    parser.add_argument(
        "--compile", action="store_true", help="run the decoder under torch.compile (llm.compile: true), both paths"
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON object per batch size")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the CLI does (AULLM_KEEP_FREED_MEMORY=0 to measure without)

    rows = []
    for batch in args.batches:
        result = bench_step(llm=args.llm, batch=batch, device=args.device, repeats=args.repeats, compile=args.compile)
        rows.append(result)
        if args.json:
            print(json.dumps({**result.contract(), "device": result.device, "dtype": result.dtype}), flush=True)
    first = rows[0]
    print(
        f"\n{first.llm} on {first.device} ({first.dtype}), prompt {first.prompt_tokens} tokens, "
        f"median of {first.repeats} steps (forward + backward){', torch.compile' if first.compiled else ''}; "
        f"LLM load {first.load_s:.1f}s\n"
    )
    print("| batch | naive ms/step | fast ms/step | speedup (per-repeat range) | max abs diff |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        low, high = r.speedup_range
        print(
            f"| {r.batch} | {r.naive_s * 1000:.1f} | {r.fast_s * 1000:.1f} | {r.speedup:.2f}x ({low:.2f}–{high:.2f}) "
            f"| {r.max_abs_diff:.2e} |"
        )
    load = os.getloadavg()
    print(f"\nload average (1, 5, 15 min): {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
