"""`aullm data stats` and `aullm prepare`: inspect and preprocess a dataset (docs/design.md, Datasets)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aullm.commands.options import JsonOption, SetOption, overrides_list

data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)


@data_app.command("stats")
def stats(
    dataset: str = typer.Argument(..., help="casme2, samm, casme3a, manifest or synme."),
    root: Optional[Path] = typer.Option(None, "--root", help="Dataset root folder as shipped."),
    annotations: Optional[Path] = typer.Option(
        None, "--annotations", help="Annotation sheet; with only this, the sheet is parsed and no frames are read."
    ),
    check_frames: bool = typer.Option(
        False,
        "--check-frames",
        help="Decode every clip as prepare does (and cache them), so `usable` is what training will use.",
    ),
    json_out: bool = JsonOption,
) -> None:
    """Count samples, usable samples, subjects and AU positives; list skipped samples and why."""
    import json

    from aullm import datasets

    result = datasets.stats(dataset, root, annotations, check_frames=check_frames)
    if json_out:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"dataset   {result['dataset']}")
    typer.echo(f"samples   {result['samples']}")
    typer.echo(f"usable    {result['usable']}")
    typer.echo(f"subjects  {result['subjects']}")
    typer.echo("AU counts " + ", ".join(f"{au} {n}" for au, n in result["au_counts"].items()))
    typer.echo(f"checked   {_what_was_checked(result)}")
    typer.echo(f"skipped   {len(result['skipped'])}")
    for item in result["skipped"]:
        typer.echo(f"  {item['sample']}: {item['reason']}")


def _what_was_checked(result: dict) -> str:
    """One line saying how far `usable` can be trusted: the sheet, the frame folders, or every decoded clip."""
    if result["frames_checked"]:
        return "every clip decoded as prepare does: usable is what training will use"
    not_decoded = "prepare may skip more (corrupt image, no face found); --check-frames decodes every clip"
    if result["folders_checked"]:
        return f"sheet and frame folders, no clip decoded: {not_decoded}"
    return f"the sheet only, no frame read (--root DIR checks the frame folders): {not_decoded}"


def prepare(
    dataset: str = typer.Argument(..., help="casme2, samm, casme3a, manifest or synme."),
    root: Path = typer.Option(..., "--root", help="Dataset root folder as shipped."),
    overrides: Optional[list[str]] = SetOption,
) -> None:
    """Decode, sample and resize every clip once and store them in the cache, so training reads no JPEG."""
    from aullm import datasets

    prepared, seconds = datasets.prepare(dataset, root, overrides_list(overrides))
    how = "read from the cache" if prepared.from_cache else "decoded and cached"
    typer.echo(
        f"{len(prepared)} {prepared.dataset} samples ({prepared.input}, {prepared.size}px) {how} in {seconds:.2f}s: "
        f"{prepared.cache_path}"
    )
    if prepared.skipped:
        typer.echo(f"skipped {len(prepared.skipped)}:")
        for item in prepared.skipped:
            typer.echo(f"  {item['sample']}: {item['reason']}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
    app.command("prepare")(prepare)
