"""`aullm data stats` and `aullm prepare`: inspect and preprocess a dataset (docs/design.md, Datasets)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aullm.commands.options import JsonOption, SetOption, overrides_list
from aullm.config import DataConfig, apply_overrides, config_from_dict
from aullm.errors import DataError

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

    from aullm.data.stats import dataset_stats

    if root is None and annotations is None:
        raise DataError("give --root DIR (frames and sheet) or --annotations FILE (sheet only)")
    if check_frames and root is None:
        raise DataError("--check-frames decodes the frames: give --root DIR")
    cfg = _data_config({"dataset": dataset, "root": _path_text(root), "annotations": _path_text(annotations)}, [])
    result = dataset_stats(cfg, frames=root is not None, check_frames=check_frames)
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
    import time

    from aullm.data.cache import cache_dir, prepare_dataset
    from aullm.io import check_output_dir

    cfg = _data_config({"dataset": dataset, "root": str(root)}, overrides_list(overrides))
    check_output_dir(cache_dir(cfg), "cache folder (set data.cache_dir to another)")
    start = time.perf_counter()
    prepared = prepare_dataset(cfg)
    if prepared.cache_path is None:
        raise DataError(f"decoded {len(prepared)} samples but could not write the cache into {cache_dir(cfg)}")
    seconds = time.perf_counter() - start
    how = "read from the cache" if prepared.from_cache else "decoded and cached"
    typer.echo(
        f"{len(prepared)} {cfg.dataset} samples ({cfg.input}, {cfg.size}px) {how} in {seconds:.2f}s: "
        f"{prepared.cache_path}"
    )
    if prepared.skipped:
        typer.echo(f"skipped {len(prepared.skipped)}:")
        for item in prepared.skipped:
            typer.echo(f"  {item['sample']}: {item['reason']}")


def _path_text(path: Optional[Path]) -> Optional[str]:
    return str(path) if path is not None else None


def _data_config(data: dict, overrides: list[str]) -> DataConfig:
    """A validated data section: the command's arguments, then `--set` overrides (bad values → exit 2)."""
    raw = apply_overrides({"data": {k: v for k, v in data.items() if v is not None}}, overrides)
    return config_from_dict(raw).data


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
    app.command("prepare")(prepare)
