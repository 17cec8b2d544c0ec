"""`aullm demo`: SynME + LOSO AU-LLM with the embedded SmolLM2, end to end on a laptop CPU."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory."),
    data: Path = typer.Option(Path("data/synme"), "--data", help="Where SynME is generated (reused if present)."),
) -> None:
    """Generate SynME if absent, run LOSO AU-LLM on it, print the per-AU table and write the report."""
    from aullm import api

    start = time.perf_counter()
    run = api.demo(out, data)
    run.metrics.print()
    typer.echo(f"demo finished in {time.perf_counter() - start:.0f}s; report: {run.path / 'report.md'}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
