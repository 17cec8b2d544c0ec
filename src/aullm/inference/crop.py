"""Library side of `aullm crop`: write the face crops of one clip as JPEGs, as MEB's preprocessing tool does.

A user can preprocess a dataset once (then train on the crops with `data.face_crop: none`) and see exactly what the
model sees: the crops come from the one decoding path (`aullm.data.decode`), the same face search on the onset
frame and the same transform on every frame as `prepare` and `predict` use, only at the crop's own resolution (or
`size`) instead of the model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PIL import Image

from aullm.core.errors import UserError, arg
from aullm.core.io import atomic_path
from aullm.core.outputs import check_output_folder, mark_output_folder
from aullm.data.clips import FrameError
from aullm.data.decode import locate_face, read_frames
from aullm.data.faces.align import Alignment
from aullm.inference.predict import clip_source, collect_requests

JPEG_QUALITY = 95
#: The largest crop side `size` may ask for (every frame is held at size² bytes before it is written).
MAX_CROP_SIZE = 4096


def crop_clip(
    input_path: Path,
    out: Path,
    mode: str = "align",
    size: Optional[int] = None,
    onset: Optional[int] = None,
    offset: Optional[int] = None,
    force: bool = False,
) -> list[Path]:
    """Crop every frame of a frames folder or a video and write them into `out` as gray JPEGs.

    A frames folder keeps its file names (so frame numbers, and an annotation sheet's onset/offset, still apply); a
    video's frames are written as `frame<index>.jpg` with the 0-based index in the video. `size`: the crops' side in
    pixels; default the crop's own side in the original frame. Raises UserError when INPUT is not one clip, cannot
    be read or shows no face on its first frame, and an `out` that is the input or inside it, or a folder of
    files aullm did not write (unless `force`: the crops could overwrite them).
    """
    if mode not in ("align", "detect"):
        raise UserError(f"{arg('mode', repr(mode))}: use align or detect")
    if size is not None and not 8 <= size <= MAX_CROP_SIZE:
        raise UserError(f"{arg('size', size)}: give 8..{MAX_CROP_SIZE} pixels")
    check_output_folder(Path(out), "crop", [Path(input_path)], force=force, what=arg("out"))
    requests = collect_requests(input_path, onset, offset)
    if len(requests) != 1:
        raise UserError(f"{input_path} is a manifest: aullm crop takes one clip (a frames folder or a video)")
    try:
        source = clip_source(requests[0])
        if source.kind == "flow_image":
            raise UserError(f"{input_path} is a single image: aullm crop takes a frames folder or a video")
        crop = locate_face(source, mode)
        assert crop is not None  # `mode` is a face crop: no face raises NoFaceError
        side = crop.side if isinstance(crop, Alignment) else crop[2] - crop[0]
        frames = read_frames(source, size or max(8, int(round(side))), crop)
    except FrameError as err:
        raise UserError(str(err)) from None
    if source.kind == "video":
        names = [f"frame{source.start + i:05d}.jpg" for i in range(len(frames))]
    else:
        names = [p.stem + ".jpg" for p in source.paths]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mark_output_folder(out, "crop")
    written = []
    for frame, name in zip(frames, names):
        path = out / name
        with atomic_path(path) as tmp:
            Image.fromarray(frame).save(tmp, format="JPEG", quality=JPEG_QUALITY)
        written.append(path)
    return written


__all__ = ["crop_clip"]
