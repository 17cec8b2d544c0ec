"""Procedural face identities and their anti-aliased rendering (numpy + OpenCV only, no assets).

Every subject is a random draw of face shape, skin tone and texture, and brow / eye / nose / mouth geometry, so a
model must generalise across identities (LOSO) instead of memorising one face. Shapes are drawn as soft signed
distance fields (coverage ramps about one pixel wide), which gives anti-aliased edges at any size, and the skin
carries a fixed per-subject texture so that optical flow has something to track in smooth regions.

Longer than 450 lines on purpose: one short painter per facial part, all drawing on the same grid and identity;
they are read together when a face looks wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

Point = tuple[float, float]


@dataclass
class FaceIdentity:
    """All appearance parameters of one synthetic subject, in pixels of a `size`×`size` frame."""

    size: int
    colour: bool
    cx: float
    cy: float
    half_w: float
    half_h_top: float
    half_h_bottom: float
    jaw_power: float
    skin: np.ndarray  # BGR float, 0..255
    lip: np.ndarray
    hair: np.ndarray
    background: np.ndarray
    background_gradient: np.ndarray  # (2,) gain per unit of x, y (frame fraction)
    hairline: float
    brow_darkness: float
    brow_thickness: float
    brow_arch: float
    brow_inner_x: float
    brow_outer_x: float
    brow_y: float
    brow_slant: float
    eye_x: float
    eye_y: float
    eye_w: float
    eye_hu: float
    eye_hl: float
    iris_r: float
    iris_tone: float
    gaze: float
    nose_y: float
    nose_w: float
    nose_len: float
    mouth_y: float
    mouth_w: float
    lip_upper: float
    lip_lower: float
    mouth_curve: float
    chin_y: float
    forehead_lines: int
    wrinkle_contrast: float
    crease_contrast: float
    texture: np.ndarray = field(repr=False)  # [size, size] multiplicative skin texture around 1
    brow_texture: np.ndarray = field(repr=False)  # [size, size] hair-like modulation of brow opacity

    def landmarks(self) -> dict[str, Point]:
        """Named anatomical points (neutral face, frame pixels) that anchor the AU displacement fields.

        `_l` is the image-left side (the subject's right), `_r` the image-right side.
        """
        lm: dict[str, Point] = {}
        for side, sgn in (("l", -1.0), ("r", 1.0)):
            ex = self.cx + sgn * self.eye_x
            lm[f"eye_{side}"] = (ex, self.eye_y)
            lm[f"lower_lid_{side}"] = (ex, self.eye_y + self.eye_hl)
            lm[f"brow_inner_{side}"] = (self.cx + sgn * self.brow_inner_x, self._brow_y_at(self.brow_inner_x))
            mid = 0.5 * (self.brow_inner_x + self.brow_outer_x)
            lm[f"brow_mid_{side}"] = (self.cx + sgn * mid, self._brow_y_at(mid))
            lm[f"brow_outer_{side}"] = (self.cx + sgn * self.brow_outer_x, self._brow_y_at(self.brow_outer_x))
            lm[f"mouth_corner_{side}"] = (self.cx + sgn * self.mouth_w, self.mouth_y - self.mouth_curve)
            lm[f"nose_wing_{side}"] = (self.cx + sgn * self.nose_w, self.nose_y)
            lm[f"cheek_{side}"] = (
                self.cx + sgn * (self.eye_x + 0.2 * self.eye_w),
                0.5 * (self.eye_y + self.nose_y) + 0.35 * (self.nose_y - self.eye_y),
            )
        lm["upper_lip"] = (self.cx, self.mouth_y - self.lip_upper)
        lm["lower_lip"] = (self.cx, self.mouth_y + self.lip_lower)
        lm["chin"] = (self.cx, self.chin_y)
        lm["nose_tip"] = (self.cx, self.nose_y)
        lm["glabella"] = (self.cx, self.brow_y)
        return lm

    def _brow_y_at(self, x_abs: float) -> float:
        """Brow centre-line height at horizontal distance `x_abs` from the face midline."""
        t = (x_abs - self.brow_inner_x) / max(self.brow_outer_x - self.brow_inner_x, 1e-6)
        return self.brow_y - self.brow_arch * 4.0 * t * (1.0 - t) + self.brow_slant * t


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-filtered white noise: the building block of skin and brow texture."""
    n = rng.standard_normal((size, size)).astype(np.float32)
    if sigma > 0:
        n = np.asarray(cv2.GaussianBlur(n, (0, 0), sigma, borderType=cv2.BORDER_REFLECT), dtype=np.float32)
    n -= n.mean()
    return n / (n.std() + 1e-6)


def _colours(rng: np.random.Generator, colour: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(skin, lip, hair, background) BGR colours: skin on a light-to-dark axis plus a little hue variation."""
    u = rng.uniform
    tone = u(0.0, 1.0)
    light = np.array([170.0, 190.0, 228.0])
    dark = np.array([55.0, 80.0, 120.0])
    skin = light * (1 - tone) + dark * tone
    skin = skin * (1.0 + rng.normal(0.0, 0.04, 3))
    lip = skin * np.array([0.70, 0.62, 0.92]) * u(0.7, 0.85)
    hair_level = u(15.0, 90.0)
    hair = np.array([hair_level * u(0.7, 1.0), hair_level * u(0.8, 1.0), hair_level])
    bg_level = u(60.0, 200.0)
    background = np.clip(bg_level * (1.0 + rng.normal(0.0, 0.08, 3)), 0, 255)
    if not colour:
        grey = float(skin @ np.array([0.114, 0.587, 0.299]))
        skin, lip = np.full(3, grey), np.full(3, float(lip @ np.array([0.114, 0.587, 0.299])))
        hair = np.full(3, float(hair.mean()))
        background = np.full(3, float(background.mean()))
    return skin, lip, hair, background


def _skin_texture(
    rng: np.random.Generator, size: int, cx: float, cy: float, half_w: float, half_h_top: float
) -> np.ndarray:
    """Multiplicative skin texture at three scales, with a few moles / freckles: strong, trackable points."""
    s, u = float(size), rng.uniform
    texture = (
        1.0
        + 0.035 * _smooth_noise(rng, size, s / 128.0 * 0.8)
        + 0.05 * _smooth_noise(rng, size, s / 128.0 * 2.0)
        + 0.03 * _smooth_noise(rng, size, s / 128.0 * 9.0)
    )
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for _ in range(int(rng.integers(2, 7))):
        mx, my = cx + u(-0.8, 0.8) * half_w, cy + u(-0.9, 0.9) * half_h_top
        r = s / 128.0 * u(0.6, 1.3)
        texture *= 1.0 - u(0.15, 0.35) * np.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / (2 * r * r))
    return texture


def make_identity(rng: np.random.Generator, size: int, colour: bool = True) -> FaceIdentity:
    """Draw one subject. Geometry is relative to `size`, so the same draw looks alike at 128 or 256 px."""
    s = float(size)
    u = rng.uniform
    half_w = s * u(0.40, 0.45)
    cx = s * 0.5 + s * u(-0.02, 0.02)
    cy = s * u(0.48, 0.52)
    half_h_top = half_w * u(1.15, 1.35)
    half_h_bottom = half_w * u(1.15, 1.40)
    skin, lip, hair, background = _colours(rng, colour)

    eye_y = cy - half_h_top * u(0.10, 0.22)
    eye_x = half_w * u(0.36, 0.46)
    eye_w = half_w * u(0.17, 0.22)
    eye_hu = eye_w * u(0.42, 0.55)
    eye_hl = eye_w * u(0.28, 0.38)
    brow_y = eye_y - eye_hu - half_w * u(0.14, 0.22)
    brow_inner_x = half_w * u(0.10, 0.20)
    brow_outer_x = eye_x + eye_w * u(1.05, 1.35)
    nose_y = cy + half_h_bottom * u(0.20, 0.30)
    mouth_y = cy + half_h_bottom * u(0.50, 0.58)
    lip_lower = half_w * u(0.08, 0.13)
    chin_y = mouth_y + lip_lower + half_w * u(0.18, 0.26)
    texture = _skin_texture(rng, size, cx, cy, half_w, half_h_top)
    brow_texture = np.clip(0.88 + 0.15 * _smooth_noise(rng, size, s / 128.0 * 0.6), 0.5, 1.0)
    return FaceIdentity(
        size=size,
        colour=colour,
        cx=cx,
        cy=cy,
        half_w=half_w,
        half_h_top=half_h_top,
        half_h_bottom=half_h_bottom,
        jaw_power=u(1.6, 2.4),
        skin=skin,
        lip=lip,
        hair=hair,
        background=background,
        background_gradient=rng.normal(0.0, 0.15, 2),
        hairline=u(0.55, 0.8),
        brow_darkness=u(0.7, 0.95),
        brow_thickness=half_w * u(0.045, 0.085),
        brow_arch=half_w * u(0.02, 0.08),
        brow_inner_x=brow_inner_x,
        brow_outer_x=brow_outer_x,
        brow_y=brow_y,
        brow_slant=half_w * u(-0.04, 0.06),
        eye_x=eye_x,
        eye_y=eye_y,
        eye_w=eye_w,
        eye_hu=eye_hu,
        eye_hl=eye_hl,
        iris_r=eye_hu * u(0.85, 1.05),
        iris_tone=u(0.15, 0.5),
        gaze=u(-0.15, 0.15),
        nose_y=nose_y,
        nose_w=half_w * u(0.17, 0.26),
        nose_len=nose_y - eye_y,
        mouth_y=mouth_y,
        mouth_w=half_w * u(0.30, 0.42),
        lip_upper=half_w * u(0.06, 0.10),
        lip_lower=lip_lower,
        mouth_curve=half_w * u(-0.02, 0.03),
        chin_y=chin_y,
        forehead_lines=int(rng.integers(2, 5)),
        wrinkle_contrast=u(0.08, 0.18),
        crease_contrast=u(0.25, 0.4),
        texture=texture.astype(np.float32),
        brow_texture=brow_texture.astype(np.float32),
    )


def _cover(sdf: np.ndarray, width: float = 1.0) -> np.ndarray:
    """Coverage of a shape from its signed distance (negative inside), ramped over `width` px: anti-aliasing."""
    return np.clip(0.5 - sdf / width, 0.0, 1.0)


def _blend(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """In-place alpha blend of a flat colour."""
    img *= (1.0 - alpha)[..., None]
    img += alpha[..., None] * colour[None, None, :]


def _shade(img: np.ndarray, factor: np.ndarray) -> None:
    img *= factor[..., None]


def _gauss(xx: np.ndarray, yy: np.ndarray, x: float, y: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((xx - x) / sx) ** 2 + ((yy - y) / sy) ** 2))


def _stroke(xx: np.ndarray, yy: np.ndarray, pts: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Signed distance to a polyline with per-vertex radius (a tapered stroke such as a brow or a crease)."""
    best = np.full(xx.shape, np.inf, dtype=np.float32)
    for (x0, y0), (x1, y1), r0, r1 in zip(pts[:-1], pts[1:], radii[:-1], radii[1:]):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / (dx * dx + dy * dy + 1e-9), 0.0, 1.0)
        d = np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy)) - (r0 + t * (r1 - r0))
        np.minimum(best, d, out=best)
    return best


