"""`aullm configs`: the configs shipped with the package, by name, each with its one-line description."""

from __future__ import annotations

import typer

from aullm.commands.options import JsonOption


def configs(json_out: bool = JsonOption) -> None:
    """List the shipped configs (every cell of the paper's tables, the ablations, the demo). Any CONFIG argument
    (`aullm train NAME`, `aullm sweep NAME ...`) takes one of these names or a path to a YAML file."""
    import json

    from aullm import api

    shipped = api.configs()
    if json_out:
        typer.echo(json.dumps(shipped, indent=2, ensure_ascii=False))
        return
    width = max(map(len, shipped), default=0)
    for name, description in shipped.items():
        typer.echo(f"{name:<{width}}  {description}".rstrip())


def register(app: typer.Typer) -> None:
    app.command("configs")(configs)
