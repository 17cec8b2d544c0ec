"""A whole LOSO-fold-sized training run (247 synthetic clips, CASME II's fold size) with the real AU-LLM model
and trainer, naive vs fast LLM path: wall time per epoch, prediction time, peak memory, and the projection to a
full 26-fold × 350-epoch LOSO.

Paths: `fast` is aullm's default (shared prompt prefix, oneDNN pre-packed weights on the CPU); `naive` is the
straightforward implementation (full sequence per sample, torch's default products); `naive-prepacked` (full
sequence, pre-packed products) and `fast-plain` (shared prefix, torch's default products) tell the two savings apart.

    .venv/bin/python benchmarks/bench_fold.py --llm smollm2-135m --epochs 2
    .venv/bin/python benchmarks/bench_fold.py --llm qwen2.5-1.5b-random --device cuda --epochs 5

Not run by the test suite. Peak memory is torch.cuda.max_memory_allocated on GPU, the process's max RSS on CPU
(cumulative over the process, so the CPU figure of the second row includes the first).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from aullm.core.memory import keep_freed_memory
from aullm.workflows.bench import bench_fold

PATHS = ["fast", "naive", "naive-prepacked", "fast-plain"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: auto)")
    parser.add_argument("--clips", type=int, default=247)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--folds", type=int, default=26, help="folds of the projected LOSO run")
    parser.add_argument("--full-epochs", type=int, default=350, help="epochs of the projected LOSO run")
    parser.add_argument("--paths", nargs="+", default=["fast", "naive"], choices=PATHS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the CLI does (AULLM_KEEP_FREED_MEMORY=0 to measure without)

    start = time.perf_counter()
    rows = []
    for path in args.paths:
        result = bench_fold(
            llm=args.llm,
            clips=args.clips,
            epochs=args.epochs,
            batch=args.batch,
            prefix_cache=path.startswith("fast"),
            device=args.device,
            prepack=False if path in ("naive", "fast-plain") else "auto",
        )
        rows.append((path, result))
        if args.json:
            print(json.dumps({"path": path, **result.__dict__}), flush=True)
    print(
        f"\n{args.llm} on {rows[0][1].device}: {args.clips} clips, batch {args.batch}, {args.epochs} epochs "
        f"(whole script {time.perf_counter() - start:.0f}s, LLM loaded once)\n"
    )
    print(f"| path | s/epoch | predict s | peak MiB | projected {args.folds} folds × {args.full_epochs} epochs |")
    print("|---|---:|---:|---:|---:|")
    for path, r in rows:
        projected = r.epoch_s * args.full_epochs * args.folds + r.predict_s * args.folds
        print(f"| {path} | {r.epoch_s:.3f} | {r.predict_s:.3f} | {r.peak_memory_mb:.0f} | {projected / 60:.1f} min |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
