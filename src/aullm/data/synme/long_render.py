"""SynME long videos, the pictures: a drawn face placed in a textured scene and moved frame by frame.

The face is rendered once per subject (and once per eyelid-closure level for blinks); every frame is one affine
warp of that layer (head pose), plus a local remap where an expression or talking moves the face (the AU
displacement fields of data/synme/motion.py), composited over the static background, lit, and given noise from a
pre-drawn bank. `long.py` plans nothing here: it hands a `VideoPlan` (long_plan.py) and writes what comes out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from aullm.data.synme.codes import AUCode
from aullm.data.synme.face import FaceIdentity, render_face
from aullm.data.synme.long_plan import Talk, VideoPlan
from aullm.data.synme.long_presets import LongParams
from aullm.data.synme.motion import Bump, au_bumps

_BLINK_LEVELS = 8  # eyelid closures rendered per subject; frames blend the two nearest
_NOISE_BANK = 6


# ------------------------------------------------------------------------------------------------ the face layer


def _padded(face: FaceIdentity, pad: int) -> FaceIdentity:
    """The same face on a canvas `pad` px larger on every side (absolute coordinates shifted, textures padded)."""
    return replace(
        face,
        size=face.size + 2 * pad,
        cx=face.cx + pad,
        cy=face.cy + pad,
        eye_y=face.eye_y + pad,
        brow_y=face.brow_y + pad,
        nose_y=face.nose_y + pad,
        mouth_y=face.mouth_y + pad,
        chin_y=face.chin_y + pad,
        texture=np.pad(face.texture, pad, mode="reflect"),
        brow_texture=np.pad(face.brow_texture, pad, mode="reflect"),
    )


@dataclass
class FaceLayer:
    """A subject's face as a premultiplied BGRA float32 layer [P, P, 4] (BGR × alpha, alpha), neutral and at
    `_BLINK_LEVELS` eyelid closures (only the eye band's rows `band` differ, so only they are kept)."""

    face: FaceIdentity  # geometry in layer coordinates
    canvas: int  # the face's own canvas size before padding (its pixel figures scale with canvas / 256)
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 of the visible (alpha > 0) part of the layer
    neutral: np.ndarray
    band: tuple[int, int]
    blinks: list[np.ndarray]  # [levels + 1] eye-band patches; [0] is the neutral band
    eye_ratio: float

    def frame_layer(self, closure: float) -> np.ndarray:
        """The layer with the eyelids closed by `closure` (0..1), the two nearest rendered levels blended."""
        if closure <= 1e-6:
            return self.neutral
        level = min(closure, 1.0) * _BLINK_LEVELS
        low = int(math.floor(level))
        high = min(low + 1, _BLINK_LEVELS)
        w = np.float32(level - low)
        out = self.neutral.copy()
        r0, r1 = self.band
        out[r0:r1] = self.blinks[low] * (np.float32(1.0) - w) + self.blinks[high] * w
        return out


def face_layer(face: FaceIdentity, eye_ratio: float) -> FaceLayer:
    """Render a subject once (plus its blink levels) as a premultiplied layer on a transparent canvas.

    The alpha comes from two renders over black and white backgrounds (every layer of render_face is an alpha
    blend or a shading local to the face, so `white − black = 255 × (1 − alpha)`). The hair band that render_face
    paints across the whole canvas width is cut to an ellipse around the head.
    """
    pad = round(0.18 * face.size)
    f = replace(_padded(face, pad), background=np.zeros(3), background_gradient=np.zeros(2))
    black = render_face(f)
    white = render_face(replace(f, background=np.full(3, 255.0)))
    alpha = np.clip(1.0 - (white - black).mean(axis=2) / 255.0, 0.0, 1.0)
    n = f.size
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5
    outside = (yy < f.cy) & (((xx - f.cx) / (1.2 * f.half_w)) ** 2 + ((yy - f.cy) / (1.15 * f.half_h_top)) ** 2 > 1)
    keep = cv2.GaussianBlur((~outside).astype(np.float32), (0, 0), 1.5)
    alpha = (alpha * keep).astype(np.float32)
    premult = np.clip(black, 0, 255) * keep[..., None]
    neutral = np.dstack([premult, alpha]).astype(np.float32)
    r0 = max(0, int(f.eye_y - 2.5 * f.eye_hu))
    r1 = min(n, int(f.eye_y + 2.5 * f.eye_hl + 2))
    blinks = [neutral[r0:r1].copy()]
    for level in range(1, _BLINK_LEVELS + 1):
        c = level / _BLINK_LEVELS
        closed = render_face(f, (c, c * eye_ratio))
        blinks.append(np.dstack([np.clip(closed[r0:r1], 0, 255) * keep[r0:r1, :, None], alpha[r0:r1]]))
    cols = np.flatnonzero(alpha.max(axis=0) > 1e-3)
    rows = np.flatnonzero(alpha.max(axis=1) > 1e-3)
    return FaceLayer(
        face=f,
        canvas=face.size,
        bbox=(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1),
        neutral=neutral,
        band=(r0, r1),
        blinks=[b.astype(np.float32) for b in blinks],
        eye_ratio=eye_ratio,
    )


@dataclass
class Field:
    """A displacement field over a box of the layer: the sampling offset at full intensity ([h, w] each)."""

    y0: int
    x0: int
    dx: np.ndarray
    dy: np.ndarray
    grid_x: np.ndarray
    grid_y: np.ndarray


def _field(bumps: list[tuple[Bump, float]], size: int) -> Field:
    """The summed field of (bump, amplitude) pairs, on the bounding box of their 3σ extents."""
    x0 = max(0, int(min(b.x - 3.2 * b.sx for b, _ in bumps)))
    x1 = min(size, int(max(b.x + 3.2 * b.sx for b, _ in bumps)) + 2)
    y0 = max(0, int(min(b.y - 3.2 * b.sy for b, _ in bumps)))
    y1 = min(size, int(max(b.y + 3.2 * b.sy for b, _ in bumps)) + 2)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx = np.zeros_like(xx)
    dy = np.zeros_like(xx)
    for b, amplitude in bumps:
        g = amplitude * np.exp(-0.5 * (((xx + 0.5 - b.x) / b.sx) ** 2 + ((yy + 0.5 - b.y) / b.sy) ** 2))
        dx += g * b.vx
        dy += g * b.vy
    return Field(y0=y0, x0=x0, dx=dx, dy=dy, grid_x=xx, grid_y=yy)


def expression_field(face: FaceIdentity, codes: list[AUCode], amplitudes: dict[int, float], spread: float) -> Field:
    pairs = [(b, amplitudes[c.au]) for c in codes for b in au_bumps(face, c.au, c.side, spread)]
    return _field(pairs, face.size)


def talk_field(face: FaceIdentity, amplitude: float) -> Field:
    """Jaw drop with the lower lip: the mouth opening of speech."""
    lx, ly = face.landmarks()["lower_lip"]
    w = face.half_w
    pairs = [
        (Bump(lx, ly - 0.02 * w, 0.0, 1.0, 0.7 * face.mouth_w, 0.09 * w), amplitude),
        (Bump(lx, face.chin_y - 0.05 * w, 0.0, 1.0, 0.45 * w, 0.3 * w), 0.8 * amplitude),
    ]
    return _field(pairs, face.size)


def _warp(layer: np.ndarray, field: Field, strength: float) -> np.ndarray:
    """The layer with `field` applied at `strength` (backward warp, first order, as SynME clips)."""
    if strength == 0.0:
        return layer
    out = layer.copy()
    h, w = field.dx.shape
    map_x = field.grid_x - np.float32(strength) * field.dx
    map_y = field.grid_y - np.float32(strength) * field.dy
    out[field.y0 : field.y0 + h, field.x0 : field.x0 + w] = cv2.remap(
        layer, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out


def intensity(n: int, apex: int) -> np.ndarray:
    """0 at onset, smooth rise to 1 at apex, smooth fall to 0 at offset (n frames, apex relative)."""
    t = np.arange(n, dtype=np.float64)
    rise = np.sin(0.5 * np.pi * np.clip(t / max(apex, 1), 0, 1)) ** 2
    fall = np.cos(0.5 * np.pi * np.clip((t - apex) / max(n - 1 - apex, 1), 0, 1)) ** 2
    return np.where(t <= apex, rise, fall)


def talk_profile(talk: Talk, fps: float) -> np.ndarray:
    """Opening 0..1 over the burst: an oscillation at `hz` under an envelope that fades in and out."""
    n = talk.offset - talk.onset + 1
    t = np.arange(n) / fps
    u = (np.arange(n) + 0.5) / n
    envelope = np.clip(np.minimum(u, 1 - u) / 0.15, 0, 1)
    return envelope * (0.5 - 0.5 * np.cos(2 * np.pi * talk.hz * t + talk.phase))


# ------------------------------------------------------------------------------------------------ the scene


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A static textured scene [H, W, 3] float32: smooth multi-scale texture, a few soft panels (wall, door)."""
    base = rng.uniform(90, 200) * (1 + rng.normal(0, 0.08, 3))
    canvas = np.ones((height, width), np.float32)
    for sigma, weight in ((60.0, 0.10), (12.0, 0.04), (2.0, 0.025)):
        noise = np.asarray(
            cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), sigma * width / 640.0),
            dtype=np.float32,
        )
        canvas += np.float32(weight / (float(noise.std()) + 1e-6)) * noise
    img = canvas[..., None] * base[None, None, :].astype(np.float32)
    for _ in range(int(rng.integers(2, 5))):
        x0, x1 = sorted(rng.uniform(0, width, 2))
        y0, y1 = sorted(rng.uniform(0, height, 2))
        panel = np.zeros((height, width), np.float32)
        panel[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1] = 1.0
        mask = np.asarray(cv2.GaussianBlur(panel, (0, 0), 2.0))
        img *= 1 + mask[..., None] * rng.uniform(-0.2, 0.2, 3).astype(np.float32)[None, None, :]
    return np.clip(img, 0, 255).astype(np.float32)


@dataclass
class Scene:
    """What is fixed over one video: background, face layer placement, the fields and the noise bank."""

    width: int
    height: int
    bg: np.ndarray
    layer: FaceLayer
    centre: tuple[float, float]  # face centre in the frame at rest
    roi: tuple[int, int, int, int]  # x0, y0, x1, y1 of the frame where the face can be
    fields: dict[int, Field]  # expression index → field
    talk_fields: dict[int, Field]
    xn: np.ndarray  # [1, W] normalised x − 0.5
    yn: np.ndarray  # [H, 1]
    noise: np.ndarray  # [K, H + 16, W + 16, 3] float32 sensor noise


def _roi(
    layer: FaceLayer, plan: VideoPlan, centre: tuple[float, float], width: int, height: int
) -> tuple[int, int, int, int]:
    """The part of the frame the face layer can cover over the whole video (the neck continues to the frame's
    bottom): the visible box's corners under the extreme rotations, scales and translations of the plan."""
    f = layer.face
    x0, y0, x1, y1 = layer.bbox
    xs = np.array([x0, x1, x0, x1, x0, x1], dtype=float) - f.cx
    ys = np.array([y0, y0, y1, y1, y1 + height, y1 + height], dtype=float) - f.cy
    theta = float(np.abs(plan.rot).max())
    found_x, found_y = [], []
    for angle in (-theta, 0.0, theta):
        for scale in (float(plan.scale.min()), float(plan.scale.max())):
            c, s = math.cos(angle) * scale, math.sin(angle) * scale
            found_x += [c * xs - s * ys]
            found_y += [s * xs + c * ys]
    px, py = np.concatenate(found_x), np.concatenate(found_y)
    left = centre[0] + float(plan.tx.min()) + float(px.min()) - 3
    right = centre[0] + float(plan.tx.max()) + float(px.max()) + 3
    top = centre[1] + float(plan.ty.min()) + float(py.min()) - 3
    return max(0, int(left)), max(0, int(top)), min(width, int(math.ceil(right))), height


def build_scene(
    rng: np.random.Generator, layer: FaceLayer, plan: VideoPlan, p: LongParams, width: int, height: int
) -> Scene:
    f = layer.face
    cx = width / 2 + rng.uniform(-0.06, 0.06) * width
    cy = height * rng.uniform(0.42, 0.48)
    roi = _roi(layer, plan, (cx, cy), width, height)
    fields = {i: expression_field(f, e.codes, e.amplitudes, p.au_spread) for i, e in enumerate(plan.expressions)}
    talk_fields = {i: talk_field(f, t.amplitude) for i, t in enumerate(plan.talks)}
    noise_rng = np.random.default_rng(plan.noise_seed)
    noise = np.stack(
        [
            noise_rng.normal(0.0, p.noise_sigma, (height + 16, width + 16, 3)).astype(np.float32)
            for _ in range(_NOISE_BANK)
        ]
    )
    return Scene(
        width=width,
        height=height,
        bg=background(rng, width, height),
        layer=layer,
        centre=(cx, cy),
        roi=roi,
        fields=fields,
        talk_fields=talk_fields,
        xn=(np.arange(width, dtype=np.float32)[None, :] + 0.5) / width - 0.5,
        yn=(np.arange(height, dtype=np.float32)[:, None] + 0.5) / height - 0.5,
        noise=noise,
    )


def _activity(plan: VideoPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: which field moves the face (-1 none; expressions 0.., talks offset by 10⁶) and how strongly."""
    which = np.full(plan.n, -1, np.int64)
    strength = np.zeros(plan.n)
    for i, e in enumerate(plan.expressions):
        which[e.onset : e.offset + 1] = i
        strength[e.onset : e.offset + 1] = intensity(e.offset - e.onset + 1, e.apex - e.onset)
    for i, t in enumerate(plan.talks):
        which[t.onset : t.offset + 1] = 1_000_000 + i
        strength[t.onset : t.offset + 1] = talk_profile(t, plan.fps)
    is_talk = which >= 1_000_000
    return which, strength, is_talk


def render_frames(scene: Scene, plan: VideoPlan) -> Iterator[np.ndarray]:
    """The video's frames in order, uint8 BGR [H, W, 3], one at a time."""
    which, strength, is_talk = _activity(plan)
    noise_rng = np.random.default_rng(plan.noise_seed + 1)
    f = scene.layer.face
    x0, y0, x1, y1 = scene.roi
    bg_roi = np.ascontiguousarray(scene.bg[y0:y1, x0:x1])
    for i in range(plan.n):
        layer = scene.layer.frame_layer(float(plan.closure[i]))
        if which[i] >= 0 and strength[i] > 0:
            field = scene.talk_fields[int(which[i]) - 1_000_000] if is_talk[i] else scene.fields[int(which[i])]
            layer = _warp(layer, field, float(strength[i]))
        # Head pose: rotate and scale about the face centre, then translate; layer → frame ROI coordinates.
        c = math.cos(plan.rot[i]) * plan.scale[i]
        s = math.sin(plan.rot[i]) * plan.scale[i]
        tx = scene.centre[0] + plan.tx[i] - x0
        ty = scene.centre[1] + plan.ty[i] - y0
        matrix = np.array([[c, -s, tx - c * f.cx + s * f.cy], [s, c, ty - s * f.cx - c * f.cy]], np.float64)
        moved = cv2.warpAffine(
            layer, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        # Composite over the background (OpenCV's element-wise products: 4× numpy's with broadcasting here).
        inverse = np.float32(1.0) - moved[..., 3]
        frame = scene.bg.copy()
        frame[y0:y1, x0:x1] = cv2.add(
            cv2.multiply(bg_roi, cv2.merge([inverse, inverse, inverse])), cv2.cvtColor(moved, cv2.COLOR_BGRA2BGR)
        )
        light = np.float32(plan.gain[i]) * (
            np.float32(1.0) + np.float32(plan.grad_x[i]) * scene.xn + np.float32(plan.grad_y[i]) * scene.yn
        )
        frame = cv2.multiply(frame, cv2.merge([light, light, light]))
        k, oy, ox = noise_rng.integers(_NOISE_BANK), noise_rng.integers(16), noise_rng.integers(16)
        # Noise, then rounding to the nearest level and clipping to 0..255 (OpenCV's saturating conversion).
        yield cv2.add(frame, scene.noise[k, oy : oy + scene.height, ox : ox + scene.width], dtype=cv2.CV_8U)


__all__ = [
    "FaceLayer",
    "Field",
    "Scene",
    "background",
    "build_scene",
    "expression_field",
    "face_layer",
    "intensity",
    "render_frames",
    "talk_field",
    "talk_profile",
]
