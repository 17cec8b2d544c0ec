"""Real face photographs that ship inside installed packages, with hand-marked landmarks, for the face-crop tests.

- scikit-image's `astronaut()` (Eileen Collins, NASA, public domain), 512×512 colour;
- matplotlib's sample `grace_hopper.jpg` (US Navy, public domain), 512×600 colour.

The points were marked by hand on the unrotated photographs (pixel coordinates, x right, y down): both eyebrows
(outer and inner ends; Grace Hopper's brows sit behind her glasses' rim, so the rim's top edge is marked), the
chin's lowest point, and the two pupils.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Photo:
    name: str
    gray: np.ndarray
    brows: np.ndarray  # [4, 2]
    chin: np.ndarray  # [2]
    pupils: np.ndarray  # [2, 2]: the one on the image's left first

    @property
    def marks(self) -> np.ndarray:
        """Brows and chin: what an aligned crop must contain."""
        return np.vstack([self.brows, self.chin[None]])


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def astronaut() -> Photo:
    from skimage.data import astronaut as load

    return Photo(
        "astronaut",
        _gray(load()),
        brows=np.array([(183, 90), (212, 89), (236, 90), (260, 93)], float),
        chin=np.array([225, 175], float),
        pupils=np.array([(203.1, 100.5), (246.25, 103.25)]),
    )


def grace_hopper() -> Photo:
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as fh, Image.open(fh) as im:
        rgb = np.asarray(im.convert("RGB"))
    return Photo(
        "grace_hopper",
        _gray(rgb),
        brows=np.array([(182, 178), (240, 174), (282, 174), (352, 178)], float),
        chin=np.array([262, 327], float),
        pupils=np.array([(222.5, 190.0), (304.5, 187.0)]),
    )


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine map to [N, 2] points."""
    points = np.atleast_2d(points)
    return points @ matrix[:, :2].T + matrix[:, 2]


def rotated(gray: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by `degrees` (counter-clockwise as seen) about its centre, and the 2×3 map of its points."""
    height, width = gray.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    out = cv2.warpAffine(gray, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, matrix


def on_canvas(gray: np.ndarray, width: int, height: int, x: int, y: int, fill: int = 90) -> np.ndarray:
    """The image pasted with its top-left corner at (x, y) into a flat frame of width×height."""
    canvas = np.full((height, width), fill, np.uint8)
    canvas[y : y + gray.shape[0], x : x + gray.shape[1]] = gray
    return canvas


def line_angle(points: np.ndarray) -> float:
    """The angle in degrees of the line from points[0] to points[1] (y down: positive when the second is lower)."""
    (x0, y0), (x1, y1) = points[:2]
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


__all__ = ["Photo", "astronaut", "grace_hopper", "line_angle", "on_canvas", "rotated", "transform_points"]
