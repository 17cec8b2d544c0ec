"""One decoding path: a clip's source (frames folder, video or flow image) → the model's input pixels.

`aullm prepare` (the training cache), `aullm predict`, `aullm explain` and `aullm crop` all call `decode_clip`, so a
clip gives the same array wherever it goes: the same frame reader, face crop and resize, and for `data.input: flow`
the same onset→apex flow. Time sampling is not done here: a decoded clip keeps every frame onset..offset, and the
trainer's `sample_batch` samples it for training and for prediction alike.

Face crop (`data.face_crop`): `none` uses the frames as they are; `detect` crops every frame to the box of the face
found on the onset frame (a bundled cascade, `aullm.data.faces.detect`); `align` rotates and crops every frame with the
transform found on the onset frame (MEB's crop-and-align, `aullm.data.faces.align`). Pre-computed flow images are never
cropped.

A clip with no face (one policy for every command): with `detect` or `align`, a clip whose onset frame shows no
face raises `NoFaceError`, a `FrameError`, instead of being decoded into something that is not a face. `prepare`
therefore skips it with a warning naming it and lists it among the skipped samples; `predict` and `explain` mark
its row `failed: no face found in …`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image

from aullm.config import DataConfig, FaceCrop
from aullm.data import flow
from aullm.data.clips import (
    Box,
    FrameError,
    check_frame_size,
    image_size,
    load_frames,
    open_image,
    read_gray,
    read_video,
    resize_gray,
    video_first_frame,
)
from aullm.data.faces import align
from aullm.data.faces import detect as faces
from aullm.data.faces.align import Alignment
from aullm.data.index import ClipSource

#: What a clip's onset frame gave: a face box (`detect`) or a rotate-and-crop transform (`align`).
Crop = Union[Box, Alignment]


class NoFaceError(FrameError):
    """`detect` or `align` found no face on the clip's onset frame."""


@dataclass(frozen=True)
class DecodeSettings:
    """The settings that decide a decoded clip's pixels."""

    input: str = "clip"  # "clip" (frames) or "flow" (onset→apex flow)
    size: int = 64
    face_crop: FaceCrop = "none"

    @classmethod
    def of(cls, cfg: DataConfig) -> DecodeSettings:
        return cls(input=cfg.input, size=cfg.size, face_crop=cfg.face_crop or "none")


@dataclass
class Decoded:
    """A decoded clip: uint8 frames [n, size, size] (clip input) or float32 flow [3, size, size] (flow input), the
    number of frames it was read from, and the crop its onset frame gave (for drawing frames the same way)."""

    clip: Optional[np.ndarray] = None
    flow: Optional[np.ndarray] = None
    n_frames: int = 0
    crop: Optional[Crop] = None


def crop_signature(face_crop: Optional[str]) -> str:
    """The crop mode and the version of what implements it, for cache keys: a new detector means new pixels."""
    if face_crop == "detect":
        return f"detect:{faces.detector_name()}"
    if face_crop == "align":
        return f"align:mtcnn:v{align.VERSION}"
    return "none"


# ----------------------------------------------------------------------------------------------- the face


def _onset_where(source: ClipSource) -> str:
    if source.kind == "array":
        return "the first frame of the array"
    return f"frame {source.start} of {source.paths[0]}" if source.kind == "video" else str(source.paths[0])


def gray_frames(array: np.ndarray) -> np.ndarray:
    """Frames in memory → gray uint8 [T, H, W]. RGB frames become gray as Pillow converts an image file's (ITU-R
    601 luma), so an array and the JPEGs it came from give the same pixels. A malformed array is a FrameError."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise FrameError(f"frames must be uint8 (0..255), got {array.dtype}")
    if array.ndim == 4 and array.shape[-1] == 3:
        array = np.stack([np.asarray(Image.fromarray(frame).convert("L")) for frame in array])
    elif array.ndim != 3:
        raise FrameError(f"frames must be [T, H, W] gray or [T, H, W, 3] RGB, got shape {tuple(array.shape)}")
    if len(array) == 0:
        raise FrameError("the array holds no frame")
    check_frame_size(array.shape[2], array.shape[1], "each frame of the array")
    return array


def _decode_for_detection(path: Path) -> tuple[np.ndarray, float]:
    """An image file at about the detector's working size (JPEG draft mode), in colour when it has colour (MTCNN's
    training domain: on gray frames it misses far more faces), and that size's scale."""
    with open_image(path) as im:
        width = im.size[0]
        mode = "L" if im.mode in ("L", "I;16", "I", "F", "1") else "RGB"
        if im.format == "JPEG":
            im.draft(mode, (align.DETECT_MAX_SIDE, align.DETECT_MAX_SIDE))
        image = np.asarray(im.convert(mode), dtype=np.uint8)
    return image, image.shape[1] / width


