"""Optical-flow input (`data.input: flow`): onset→apex dense flow (u, v) and optical strain, 3×H×W in [0, 1].

This is the input of the flow-based ME literature (OFF-ApexNet, STSTNet): Farneback flow between the onset and the
apex frame, plus the magnitude of the strain tensor, which highlights the small local deformations that
micro-expressions consist of while suppressing rigid head translation. Flow is computed at a working resolution
larger than `data.size` (tiny frames make Farneback's polynomial fit meaningless) and then resized.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from aullm.data.clips import open_image

#: Displacements below this (pixels at the output size) are not amplified to full scale by normalisation.
MIN_FLOW_SCALE = 0.25


def working_size(size: int) -> int:
    """The resolution flow is computed at: at least 128 px, at least twice the output size."""
    return max(128, 2 * size)


def dense_flow(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    """Farneback flow from `onset` to `apex` (gray uint8, same shape) → float32 [H, W, 2] (u, v) in pixels."""
    flow: np.ndarray = cv2.calcOpticalFlowFarneback(
        onset,
        apex,
        None,  # type: ignore[call-overload, unused-ignore]  # some OpenCV stubs omit the documented "no initial flow" None
        pyr_scale=0.5,
        levels=3,
        winsize=15,
        iterations=3,
        poly_n=5,
        poly_sigma=1.2,
        flags=0,
    )
    return flow


def optical_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Magnitude of the infinitesimal strain tensor: sqrt(u_x² + v_y² + ½(u_y + v_x)²)."""
    u_y, u_x = np.gradient(u)
    v_y, v_x = np.gradient(v)
    return np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2).astype(np.float32)


def normalise_flow(u: np.ndarray, v: np.ndarray, strain: np.ndarray) -> np.ndarray:
    """Map to [0, 1] per clip: u, v share one scale (0.5 = no motion, direction kept); strain scaled by its max."""
    scale = max(float(np.abs(u).max(initial=0.0)), float(np.abs(v).max(initial=0.0)), MIN_FLOW_SCALE)
    s_max = max(float(strain.max(initial=0.0)), 1e-6)
    out = np.stack([0.5 + 0.5 * u / scale, 0.5 + 0.5 * v / scale, strain / s_max])
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def flow_input(onset: np.ndarray, apex: np.ndarray, size: int) -> np.ndarray:
    """The model's flow input float32 [3, size, size] in [0, 1] from onset/apex gray frames at working size."""
    flow = dense_flow(onset, apex)
    u = np.ascontiguousarray(flow[..., 0])
    v = np.ascontiguousarray(flow[..., 1])
    strain = optical_strain(u, v)
    ratio = size / onset.shape[1]
    small = [cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in (u, v, strain)]
    return normalise_flow(small[0] * ratio, small[1] * ratio, small[2])


def read_flow_image(path: Path, size: int) -> np.ndarray:
    """A pre-computed flow image (u, v, strain as R, G, B) → float32 [3, size, size] in [0, 1]."""
    with open_image(path, face=False) as im:
        rgb = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        arr = np.asarray(rgb, dtype=np.float32) / 255.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


__all__ = ["dense_flow", "flow_input", "normalise_flow", "optical_strain", "read_flow_image", "working_size"]
