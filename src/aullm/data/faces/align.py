"""Crop-and-align for footage shipped uncropped (`data.face_crop: align`), after the MEB benchmark's tool.

The procedure of MEB's `tools/crop_and_align.py`, done once per clip: find the face and its five landmarks on the
onset frame, rotate so that the eyes are level, find the face again on the rotated onset, and crop that box; every
frame of the clip then gets the same rotation and crop. One transform per clip, never per frame: re-detecting on
each frame would add jitter far larger than a micro-expression's 1–3 px motion, while the one transform keeps that
motion intact and removes only the head's pose at onset.

Where aullm differs from MEB, and why:
- the landmarks come from MTCNN (`aullm.data.faces.mtcnn`), whose weights install from the package registry; MEB uses
  RetinaFace, whose package downloads its weights at run time;
- the eye points average the detections on the frame and on its mirror image, and the second detection's eye line
  also corrects the first angle (the final tilt is the mean of the two measurements), which makes the result level
  to within about a degree (MTCNN's eye points are a pixel or two coarse);
- the crop is a square around the face box, grown by `MARGIN` of its side on every side, so that the eyebrows and
  the chin are inside (MTCNN's box ends at the chin's tip and the brows' top edge), and the face keeps its aspect
  ratio when resized; MEB crops the box plus 2% of the frame's width on the left and right and resizes that to a
  square;
- the rotation turns about the eyes' midpoint, not the frame's centre, so a face near the frame's edge stays in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
from PIL import Image

from aullm.data.faces import mtcnn

#: Detection runs on a copy whose longer side is at most this many pixels (faces fill much of a ME frame).
DETECT_MAX_SIDE = 640
#: The smallest face searched for, as a fraction of the detection copy's shorter side (speed: fewer pyramid levels).
MIN_FACE_FRACTION = 0.1
#: The crop's margin around the detector's face box, as a fraction of the box's side, on every side.
MARGIN = 0.12
#: Bump when the geometry below changes, so cached aligned clips are not reused (2: faces are found on the colour
#: onset frame where the source has colour).
VERSION = 2


@dataclass(frozen=True)
class Alignment:
    """One clip's transform: rotate by `angle` degrees (counter-clockwise, OpenCV's convention) about `centre`,
    then crop the square of side `side` whose top-left corner is `corner`; all in the original frame's pixels."""

    angle: float
    centre: tuple[float, float]
    corner: tuple[float, float]
    side: float

    def rescaled(self, factor: float) -> Alignment:
        """The same transform for the frame resized by `factor` (found on a reduced copy → the original's pixels)."""
        if factor == 1.0:
            return self

        def point(p: tuple[float, float]) -> tuple[float, float]:  # pixel centres at integers, as in `matrix`
            return ((p[0] + 0.5) * factor - 0.5, (p[1] + 0.5) * factor - 0.5)

        return Alignment(self.angle, point(self.centre), point(self.corner), self.side * factor)

    def matrix(self, scale: float, out: int) -> np.ndarray:
        """The 2×3 affine map from a frame decoded at `scale` × the original resolution to the out×out crop.

        Pixel centres sit at integer coordinates (OpenCV's convention), so the scalings are taken about pixel
        edges: a decoded pixel i covers the original's [(i + 0.5)/scale − 0.5 ± 0.5/scale].
        """
        from_decoded = np.array([[1 / scale, 0, 0.5 / scale - 0.5], [0, 1 / scale, 0.5 / scale - 0.5], [0, 0, 1]])
        rotate = np.vstack([cv2.getRotationMatrix2D(self.centre, self.angle, 1.0), [0, 0, 1]])
        k = out / self.side
        crop = np.array([[k, 0, -k * self.corner[0] - 0.5], [0, k, -k * self.corner[1] - 0.5], [0, 0, 1]])
        return (crop @ rotate @ from_decoded)[:2]

    def warp(self, frame: np.ndarray, scale: float, out: int) -> np.ndarray:
        """Rotate and crop one gray frame (decoded at `scale`) to out×out pixels; outside the frame: edge pixels."""
        return cv2.warpAffine(
            frame,
            self.matrix(scale, out),
            (out, out),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )

    def apply(self, frame: np.ndarray, scale: float, size: int) -> np.ndarray:
        """The aligned crop at size×size: warped at the frame's own resolution, then an anti-aliased resize."""
        native = max(size, int(round(self.side * scale)))
        warped = self.warp(frame, scale, native)
        if native == size:
            return warped
        return np.asarray(Image.fromarray(warped).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None))


def eye_angle(face: mtcnn.Face) -> float:
    """The eye line's angle in degrees (image coordinates, y down): positive when the eye on the right is lower."""
    (lx, ly), (rx, ry) = face.eyes
    return math.degrees(math.atan2(ry - ly, rx - lx))