@dataclass(frozen=True)
class _Grid:
    """Pixel-centre coordinates of the canvas and the scale relative to a 128 px face."""

    xx: np.ndarray
    yy: np.ndarray
    s: float


def render_face(face: FaceIdentity, blink: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Render the neutral face (float32 BGR, 0..255) with eyelid closure `blink` (image-left, image-right) in [0, 1].

    Rendered once per subject (and again only for blink frames); AU motion and head motion are applied later as
    warps of this image, so the skin texture moves with the muscles exactly as the displacement field says. The
    layers are painted back to front, each by its own function below.
    """
    n = face.size
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    xx += 0.5
    yy += 0.5
    g = _Grid(xx, yy, n / 128.0)
    img = np.empty((n, n, 3), np.float32)
    _paint_background(img, face, g)
    head, dx, r = _paint_head(img, face, g)
    _paint_relief(img, face, g, head, r)
    _paint_hair(img, face, g, head, dx)
    _paint_creases(img, face, g)
    _paint_wrinkles(img, face, g)
    _paint_nose(img, face, g)
    _paint_mouth(img, face, g)
    _paint_eyes(img, face, g, blink)
    _paint_brows(img, face, g)
    return img


def _paint_background(img: np.ndarray, face: FaceIdentity, g: _Grid) -> None:
    """Background colour with a linear light gradient."""
    n = face.size
    gx, gy = face.background_gradient
    bg_gain = 1.0 + gx * (g.xx / n - 0.5) + gy * (g.yy / n - 0.5)
    img[:] = face.background[None, None, :]
    _shade(img, bg_gain)


def _paint_head(img: np.ndarray, face: FaceIdentity, g: _Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neck, ears and the head silhouette; returns the head mask, |x| in half-widths and the superellipse radius."""
    xx, yy, s = g.xx, g.yy, g.s
    # Neck, then head silhouette: a superellipse with a separate jaw exponent (chin shape).
    neck = _cover(np.maximum(np.abs(xx - face.cx) - face.half_w * 0.55, face.cy - yy), 1.2 * s)
    _blend(img, neck, face.skin * 0.72)
    dx = np.abs(xx - face.cx) / face.half_w
    top = yy < face.cy
    dy = np.where(top, (face.cy - yy) / face.half_h_top, (yy - face.cy) / face.half_h_bottom)
    p = np.where(top, 2.2, face.jaw_power)
    r = (dx**p + np.abs(dy) ** p) ** (1.0 / p)
    head = _cover((r - 1.0) * face.half_w, 1.0)
    # Ears: small ellipses at eye level, behind the face outline.
    for sgn in (-1.0, 1.0):
        ex = face.cx + sgn * face.half_w * 0.98
        ear = _cover(
            (
                np.hypot((xx - ex) / (0.12 * face.half_w), (yy - face.eye_y - 0.1 * face.half_w) / (0.28 * face.half_w))
                - 1.0
            )
            * 0.12
            * face.half_w,
            1.0,
        )
        _blend(img, ear, face.skin * 0.85)
    _blend(img, head, face.skin)
    return head, dx, r


def _paint_relief(img: np.ndarray, face: FaceIdentity, g: _Grid, head: np.ndarray, r: np.ndarray) -> None:
    """Shading that gives the head a 3-D look, then the skin texture (stronger where the AUs act)."""
    xx, yy = g.xx, g.yy
    # 3-D look: darker towards the silhouette, eye sockets, cheek highlights, nose-side shadows.
    shade = 1.0 - 0.28 * np.clip(r, 0, 1.2) ** 4
    for sgn in (-1.0, 1.0):
        shade -= 0.10 * _gauss(
            xx, yy, face.cx + sgn * face.eye_x, face.eye_y - 0.3 * face.eye_hu, 1.3 * face.eye_w, 0.9 * face.eye_w
        )
        shade += 0.06 * _gauss(
            xx,
            yy,
            face.cx + sgn * (face.eye_x + 0.1 * face.half_w),
            face.nose_y - 0.05 * face.half_w,
            0.22 * face.half_w,
            0.16 * face.half_w,
        )
        shade -= 0.07 * _gauss(
            xx,
            yy,
            face.cx + sgn * 0.11 * face.half_w,
            face.eye_y + 0.5 * face.nose_len,
            0.05 * face.half_w,
            0.35 * face.nose_len,
        )
    shade += 0.07 * _gauss(xx, yy, face.cx, face.nose_y - 0.12 * face.half_w, 0.08 * face.half_w, 0.1 * face.half_w)
    shade -= 0.10 * _gauss(xx, yy, face.cx, face.chin_y + 0.25 * face.half_w, 0.5 * face.half_w, 0.12 * face.half_w)
    _shade(img, 1.0 + head * (shade - 1.0))
    # Stronger skin texture where the lower-face AUs and AU7 act (chin, mouth corners, lower lids): real skin
    # there is creased and pitted, and it gives the motion something to show.
    boost = 1.0 + 1.2 * _gauss(xx, yy, face.cx, face.chin_y - 0.05 * face.half_w, 0.3 * face.half_w, 0.15 * face.half_w)
    for sgn in (-1.0, 1.0):
        boost += 1.0 * _gauss(
            xx,
            yy,
            face.cx + sgn * (face.mouth_w + 0.08 * face.half_w),
            face.mouth_y,
            0.12 * face.half_w,
            0.15 * face.half_w,
        )
        boost += 0.8 * _gauss(
            xx,
            yy,
            face.cx + sgn * face.eye_x,
            face.eye_y + face.eye_hl + 0.1 * face.half_w,
            0.9 * face.eye_w,
            0.08 * face.half_w,
        )
    _shade(img, 1.0 + head * (face.texture - 1.0) * boost)


def _paint_hair(img: np.ndarray, face: FaceIdentity, g: _Grid, head: np.ndarray, dx: np.ndarray) -> None:
    """Hair above the hairline."""
    yy, s = g.yy, g.s
    # Hair above the hairline (follows the head outline), darker near the top.
    hl = face.cy - face.half_h_top * face.hairline
    hair_edge = hl - 0.25 * face.half_w * (1.0 - np.clip(dx, 0, 1) ** 2)
    hair = np.clip(_cover(yy - hair_edge, 2.5 * s) * (head + (1 - head) * _cover(yy - face.cy, 1.0)), 0, 1)
    _blend(img, hair * 0.95, face.hair)


def _paint_creases(img: np.ndarray, face: FaceIdentity, g: _Grid) -> None:
    """Nasolabial folds, the mentolabial sulcus and the chin highlight."""
    xx, yy, s = g.xx, g.yy, g.s
    # Creases: nasolabial folds and the mentolabial sulcus (texture for AU12/14/15/17 to move).
    for sgn in (-1.0, 1.0):
        pts = np.array(
            [
                [face.cx + sgn * (face.nose_w + 0.04 * face.half_w), face.nose_y - 0.02 * face.half_w],
                [face.cx + sgn * (face.nose_w + 0.14 * face.half_w), face.nose_y + 0.2 * face.half_w],
                [face.cx + sgn * (face.mouth_w + 0.1 * face.half_w), face.mouth_y + 0.08 * face.half_w],
            ]
        )
        fold = _cover(_stroke(xx, yy, pts, np.array([0.4, 0.7, 0.3]) * s), 1.8 * s)
        _shade(img, 1.0 - face.crease_contrast * fold)
    sulcus = np.array(
        [
            [face.cx - 0.22 * face.half_w, face.chin_y - 0.09 * face.half_w],
            [face.cx, face.chin_y - 0.14 * face.half_w],
            [face.cx + 0.22 * face.half_w, face.chin_y - 0.09 * face.half_w],
        ]
    )
    _shade(img, 1.0 - face.crease_contrast * _cover(_stroke(xx, yy, sulcus, np.array([0.5, 1.1, 0.5]) * s), 2.0 * s))
    _shade(img, 1.0 + 0.08 * _gauss(xx, yy, face.cx, face.chin_y, 0.16 * face.half_w, 0.08 * face.half_w))


def _paint_wrinkles(img: np.ndarray, face: FaceIdentity, g: _Grid) -> None:
    """Forehead and glabella lines."""
    xx, yy, s = g.xx, g.yy, g.s
    # Forehead lines (moved by AU1/AU2) and glabella lines (moved by AU4).
    for k in range(face.forehead_lines):
        y0 = face.brow_y - (0.16 + 0.1 * k) * face.half_w
        xs = np.linspace(-0.55, 0.55, 7) * face.half_w
        pts = np.stack([face.cx + xs, y0 - 0.05 * face.half_w * (1 - (xs / (0.55 * face.half_w)) ** 2)], axis=1)
        radii = np.array([0.1, 0.4, 0.6, 0.6, 0.6, 0.4, 0.1]) * s
        _shade(img, 1.0 - face.wrinkle_contrast * _cover(_stroke(xx, yy, pts, radii), 1.5 * s))
    for sgn in (-1.0, 1.0):
        gx0 = face.cx + sgn * 0.06 * face.half_w
        pts = np.array(
            [
                [gx0, face.brow_y - 0.06 * face.half_w],
                [gx0 + sgn * 0.01 * face.half_w, face.brow_y + 0.12 * face.half_w],
            ]
        )
        _shade(img, 1.0 - face.wrinkle_contrast * _cover(_stroke(xx, yy, pts, np.array([0.2, 0.5]) * s), 1.5 * s))


def _paint_nose(img: np.ndarray, face: FaceIdentity, g: _Grid) -> None:
    """Nostrils and alar creases."""
    xx, yy, s = g.xx, g.yy, g.s
    # Nose: nostrils and alar creases.
    for sgn in (-1.0, 1.0):
        nx = face.cx + sgn * face.nose_w * 0.5
        nostril = _cover(
            (np.hypot((xx - nx) / (0.3 * face.nose_w), (yy - face.nose_y) / (0.14 * face.nose_w)) - 1.0)
            * 0.14
            * face.nose_w,
            1.0,
        )
        _shade(img, 1.0 - 0.55 * nostril)
        wing = _cover(
            np.abs(
                np.hypot(xx - face.cx - sgn * face.nose_w * 0.78, yy - face.nose_y + 0.1 * face.nose_w)
                - 0.32 * face.nose_w
            )
            - 0.35 * s,
            1.2 * s,
        )
        _shade(img, 1.0 - 0.2 * wing * (yy < face.nose_y + 0.1 * face.nose_w))


def _paint_mouth(img: np.ndarray, face: FaceIdentity, g: _Grid) -> None:
    """Lips, the mouth line and the texture around the mouth corners."""
    xx, yy, s = g.xx, g.yy, g.s
    # Mouth: upper and lower lip shapes with a dark line between them.
    mx = (xx - face.cx) / face.mouth_w
    inside = np.clip(1.0 - mx**2, 0.0, 1.0)
    line_y = face.mouth_y - face.mouth_curve * (mx**2)
    bow = 1.0 - 0.25 * np.exp(-((mx / 0.12) ** 2))
    upper_top = line_y - face.lip_upper * inside**0.6 * bow
    lower_bot = line_y + face.lip_lower * inside**0.6
    lips = np.minimum(_cover(upper_top - yy, 1.0), _cover(yy - lower_bot, 1.0)) * _cover(
        (np.abs(mx) - 1.0) * face.mouth_w, 1.0
    )
    _blend(img, lips * 0.85, face.lip * face.texture.mean())
    _shade(
        img,
        1.0
        + 0.12
        * lips
        * _gauss(xx, yy, face.cx, face.mouth_y + 0.55 * face.lip_lower, 0.4 * face.mouth_w, 0.3 * face.lip_lower),
    )
    mouth_line = _cover(np.abs(yy - line_y) - 0.45 * s, 1.0) * _cover((np.abs(mx) - 1.02) * face.mouth_w, 1.5)
    _shade(img, 1.0 - 0.6 * mouth_line)
    # Shadow under the lower lip, corner dimples and short commissure lines: the texture that AU12/14/15/17 move.
    _shade(
        img,
        1.0
        - 0.2
        * _gauss(
            xx, yy, face.cx, face.mouth_y + face.lip_lower + 0.05 * face.half_w, 0.5 * face.mouth_w, 0.04 * face.half_w
        ),
    )
    for sgn in (-1.0, 1.0):
        kx, ky = face.cx + sgn * face.mouth_w, face.mouth_y - face.mouth_curve
        _shade(
            img, 1.0 - 0.25 * _gauss(xx, yy, kx + sgn * 0.08 * face.half_w, ky, 0.04 * face.half_w, 0.07 * face.half_w)
        )
        pts = np.array(
            [
                [kx + sgn * 0.03 * face.half_w, ky + 0.02 * face.half_w],
                [kx + sgn * 0.07 * face.half_w, ky + 0.18 * face.half_w],
            ]
        )
        line = _cover(_stroke(xx, yy, pts, np.array([0.6, 0.3]) * s), 1.5 * s)
        _shade(img, 1.0 - face.crease_contrast * line)


def _paint_eyes(img: np.ndarray, face: FaceIdentity, g: _Grid, blink: tuple[float, float]) -> None:
    """Both eyes, closed from above by `blink` (image-left, image-right)."""
    xx, yy, s = g.xx, g.yy, g.s
    # Eyes: almond opening (sclera, iris, pupil) closed from above by the blink, lash line, lid crease.
    for i, sgn in enumerate((-1.0, 1.0)):
        ex = face.cx + sgn * face.eye_x
        ux = (xx - ex) / face.eye_w
        prof = np.clip(1.0 - ux**2, 0.0, 1.0)
        y_up = face.eye_y - face.eye_hu * prof**0.8
        y_lo = face.eye_y + face.eye_hl * prof**0.9
        c = float(np.clip(blink[i], 0.0, 1.0))
        y_lid = y_up * (1.0 - c) + (y_lo - 0.1 * face.eye_hl) * c
        opening = np.minimum(_cover(y_lid - yy, 1.0), _cover(yy - y_lo, 1.0)) * _cover(
            (np.abs(ux) - 1.0) * face.eye_w, 1.0
        )
        sclera = np.array([215.0, 220.0, 225.0]) if face.colour else np.full(3, 220.0)
        _blend(img, opening, sclera * face.texture.mean())
        iris_c = face.skin * face.iris_tone * 0.6 + 10.0
        iris = (
            _cover(np.hypot(xx - ex - face.gaze * face.eye_w, yy - face.eye_y + 0.1 * face.eye_hu) - face.iris_r, 1.0)
            * opening
        )
        _blend(img, iris, iris_c)
        pupil = (
            _cover(
                np.hypot(xx - ex - face.gaze * face.eye_w, yy - face.eye_y + 0.1 * face.eye_hu) - 0.45 * face.iris_r,
                1.0,
            )
            * opening
        )
        _blend(img, pupil, np.full(3, 12.0))
        glint = (
            _gauss(
                xx,
                yy,
                ex + face.gaze * face.eye_w + 0.3 * face.iris_r,
                face.eye_y - 0.4 * face.iris_r,
                0.6 * s,
                0.6 * s,
            )
            * opening
        )
        _blend(img, glint * 0.8, np.full(3, 245.0))
        lash = _cover(np.abs(yy - y_lid + 0.3 * s) - 0.75 * s * (0.4 + prof), 1.0) * _cover(
            (np.abs(ux) - 1.08) * face.eye_w, 1.0
        )
        _shade(img, 1.0 - 0.7 * lash)
        lower_line = _cover(np.abs(yy - y_lo - 0.4 * s) - 0.35 * s, 1.0) * _cover((np.abs(ux) - 0.95) * face.eye_w, 1.0)
        _shade(img, 1.0 - 0.4 * lower_line)
        fold_y = face.eye_y + face.eye_hl * prof**0.7 + 0.3 * face.eye_w
        fold = _cover(np.abs(yy - fold_y) - 0.35 * s, 1.5 * s) * _cover((np.abs(ux) - 0.9) * face.eye_w, 1.5 * s)
        _shade(img, 1.0 - 0.6 * face.crease_contrast * fold)
        crease_y = face.eye_y - face.eye_hu * prof**0.6 - 0.55 * face.eye_hu
        crease = _cover(np.abs(yy - crease_y) - 0.3 * s, 1.5 * s) * _cover((np.abs(ux) - 1.0) * face.eye_w, 1.0)
        _shade(img, 1.0 - 0.15 * crease)


def _paint_brows(img: np.ndarray, face: FaceIdentity, g: _Grid) -> None:
    """Tapered arched brow strokes with hair-like opacity."""
    xx, yy, s = g.xx, g.yy, g.s
    # Brows: tapered arched strokes with hair-like opacity.
    for sgn in (-1.0, 1.0):
        t = np.linspace(0.0, 1.0, 9)
        xs = face.brow_inner_x + t * (face.brow_outer_x - face.brow_inner_x)
        ys = np.array([face._brow_y_at(x) for x in xs])
        pts = np.stack([face.cx + sgn * xs, ys], axis=1)
        radii = face.brow_thickness * (1.0 - 0.55 * t**1.5)
        brow = _cover(_stroke(xx, yy, pts, radii), 1.2 * s) * face.brow_texture * face.brow_darkness
        _blend(img, brow, face.hair * 0.9 + face.skin * 0.1)
