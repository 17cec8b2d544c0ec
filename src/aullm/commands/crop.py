"""`aullm crop`: the face crops of one clip as JPEGs (what the model sees, at the crop's own resolution)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def crop(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="A frames folder or a video (mp4/avi/…)."),
    out: Path = typer.Option(..., "--out", help="Folder for the cropped frames (created if missing)."),
    mode: str = typer.Option(
        "align",
        "--mode",
        help="align: MEB's crop-and-align (rotate so the eyes on the first frame are level, crop the face, same "
        "transform for every frame); detect: the face box found on the first frame, no rotation.",
    ),
    size: Optional[int] = typer.Option(None, "--size", help="Side of the crops in pixels (default: the crop's own)."),
    onset: Optional[int] = typer.Option(None, "--onset", help="First frame (file-name number, or video index)."),
    offset: Optional[int] = typer.Option(None, "--offset", help="Last frame (file-name number, or video index)."),
    force: bool = typer.Option(
        False, "--force", help="Write into a folder of files aullm did not write (never the input, nor inside it)."
    ),
) -> None:
    """Write the face crops of a clip as gray JPEGs, one per frame: preprocess a dataset once, as MEB's tool does,
    and see what the model sees. A frames folder keeps its file names; a video's frames become frame<index>.jpg."""
    from aullm import api

    written = api.crop(input_path, out, mode=mode, size=size, onset=onset, offset=offset, force=force)
    with_size = ""
    if written:
        from PIL import Image

        with Image.open(written[0]) as im:
            with_size = f", {im.size[0]}×{im.size[1]} px"
    typer.echo(f"wrote {len(written)} {mode} crops{with_size} to {out}")


def register(app: typer.Typer) -> None:
    app.command("crop")(crop)
