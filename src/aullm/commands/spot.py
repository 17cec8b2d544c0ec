"""`aullm spot`: find the micro- and macro-expressions in long videos (docs/spotting.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aullm.commands.options import JsonOption
from aullm.core.errors import UserError


def spot_settings(values: Optional[list[str]]) -> dict[str, str]:
    """`--set NAME=VALUE` options as {name: value} (checked by the library, which names what is allowed)."""
    settings: dict[str, str] = {}
    for value in values or []:
        name, sep, number = value.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--set {value!r}: write NAME=VALUE, e.g. --set threshold_px=1.2")
        settings[name.strip()] = number.strip()
    return settings


def spot(
    inputs: list[Path] = typer.Argument(..., help="Videos, frames folders, or folders searched for both."),
    out: Path = typer.Option(..., "--out", help="Folder for spots.csv, videos.csv and signals/<video>.csv."),
    fps: Optional[float] = typer.Option(
        None, "--fps", help="Frame rate (default: the video's own; required for frames folders)."
    ),
    kind: str = typer.Option("both", "--kind", metavar="micro|macro|both", help="Which expressions to report."),
    settings: Optional[list[str]] = typer.Option(
        None, "--set", metavar="NAME=VALUE", help="Override a spotting setting (docs/spotting.md). Repeatable."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Spot micro- and macro-expressions in long videos, training-free (optical flow in facial regions).
    A video that cannot be read or shows no face is reported and the others go on (exit code 1 then)."""
    import json

    from aullm import api

    found = api.spot(inputs, out, fps=fps, kind=kind, settings=spot_settings(settings))
    videos = found.attrs["videos"]
    failed = videos[videos["status"] != "ok"]
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "intervals": found.to_dict(orient="records"),
                    "videos": videos.where(videos.notna(), None).to_dict(orient="records"),
                },
                indent=2,
            )
        )
    else:
        micro = int((found["kind"] == "micro").sum())
        typer.echo(
            f"{len(videos) - len(failed)} video(s): {micro} micro- and {len(found) - micro} macro-expression(s); "
            f"{out / 'spots.csv'}"
        )
    for _, row in failed.iterrows():
        typer.echo(f"error: {row['video']}: {row['status'].removeprefix('failed: ')}", err=True)
    if len(failed):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("spot")(spot)
