"""`aullm sweep`: several configs as one batch of fold tasks, each into <out-root>/<config name>/, then one report."""

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
from aullm.commands.options import SetOption, overrides_list
from aullm.core.errors import UserError


def data_roots(values: Optional[list[str]]) -> dict[str, str]:
    """`--data-root DATASET=DIR` options as {dataset: dir}."""
    roots: dict[str, str] = {}
    for value in values or []:
        dataset, sep, folder = value.partition("=")
        if not sep or not dataset or not folder:
            raise UserError(f"--data-root {value!r}: write DATASET=DIR, e.g. --data-root casme2=/data/CASME2")
        roots[dataset.strip()] = folder.strip()
    return roots


def sweep(
    configs: list[Path] = typer.Argument(..., help="Experiment configs (YAML); their `name`s must differ."),
    out_root: Path = typer.Option(..., "--out-root", help="Each config's run goes to <out-root>/<config name>/."),
    overrides: Optional[list[str]] = SetOption,
    roots: Optional[list[str]] = typer.Option(
        None,
        "--data-root",
        metavar="DATASET=DIR",
        help="Dataset root by dataset name (data.root, and protocol.target.root of cross-domain configs). Repeatable.",
    ),
    report_dir: Optional[Path] = typer.Option(
        None, "--report", help="Folder for the report of all (default: --out-root)."
    ),
    save_final: bool = typer.Option(False, "--save-final", help="Also train each config's final model and bundle it."),
    executor: str = ExecutorOption,
    address: Optional[str] = AddressOption,
    gpus_per_task: Optional[float] = GpusOption,
    cpus_per_task: Optional[float] = CpusOption,
    max_retries: Optional[int] = RetriesOption,
    track: Optional[list[str]] = TrackOption,
) -> None:
    """Train several configs as one sweep (on Ray: every seed and fold of every config at once); resumable."""
    from aullm import api

    result = api.sweep(
        configs,
        out_root,
        overrides=overrides_list(overrides),
        data_roots=data_roots(roots),
        report_dir=report_dir,
        save_final=save_final,
        executor=executor_spec(executor, address, cpus_per_task, gpus_per_task, max_retries),
        track=track or [],
    )
    for name in result.complete:
        typer.echo(f"{name}: {result.runs[name]}")
    for name, reason in result.failed.items():
        typer.echo(f"error: {name}: {reason}", err=True)
    unfinished = [n for n in result.runs if n not in result.complete and n not in result.failed]
    for name in unfinished:
        typer.echo(f"{name}: {result.runs[name]} (not every fold done: protocol.folds selects a subset)")
    if result.report is not None:
        typer.echo(f"report: {result.report}")
    if result.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
