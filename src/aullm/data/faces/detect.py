"""Face boxes for datasets shipped uncropped (`data.face_crop: detect`, `aullm predict --crop-face`).

One box per clip, found on its first frame and used for every frame: re-detecting per frame would add jitter far
larger than a micro-expression's 1–3 px motion. The detector is a bundled cascade, no download: OpenCV's Haar
cascade (`cv2.data.haarcascades`) where the installed OpenCV still ships it, else scikit-image's bundled LBP
frontal-face cascade (OpenCV 5 moved `CascadeClassifier` out of the main package).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

from aullm.data.clips import Box, open_image

#: Detection runs on a copy whose longer side is at most this many pixels (speed; faces are large in ME data).
DETECT_MAX_SIDE = 400
DEFAULT_MARGIN = 0.2

_local = threading.local()


def detector_name() -> str:
    """Which bundled detector this installation uses."""
    return "opencv-haar" if _opencv_cascade_path() is not None else "skimage-lbp"


def _opencv_cascade_path() -> Optional[str]:
    try:
        import cv2
    except ImportError:  # pragma: no cover
        return None
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not hasattr(cv2, "CascadeClassifier") or not folder:
        return None
    path = Path(folder) / "haarcascade_frontalface_default.xml"
    return str(path) if path.is_file() else None


def _detector() -> Any:  # cv2.CascadeClassifier or skimage.feature.Cascade: two APIs, told apart below
    """One detector per thread (the cascades are not documented as thread-safe)."""
    det = getattr(_local, "detector", None)
    if det is None:
        cascade = _opencv_cascade_path()
        if cascade is not None:
            import cv2

            det = cv2.CascadeClassifier(cascade)  # type: ignore[attr-defined, unused-ignore]  # absent from some OpenCV 5 stubs
        else:
            from skimage.data import lbp_frontal_face_cascade_filename
            from skimage.feature import Cascade

            det = Cascade(lbp_frontal_face_cascade_filename())
        _local.detector = det
    return det


def detect_faces(gray: np.ndarray) -> list[Box]:
    """All face boxes (x0, y0, x1, y1) in a gray uint8 image, largest first."""
    height, width = gray.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    small = gray
    if scale < 1.0:
        small = np.asarray(
            Image.fromarray(gray).resize(
                (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR
            )
        )
    side = min(small.shape)
    min_face = max(20, side // 10)
    det = _detector()
    boxes: list[tuple[float, float, float, float]] = []
    if hasattr(det, "detectMultiScale"):
        found = det.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(min_face, min_face))
        boxes = [(x, y, x + w, y + h) for (x, y, w, h) in np.asarray(found).reshape(-1, 4)]
    else:
        found = det.detect_multi_scale(
            img=small.astype(np.float32) / 255.0,
            scale_factor=1.2,
            step_ratio=1,
            min_size=(min_face, min_face),
            max_size=(side, side),
        )
        boxes = [(d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]) for d in found]
    boxes.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
    return [
        (int(round(x0 / scale)), int(round(y0 / scale)), int(round(x1 / scale)), int(round(y1 / scale)))
        for x0, y0, x1, y1 in boxes
    ]


def expand_box(box: Box, width: int, height: int, margin: float = DEFAULT_MARGIN) -> Box:
    """Grow a face box by `margin` of its size on every side, make it square, keep it inside the image."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = min(side, width, height)
    nx0 = int(round(min(max(cx - side / 2, 0), width - side)))
    ny0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return nx0, ny0, nx0 + int(round(side)), ny0 + int(round(side))


def face_box(gray: np.ndarray, margin: float = DEFAULT_MARGIN) -> Optional[Box]:
    """The margin-expanded box of the largest face, or None when no face is found."""
    boxes = detect_faces(gray)
    if not boxes:
        return None
    return expand_box(boxes[0], gray.shape[1], gray.shape[0], margin)


def face_box_from_file(path: Path, margin: float = DEFAULT_MARGIN) -> Optional[Box]:
    """Detect on an image file (the clip's first frame); the box is in that file's full-resolution pixels."""
    with open_image(path) as im:
        gray = np.asarray(im.convert("L"))
    return face_box(gray, margin)


__all__ = ["DEFAULT_MARGIN", "detect_faces", "detector_name", "expand_box", "face_box", "face_box_from_file"]
