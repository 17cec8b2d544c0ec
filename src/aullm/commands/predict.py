"""`aullm predict`, `aullm explain`, `aullm export`: use a trained model on new clips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from aullm.config import FaceCrop
from aullm.core.errors import UserError

INPUT_HELP = (
    "A frames folder, a video (mp4/avi/…) or a manifest CSV of many clips (column path; optional clip, "
    "onset, offset, apex)."
)
PREDICT_INPUT_HELP = (
    "Frames folders, videos (mp4/avi/…), folders of videos (searched for videos and frames folders), or one "
    "manifest CSV of clips (column path; optional clip, onset, offset, apex)."
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
ForceOption = typer.Option(
    False, "--force", help="Overwrite an existing --out that aullm did not write (never an input, nor inside one)."
)


def face_crop_option(crop_face: bool, align: Optional[bool]) -> Optional[FaceCrop]:
    """--crop-face / --align / --no-align → the face crop asked for (None: each clip's default)."""
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
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help=PREDICT_INPUT_HELP),
    checkpoint: Path = CheckpointOption,
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        help="Output: a file (CSV, or JSON with --json; default stdout) for one clip or one video; a folder "
        "(<video>.csv per video, index.csv, report.html) for several videos, a folder of videos, --report or "
        "--explain.",
    ),
    json_out: bool = typer.Option(False, "--json", help="JSON instead of CSV (one clip or one video)."),
    spot: bool = typer.Option(
        False, "--spot", help="Spot the expressions and predict each (the default for input longer than 2 s)."
    ),
    windows: Optional[float] = typer.Option(
        None, "--windows", metavar="SECONDS", help="Score sliding windows of this length over the whole video."
    ),
    stride: Optional[float] = typer.Option(
        None, "--stride", metavar="SECONDS", help="Step between windows (default: half a window)."
    ),
    onset: Optional[int] = OnsetOption,
    offset: Optional[int] = OffsetOption,
    fps: Optional[float] = typer.Option(
        None, "--fps", help="Frame rate (default: the video's own; frames folders need it to be spotted)."
    ),
    kind: str = typer.Option("both", "--kind", metavar="micro|macro|both", help="Which spotted expressions."),
    report: bool = typer.Option(
        False, "--report", help="Also a timeline picture per video and one self-contained report.html."
    ),
    explain_events: bool = typer.Option(
        False, "--explain", help="Also each event's Grad-CAM pictures (DIR/<video>_explain/event<N>/)."
    ),
    crop_face: bool = CropOption,
    align: Optional[bool] = AlignOption,
    batch_size: int = typer.Option(32, "--batch", help="Clips per forward pass."),
    device: str = DeviceOption,
    llm: Optional[str] = LLMOption,
    force: bool = ForceOption,
) -> None:
    """Predict AU probabilities and 0/1 decisions (at the bundle's thresholds).

    A clip (frames folder, short video, manifest CSV, or --onset/--offset): one row per clip with columns clip,
    AU<k>_prob, AU<k>, status, n_frames. A long video (over 2 s) or --spot: one row per spotted expression (video,
    event, onset, apex, offset, t_onset_s, t_offset_s, spot_score, kind, AU<k>_prob, AU<k>, status); --windows:
    one row per window. Several videos or a folder of them: --out DIR gets <video>.csv each and index.csv.
    """
    from aullm import api

    if batch_size < 1:
        raise UserError(f"--batch must be at least 1, got {batch_size}")
    crop = face_crop_option(crop_face, align)
    plan = api.predict_plan(
        inputs, spot=spot, windows=windows, report=report, explain=explain_events, onset=onset, offset=offset,
        fps=fps, out=out,
    )  # fmt: skip
    if plan == "videos":
        assert out is not None
        _predict_videos(inputs, checkpoint, out, spot, windows, stride, fps, kind, crop, report,
                        explain_events, batch_size, device, llm, force)  # fmt: skip
        return
    if out is not None:
        api.check_predict_output(out, inputs, force=force)
    if plan == "video":
        _predict_one_video(inputs[0], checkpoint, out, json_out, spot, windows, stride, fps, kind, crop,
                           batch_size, device, llm)  # fmt: skip
        return
    _predict_clips(inputs[0], checkpoint, out, json_out, onset, offset, crop, batch_size, device, llm)


def _predict_clips(
    input_path: Path,
    checkpoint: Path,
    out: Optional[Path],
    json_out: bool,
    onset: Optional[int],
    offset: Optional[int],
    crop: Optional[FaceCrop],
    batch_size: int,
    device: str,
    llm: Optional[str],
) -> None:
    from aullm import api
    from aullm.core.console import logger
    from aullm.core.io import write_text

    result = api.predict(
        input_path, checkpoint, onset=onset, offset=offset, crop=crop, batch_size=batch_size, device=device, llm=llm
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


def _predict_one_video(
    source: Path,
    checkpoint: Path,
    out: Optional[Path],
    json_out: bool,
    spot: bool,
    windows: Optional[float],
    stride: Optional[float],
    fps: Optional[float],
    kind: str,
    crop: Optional[FaceCrop],
    batch_size: int,
    device: str,
    llm: Optional[str],
) -> None:
    """One video (long, or --spot/--windows) into one table: its events or its windows."""
    from aullm import api
    from aullm.core.console import logger
    from aullm.core.io import write_text

    run = api.predict_videos(
        source, checkpoint, None, spot=spot, windows=windows, stride=stride, fps=fps, kind=kind, crop=crop,
        batch_size=batch_size, device=device, llm=llm,
    )  # fmt: skip
    video = run.videos[0]
    if video.result is None:
        typer.echo(f"error: {video.name}: {video.error}", err=True)
        raise typer.Exit(2)
    table = video.result.table
    if json_out:
        records = json.loads(table.to_json(orient="records"))
        text = json.dumps({"video": video.name, "mode": video.result.mode, "rows": records}, indent=2) + "\n"
    else:
        text = table.to_csv(index=False)
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_text(out, text)
        logger.info("wrote %s (%s: %s)", out, video.name, video.status)


def _predict_videos(
    inputs: list[Path],
    checkpoint: Path,
    out: Path,
    spot: bool,
    windows: Optional[float],
    stride: Optional[float],
    fps: Optional[float],
    kind: str,
    crop: Optional[FaceCrop],
    report: bool,
    explain_events: bool,
    batch_size: int,
    device: str,
    llm: Optional[str],
    force: bool,
) -> None:
    from aullm import api

    run = api.predict_videos(
        inputs, checkpoint, out, spot=spot, windows=windows, stride=stride, fps=fps, kind=kind, crop=crop,
        report=report, explain=explain_events, batch_size=batch_size, device=device, llm=llm, force=force,
    )  # fmt: skip
    ok = len(run.videos) - run.failed
    events = int(run.index["events"].fillna(0).sum()) if len(run.index) else 0
    typer.echo(
        f"{ok} of {len(run.videos)} video(s) done, {events} event(s); {out / 'index.csv'}"
        + (f", {run.report}" if run.report is not None else "")
    )
    for video in run.videos:
        if video.error is not None:
            typer.echo(f"error: {video.name}: {video.error}", err=True)
    if run.failed == len(run.videos):
        raise typer.Exit(2)
    if run.failed:
        raise typer.Exit(1)


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
    force: bool = ForceOption,
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
        force=force,
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
