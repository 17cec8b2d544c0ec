"""`aullm train`, `aullm evaluate`, `aullm report`: run an experiment and score it (docs/design.md, Command line, Run
directories)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aullm.commands.execution import (
    AddressOption,
    CpusOption,
    ExecutorOption,
    GpusOption,
    RetriesOption,
    TrackOption,
    executor_spec,
)
from aullm.commands.options import JsonOption, SetOption, overrides_list


def train(
    config: Path = typer.Argument(..., help="Experiment config (YAML, docs/design.md (Config files))."),
    overrides: Optional[list[str]] = SetOption,
    out: Optional[Path] = typer.Option(
        None, "--out", help="Run directory (default runs/<name>). Finished folds in it are kept and skipped."
    ),
    save_final: bool = typer.Option(False, "--save-final", help="Also train on all subjects and save a bundle."),
    executor: str = ExecutorOption,
    address: Optional[str] = AddressOption,
    gpus_per_task: Optional[float] = GpusOption,
    cpus_per_task: Optional[float] = CpusOption,
    max_retries: Optional[int] = RetriesOption,
    track: Optional[list[str]] = TrackOption,
    device: Optional[str] = typer.Option(
        None, "--device", metavar="auto|cpu|cuda|cuda:N|mps", help="Where the folds train (default: train.device)."
    ),
) -> None:
    """Train and evaluate under the config's protocol (LOSO or cross-domain); resumes an interrupted run."""
    from aullm import api
    from aullm.core.errors import RunFailed

    try:
        run = api.train(
            config,
            out,
            overrides=overrides_list(overrides),
            save_final=save_final,
            executor=executor_spec(executor, address, cpus_per_task, gpus_per_task, max_retries),
            track=track or [],
            device=device,
        )
    except RunFailed as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"run directory: {run.path}")


def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory written by aullm train."),
    json_out: bool = JsonOption,
    out: Optional[Path] = typer.Option(
        None, "--out", help="Folder for metrics.json (default: the run directory), e.g. for a read-only run."
    ),
) -> None:
    """Re-score a run from its predictions.csv under every metric convention, without retraining."""
    import json

    from aullm import api

    metrics = api.evaluate(run_dir, out)
    if json_out:
        typer.echo(json.dumps(metrics.data, indent=2))
        return
    metrics.print()
    typer.echo(f"wrote {(out if out is not None else run_dir) / 'metrics.json'}")


def report(
    run_dirs: list[Path] = typer.Argument(..., help="One or more run directories."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.md and plots (default: first run)."),
) -> None:
    """Write report.md with the paper's table layout, our rows beside the published ones, and plots."""
    from aullm import api

    api.report(run_dirs, out)  # logs the path it wrote


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("report")(report)
