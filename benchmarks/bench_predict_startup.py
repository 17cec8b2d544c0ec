"""Start-up of a one-clip `aullm predict`: wall seconds of the whole command (interpreter, imports, bundle and LLM
loading, one clip) as a user runs it, each run a fresh process, for this checkout and optionally an older one
beside it, alternated so that the machine's drift falls on both alike.

    .venv/bin/python benchmarks/bench_predict_startup.py --bundle B --clip CLIP [--before /path/to/old/checkout]

`--before` is another checkout of aullm (e.g. `git worktree add /tmp/before e48770f`); its `src/` is put first on
PYTHONPATH for its runs, with this venv's packages. The first run of each is reported apart and left out of the
median: this checkout caches the LLM's prompt keys/values beside the bundle on its first run, which every later run
reads. The LLM's loading time is read from the command's own log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(src: Path, bundle: Path, clip: Path) -> tuple[float, str]:
    """One `aullm predict CLIP -c BUNDLE --out CSV` with `src` first on the path: wall seconds and its log."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "p.csv"
        env = {**os.environ, "PYTHONPATH": str(src)}
        command = [sys.executable, "-m", "aullm", "predict", str(clip), "-c", str(bundle), "--out", str(out)]
        command += ["--device", "cpu"]
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"predict failed with {src}: {done.stderr[-2000:]}")
        return wall, done.stderr + done.stdout


def loaded_seconds(log: str) -> dict[str, float]:
    """The LLM's loading time the command logs ('loaded LLM … in 4.0s')."""
    found = re.search(r"loaded LLM .* in ([0-9.]+)s", log)
    return {"llm_load_s": float(found.group(1))} if found else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--clip", type=Path, required=True, help="one clip: a short video or a frames folder")
    parser.add_argument("--before", type=Path, default=None, help="an older checkout to compare with")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sources = {"now": ROOT / "src"}
    if args.before is not None:
        sources = {"before": args.before.resolve() / "src", **sources}
    first = {name: run_once(src, args.bundle, args.clip)[0] for name, src in sources.items()}
    times: dict[str, list[float]] = {name: [] for name in sources}
    logs: dict[str, str] = {}
    loads = []
    for _ in range(args.repeats):
        loads.append(os.getloadavg()[0])
        for name, src in sources.items():
            wall, logs[name] = run_once(src, args.bundle, args.clip)
            times[name].append(wall)
    result = {}
    for name in sources:
        values = times[name]
        result[name] = {
            "first_run_s": round(first[name], 2),
            "median_s": round(statistics.median(values), 2),
            "min_s": round(min(values), 2),
            "max_s": round(max(values), 2),
            "runs_s": [round(v, 2) for v in values],
            **loaded_seconds(logs[name]),
        }
        print(
            f"{name}: {result[name]['median_s']:.2f} s median of {len(values)} "
            f"({result[name]['min_s']:.2f}–{result[name]['max_s']:.2f}), first run {first[name]:.2f} s, "
            f"LLM loading {result[name].get('llm_load_s', float('nan')):.1f} s"
        )
    if "before" in result:
        print(f"before / now: {result['before']['median_s'] / result['now']['median_s']:.2f}x")
    print(f"load average before each round: {', '.join(f'{v:.2f}' for v in loads)}")
    if args.json is not None:
        args.json.write_text(json.dumps({"results": result, "load_average": loads}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
