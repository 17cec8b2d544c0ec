"""`aullm bench step`: time one training step of the straightforward and the fast LLM path (docs/design.md, Command
line)."""

from __future__ import annotations

from typing import Any, Optional

import typer

from aullm.commands.options import JsonOption

bench_app = typer.Typer(help="Speed benchmarks.", no_args_is_help=True)


@bench_app.command("step")
def step(
    llm: str = typer.Option("smollm2-135m", "--llm", help="LLM preset, hub id, local folder or .gguf file."),
    batch: int = typer.Option(64, "--batch", help="Batch size."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda (default: auto)."),
    repeats: Optional[int] = typer.Option(None, "--repeats", help="Timed steps per path (default: 5 CPU, 10 GPU)."),
    no_prepack: bool = typer.Option(
        False, "--no-prepack", help="The fast path with torch's default products instead of oneDNN pre-packed weights."
    ),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        help="aullmpp: time the whole model's training step (both LLM paths) beside AU-LLM's, batch default 16.",
    ),
    overrides: Optional[list[str]] = typer.Option(
        None, "--set", help="With --model aullmpp: model.KEY=VALUE options (e.g. model.token_order=figure)."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Median time of one training step, naive (full prompt per sample) vs fast (shared prompt prefix)."""
    import json

    from aullm import api

    if model not in (None, "au_llm") and batch == 64:
        batch = 16  # the demo's batch for a whole-model step
    result = api.bench_step(
        llm=llm,
        batch=batch,
        device=device,
        repeats=repeats,
        prepack=False if no_prepack else "auto",
        model=model,
        overrides=overrides,
    )
    if json_out:
        typer.echo(json.dumps(result.contract()))
        return
    if model not in (None, "au_llm"):
        _print_model_step(result)
        return
    typer.echo(
        f"LLM {result.llm} on {result.device} ({result.dtype}), batch {result.batch}, "
        f"prompt {result.prompt_tokens} tokens, median of {result.repeats} steps"
    )
    kernels = ", oneDNN pre-packed weights" if result.prepacked else ""
    typer.echo(f"  naive (full sequence per sample): {result.naive_s * 1000:10.1f} ms/step")
    typer.echo(f"  fast (shared prompt prefix{kernels}): {result.fast_s * 1000:10.1f} ms/step")
    low, high = result.speedup_range
    typer.echo(
        f"  speedup {result.speedup:.2f}x (per repeat {low:.2f}–{high:.2f}), "
        f"max |logit difference| {result.max_abs_diff:.2e}"
    )


def _print_model_step(result: Any) -> None:
    """The text form of `aullm.api.bench_step(model=...)`'s result (a ModelStepBench)."""
    options = ", ".join(f"{k}={v}" for k, v in result.options.items() if not isinstance(v, dict))
    typer.echo(
        f"{result.model} ({options}) vs au_llm: LLM {result.llm} on {result.device} ({result.dtype}), "
        f"batch {result.batch}, whole training step, median of {result.repeats} steps (alternating)"
    )
    rows = [
        ("au_llm (the demo's model, fast path)", result.au_llm_s, result.au_llm_times),
        (f"{result.model} full sequence per sample", result.naive_s, result.naive_times),
        (f"{result.model} fast path", result.fast_s, result.fast_times),
    ]
    for label, median, times in rows:
        spread = f"{min(times) * 1000:.0f}–{max(times) * 1000:.0f}"
        typer.echo(f"  {label:<40} {median * 1000:10.1f} ms/step (range {spread})")
    typer.echo(
        f"  {result.model} / au_llm: {result.ratio_to_au_llm:.2f}x; fast path speedup {result.speedup:.2f}x; "
        f"max |logit difference| between its paths {result.max_abs_diff:.2e}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
