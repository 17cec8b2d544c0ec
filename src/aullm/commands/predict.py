"""`aullm predict`, `aullm explain`, `aullm export`: use a trained model on new clips."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aullm.errors import NotImplementedYet


def predict(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="A frames folder, a video (mp4/avi) or a manifest CSV."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Model bundle written by aullm train --save-final."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output CSV (default: print to stdout)."),
    crop_face: bool = typer.Option(False, "--crop-face", help="Detect the face on the first frame and crop to it."),
) -> None:
    """Predict AU probabilities and 0/1 decisions for new clips; one row per clip."""
    raise NotImplementedYet(10, "aullm predict")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
