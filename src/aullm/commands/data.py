"""`aullm data stats` and `aullm prepare`: inspect and preprocess a dataset (DESIGN §3)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aullm.commands.options import JsonOption, SetOption
from aullm.errors import NotImplementedYet

data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)


@data_app.command("stats")
def stats(
    dataset: str = typer.Argument(..., help="casme2, samm, casme3a, manifest or synme."),
    root: Optional[Path] = typer.Option(None, "--root", help="Dataset root folder as shipped."),
    annotations: Optional[Path] = typer.Option(
        None, "--annotations", help="Annotation sheet; with only this, the sheet is parsed and no frames are read."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Count samples, usable samples, subjects and AU positives; list skipped samples and why."""
    raise NotImplementedYet(3, "aullm data stats")


def prepare(
    dataset: str = typer.Argument(..., help="casme2, samm, casme3a, manifest or synme."),
    root: Path = typer.Option(..., "--root", help="Dataset root folder as shipped."),
    overrides: Optional[list[str]] = SetOption,
) -> None:
    """Decode, sample and resize every clip once and store them in the cache, so training reads no JPEG."""
    raise NotImplementedYet(3, "aullm prepare")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
    app.command("prepare")(prepare)
