"""The facial regions whose motion the spotter follows, placed from the five landmarks in crop pixels.

After He et al. (ACM MM 2021) and Yu et al. (MEGC 2022): regions over the inner and outer brows (AUs 1, 2, 4),
the mouth corners (AUs 12, 14, 15), the upper lip and the chin (AUs 10, 17, 25), the nose wings (AUs 9, 10) and,
beyond them, the cheeks (AU 6). The head's own motion is subtracted from each (`head.py`). No region covers the
eyes, and the eyes are masked out of every frame before the flow is measured (`eye_boxes`): a blink moves the
lids by far more than a micro-expression moves anything, it is the commonest false detection in the literature,
and unmasked, coarse-to-fine flow spreads it into the brows. The cost: an expression of the lids alone (AU 7,
AU 43) is not seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aullm.spotting.face import CropGeometry


@dataclass(frozen=True)
class Region:
    """A box (x0, y0, x1, y1) in crop pixels, and the action units whose motion it shows."""

    name: str
    box: tuple[int, int, int, int]
    aus: str

    @property
    def centre(self) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return np.array([(x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2])

    def mean(self, field: np.ndarray) -> np.ndarray:
        """The mean flow vector (u, v) over the box."""
        x0, y0, x1, y1 = self.box
        return field[y0:y1, x0:x1].reshape(-1, 2).mean(axis=0)


def _box(cx: float, cy: float, w: float, h: float, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    x1, y1 = int(round(cx + w / 2)), int(round(cy + h / 2))
    x0, y0 = max(0, min(x0, width - 2)), max(0, min(y0, height - 2))
    return x0, y0, max(x0 + 2, min(x1, width)), max(y0 + 2, min(y1, height))


def face_regions(geometry: CropGeometry) -> list[Region]:
    """The expression regions of a crop."""
    u = geometry.unit
    left, right, nose, mouth_l, mouth_r = geometry.landmarks
    mouth = (mouth_l + mouth_r) / 2
    size = (geometry.width, geometry.height)

    def box(cx: float, cy: float, w: float, h: float) -> tuple[int, int, int, int]:
        return _box(cx, cy, w * u, h * u, *size)

    brow_y = (left[1] + right[1]) / 2 - 0.45 * u
    regions = [
        Region("brow_inner_left", box(left[0] + 0.14 * u, brow_y, 0.22, 0.22), "1+4"),
        Region("brow_outer_left", box(left[0] - 0.16 * u, brow_y + 0.02 * u, 0.22, 0.22), "2"),
        Region("brow_inner_right", box(right[0] - 0.14 * u, brow_y, 0.22, 0.22), "1+4"),
        Region("brow_outer_right", box(right[0] + 0.16 * u, brow_y + 0.02 * u, 0.22, 0.22), "2"),
        Region("mouth_left", box(mouth_l[0], mouth_l[1], 0.22, 0.26), "12+14+15"),
        Region("mouth_right", box(mouth_r[0], mouth_r[1], 0.22, 0.26), "12+14+15"),
        Region("upper_lip", box(mouth[0], mouth[1] - 0.12 * u, 0.26, 0.14), "10+25"),
        Region("chin", box(mouth[0], mouth[1] + 0.32 * u, 0.34, 0.22), "17"),
        Region("nose_wing_left", box(nose[0] - 0.24 * u, nose[1] - 0.04 * u, 0.18, 0.2), "9+10"),
        Region("nose_wing_right", box(nose[0] + 0.24 * u, nose[1] - 0.04 * u, 0.18, 0.2), "9+10"),
        Region("cheek_left", box(left[0] - 0.02 * u, left[1] + 0.46 * u, 0.28, 0.22), "6"),
        Region("cheek_right", box(right[0] + 0.02 * u, right[1] + 0.46 * u, 0.28, 0.22), "6"),
    ]
    return regions


def eye_boxes(geometry: CropGeometry) -> list[tuple[int, int, int, int]]:
    """The eyes and lids, masked out of every frame before the flow is measured: a blink then leaves no motion for
    the flow to spread into the brows and cheeks (as SOFTNet masks the eye polygons)."""
    u = geometry.unit
    return [
        _box(float(x), float(y), 0.62 * u, 0.36 * u, geometry.width, geometry.height) for x, y in geometry.landmarks[:2]
    ]


REGION_NAMES: tuple[str, ...] = (
    "brow_inner_left",
    "brow_outer_left",
    "brow_inner_right",
    "brow_outer_right",
    "mouth_left",
    "mouth_right",
    "upper_lip",
    "chin",
    "nose_wing_left",
    "nose_wing_right",
    "cheek_left",
    "cheek_right",
)

__all__ = ["REGION_NAMES", "Region", "eye_boxes", "face_regions"]
