"""From region trajectories to expression intervals: smooth, compare with the neutral face, threshold, widen, merge.

Pure functions of arrays (no video), so each rule is tested on signals written by hand:

1. Each region's trajectory is low-pass filtered (`lowpass_hz`): faster motion is noise.
2. Its neutral position is the running median over `baseline_s` (centred): an expression occupies less than half
   of that window, so the median is where the region rests, and a slow drift cancels (a centred median of a
   steady trend is the trend itself).
3. The score of a frame is the largest distance of any region from its neutral position (pixels of the crop).
4. Frames scoring above the threshold — `threshold_px`, or `noise_factor` times the video's typical score if the
   footage is noisier — form runs; runs closer than `join_gap_s` are one.
5. Each run is widened to where the score falls below `edge_fraction` of its height above the typical (median)
   score, or rises again (He et al.'s valley rule),
   overlapping intervals are merged (Yu et al.'s union merge), and lengths outside [`shortest_s`, `longest_s`] are
   dropped. Intervals of at most `micro_max_s` are micro-expressions, longer ones macro-expressions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter

from aullm.spotting.settings import SpotSettings

#: A Gaussian filter's −3 dB frequency is this constant over its width σ (seconds).
_GAUSS_CUTOFF = 0.1325


@dataclass(frozen=True)
class Interval:
    """An expression in analysed-frame indices (inclusive), with its peak frame and peak score."""

    onset: int
    apex: int
    offset: int
    score: float


def region_scores(trajectory: np.ndarray, tracked: np.ndarray, fps: float, settings: SpotSettings) -> np.ndarray:
    """[T, R] distance of each region from its neutral position (NaN where the face was not tracked)."""
    values = np.asarray(trajectory, dtype=np.float64).copy()
    if len(values) == 0:
        return np.zeros((0, values.shape[1] if values.ndim == 3 else 0))
    missing = ~np.asarray(tracked, dtype=bool)
    if missing.all():
        return np.full(values.shape[:2], np.nan)
    values = _fill(values, missing)
    sigma = _GAUSS_CUTOFF / settings.lowpass_hz * fps
    smooth = gaussian_filter1d(values, sigma, axis=0, mode="nearest") if sigma > 0.3 else values
    window = settings.frames(settings.baseline_s, fps) | 1
    baseline = median_filter(smooth, size=(window, 1, 1), mode="nearest")
    scores = np.linalg.norm(smooth - baseline, axis=2)
    scores[missing] = np.nan
    return scores


def _fill(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Untracked frames take the nearest tracked frame's values, so filters see no gap (their scores stay NaN)."""
    index = np.arange(len(values))
    known = index[~missing]
    nearest = known[np.clip(np.searchsorted(known, index), 0, len(known) - 1)]
    before = known[np.clip(np.searchsorted(known, index) - 1, 0, len(known) - 1)]
    closer = np.where(np.abs(before - index) < np.abs(nearest - index), before, nearest)
    return values[closer]


def frame_scores(region: np.ndarray) -> np.ndarray:
    """[T] the largest region score of each frame (NaN where untracked)."""
    if region.size == 0:
        return np.zeros(len(region))
    out = np.full(len(region), np.nan)
    rows = ~np.isnan(region).all(axis=1)
    out[rows] = np.nanmax(region[rows], axis=1)
    return out


def typical_score(scores: np.ndarray) -> float:
    """The median score: the level of a face at rest (expressions fill a minority of frames)."""
    valid = scores[np.isfinite(scores)]
    return float(np.median(valid)) if valid.size else 0.0


def threshold(scores: np.ndarray, settings: SpotSettings) -> float:
    """The decision threshold: `threshold_px`, raised to `noise_factor` × the typical score on noisy footage."""
    return max(settings.threshold_px, settings.noise_factor * typical_score(scores))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) of every run of True, inclusive."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _joined(runs: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for first, last in runs:
        if out and first - out[-1][1] - 1 < gap:
            out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


def _widen(
    scores: np.ndarray, first: int, last: int, fraction: float, typical: float, limit: int
) -> tuple[int, int, int, float]:
    """Widen [first, last] to where the score falls below `fraction` of its height above the typical score (or
    rises again), at most `limit` frames each way; returns (onset, apex, offset, peak)."""
    segment = np.nan_to_num(scores[first : last + 1], nan=0.0)
    apex = first + int(np.argmax(segment))
    peak = float(scores[apex])
    floor = typical + fraction * (peak - typical)
    values = np.nan_to_num(scores, nan=0.0)
    onset = first
    while onset > 0 and first - onset < limit and floor <= values[onset - 1] <= values[onset]:
        onset -= 1
    offset = last
    end = len(values) - 1
    while offset < end and offset - last < limit and floor <= values[offset + 1] <= values[offset]:
        offset += 1
    return onset, apex, offset, peak


def _merged(intervals: list[Interval]) -> list[Interval]:
    """Union of overlapping intervals (the higher peak gives the apex and the score)."""
    out: list[Interval] = []
    for item in sorted(intervals, key=lambda i: i.onset):
        if out and item.onset <= out[-1].offset:
            last = out[-1]
            best = item if item.score > last.score else last
            out[-1] = Interval(last.onset, best.apex, max(last.offset, item.offset), best.score)
        else:
            out.append(item)
    return out


def detect(scores: np.ndarray, fps: float, settings: SpotSettings) -> tuple[list[Interval], float]:
    """Expression intervals in a score series (analysed-frame indices) and the threshold used."""
    level = threshold(scores, settings)
    above = np.nan_to_num(scores, nan=0.0) > level
    runs = _joined(_runs(above), settings.frames(settings.join_gap_s, fps))
    limit = settings.frames(settings.longest_s, fps)
    typical = typical_score(scores)
    widened = [Interval(*_widen(scores, a, b, settings.edge_fraction, typical, limit)) for a, b in runs]
    shortest, longest = settings.shortest_s * fps, settings.longest_s * fps
    kept = [i for i in _merged(widened) if shortest <= i.offset - i.onset <= longest]
    return kept, level


def kind_of(interval: Interval, fps: float, settings: SpotSettings) -> str:
    return "micro" if (interval.offset - interval.onset) / fps <= settings.micro_max_s + 1e-9 else "macro"


__all__ = ["Interval", "detect", "frame_scores", "kind_of", "region_scores", "threshold", "typical_score"]