def face_in_frame(frame: np.ndarray, face_crop: Optional[str], where: str) -> Optional[Crop]:
    """The crop a full-resolution onset frame gives (a video's or an array's; gray [H, W] or RGB [H, W, 3], which
    `align`'s detector finds faces in more reliably): None for `none`; raises NoFaceError naming `where`. Streamed
    clips of a long video (`aullm.data.stream_clips`) locate theirs here too."""
    if face_crop in (None, "none"):
        return None
    if face_crop == "detect":
        gray = np.asarray(Image.fromarray(frame).convert("L")) if frame.ndim == 3 else frame
        found: Optional[Crop] = faces.face_box(gray)
    else:
        found = align.find_alignment(frame)
    if found is None:
        raise NoFaceError(f"no face found in {where}")
    return found


def locate_face(source: ClipSource, face_crop: Optional[str]) -> Optional[Crop]:
    """The clip's crop from its onset frame: None for `none` and for flow images; raises NoFaceError."""
    if face_crop in (None, "none") or source.kind == "flow_image":
        return None
    if source.kind == "array":
        assert source.array is not None
        onset = source.array[0] if np.asarray(source.array).ndim == 4 else gray_frames(source.array[:1])[0]
        return face_in_frame(np.asarray(onset, dtype=np.uint8), face_crop, _onset_where(source))
    if source.kind == "video":
        first = video_first_frame(source.paths[0], source.start, colour=True)
        return face_in_frame(first, face_crop, _onset_where(source))
    if face_crop == "detect":
        box = faces.face_box_from_file(source.paths[0])
        if box is None:
            raise NoFaceError(f"no face found in {_onset_where(source)}")
        return box
    onset, scale = _decode_for_detection(source.paths[0])
    found = align.find_alignment(onset)
    if found is None:
        raise NoFaceError(f"no face found in {_onset_where(source)}")
    return found.rescaled(1 / scale)


# ----------------------------------------------------------------------------------------------- frames


def read_aligned(path: Path, size: int, alignment: Alignment) -> np.ndarray:
    """One image file, rotated and cropped by `alignment`, as gray uint8 [size, size].

    JPEGs decode in draft mode at no less than twice the crop's target resolution, as `read_gray` does for boxes.
    """
    with open_image(path) as im:
        width, height = im.size
        if im.format == "JPEG":
            ratio = 2 * size / alignment.side
            im.draft("L", (math.ceil(width * ratio), math.ceil(height * ratio)))
        gray = np.asarray(im.convert("L"), dtype=np.uint8)
    return alignment.apply(gray, gray.shape[1] / width, size)


def read_image(path: Path, size: int, crop: Optional[Crop]) -> np.ndarray:
    """One image file as gray uint8 [size, size] with the clip's crop."""
    if isinstance(crop, Alignment):
        return read_aligned(path, size, crop)
    return read_gray(path, size, crop)


def crop_frame(gray: np.ndarray, size: int, crop: Optional[Crop]) -> np.ndarray:
    """One decoded gray frame at full resolution → [size, size] with the clip's crop (as a video's frames are)."""
    if isinstance(crop, Alignment):
        return crop.apply(gray, 1.0, size)
    if crop is not None:
        gray = np.ascontiguousarray(gray[crop[1] : crop[3], crop[0] : crop[2]])
    return resize_gray(gray, size)


