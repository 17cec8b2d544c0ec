"""`aullm bench step`: time one training step of the straightforward and the fast LLM path (DESIGN §4)."""

from __future__ import annotations

from typing import Optional

import typer

from aullm.commands.options import JsonOption
from aullm.errors import NotImplementedYet

bench_app = typer.Typer(help="Speed benchmarks.", no_args_is_help=True)


@bench_app.command("step")
def step(
    llm: str = typer.Option("smollm2-135m", "--llm", help="LLM preset, hub id, local folder or .gguf file."),
    batch: int = typer.Option(64, "--batch", help="Batch size."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda (default: auto)."),
    json_out: bool = JsonOption,
) -> None:
    """Median time of one training step, naive (full prompt per sample) vs fast (shared prompt prefix)."""
    raise NotImplementedYet(7, "aullm bench step")


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
