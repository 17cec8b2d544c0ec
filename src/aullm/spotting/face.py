"""Where the face is, and the stabilised crop the spotter measures motion in.

The face is located with MTCNN's five landmarks (eyes, nose tip, mouth corners; `aullm.data.faces.mtcnn`), which
fix a similarity transform: the eyes level, their distance scaled to half the crop's width, the crop two eye
distances wide and 2.4 tall (brows to chin). Where MTCNN finds no face (drawn or unusual faces), the bundled
cascade's box gives the landmarks at the average positions of a frontal face. The crop stays fixed between
detections and moves only when a new detection puts the eyes elsewhere by more than a tolerance, so a steady head
gives a steady crop and the optical flow inside it sees the face's own motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import cv2
import numpy as np

#: The five landmarks, in this order.
POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
#: Where the landmarks sit in a cascade face box (fractions of its width and height), for faces MTCNN misses.
BOX_LANDMARKS = np.array([[0.31, 0.40], [0.69, 0.40], [0.50, 0.60], [0.35, 0.78], [0.65, 0.78]])
#: The crop: two eye distances wide, 2.4 tall, the eyes 0.75 eye distances below its top edge.
CROP_WIDTH, CROP_HEIGHT, EYES_FROM_TOP = 2.0, 2.4, 0.75


@dataclass(frozen=True)
class Landmarks:
    """Five face landmarks [5, 2] (x, y) in frame pixels, and which detector gave them."""

    points: np.ndarray
    source: Literal["mtcnn", "cascade"]

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.points[1] - self.points[0]))


def mtcnn_face(bgr: np.ndarray, near: Optional[CropGeometry] = None) -> Optional[Landmarks]:
    """The largest face MTCNN finds in a colour frame (its training domain: on gray frames it misses far more).

    `near`: the face's last crop; the search is then limited to a window around it and to faces of about its
    size, which makes a re-detection several times cheaper than a search of the whole frame at every scale."""
    from aullm.data.faces import mtcnn

    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else bgr
    offset = np.zeros(2)
    min_face = mtcnn.MIN_FACE
    if near is not None:
        cx, cy = near.eyes_centre_frame
        d = near.eye_distance_frame
        x0, x1 = int(max(0, cx - 2.5 * d)), int(min(image.shape[1], cx + 2.5 * d))
        y0, y1 = int(max(0, cy - 2.0 * d)), int(min(image.shape[0], cy + 3.0 * d))
        if x1 - x0 > 2 * mtcnn.MIN_FACE and y1 - y0 > 2 * mtcnn.MIN_FACE:
            image, offset = np.ascontiguousarray(image[y0:y1, x0:x1]), np.array([x0, y0], dtype=np.float64)
            min_face = max(mtcnn.MIN_FACE, int(0.9 * d))
    faces = [f for f in mtcnn.detect(image, min_face=min_face) if _plausible(f.landmarks)]
    return Landmarks(np.asarray(faces[0].landmarks, dtype=np.float64) + offset, "mtcnn") if faces else None


def cascade_face(gray: np.ndarray) -> Optional[Landmarks]:
    """Landmarks at a frontal face's average positions in the largest cascade box: a stand-in while MTCNN finds no
    face (its eyes can be off by a tenth of the face)."""
    from aullm.data.faces.detect import detect_faces

    boxes = detect_faces(gray)
    if not boxes:
        return None
    x0, y0, x1, y1 = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    size = np.array([x1 - x0, y1 - y0], dtype=np.float64)
    return Landmarks(np.array([x0, y0], dtype=np.float64) + BOX_LANDMARKS * size, "cascade")


def locate_face(image: np.ndarray) -> Optional[Landmarks]:
    """The largest face's landmarks in a frame (colour BGR preferred, or gray): MTCNN's, else the cascade's
    stand-in, else None."""
    found = mtcnn_face(image)
    if found is not None:
        return found
    return cascade_face(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image)


def _plausible(points: np.ndarray) -> bool:
    """Eyes above the nose above the mouth, left of right: MTCNN's landmarks of a face, not of a pattern."""
    left, right, nose, mouth_l, mouth_r = np.asarray(points, dtype=np.float64)
    eyes_y = (left[1] + right[1]) / 2
    mouth_y = (mouth_l[1] + mouth_r[1]) / 2
    return bool(left[0] < right[0] and eyes_y < nose[1] < mouth_y and mouth_l[0] < mouth_r[0])


@dataclass(frozen=True)
class CropGeometry:
    """A frame → crop similarity transform and the landmarks it was made from, in crop pixels."""

    matrix: np.ndarray  # [2, 3], frame pixels → crop pixels
    width: int
    height: int
    landmarks: np.ndarray  # [5, 2] in crop pixels
    eye_distance_frame: float  # the eye distance in frame pixels (how large the face is in the footage)

    @property
    def eyes_centre_frame(self) -> np.ndarray:
        """The midpoint of the eyes in frame pixels."""
        inverse = cv2.invertAffineTransform(self.matrix)
        return _apply(inverse, self.landmarks[:2].mean(axis=0, keepdims=True))[0]

    @property
    def unit(self) -> float:
        """One eye distance in crop pixels."""
        return self.width / CROP_WIDTH

    def warp(self, gray: np.ndarray) -> np.ndarray:
        """The crop of a gray frame (uint8 [height, width])."""
        return cv2.warpAffine(
            gray, self.matrix, (self.width, self.height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

    def moved(self, other: Landmarks, tolerance: float) -> bool:
        """Whether `other` (a new detection) puts the eyes elsewhere in this crop by more than `tolerance` eye
        distances (translation, rotation and scale all show as eye displacement)."""
        eyes = _apply(self.matrix, other.points[:2])
        return bool(np.abs(eyes - self.landmarks[:2]).max() > tolerance * self.unit)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def crop_geometry(landmarks: Landmarks, face_px: int) -> CropGeometry:
    """The similarity transform that levels the eyes and scales their distance to `face_px / 2`."""
    left, right = landmarks.points[0], landmarks.points[1]
    dx, dy = right - left
    distance = max(float(np.hypot(dx, dy)), 1e-6)
    angle = float(np.degrees(np.arctan2(dy, dx)))
    unit = face_px / CROP_WIDTH
    scale = unit / distance
    centre = (left + right) / 2
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    width, height = int(face_px), int(round(CROP_HEIGHT * unit))
    matrix[:, 2] += np.array([width / 2, EYES_FROM_TOP * unit]) - centre
    return CropGeometry(matrix, width, height, _apply(matrix, landmarks.points), distance)


__all__ = ["POINTS", "CropGeometry", "Landmarks", "cascade_face", "crop_geometry", "locate_face", "mtcnn_face"]
