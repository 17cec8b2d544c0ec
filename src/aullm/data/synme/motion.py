"""AU displacement fields, their onset→apex→offset timing, and the nuisances that hide them.

An AU is a sum of Gaussian displacement bumps anchored on the face's landmarks (1–3 px at apex), warping the
rendered face, so the skin texture, creases and feature edges move exactly where the AU acts and nowhere else.
Every clip also carries nuisances larger than the AU signal — slow head translation / rotation / scale drift
with a little tremor, illumination drift, blinks and sensor noise — so a model has to find local motion relative to
the rest of the face instead of any frame difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from aullm.data.synme.codes import EMOTIONS, AUCode
from aullm.data.synme.face import FaceIdentity, render_face


@dataclass(frozen=True)
class SynMEParams:
    """Signal and nuisance strengths. Pixel figures are for a 128 px frame and scale with the frame size.

    Tuned so that a motion model on 6 frames at 64×64 learns the AUs while a single-frame model cannot (see the
    difficulty test): AU apex displacement at the top of the 1–3 px range, head drift larger but slow and smooth.
    """

    au_px: tuple[float, float] = (2.6, 3.0)  # peak displacement of one AU bump at apex
    au_spread: float = 1.35  # scale of every bump's extent (1 = the sizes written in au_bumps)
    head_shift_px: tuple[float, float] = (0.3, 1.5)  # total slow translation drift over the clip
    head_rot_deg: tuple[float, float] = (0.0, 0.75)
    head_scale: float = 0.005
    tremor_px: float = 0.1  # per-frame fast jitter (std)
    light_gain: float = 0.08  # global gain drift (max fraction)
    light_gradient: float = 0.10  # drift of a left-right / top-bottom lighting gradient
    noise_sigma: float = 2.5  # sensor noise, grey levels
    blink_prob: float = 0.35
    jpeg_quality: int = 92
    apex_at: tuple[float, float] = (0.3, 0.7)  # apex position as a fraction of the clip
    emotions: tuple[tuple[str, float], ...] = EMOTIONS  # clip emotion weights; they set the AU base rates
    au_gain: tuple[tuple[int, float], ...] = ()  # per-AU factor on au_px, e.g. ((17, 1.4),)


@dataclass(frozen=True)
class Bump:
    """One Gaussian displacement bump: centre, unit-less direction (scaled by the AU amplitude), spread (px)."""

    x: float
    y: float
    vx: float
    vy: float
    sx: float
    sy: float


def au_bumps(face: FaceIdentity, au: int, side: str = "", spread: float = 1.0) -> list[Bump]:
    """The displacement bumps of `au` on this face (both sides unless `side` is L or R).

    Directions are in image coordinates (y down). L is the subject's left = image right.
    """
    lm = face.landmarks()
    w = face.half_w
    out: list[Bump] = []
    sides = {"": (("l", -1.0), ("r", 1.0)), "L": (("r", 1.0),), "R": (("l", -1.0),)}[side]
    for name, sgn in sides:
        ix, iy = lm[f"brow_inner_{name}"]
        ox, oy = lm[f"brow_outer_{name}"]
        mx, my = lm[f"brow_mid_{name}"]
        cx, cy = lm[f"mouth_corner_{name}"]
        if au == 1:  # inner brow raiser
            out.append(Bump(ix + 0.15 * (ox - ix), iy - 0.06 * w, -sgn * 0.2, -1.0, 0.15 * w, 0.17 * w))
        elif au == 2:  # outer brow raiser
            out.append(Bump(ox - 0.25 * (ox - ix), oy - 0.06 * w, sgn * 0.1, -1.0, 0.16 * w, 0.17 * w))
        elif au == 4:  # brow lowerer: brows down and together
            out.append(Bump(ix + 0.1 * (mx - ix), iy, -sgn * 0.75, 0.75, 0.15 * w, 0.14 * w))
            out.append(Bump(mx, my, -sgn * 0.2, 0.5, 0.14 * w, 0.11 * w))
        elif au == 7:  # lid tightener: lower lid up
            lx, ly = lm[f"lower_lid_{name}"]
            out.append(Bump(lx, ly, 0.0, -1.0, 1.1 * face.eye_w, 0.5 * face.eye_w))
        elif au == 12:  # lip corner puller: up and out
            out.append(Bump(cx, cy, sgn * 0.6, -0.8, 0.2 * w, 0.17 * w))
        elif au == 14:  # dimpler: corners in
            out.append(Bump(cx + sgn * 0.05 * w, cy, -sgn * 1.0, -0.1, 0.2 * w, 0.15 * w))
        elif au == 15:  # lip corner depressor: down
            out.append(Bump(cx, cy + 0.03 * w, sgn * 0.25, 1.0, 0.19 * w, 0.17 * w))
        elif au == 6:  # cheek raiser (distractor)
            kx, ky = lm[f"cheek_{name}"]
            out.append(Bump(kx, ky, 0.0, -1.0, 0.17 * w, 0.13 * w))
        elif au == 9:  # nose wrinkler (distractor): nose wings up
            nx, ny = lm[f"nose_wing_{name}"]
            out.append(Bump(nx, ny - 0.04 * w, -sgn * 0.2, -1.0, 0.10 * w, 0.10 * w))
        elif au == 10:  # upper lip raiser (distractor)
            ux, uy = lm["upper_lip"]
            out.append(Bump(ux + sgn * 0.4 * face.mouth_w, uy, 0.0, -1.0, 0.12 * w, 0.08 * w))
    if au == 17:  # chin raiser: chin boss and lower lip up (midline, ignores side)
        chx, _ = lm["chin"]
        out.append(Bump(chx, face.mouth_y + face.lip_lower + 0.06 * w, 0.0, -1.0, 0.34 * w, 0.2 * w))
    elif au == 25:  # lips part (distractor): lower lip down
        lx, ly = lm["lower_lip"]
        out.append(Bump(lx, ly - 0.03 * w, 0.0, 1.0, 0.55 * face.mouth_w, 0.07 * w))
    return [Bump(b.x, b.y, b.vx, b.vy, b.sx * spread, b.sy * spread) for b in out]


def au_region(face: FaceIdentity, au: int, radius: float = 1.5, spread: float | None = None) -> np.ndarray:
    """Boolean [size, size] mask where `au` moves the face (within `radius` σ of its bumps): for localisation tests."""
    n = face.size
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5
    mask = np.zeros((n, n), bool)
    for b in au_bumps(face, au, spread=SynMEParams().au_spread if spread is None else spread):
        mask |= ((xx - b.x) / b.sx) ** 2 + ((yy - b.y) / b.sy) ** 2 <= radius**2
    return mask


def intensity_profile(n: int, apex: int, residual: float) -> np.ndarray:
    """AU intensity per frame: 0 at onset, smooth rise to 1 at apex, smooth decay to `residual` at offset."""
    t = np.arange(n, dtype=np.float64)
    rise = np.sin(0.5 * np.pi * np.clip(t / max(apex, 1), 0, 1)) ** 2
    fall = residual + (1 - residual) * np.cos(0.5 * np.pi * np.clip((t - apex) / max(n - 1 - apex, 1), 0, 1)) ** 2
    return np.where(t <= apex, rise, fall)


def _smooth_path(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """A slow random trajectory over n frames (drift plus a partial oscillation) with max |value| ≈ amplitude."""
    tau = np.linspace(0.0, 1.0, n)
    path = rng.uniform(-1, 1) * tau + rng.uniform(-1, 1) * np.sin(
        np.pi * rng.uniform(0.5, 1.5) * tau + rng.uniform(0, 2 * np.pi)
    )
    path -= path[0]
    peak = np.abs(path).max()
    return path * (amplitude / peak) if peak > 1e-9 else path


@dataclass
class ClipPlan:
    """Everything random about one clip, drawn up front so rendering is a pure function of the plan."""

    n: int
    apex: int
    codes: list[AUCode]
    amplitudes: dict[int, float]  # AU -> peak px
    residual: float
    tx: np.ndarray
    ty: np.ndarray
    rot: np.ndarray  # radians
    scale: np.ndarray
    gain: np.ndarray
    grad_x: np.ndarray
    grad_y: np.ndarray
    blink: np.ndarray  # [n, 2] closure per eye
    noise_seed: int
    extras: dict[str, float] = field(default_factory=dict)


def plan_clip(rng: np.random.Generator, codes: list[AUCode], size: int, p: SynMEParams) -> ClipPlan:
    """Draw timing, AU amplitudes and nuisance trajectories for one clip."""
    k = size / 128.0
    n = int(rng.integers(10, 41))
    apex = int(round(rng.uniform(*p.apex_at) * (n - 1)))
    gain = dict(p.au_gain)
    amplitudes = {c.au: float(rng.uniform(*p.au_px) * k * c.intensity * gain.get(c.au, 1.0)) for c in codes}
    shift = rng.uniform(*p.head_shift_px) * k
    angle = rng.uniform(0, 2 * np.pi)
    path = _smooth_path(rng, n, 1.0)
    path2 = _smooth_path(rng, n, 0.4)
    tx = shift * (np.cos(angle) * path - np.sin(angle) * path2) + rng.normal(0, p.tremor_px * k, n)
    ty = shift * (np.sin(angle) * path + np.cos(angle) * path2) + rng.normal(0, p.tremor_px * k, n)
    rot = np.deg2rad(_smooth_path(rng, n, rng.uniform(*p.head_rot_deg)))
    scale = 1.0 + _smooth_path(rng, n, rng.uniform(0, p.head_scale))
    light = 1.0 + _smooth_path(rng, n, rng.uniform(0, p.light_gain)) + rng.uniform(-0.05, 0.05)
    grad_x = _smooth_path(rng, n, rng.uniform(0, p.light_gradient))
    grad_y = _smooth_path(rng, n, rng.uniform(0, p.light_gradient))
    blink = np.zeros((n, 2))
    if rng.uniform() < p.blink_prob:
        length = int(rng.integers(4, 9))
        start = int(rng.integers(-length // 2, n - length // 2))
        depth = rng.uniform(0.6, 1.0)
        t = np.arange(n) - start
        closure = np.where((t >= 0) & (t <= length), np.sin(np.pi * np.clip(t / length, 0, 1)) * depth, 0.0)
        blink[:] = closure[:, None] * np.array([1.0, rng.uniform(0.85, 1.0)])[None, :]
    return ClipPlan(
        n=n,
        apex=apex,
        codes=codes,
        amplitudes=amplitudes,
        residual=float(rng.uniform(0, 0.25)),
        tx=tx,
        ty=ty,
        rot=rot,
        scale=scale,
        gain=light,
        grad_x=grad_x,
        grad_y=grad_y,
        blink=blink,
        noise_seed=int(rng.integers(0, 2**31 - 1)),
    )


def render_clip(
    face: FaceIdentity, plan: ClipPlan, p: SynMEParams, neutral: np.ndarray | None = None
) -> list[np.ndarray]:
    """Render every frame onset..offset of a clip as uint8 images (BGR, or single-channel for grey faces).

    Backward warp per frame: output pixel → undo head pose → undo AU displacement (first order) → sample the
    rendered face; then lighting, noise and quantisation.
    """
    n_px = face.size
    if neutral is None:
        neutral = render_face(face)
    yy, xx = np.mgrid[0:n_px, 0:n_px].astype(np.float32)
    xx += 0.5
    yy += 0.5
    profile = intensity_profile(plan.n, plan.apex, plan.residual)
    bumps = [(c.au, b) for c in plan.codes for b in au_bumps(face, c.au, c.side, p.au_spread)]
    noise_rng = np.random.default_rng(plan.noise_seed)
    pivot_x, pivot_y = float(face.cx), float(face.cy)
    frames = []
    for i in range(plan.n):
        # Inverse head pose: rotate/scale about the face centre, then translate.
        c = float(np.cos(-plan.rot[i]) / plan.scale[i])
        s = float(np.sin(-plan.rot[i]) / plan.scale[i])
        px = xx - float(pivot_x + plan.tx[i])
        py = yy - float(pivot_y + plan.ty[i])
        qx = c * px - s * py + pivot_x
        qy = s * px + c * py + pivot_y
        sx, sy = qx.copy(), qy.copy()
        for au, b in bumps:
            a = float(profile[i] * plan.amplitudes[au])
            if a == 0.0:
                continue
            g = np.exp(-0.5 * (((qx - b.x) / b.sx) ** 2 + ((qy - b.y) / b.sy) ** 2)) * a
            sx -= g * b.vx
            sy -= g * b.vy
        base = neutral if not plan.blink[i].any() else render_face(face, (plan.blink[i, 0], plan.blink[i, 1]))
        img = cv2.remap(base, sx - 0.5, sy - 0.5, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        light = float(plan.gain[i]) * (
            1.0 + float(plan.grad_x[i]) * (xx / n_px - 0.5) + float(plan.grad_y[i]) * (yy / n_px - 0.5)
        )
        img *= light[..., None]
        if not face.colour:
            img = img[..., :1]
        img += np.asarray(noise_rng.normal(0.0, p.noise_sigma, img.shape), dtype=np.float32)
        frames.append(
            np.clip(np.rint(img), 0, 255).astype(np.uint8).squeeze(-1)
            if not face.colour
            else np.clip(np.rint(img), 0, 255).astype(np.uint8)
        )
    return frames
