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
    import json

    from aullm.demo import run_demo
    from aullm.reporting.tables import print_run_summary

    start = time.perf_counter()
    run_dir = run_demo(out, data)
    print_run_summary(json.loads((run_dir / "metrics.json").read_text()))
    typer.echo(f"demo finished in {time.perf_counter() - start:.0f}s; report: {run_dir / 'report.md'}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
