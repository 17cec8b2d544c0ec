"""`aullm synth`: write the SynME synthetic benchmark (docs/design.md, SynME), or with `--long` SynME long videos
for spotting (docs/datasets.md, SynME long)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from aullm.core.errors import UserError, arg


def synth(
    out: Path = typer.Argument(..., help="Folder to write the dataset into (created if missing)."),
    subjects: int = typer.Option(12, "--subjects", help="Number of distinct synthetic subjects (faces)."),
    clips_per_subject: int = typer.Option(10, "--clips-per-subject", help="Micro-expression clips per subject."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed writes byte-identical files."),
    size: int = typer.Option(128, "--size", help="Frame size in pixels (square)."),
    layout: str = typer.Option("casme2", "--layout", help="casme2 (Cropped/subXX/… + coding sheet) or samm."),
    preset: str = typer.Option(
        "default",
        "--preset",
        help="default (CASME II-like AU rates) or demo (the demo's mouth-AU-rich mix; "
        "with the demo's sizes this writes exactly the demo's data). With --long: default or hard "
        "(more head motion, blinks and talking).",
    ),
    long: bool = typer.Option(
        False,
        "--long",
        help="Long videos for spotting: OUT/videos/<NN>_<CODE>.mp4 with micro- and macro-expressions at known "
        "frames, OUT/truth.csv and the CAS(ME)² workbook layout (the clip options above do not apply).",
    ),
    videos: Optional[int] = typer.Option(None, "--videos", help="With --long: number of videos (default 4)."),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="With --long: length of each video (default 60)."),
    fps: Optional[float] = typer.Option(None, "--fps", help="With --long: frame rate (default 30; 200 as SAMM)."),
    frames: bool = typer.Option(
        False, "--frames", help="With --long: also every frame as OUT/rawpic/s<NN>/<NN>_<CODE>/img001.jpg …"
    ),
    width: Optional[int] = typer.Option(None, "--width", help="With --long: frame width (default 640)."),
    height: Optional[int] = typer.Option(None, "--height", help="With --long: frame height (default 480)."),
    videos_per_subject: Optional[int] = typer.Option(
        None, "--videos-per-subject", help="With --long: videos of one drawn face (default 2)."
    ),
) -> None:
    """Generate SynME: procedurally drawn faces performing subtle AUs with known ground truth.

    Written in the CASME II cropped layout (or SAMM's), so the regular loaders read it unchanged. With --long:
    long videos with micro-expressions among blinks, head motion, talking and macro-expressions, for spotting.
    """
    from aullm import api

    long_only = {
        "videos": videos,
        "seconds": seconds,
        "fps": fps,
        "width": width,
        "height": height,
        "videos_per_subject": videos_per_subject,
    }
    start = time.perf_counter()
    if long:
        given = {k: v for k, v in long_only.items() if v is not None}
        truth = api.synth_long(out, preset=preset, seed=seed, frames=frames, **given)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
        n_videos = truth["video"].nunique() if len(truth) else 0
        total = int(truth.drop_duplicates("video")["frames"].sum()) if len(truth) else 0
        typer.echo(
            f"SynME long ({preset}, seed {seed}): {n_videos} videos, {total} frames, "
            f"{int((truth['kind'] == 'micro').sum())} micro- and {int((truth['kind'] == 'macro').sum())} "
            f"macro-expressions, written to {out} in {elapsed:.1f}s ({total / max(elapsed, 1e-9):.0f} frames/s)"
        )
        return
    misplaced = [k for k, v in long_only.items() if v is not None] + (["frames"] if frames else [])
    if misplaced:
        raise UserError(f"{arg(misplaced[0])} applies to long videos only: add {arg('long', True)}")
    df = api.synth(
        out, subjects=subjects, clips_per_subject=clips_per_subject, seed=seed, size=size, layout=layout, preset=preset
    )
    elapsed = time.perf_counter() - start
    targets = list(api.SYNME_AUS)
    no_target = int((df[targets].sum(axis=1) == 0).sum())
    typer.echo(
        f"SynME ({layout}, seed {seed}, {size}px): {len(df)} clips, {df['subject'].nunique()} subjects, "
        f"{int(df['n_frames'].sum())} frames, written to {out} in {elapsed:.1f}s"
    )
    rates = "  ".join(f"{au} {df[au].mean():.2f}" for au in targets)
    typer.echo(f"AU base rates: {rates}")
    typer.echo(f"clips with no target AU: {no_target}; with a blink: {int(df['blink'].sum())}")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
