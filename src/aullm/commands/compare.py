"""`aullm compare RUN_A RUN_B [RUN ...]`: is B better than A on the same samples, or is the difference noise?"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aullm.commands.options import JsonOption


def compare(
    run_dirs: list[Path] = typer.Argument(
        ..., help="Two or more run directories; each later one is compared with the first."
    ),
    json_out: bool = JsonOption,
    bootstrap: Optional[int] = typer.Option(
        None, "--bootstrap", min=1, help="Paired bootstrap replicates (default: the first run's eval.bootstrap)."
    ),
    seed: Optional[int] = typer.Option(
        None, "--seed", help="Bootstrap seed (default: the first run's eval.bootstrap_seed)."
    ),
) -> None:
    """Paired comparison on the same samples: B − A per metric and AU with a subject-bootstrap 95% interval,
    a two-sided p-value and a Holm correction across AUs. Runs whose samples or labels differ are refused."""
    import json

    from aullm import api

    result = api.compare(run_dirs, bootstrap=bootstrap, seed=seed)
    if json_out:
        typer.echo(json.dumps(result.data, indent=2))
        return
    result.print()


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
