"""Option declarations shared by several commands."""

from __future__ import annotations

from typing import Optional

import typer

SetOption = typer.Option(
    None,
    "--set",
    "-s",
    metavar="SECTION.KEY=VALUE",
    help="Override one config value (value parsed as YAML), e.g. --set train.epochs=20. Repeatable.",
)
JsonOption = typer.Option(False, "--json", help="Print one JSON object instead of a table.")


def overrides_list(values: Optional[list[str]]) -> list[str]:
    return list(values or [])
