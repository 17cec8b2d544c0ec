"""What the oneDNN pre-packed weights (llm.prepack) and the shared prompt prefix each give a training step, measured
side by side in one process: the naive (full sequence per sample) and fast (shared prefix) LLM steps of
`aullm bench step`, each with torch's default products and with pre-packed weights, on one loaded LLM, the same
LoRA weights, batch and prompt. The four steps alternate within every repeat, so a change in machine load affects
them alike.

    .venv/bin/python benchmarks/bench_prepack.py                       # SmolLM2-135M, batch 64, 7 repeats
    .venv/bin/python benchmarks/bench_prepack.py --batch 16 --repeats 9

Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

from aullm.config import LLMConfig, LoraConfig
from aullm.core.memory import keep_freed_memory
from aullm.models.au_llm.configuration_au_llm import DEFAULT_PROMPT
from aullm.models.llm.loading import load_llm
from aullm.models.llm.reasoner import LLMReasoner
from aullm.workflows.bench import StepHarness, _perturb_lora, _step_times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the CLI does

    cpu = torch.device("cpu")
    loaded = load_llm(LLMConfig(name=args.llm), cpu)
    reasoners = {
        kernels: LLMReasoner(loaded, LoraConfig(), DEFAULT_PROMPT, "append", True, seed=0, prepack=kernels == "packed")
        for kernels in ("plain", "packed")
    }
    for reasoner in reasoners.values():
        _perturb_lora(reasoner, 0)
        reasoner.train()
    harness = StepHarness.build(loaded.hidden_size, args.batch, cpu)
    params = [*harness.parameters(), *(p for r in reasoners.values() for p in r.lora_parameters())]

    def step(kernels: str, path: str) -> None:
        reasoner = reasoners[kernels]
        for param in params:
            param.grad = None
        token = harness.token()
        harness.loss(reasoner.forward_full(token) if path == "naive" else reasoner(token)).backward()

    names = [(kernels, path) for kernels in ("plain", "packed") for path in ("naive", "fast")]
    load_before = os.getloadavg()
    times = _step_times([lambda k=k, p=p: step(k, p) for k, p in names], cpu, args.repeats, warmup=1)
    med = {name: statistics.median(t) for name, t in zip(names, times)}
    spread = {name: (min(t), max(t)) for name, t in zip(names, times)}

    print(
        f"\n{args.llm}, batch {args.batch}, prompt {reasoners['plain'].prompt_tokens} tokens, "
        f"{torch.get_num_threads()} threads, median of {args.repeats} (min–max)\n"
    )
    print("| kernels | naive ms/step | fast ms/step | naive / fast |")
    print("|---|---:|---:|---:|")
    for kernels in ("plain", "packed"):
        n, f = med[(kernels, "naive")], med[(kernels, "fast")]
        (nl, nh), (fl, fh) = spread[(kernels, "naive")], spread[(kernels, "fast")]
        label = "torch default" if kernels == "plain" else "oneDNN pre-packed"
        naive = f"{n * 1e3:.1f} ({nl * 1e3:.0f}–{nh * 1e3:.0f})"
        fast = f"{f * 1e3:.1f} ({fl * 1e3:.0f}–{fh * 1e3:.0f})"
        print(f"| {label} | {naive} | {fast} | {n / f:.2f}x |")
    per_repeat = [n / f for n, f in zip(times[0], times[3])]
    print(
        f"\npre-packing alone: naive {med[('plain', 'naive')] / med[('packed', 'naive')]:.2f}x, "
        f"fast {med[('plain', 'fast')] / med[('packed', 'fast')]:.2f}x"
    )
    overall = med[("plain", "naive")] / med[("packed", "fast")]
    print(
        f"straightforward (naive, torch default) / aullm's step (fast, pre-packed): {overall:.2f}x "
        f"(per repeat {min(per_repeat):.2f}–{max(per_repeat):.2f})"
    )
    load = os.getloadavg()
    print(
        f"load average before (1, 5, 15 min): {load_before[0]:.2f}, {load_before[1]:.2f}, {load_before[2]:.2f}; "
        f"after: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
