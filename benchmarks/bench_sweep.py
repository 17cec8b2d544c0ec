"""Local vs Ray execution of one LOSO run: a 6-fold SynME tiny-random LOSO trained in this process, then as Ray
tasks on a fresh local Ray instance with 2 workers (1 CPU each). Reports the wall time of each (median and spread
over repeats), where Ray's time goes (instance start, worker start-up with session load, per-task overhead), checks
that both runs wrote the same predictions.csv, and projects a 26-fold LOSO on 8 GPUs.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_sweep.py --repeats 5 --epochs 5

Per-task overhead is measured from the tasks' own clocks: the gap between one task's end and the next task's start
on the same worker (scheduling, argument and result transfer) plus the time from a task's end until the driver has
its result. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from aullm.config import load_config
from aullm.data.synme import generate_synme
from aullm.models.llm.loading import clear_llm_cache
from aullm.training.session import build_experiment
from aullm.workflows import experiment as workflows


def config_file(folder: Path, root: Path, epochs: int) -> Path:
    path = folder / "bench_sweep.yaml"
    path.write_text(
        "name: bench_sweep\nseeds: [1]\n"
        f"data: {{dataset: synme, root: {root}, size: 32, cache_dir: {folder / 'cache'}}}\n"
        "model: {name: au_llm}\nllm: {name: tiny-random}\n"
        f"train: {{epochs: {epochs}, batch_size: 8, lr: 1.0e-3, threads: 1}}\n"
    )
    return path


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


def ray_overheads(executor) -> tuple[list[float], list[float], list[float]]:
    """(gaps between consecutive tasks on a worker, task end → result at the driver, first task's start-up)."""
    by_worker: dict[tuple[str, int], list] = {}
    for s in executor.stats:
        by_worker.setdefault((s.node, s.pid), []).append(s)
    gaps, startups = [], []
    for stats in by_worker.values():
        stats.sort(key=lambda s: s.started)
        startups.append(stats[0].started - executor.submitted_at + stats[0].session_seconds)
        gaps += [b.started - a.ended for a, b in itertools.pairwise(stats)]
    returns = [s.received - s.ended for s in executor.stats]
    return gaps, returns, startups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--clips-per-subject", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--project-folds", type=int, default=26)
    parser.add_argument("--project-gpus", type=int, default=8)
    args = parser.parse_args(argv)

    import ray

    from aullm.training.ray_executor import RayExecutor

    logging.getLogger("aullm").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    root = work / "synme"
    generate_synme(root, subjects=args.subjects, clips_per_subject=args.clips_per_subject, seed=3, size=128)
    cfg = load_config(config_file(work, root, args.epochs))
    build_experiment(cfg)  # decode the clips into the cache once, before any timing
    local_s, ray_s, init_s, task_s, gaps, returns, startups = [], [], [], [], [], [], []
    for repeat in range(args.repeats):
        out_local, out_ray = work / f"local{repeat}", work / f"ray{repeat}"
        clear_llm_cache()  # each local run loads its LLM, as each Ray worker does
        start = time.perf_counter()
        workflows.train(cfg, out_local)
        local_s.append(time.perf_counter() - start)

        start = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        init_s.append(time.perf_counter() - start)
        executor = RayExecutor(cpus_per_task=1)
        workflows.train(cfg, out_ray, executor=executor)
        ray.shutdown()
        ray_s.append(time.perf_counter() - start)

        same = (out_local / "predictions.csv").read_bytes() == (out_ray / "predictions.csv").read_bytes()
        assert same, "local and Ray predictions differ"
        g, r, s = ray_overheads(executor)
        gaps += g
        returns += r
        startups += s
        task_s += [st.ended - st.started - st.session_seconds for st in executor.stats]
        print(
            f"repeat {repeat + 1}: local {local_s[-1]:.1f}s, ray {ray_s[-1]:.1f}s (init {init_s[-1]:.1f}s)", flush=True
        )
    shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    per_task_ms = (statistics.median(gaps) + statistics.median(returns)) * 1000 if gaps else float("nan")
    print(
        f"\n{args.subjects}-fold SynME LOSO, tiny-random, {args.epochs} epochs, 1 seed; {args.repeats} repeats; "
        f"{os.cpu_count()} CPUs; load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print("predictions.csv identical between local and Ray in every repeat\n")
    print("| | seconds: median (min, max) |")
    print("|---|---|")
    print(f"| local, in process (1 thread) | {spread(local_s)} |")
    print(f"| ray, {args.workers} workers × 1 CPU, incl. instance start | {spread(ray_s)} |")
    print(f"| of which ray.init (local instance) | {spread(init_s)} |")
    print(f"| worker start-up to first result (import, session load) | {spread(startups)} |")
    print(f"| one task's training (in the worker) | {spread(task_s)} |")
    print(f"| gap between tasks on a worker | {spread(gaps)} |")
    print(f"| task end → result at the driver | {spread(returns)} |")
    print(f"\nRay overhead per task: {per_task_ms:.0f} ms (median gap + median return)")
    fold = statistics.median(task_s)
    waves = math.ceil(args.project_folds / args.project_gpus)
    serial = args.project_folds * fold
    parallel = statistics.median(init_s) + statistics.median(startups) + waves * (fold + per_task_ms / 1000)
    print(
        f"Projection, {args.project_folds} folds on {args.project_gpus} GPUs (1 GPU per task): "
        f"{waves} waves instead of {args.project_folds} folds in a row: "
        f"≈ {args.project_folds / waves:.1f}× faster for folds much longer than the start-up "
        f"(at this benchmark's fold time of {fold:.1f}s: {serial:.0f}s → {parallel:.0f}s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