def _detection_copy(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """A copy with the longer side at most DETECT_MAX_SIDE, and its scale."""
    height, width = gray.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    if scale == 1.0:
        return gray, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA), scale


def _mirrored(face: mtcnn.Face, width: int) -> mtcnn.Face:
    """A face found in the left-right mirrored image, in the unmirrored image's coordinates and landmark order."""
    x0, y0, x1, y1 = face.box
    points = face.landmarks.copy()
    points[:, 0] = width - 1 - points[:, 0]
    return mtcnn.Face(box=(width - x1, y0, width - x0, y1), score=face.score, landmarks=points[[1, 0, 2, 4, 3]])


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def find_face(gray: np.ndarray) -> Optional[mtcnn.Face]:
    """The largest face in a frame (gray, or RGB, where MTCNN finds faces more reliably), in its pixels, or None.

    Its landmarks average the detections on the frame and on its mirror image: MTCNN's eye points are off by a
    pixel or two in a direction that flips with the image, so the average halves the eye line's angular error
    (measured on scikit-image's astronaut rotated by −20…+20°: at most 0.7° instead of 1.4°).
    """
    small, scale = _detection_copy(gray)
    min_face = max(mtcnn.MIN_FACE, int(min(small.shape[:2]) * MIN_FACE_FRACTION))
    faces = mtcnn.detect(small, min_face=min_face)
    if not faces:
        return None
    face = faces[0]
    mirrored = mtcnn.detect(np.ascontiguousarray(small[:, ::-1]), min_face=min_face)
    if mirrored:
        other = _mirrored(mirrored[0], small.shape[1])
        if _iou(face.box, other.box) > 0.5:
            face = mtcnn.Face(
                box=(
                    (face.box[0] + other.box[0]) / 2,
                    (face.box[1] + other.box[1]) / 2,
                    (face.box[2] + other.box[2]) / 2,
                    (face.box[3] + other.box[3]) / 2,
                ),
                score=min(face.score, other.score),
                landmarks=(face.landmarks + other.landmarks) / 2,
            )
    return mtcnn.Face(
        box=(face.box[0] / scale, face.box[1] / scale, face.box[2] / scale, face.box[3] / scale),
        score=face.score,
        landmarks=face.landmarks / scale,
    )


def _rotate_point(point: tuple[float, float], centre: tuple[float, float], angle: float) -> tuple[float, float]:
    m = cv2.getRotationMatrix2D(centre, angle, 1.0)
    return (
        float(m[0, 0] * point[0] + m[0, 1] * point[1] + m[0, 2]),
        float(m[1, 0] * point[0] + m[1, 1] * point[1] + m[1, 2]),
    )


def find_alignment(onset: np.ndarray) -> Optional[Alignment]:
    """The clip's transform from its onset frame (gray or RGB, full resolution), or None when no face is found."""
    first = find_face(onset)
    if first is None:
        return None
    (lx, ly), (rx, ry) = first.eyes
    centre = (float(lx + rx) / 2, float(ly + ry) / 2)
    angle = eye_angle(first)
    height, width = onset.shape[:2]
    rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
    rotated = cv2.warpAffine(onset, rotation, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    second = find_face(rotated)
    x0, y0, x1, y1 = second.box if second is not None else (0.0, 0.0, 0.0, 0.0)
    if second is not None and x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1:
        # The second eye line measures what the first rotation left over; both measurements are equally noisy
        # (about a degree), so the correction takes half of it: the mean of the two estimates of the tilt.
        box, residual = second.box, eye_angle(second) / 2
    else:  # not found again (rare): the first box, carried into the rotated frame
        cx, cy = _rotate_point(((first.box[0] + first.box[2]) / 2, (first.box[1] + first.box[3]) / 2), centre, angle)
        half_w, half_h = (first.box[2] - first.box[0]) / 2, (first.box[3] - first.box[1]) / 2
        box, residual = (cx - half_w, cy - half_h, cx + half_w, cy + half_h), 0.0
    # the residual tilt turns about the same centre, which that rotation leaves in place; the box centre moves with it
    box_centre = _rotate_point(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), centre, residual)
    side = max(box[2] - box[0], box[3] - box[1]) * (1 + 2 * MARGIN)
    return Alignment(
        angle=angle + residual,
        centre=centre,
        corner=(box_centre[0] - side / 2, box_centre[1] - side / 2),
        side=side,
    )


__all__ = ["DETECT_MAX_SIDE", "MARGIN", "VERSION", "Alignment", "eye_angle", "find_alignment", "find_face"]
