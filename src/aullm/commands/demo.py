"""`aullm demo`: SynME + LOSO AU-LLM with the embedded SmolLM2, end to end on a laptop CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aullm.errors import NotImplementedYet


def demo(
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/demo)."),
) -> None:
    """Generate SynME if absent, run LOSO AU-LLM on it, print the per-AU table and write the report."""
    raise NotImplementedYet(6, "aullm demo")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
