"""Where AULLM++'s training step time goes: whole training steps (clips → model → loss → backward → Adam) of
AU-LLM and of AULLM++ designs with parts switched off, timed alternately in one process on the same LLM and clips
(median and range of `--repeats`). Set the thread count with OMP_NUM_THREADS / --threads.

    PYTHONPATH=src python benchmarks/bench_aullmpp_parts.py --threads 1 --repeats 5 \
        --variant ct_it:model.token_order=prompt_ct_it \
        --variant ct_it_noccr:model.token_order=prompt_ct_it,model.ccr.enabled=false
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from aullm.config import LLMConfig, apply_overrides, config_from_dict
from aullm.models.factory import build_model
from aullm.models.llm.loading import load_llm
from aullm.training.losses import build_loss
from aullm.training.trainer import make_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", action="append", default=[], help="NAME:model.k=v,model.k2=v2 (aullmpp)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_llm(LLMConfig(name=args.llm), torch.device("cpu"))
    variants: dict[str, list[str]] = {"au_llm": ["model.name=au_llm"]}
    for item in args.variant:
        name, _, sets = item.partition(":")
        variants[name] = ["model.name=aullmpp", *[s for s in sets.split(",") if s]]
    gen = torch.Generator().manual_seed(0)
    steps = {}
    for name, sets in variants.items():
        cfg = config_from_dict(apply_overrides({"llm": {"name": args.llm}}, sets))
        aus = list(cfg.data.aus)
        model = build_model(cfg, aus, loaded, seed=0)
        model.train()
        opt = make_optimizer([p for p in model.parameters() if p.requires_grad], 5e-4, 0.005)
        loss_fn = build_loss(cfg.train.loss)
        x = torch.rand(args.batch, cfg.data.frames, cfg.data.size, cfg.data.size, generator=gen)
        y = (torch.rand(args.batch, len(aus), generator=gen) < 0.3).float()

        def step(model=model, opt=opt, loss_fn=loss_fn, x=x, y=y) -> None:
            out = model(x)
            loss = loss_fn(out.logits.float(), y) + (out.aux_loss if out.aux_loss is not None else 0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        steps[name] = step
    for step in steps.values():  # warm-up
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["au_llm"])
    result = {}
    for name, t in times.items():
        med = statistics.median(t)
        ratios = [a / b for a, b in zip(t, times["au_llm"])]
        result[name] = {
            "median_s": med,
            "min_s": min(t),
            "max_s": max(t),
            "ratio_median": med / base,
            "ratio_per_repeat": [round(r, 3) for r in ratios],
            "sets": variants[name],
        }
        print(
            f"{name:24s} {med * 1000:8.0f} ms (range {min(t) * 1000:.0f}–{max(t) * 1000:.0f})  "
            f"x{med / base:.2f} of au_llm (per repeat {min(ratios):.2f}–{max(ratios):.2f})",
            flush=True,
        )
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(
                {"threads": args.threads, "batch": args.batch, "repeats": args.repeats, "results": result}, fh, indent=1
            )


if __name__ == "__main__":
    main()
