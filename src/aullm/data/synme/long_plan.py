"""Everything random about one SynME long video, drawn up front: when each expression, talking burst and blink
happens, and the head-pose and lighting trajectories. Rendering is then a pure function of the plan.

Expressions and talking bursts never overlap each other (at least `gap_s` of neutral face between any two);
blinks are independent of them, as in real recordings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from aullm.data.synme.codes import AUCode, sample_codes
from aullm.data.synme.long_presets import LongParams


@dataclass
class Expression:
    """One expression: inclusive 0-based frames, its AUs and each AU's apex displacement on this face (px)."""

    kind: str  # micro | macro
    onset: int
    apex: int
    offset: int
    emotion: str
    codes: list[AUCode]
    amplitudes: dict[int, float]


@dataclass
class Talk:
    """A talking-like burst: the jaw and lower lip open and close at `hz` (a distractor, not in the truth)."""

    onset: int
    offset: int
    hz: float
    amplitude: float
    phase: float


@dataclass
class VideoPlan:
    n: int
    fps: float
    expressions: list[Expression]
    talks: list[Talk]
    blinks: list[tuple[int, int]]  # inclusive 0-based frames
    closure: np.ndarray  # [n] eyelid closure 0..1
    eye_ratio: float  # the second eye closes this fraction of the first
    tx: np.ndarray  # [n] head translation, px
    ty: np.ndarray
    rot: np.ndarray  # radians
    scale: np.ndarray
    gain: np.ndarray  # global light gain
    grad_x: np.ndarray  # left-right lighting gradient
    grad_y: np.ndarray
    noise_seed: int


def frames_between(seconds: tuple[float, float], fps: float, rng: np.random.Generator) -> int:
    """An inclusive frame count whose duration (count / fps) lies in `seconds`."""
    low = max(3, math.ceil(seconds[0] * fps - 1e-9))
    high = max(low, math.floor(seconds[1] * fps + 1e-9))
    return int(rng.integers(low, high + 1))


def _count(rng: np.random.Generator, per_minute: float, minutes: float, least: int) -> int:
    """A count with mean `per_minute × minutes` (stochastic rounding), at least `least`."""
    expected = per_minute * minutes
    return max(least, int(math.floor(expected + rng.uniform())))


def _place(rng: np.random.Generator, free: list[tuple[int, int]], length: int, gap: int) -> int | None:
    """Draw a start uniformly among the positions where `length` frames fit in a free segment; the segment is
    split around the event and `gap` frames each side. None (nothing changed) when it fits nowhere."""
    room = [max(0, b - a + 2 - length) for a, b in free]
    total = sum(room)
    if total == 0:
        return None
    pick = int(rng.integers(total))
    for i, (a, b) in enumerate(free):
        if pick < room[i]:
            start = a + pick
            pieces = [(a, start - gap - 1), (start + length + gap, b)]
            free[i : i + 1] = [(x, y) for x, y in pieces if y >= x]
            return start
        pick -= room[i]
    return None  # pragma: no cover - the counts above always land in a segment


def slow_path(rng: np.random.Generator, n: int, fps: float, amplitude: float, hz: tuple[float, float]) -> np.ndarray:
    """A slow random trajectory (three sinusoids of random frequency in `hz` and phase), starting at 0, with
    max |value| = amplitude over the video."""
    t = np.arange(n) / fps
    path = np.zeros(n)
    for _ in range(3):
        path += rng.uniform(0.4, 1.0) * np.sin(2 * np.pi * rng.uniform(*hz) * t + rng.uniform(0, 2 * np.pi))
    path -= path[0]
    peak = float(np.abs(path).max()) if n else 0.0
    return path * (amplitude / peak) if peak > 1e-9 else path


def tremor(rng: np.random.Generator, n: int, fps: float, std: float) -> np.ndarray:
    """Fast jitter: Gaussian noise correlated over ~30 ms (first-order low-pass), with standard deviation `std`."""
    a = math.exp(-1.0 / max(0.03 * fps, 1e-6))
    return np.asarray(lfilter([math.sqrt(1 - a * a)], [1.0, -a], rng.normal(0.0, std, n)))