def read_frames(source: ClipSource, size: int, crop: Optional[Crop]) -> np.ndarray:
    """Every frame of a frames folder, video or in-memory clip, gray uint8 [n, size, size], with the clip's crop."""
    if source.kind == "array":
        assert source.array is not None
        return np.stack([crop_frame(gray, size, crop) for gray in gray_frames(source.array)])
    if source.kind == "video":
        if isinstance(crop, Alignment):
            aligned = crop

            def transform(gray: np.ndarray) -> np.ndarray:
                return aligned.apply(gray, 1.0, size)

            return read_video(source.paths[0], size, source.start, source.stop, transform=transform)
        return read_video(source.paths[0], size, source.start, source.stop, crop)
    if crop is not None:
        sizes = sorted({image_size(p) for p in source.paths})
        if len(sizes) > 1:  # the crop was found on one frame: on a frame of another size it cuts elsewhere
            shown = ", ".join(f"{w}×{h}" for w, h in sizes[:4])
            raise FrameError(
                f"clip {Path(source.paths[0]).parent}: its frames have different sizes ({shown}), so the face crop "
                "found on one frame does not fit the others"
            )
    if isinstance(crop, Alignment):
        return np.stack([read_aligned(p, size, crop) for p in source.paths])
    return load_frames(source.paths, size, crop)


def read_frame(source: ClipSource, pos: int, size: int, crop: Optional[Crop]) -> np.ndarray:
    """Frame `pos` of the clip at any size, cropped as the clip is (explain draws its heatmaps on it)."""
    if source.kind == "array":
        assert source.array is not None
        return crop_frame(gray_frames(source.array[min(pos, len(source.array) - 1)][None])[0], size, crop)
    if source.kind == "video":
        index = source.start + pos
        return read_frames(ClipSource("video", source.paths, start=index, stop=index), size, crop)[0]
    return read_image(source.paths[min(pos, len(source.paths) - 1)], size, crop)


def _apex_pos(pos: Optional[int], n: int) -> int:
    """The apex frame's position; the clip's middle when it is not known (`/` in a sheet, or not given)."""
    if pos is None or not 0 <= pos < n:
        return n // 2
    return pos


def frame_size(settings: DecodeSettings) -> int:
    """The side each frame of a clip is cropped to: the model's size, or the flow's working size."""
    return settings.size if settings.input == "clip" else flow.working_size(settings.size)


def decoded_frames(
    frames: np.ndarray, settings: DecodeSettings, apex_pos: Optional[int], crop: Optional[Crop]
) -> Decoded:
    """A video's (or an array's) cropped frames [n, side, side] at `frame_size` → the decoded clip: the frames
    themselves, or the onset→apex flow."""
    if settings.input == "clip":
        return Decoded(clip=frames, n_frames=len(frames), crop=crop)
    n = len(frames)
    apex = frames[_apex_pos(apex_pos, n)]
    return Decoded(flow=flow.flow_input(frames[0], apex, settings.size), n_frames=n, crop=crop)


def decode_clip(source: ClipSource, settings: DecodeSettings) -> Decoded:
    """Decode one clip for `settings`; raises FrameError (NoFaceError when the crop finds no face)."""
    if source.kind == "flow_image":
        if settings.input != "flow":
            raise FrameError(f"{source.paths[0]} is a pre-computed flow image; it needs a model with data.input: flow")
        return Decoded(flow=flow.read_flow_image(source.paths[0], settings.size), n_frames=1)
    crop = locate_face(source, settings.face_crop)
    if source.kind in ("video", "array"):
        return decoded_frames(read_frames(source, frame_size(settings), crop), settings, source.apex_pos, crop)
    if settings.input == "clip":
        clip = read_frames(source, settings.size, crop)
        return Decoded(clip=clip, n_frames=len(clip), crop=crop)
    work = flow.working_size(settings.size)
    n = len(source.paths)
    onset = read_image(source.paths[0], work, crop)
    apex = read_image(source.paths[_apex_pos(source.apex_pos, n)], work, crop)
    return Decoded(flow=flow.flow_input(onset, apex, settings.size), n_frames=n, crop=crop)


__all__ = [
    "Crop",
    "DecodeSettings",
    "Decoded",
    "NoFaceError",
    "crop_frame",
    "crop_signature",
    "decode_clip",
    "decoded_frames",
    "face_in_frame",
    "frame_size",
    "gray_frames",
    "locate_face",
    "read_aligned",
    "read_frame",
    "read_frames",
    "read_image",
]
