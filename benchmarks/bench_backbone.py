"""The LED backbone's training step (forward + backward), fast implementation vs the straightforward 3D reference
kept in the tests, side by side in one process on the same weights and batch.

    .venv/bin/python benchmarks/bench_backbone.py                 # batch 256, 7 repeats, all CPU threads
    .venv/bin/python benchmarks/bench_backbone.py --batch 16 --repeats 11
    .venv/bin/python benchmarks/bench_backbone.py --against c87a6a5   # also the backbone as of that commit

`--against REV` reads `models/blocks/backbone.py` and `models/blocks/led.py` (`models/` before the folder layout)
of that git revision (`git show`, nothing is checked out), imports them beside the current code and times them on
the same weights and batch; the current backbone is then built with that revision's LED stabiliser and SE biases
(`led_stability=255, se_bias=True`) so all compute the same function, and the outputs are compared.

The two alternate within every repeat, so a change in machine load affects both alike; the medians, their
spread (min–max) and the machine's load average are printed. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from aullm.core.memory import keep_freed_memory
from aullm.models.blocks.backbone import AUBackbone, BackboneOutput
from reference_backbone import reference_forward

REPO = Path(__file__).resolve().parents[1]


def _show(revision: str, paths: list[str]) -> str:
    """The first of `paths` that exists at `revision` (the backbone moved to models/blocks/ with the folder layout)."""
    for path in paths:
        shown = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=REPO, capture_output=True, text=True)
        if shown.returncode == 0:
            return shown.stdout
    raise SystemExit(f"none of {', '.join(paths)} exists at {revision}")


def backbone_at(revision: str, into: Path) -> ModuleType:
    """The backbone module of a git revision, importable beside the current package (its LED import rewired)."""
    package = into / "aullm_at_revision"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("backbone", "led"):
        source = _show(revision, [f"src/aullm/models/blocks/{name}.py", f"src/aullm/models/{name}.py"])
        for led in ("from aullm.models.blocks.led import", "from aullm.models.led import"):
            source = source.replace(led, "from .led import")
        (package / f"{name}.py").write_text(source)
    sys.path.insert(0, str(into))
    spec = importlib.util.find_spec("aullm_at_revision.backbone")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--eval", action="store_true", help="time forward only, in eval mode without gradients")
    parser.add_argument("--against", metavar="REV", help="also time the backbone of this git revision")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the CLI does (AULLM_KEEP_FREED_MEMORY=0 to measure without)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    same_as_before = {"led_stability": 255.0, "se_bias": True} if args.against else {}
    backbone = AUBackbone(frames=6, size=64, **same_as_before).train(not args.eval)
    clips = torch.rand(args.batch, 6, 64, 64)
    earlier = None
    if args.against:
        old = backbone_at(args.against, Path(tempfile.mkdtemp()))
        earlier = old.AUBackbone(frames=6, size=64).train(not args.eval)
        earlier.load_state_dict(backbone.state_dict())
        backbone.eval()
        earlier.eval()
        with torch.no_grad():
            a, b = backbone(clips[:8]), earlier(clips[:8])
            gap = max((a.f_mid - b.f_mid).abs().max().item(), (a.f_high - b.f_high).abs().max().item())
        backbone.train(not args.eval)
        earlier.train(not args.eval)
        print(f"backbone at {args.against}: largest output difference from the current one (eval) {gap:.2e}")

    def step(forward: object, model: torch.nn.Module = backbone) -> None:
        for param in model.parameters():
            param.grad = None
        with torch.set_grad_enabled(not args.eval):
            out: BackboneOutput = forward(model, clips)  # type: ignore[operator]
            if not args.eval:
                (out.f_mid.sum() * 1e-3 + out.f_high.sum()).backward()

    steps = {"reference": lambda: step(reference_forward), "fast": lambda: step(lambda m, x: m(x))}
    if earlier is not None:
        steps[args.against] = lambda: step(lambda m, x: m(x), earlier)
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
    if args.against:
        before = times[args.against]
        ratios = [b / f for b, f in zip(before, times["fast"])]
        print(
            f"  vs {args.against}: {statistics.median(before) / fast:.2f}x "
            f"(per-repeat ratios {min(ratios):.2f}–{max(ratios):.2f})"
        )
    print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
