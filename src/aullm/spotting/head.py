"""The head's own motion in a flow field, so that what remains is the face's.

He et al. subtract the motion of a nose region from every region, which cancels a translation of the head but not
a rotation or a change of scale: a 3° roll moves the brows against the nose by several pixels, more than a
micro-expression. Here the head's motion is a similarity transform (shift, roll, scale) fitted by least squares to
the flow on a grid of points over the parts of the face that expressions move least — the nose, cheeks, temples
and forehead; not the eyes, brows or mouth — and refitted without the points it explains worst, so what does
move on its own does not bend it. A freer model (affine) would absorb part of an expression: both brows rising
look like a vertical stretch of the upper face. A region's own motion is then its mean flow minus the head's
motion at its centre (the mean of a similarity over a box is its value at the box's centre).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aullm.spotting.face import CropGeometry

#: The fraction of grid points kept at each refit (the rest: the worst explained, left out as the face's own motion).
KEEP = 0.75
REFITS = 1


@dataclass(frozen=True)
class RigidMotion:
    """Flow of the head at a crop point p = (x, y): `matrix @ (x, y, 1)`; `largest`: its largest displacement over the
    face, in crop pixels."""

    matrix: np.ndarray  # [2, 3]
    largest: float

    def at(self, point: np.ndarray) -> np.ndarray:
        return self.matrix[:, :2] @ np.asarray(point, dtype=np.float64) + self.matrix[:, 2]


class HeadFit:
    """Fits `RigidMotion` to flow fields of one crop geometry (the grid is built once per geometry)."""

    def __init__(
        self, geometry: CropGeometry, excluded: Sequence[tuple[int, int, int, int]] = (), step: int = 8
    ) -> None:
        u = geometry.unit
        xs = np.arange(0.25 * u, 1.75 * u, step)
        ys = np.arange(0.1 * u, min(2.25 * u, geometry.height - 1), step)
        gx, gy = np.meshgrid(xs, ys)
        points = np.stack([gx.ravel(), gy.ravel()], axis=1)
        moving = np.zeros(len(points), dtype=bool)
        for ex, ey in geometry.landmarks[:2]:  # the eyes: blinks
            moving |= (np.abs(points[:, 0] - ex) < 0.32 * u) & (np.abs(points[:, 1] - ey) < 0.2 * u)
        margin = 0.08 * u
        for x0, y0, x1, y1 in excluded:  # the expression regions, with a margin
            moving |= (
                (points[:, 0] > x0 - margin)
                & (points[:, 0] < x1 + margin)
                & (points[:, 1] > y0 - margin)
                & (points[:, 1] < y1 + margin)
            )
        self.points = points[~moving]
        self.rows = np.round(self.points[:, 1]).astype(int)
        self.cols = np.round(self.points[:, 0]).astype(int)
        x, y = self.points[:, 0], self.points[:, 1]
        one, zero = np.ones_like(x), np.zeros_like(x)
        # u = p·x − q·y + tx,  v = q·x + p·y + ty  (p, q: scale and roll; tx, ty: shift), stacked as one system
        self.design = np.concatenate(
            [np.stack([x, -y, one, zero], axis=1), np.stack([y, x, zero, one], axis=1)], axis=0
        )

    def fit(self, field: np.ndarray) -> RigidMotion:
        """The head's motion in `field` ([H, W, 2] flow in crop pixels)."""
        flow = field[self.rows, self.cols].astype(np.float64)
        target = np.concatenate([flow[:, 0], flow[:, 1]])
        n = len(flow)
        chosen = np.arange(n)
        params = np.zeros(4)
        for round_ in range(REFITS + 1):
            rows = np.concatenate([chosen, chosen + n])
            params, *_ = np.linalg.lstsq(self.design[rows], target[rows], rcond=None)
            if round_ == REFITS:
                break
            fitted = (self.design @ params).reshape(2, n).T
            residual = np.linalg.norm(fitted - flow, axis=1)
            chosen = np.argsort(residual)[: max(4, int(KEEP * n))]
        p, q, tx, ty = params
        matrix = np.array([[p, -q, tx], [q, p, ty]])
        fitted = (self.design @ params).reshape(2, n).T
        return RigidMotion(matrix, float(np.linalg.norm(fitted, axis=1).max()) if n else 0.0)


__all__ = ["HeadFit", "RigidMotion"]
