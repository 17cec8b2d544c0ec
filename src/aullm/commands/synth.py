"""`aullm synth`: write the SynME synthetic benchmark (docs/design.md, SynME)."""

from __future__ import annotations

import time
from pathlib import Path

import typer


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
        "with the demo's sizes this writes exactly the demo's data).",
    ),
) -> None:
    """Generate SynME: procedurally drawn faces performing subtle AUs with known ground truth.

    Written in the CASME II cropped layout (or SAMM's), so the regular loaders read it unchanged.
    """
    from aullm import api

    start = time.perf_counter()
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
