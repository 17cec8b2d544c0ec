"""Videos made from a real photograph (scikit-image's astronaut) for the spotting and video tests.

The face is moved, rotated, scaled and re-lit over time like a person sitting in front of a camera, and may make
one "expression": a smooth local displacement of the brows (or the mouth corners) rising to an apex and returning,
like SynME's AU fields but on a real face. Written with PyAV (H.264) or as a frames folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

#: The astronaut's five landmarks (MTCNN, in the 512×512 photograph): eyes, nose, mouth corners.
EYES_Y, LEFT_EYE_X, RIGHT_EYE_X, MOUTH_Y = 101.0, 204.5, 247.0, 141.0


@dataclass(frozen=True)
class Expression:
    """A displacement of the brows (or mouth corners) of `amplitude` px (in the photograph) over [onset, offset]."""

    onset: int
    offset: int
    amplitude: float = 2.5
    where: str = "brows"


def _photo() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def _displacement(expression: Expression, frame: int, shape: tuple[int, int]) -> Optional[tuple[np.ndarray, ...]]:
    if not expression.onset <= frame <= expression.offset:
        return None
    length = max(1, expression.offset - expression.onset)
    phase = (frame - expression.onset) / length
    strength = np.sin(np.pi * phase) ** 2 * expression.amplitude
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    dx = np.zeros(shape, np.float32)
    dy = np.zeros(shape, np.float32)
    if expression.where == "brows":
        centres, direction = [(LEFT_EYE_X, EYES_Y - 14), (RIGHT_EYE_X, EYES_Y - 14)], (0.0, -1.0)
    else:
        centres, direction = [(202.0, MOUTH_Y), (245.0, MOUTH_Y)], (0.0, -1.0)
    for cx, cy in centres:
        g = np.exp(-0.5 * (((xx - cx) / 9.0) ** 2 + ((yy - cy) / 7.0) ** 2)) * strength
        dx += g * direction[0]
        dy += g * direction[1]
    return xx - dx, yy - dy


def photo_frames(
    frames: int, fps: float, size: int = 320, expression: Optional[Expression] = None, seed: int = 0
) -> list[np.ndarray]:
    """BGR frames size×size: the astronaut's face moving and re-lit, with `expression` if given."""
    rng = np.random.default_rng(seed)
    photo = _photo().astype(np.float32)
    t = np.arange(frames) / fps
    drift_x = 6.0 * np.sin(2 * np.pi * t / 7.0) + np.cumsum(rng.normal(0, 0.05, frames))
    drift_y = 4.0 * np.sin(2 * np.pi * t / 5.3 + 1.0)
    angle = 3.0 * np.sin(2 * np.pi * t / 9.0)
    scale = 1.0 + 0.02 * np.sin(2 * np.pi * t / 11.0)
    light = 1.0 + 0.15 * np.sin(2 * np.pi * t / 6.0)
    out = []
    centre = (225.0, 120.0)
    zoom = 1.6  # the face fills about half the frame, as in an interview
    for i in range(frames):
        image = photo
        if expression is not None:
            maps = _displacement(expression, i, photo.shape[:2])
            if maps is not None:
                image = cv2.remap(photo, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        matrix = cv2.getRotationMatrix2D(centre, float(angle[i]), zoom * float(scale[i]))
        matrix[:, 2] += np.array([size / 2 + drift_x[i], size / 2.3 + drift_y[i]]) - np.array(centre)
        frame = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame = frame * light[i] + rng.normal(0, 1.5, frame.shape)
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frames(folder: Path, frames: list[np.ndarray], first: int = 1, pattern: str = "img{:03d}.jpg") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(frames):
        cv2.imwrite(str(folder / pattern.format(first + k)), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder
