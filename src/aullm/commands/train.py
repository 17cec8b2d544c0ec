"""`aullm train`, `aullm evaluate`, `aullm report`: run an experiment and score it (DESIGN §4–§6)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aullm.commands.options import JsonOption, SetOption, overrides_list
from aullm.config import load_config
from aullm.errors import NotImplementedYet


def train(
    config: Path = typer.Argument(..., help="Experiment config (YAML, DESIGN §5)."),
    overrides: Optional[list[str]] = SetOption,
    out: Optional[Path] = typer.Option(
        None, "--out", help="Run directory (default runs/<name>). Finished folds in it are kept and skipped."
    ),
    save_final: bool = typer.Option(False, "--save-final", help="Also train on all subjects and save a bundle."),
) -> None:
    """Train and evaluate under the config's protocol (LOSO or cross-domain); resumes an interrupted run."""
    load_config(config, overrides_list(overrides))
    raise NotImplementedYet(6, "aullm train")


def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory written by aullm train."),
    json_out: bool = JsonOption,
) -> None:
    """Re-score a run from its predictions.csv under every metric convention, without retraining."""
    raise NotImplementedYet(6, "aullm evaluate")


def report(
    run_dirs: list[Path] = typer.Argument(..., help="One or more run directories."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.md and plots (default: first run)."),
) -> None:
    """Write report.md with the paper's table layout, our rows beside the published ones, and plots."""
    raise NotImplementedYet(6, "aullm report")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("report")(report)
