"""`aullm bench step`: time one training step of the straightforward and the fast LLM path (docs/design.md, Command
line)."""

from __future__ import annotations

from typing import Optional

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
    json_out: bool = JsonOption,
) -> None:
    """Median time of one training step, naive (full prompt per sample) vs fast (shared prompt prefix)."""
    import json

    from aullm import api

    result = api.bench_step(
        llm=llm, batch=batch, device=device, repeats=repeats, prepack=False if no_prepack else "auto"
    )
    if json_out:
        typer.echo(json.dumps(result.contract()))
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


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