def plan_video(rng: np.random.Generator, n: int, fps: float, face_scale: float, p: LongParams) -> VideoPlan:
    """Draw one video of `n` frames at `fps`; `face_scale` = face canvas / 256 px scales every pixel figure."""
    minutes = n / fps / 60.0
    gap = max(1, round(p.gap_s * fps))
    edge = max(1, round(p.edge_s * fps))
    free = [(edge, n - 1 - edge)]
    expressions: list[Expression] = []
    talks: list[Talk] = []
    wanted = [("micro", _count(rng, p.micro_per_min, minutes, 1)), ("macro", _count(rng, p.macro_per_min, minutes, 0))]
    for kind, count in wanted:
        for _ in range(count):
            length = frames_between(p.micro_s if kind == "micro" else p.macro_s, fps, rng)
            start = _place(rng, free, length, gap)
            emotion, codes = sample_codes(rng)
            px = p.micro_px if kind == "micro" else p.macro_px
            amplitudes = {c.au: float(rng.uniform(*px) * face_scale * c.intensity) for c in codes}
            apex_at = float(rng.uniform(*p.apex_at))
            if start is None:
                continue  # no room left: fewer expressions of this kind
            apex = start + min(length - 2, max(1, round(apex_at * (length - 1))))
            expressions.append(Expression(kind, start, apex, start + length - 1, emotion, codes, amplitudes))
    for _ in range(_count(rng, p.talk_per_min, minutes, 0)):
        length = frames_between(p.talk_s, fps, rng)
        hz, amplitude, phase = rng.uniform(*p.talk_hz), rng.uniform(*p.talk_px) * face_scale, rng.uniform(0, np.pi)
        start = _place(rng, free, length, gap)
        if start is not None:
            talks.append(Talk(start, start + length - 1, float(hz), float(amplitude), float(phase)))
    expressions.sort(key=lambda e: e.onset)
    talks.sort(key=lambda t: t.onset)
    # Blinks: a renewal process, each a smooth close-and-open of random depth.
    closure = np.zeros(n)
    blinks: list[tuple[int, int]] = []
    t = rng.uniform(0.2, 1.0) * p.blink_every_s[0]
    while True:
        start = round(t * fps)
        length = max(2, round(rng.uniform(*p.blink_s) * fps))
        depth = rng.uniform(0.85, 1.0)
        if start + length > n:
            break
        u = (np.arange(length) + 0.5) / length
        closure[start : start + length] = np.maximum(closure[start : start + length], depth * np.sin(np.pi * u))
        blinks.append((start, start + length - 1))
        t += (length / fps) + rng.uniform(*p.blink_every_s)
    shift = p.head_shift_px * face_scale
    tx = slow_path(rng, n, fps, shift, p.drift_hz) + tremor(rng, n, fps, p.tremor_px * face_scale)
    ty = slow_path(rng, n, fps, 0.6 * shift, p.drift_hz) + tremor(rng, n, fps, p.tremor_px * face_scale)
    rot = np.deg2rad(slow_path(rng, n, fps, p.head_rot_deg, p.drift_hz))
    scale = 1.0 + slow_path(rng, n, fps, p.head_scale, p.drift_hz)
    gain = 1.0 + slow_path(rng, n, fps, p.light_gain, (p.drift_hz[0] / 2, p.drift_hz[1] / 2))
    grad_x = slow_path(rng, n, fps, p.light_gradient, p.drift_hz) + rng.uniform(-0.05, 0.05)
    grad_y = slow_path(rng, n, fps, p.light_gradient, p.drift_hz) + rng.uniform(-0.05, 0.05)
    return VideoPlan(
        n=n,
        fps=fps,
        expressions=expressions,
        talks=talks,
        blinks=blinks,
        closure=closure,
        eye_ratio=float(rng.uniform(0.85, 1.0)),
        tx=tx,
        ty=ty,
        rot=rot,
        scale=scale,
        gain=gain,
        grad_x=grad_x,
        grad_y=grad_y,
        noise_seed=int(rng.integers(0, 2**31 - 1)),
    )


__all__ = ["Expression", "Talk", "VideoPlan", "frames_between", "plan_video", "slow_path", "tremor"]
