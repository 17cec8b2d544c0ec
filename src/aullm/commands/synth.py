"""`aullm synth`: write the SynME synthetic benchmark (DESIGN §7)."""

from __future__ import annotations

from pathlib import Path

import typer

from aullm.errors import NotImplementedYet


def synth(
    out: Path = typer.Argument(..., help="Folder to write the dataset into (created if missing)."),
    subjects: int = typer.Option(12, "--subjects", help="Number of distinct synthetic subjects (faces)."),
    clips_per_subject: int = typer.Option(10, "--clips-per-subject", help="Micro-expression clips per subject."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed writes byte-identical files."),
    size: int = typer.Option(128, "--size", help="Frame size in pixels (square)."),
    layout: str = typer.Option("casme2", "--layout", help="casme2 (Cropped/subXX/… + coding sheet) or samm."),
) -> None:
    """Generate SynME: procedurally drawn faces performing subtle AUs with known ground truth.

    Written in the CASME II cropped layout (or SAMM's), so the regular loaders read it unchanged.
    """
    raise NotImplementedYet(4, "aullm synth")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
