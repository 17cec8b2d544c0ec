"""`aullm predict`, `aullm explain`, `aullm export`: use a trained model on new clips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from aullm.config import FaceCrop

INPUT_HELP = (
    "A frames folder, a video (mp4/avi/…) or a manifest CSV of many clips (column path; optional clip, "
    "onset, offset, apex)."
)
CHECKPOINT_HELP = (
    "Model bundle written by aullm train --save-final or aullm export (a run directory stands for its bundle/)."
)
RANGE_HELP = "frame number in the file names for a frames folder, 0-based index for a video"

CheckpointOption = typer.Option(..., "--checkpoint", "-c", help=CHECKPOINT_HELP)
OnsetOption = typer.Option(None, "--onset", help=f"First frame of the clip ({RANGE_HELP}); default: the first.")
OffsetOption = typer.Option(None, "--offset", help=f"Last frame of the clip ({RANGE_HELP}); default: the last.")
CropOption = typer.Option(
    False, "--crop-face", help="Crop every frame to the face box found on the first frame (data.face_crop: detect)."
)
AlignOption = typer.Option(
    None,
    "--align/--no-align",
    help="--align: MEB's crop-and-align (data.face_crop: align): rotate so the eyes on the first frame are level, "
    "crop the face, same transform for every frame. --no-align: the frames as they are. Default: the crop the "
    "model was trained with if it had one, else align for a video and the frames as they are for a folder.",
)
DeviceOption = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps.")


def face_crop_option(crop_face: bool, align: Optional[bool]) -> Optional[FaceCrop]:
    """--crop-face / --align / --no-align → the face crop asked for (None: each clip's default)."""
    from aullm.core.errors import UserError

    if crop_face and align is not None:
        raise UserError("--crop-face and --align/--no-align are alternatives: give one")
    if crop_face:
        return "detect"
    if align is None:
        return None
    return "align" if align else "none"


LLMOption = typer.Option(
    None,
    "--llm",
    help="Where the bundle's base LLM is on this machine (same weights: the "
    "sha256 is checked), if not where the bundle says.",
)


def predict(
    input_path: Path = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    checkpoint: Path = CheckpointOption,
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (CSV, or JSON with --json); default: stdout."),
    json_out: bool = typer.Option(False, "--json", help="JSON instead of CSV."),
    onset: Optional[int] = OnsetOption,
    offset: Optional[int] = OffsetOption,
    crop_face: bool = CropOption,
    align: Optional[bool] = AlignOption,
    batch_size: int = typer.Option(32, "--batch", help="Clips per forward pass."),
    device: str = DeviceOption,
    llm: Optional[str] = LLMOption,
) -> None:
    """Predict AU probabilities and 0/1 decisions (at the bundle's thresholds) for new clips; one row per clip.

    Columns: clip, AU<k>_prob, AU<k>, status (ok, or failed: reason — no face found among them), n_frames.
    """
    from aullm import api
    from aullm.core.console import logger
    from aullm.core.errors import UserError
    from aullm.core.io import check_output_file, write_text

    if batch_size < 1:
        raise UserError(f"--batch must be at least 1, got {batch_size}")
    if out is not None:
        check_output_file(out, "--out")
    result = api.predict(
        input_path,
        checkpoint,
        onset=onset,
        offset=offset,
        crop=face_crop_option(crop_face, align),
        batch_size=batch_size,
        device=device,
        llm=llm,
    )
    text = (json.dumps(result.to_json(), indent=2) + "\n") if json_out else result.table.to_csv(index=False)
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_text(out, text)
        logger.info("wrote %s (%d clip(s), %d failed)", out, len(result.table), result.failed)
    if result.failed == len(result.table):
        typer.echo(f"error: every clip failed ({result.table['status'].iloc[0]})", err=True)
        raise typer.Exit(2)


def explain(
    input_path: Path = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    checkpoint: Path = CheckpointOption,
    out: Path = typer.Option(..., "--out", help="Folder for the PNGs (one subfolder per clip for a manifest)."),
    onset: Optional[int] = OnsetOption,
    offset: Optional[int] = OffsetOption,
    apex: Optional[int] = typer.Option(
        None, "--apex", help=f"Frame to draw the heatmaps on ({RANGE_HELP}); default: estimated from the motion."
    ),
    crop_face: bool = CropOption,
    align: Optional[bool] = AlignOption,
    device: str = DeviceOption,
    llm: Optional[str] = LLMOption,
) -> None:
    """Grad-CAM per AU on the apex frame, SE channel weights over time and the learned LED matrix (PNGs)."""
    from aullm import api

    results = api.explain(
        input_path,
        checkpoint,
        out,
        onset=onset,
        offset=offset,
        apex=apex,
        crop=face_crop_option(crop_face, align),
        device=device,
        llm=llm,
    )
    failed = 0
    for clip, files in results.items():
        if isinstance(files, str):
            failed += 1
            typer.echo(f"{clip}: {files}", err=True)
        else:
            folder = files[0].parent if files else out
            typer.echo(f"{clip}: {len(files)} PNGs in {folder} ({', '.join(p.name for p in files)})")
    if failed == len(results):
        raise typer.Exit(2)


def export(
    run_dir: Path = typer.Argument(..., help="A run directory written by aullm train."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Bundle folder (default: RUN_DIR/bundle, or RUN_DIR/bundle_fold<F>_seed<S> with --fold)."
    ),
    fold: Optional[str] = typer.Option(None, "--fold", help="Export this fold's model instead of the final one."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Which seed's model (default: the config's first)."),
) -> None:
    """Write a model bundle from a run: the final model on all subjects (trained now if the run has none) or,
    with --fold, the model of one fold."""
    from aullm import api

    path = api.export(run_dir, out, fold=fold, seed=seed)
    typer.echo(f"model bundle: {path}")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
    app.command("explain")(explain)
    app.command("export")(export)
