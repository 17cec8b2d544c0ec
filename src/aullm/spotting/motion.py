"""How each facial region moves over a video, relative to the head: one pass over the stream, frame by frame.

Per analysed frame the face is cropped with the current (stabilised) geometry and its brightness normalised, and
dense optical flow (OpenCV's DIS) is measured from a keyframe to it; each region's mean flow minus the head's own
motion (`head.py`) is the region's displacement relative to the head, as He et al. measure it against the nose.
Keyframes are renewed every `keyframe_s` and chained (a region's position at the new keyframe is its position
measured from the old one), so the trajectory covers the whole video with one flow per frame, never compares
frames seconds apart (blinks, lighting and pose change appearance over seconds), and needs no frame but the
keyframe and the current one in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from aullm.core.ahead import produced_ahead
from aullm.data.stream import FrameStream, Picture
from aullm.spotting.face import CropGeometry, Landmarks, cascade_face, crop_geometry, mtcnn_face
from aullm.spotting.head import HeadFit
from aullm.spotting.regions import REGION_NAMES, Region, eye_boxes, face_regions
from aullm.spotting.settings import SpotSettings

#: The head moved this far (eye distances) from the keyframe: look for the face again at once.
LOST_MOTION = 0.25


@dataclass
class Motion:
    """Region trajectories of one video at the analysed rate."""

    numbers: np.ndarray  # [T] the stream's frame numbers of the analysed frames
    trajectory: np.ndarray  # [T, R, 2] float32: each region's displacement relative to the nose, crop pixels
    tracked: np.ndarray  # [T] bool: a face was in view (False before the face is first found, or while it is lost)
    fps: float  # analysed frames per second
    stride: int  # every stride-th frame of the stream was analysed
    face_source: str  # "mtcnn", "cascade" or "none"
    detections: int = 0
    recrops: int = 0
    misses: int = 0

    @property
    def regions(self) -> tuple[str, ...]:
        return REGION_NAMES


class _Tracker:
    """The crop geometry: found on the first frame with a face, kept while the face stays, moved on a detection
    that puts the eyes elsewhere. A cascade stand-in (when MTCNN finds no face) is replaced by MTCNN's first find."""

    def __init__(self, settings: SpotSettings) -> None:
        self.settings = settings
        self.geometry: Optional[CropGeometry] = None
        self.source = "none"
        self.detections = self.recrops = self.misses = 0

    def detect(self, picture: Picture) -> Optional[CropGeometry]:
        """A new geometry when a detection calls for one, else None (keep the current one)."""
        self.detections += 1
        near = self.geometry if self.source == "mtcnn" else None
        found: Optional[Landmarks] = mtcnn_face(picture.bgr, near)
        if found is None:
            self.misses += 1
            if self.geometry is not None:
                return None
            found = cascade_face(picture.gray)
            if found is None:
                return None
        elif self.geometry is not None and self.source == "mtcnn":
            if not self.geometry.moved(found, self.settings.recrop_tolerance):
                return None
            self.recrops += 1
        self.source = found.source
        return crop_geometry(found, self.settings.face_px)


def measure_motion(
    stream: FrameStream, settings: SpotSettings, on_frame: Optional[Callable[[int], None]] = None
) -> Motion:
    """Region trajectories of `stream` (see the module's docstring); `on_frame(n)` after every n frames read."""
    fps = stream.info.fps
    stride = settings.stride(fps)
    rate = fps / stride
    key_every = settings.frames(settings.keyframe_s, rate)
    detect_every = settings.frames(settings.redetect_s, rate)
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)  # type: ignore[attr-defined]
    tracker = _Tracker(settings)
    numbers: list[int] = []
    trajectory: list[np.ndarray] = []
    tracked: list[bool] = []
    position = np.zeros((len(REGION_NAMES), 2), dtype=np.float64)
    key: Optional[np.ndarray] = None
    key_position = position.copy()
    key_index = last_detection = -(10**9)
    head_fit: Optional[HeadFit] = None
    regions: list[Region] = []
    eyes: list[tuple[int, int, int, int]] = []
    lost = False
    index = 0
    first = stream.info.first_number
    analysed = (p.detached() for p in stream.pictures() if (p.number - first) % stride == 0)
    # the next frames are read and turned into arrays while this one is measured
    for picture in produced_ahead(analysed, name="aullm-decode"):
        if on_frame is not None:
            on_frame(stride)
        number, gray = picture.number, picture.gray
        if tracker.geometry is None or lost or index - last_detection >= detect_every:
            last_detection = index
            geometry = tracker.detect(picture)
            if geometry is not None:
                if key is not None and tracker.geometry is not None:
                    assert head_fit is not None
                    old = _normalised(tracker.geometry.warp(gray), eyes)
                    position = _measured(flow, key, old, key_position, head_fit, regions)
                tracker.geometry, key, lost = geometry, None, False
                regions, eyes = face_regions(geometry), eye_boxes(geometry)
                head_fit = HeadFit(geometry, [region.box for region in regions])
        if tracker.geometry is None:
            numbers.append(number)
            trajectory.append(np.full((len(REGION_NAMES), 2), np.nan, dtype=np.float32))
            tracked.append(False)
            index += 1
            continue
        crop = _normalised(tracker.geometry.warp(gray), eyes)
        if key is None:
            key, key_position, key_index = crop, position.copy(), index
        else:
            assert head_fit is not None
            position, head = _measure(flow, key, crop, key_position, head_fit, regions)
            lost = head > LOST_MOTION * tracker.geometry.unit
            if index - key_index >= key_every:
                key, key_position, key_index = crop, position.copy(), index
        numbers.append(number)
        trajectory.append(position.astype(np.float32))
        tracked.append(not lost)
        index += 1
    return Motion(
        np.asarray(numbers, dtype=np.int64),
        np.stack(trajectory) if trajectory else np.zeros((0, len(REGION_NAMES), 2), np.float32),
        np.asarray(tracked, dtype=bool),
        rate,
        stride,
        tracker.source,
        tracker.detections,
        tracker.recrops,
        tracker.misses,
    )


def _normalised(crop: np.ndarray, masked: list[tuple[int, int, int, int]]) -> np.ndarray:
    """The crop with its brightness and contrast fixed (mean 128, std 40: lighting drifts, flow should not) and
    the `masked` boxes (the eyes) filled with that mean grey in every frame, so they hold no motion."""
    values = crop.astype(np.float32)
    std = float(values.std())
    out = np.clip((values - float(values.mean())) * (40.0 / max(std, 1.0)) + 128.0, 0, 255).astype(np.uint8)
    for x0, y0, x1, y1 in masked:
        out[y0:y1, x0:x1] = 128
    return out


def _measure(
    flow: cv2.DISOpticalFlow,
    key: np.ndarray,
    crop: np.ndarray,
    key_position: np.ndarray,
    head: HeadFit,
    regions: list[Region],
) -> tuple[np.ndarray, float]:
    """Region positions at `crop` (chained from the keyframe's) and how far the head moved since the keyframe."""
    field = np.asarray(flow.calc(key, crop, None))  # type: ignore[call-overload]
    rigid = head.fit(field)
    relative = np.stack([region.mean(field) - rigid.at(region.centre) for region in regions])
    return key_position + relative, rigid.largest


def _measured(
    flow: cv2.DISOpticalFlow,
    key: np.ndarray,
    crop: np.ndarray,
    key_position: np.ndarray,
    head: HeadFit,
    regions: list[Region],
) -> np.ndarray:
    return _measure(flow, key, crop, key_position, head, regions)[0]


__all__ = ["LOST_MOTION", "Motion", "measure_motion"]
