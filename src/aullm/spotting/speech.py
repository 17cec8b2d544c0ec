"""Speech is not an expression: telling a talking mouth from a mouth that makes an expression.

Talking moves the jaw and lips several times a second (syllables come at 3–6 Hz); an expression rises to its apex
and returns once. On the SynME development videos, speech was the commonest false detection once blinks were
masked: intervals spotted over a talking mouth carried, in the mouth regions, a 2.5–8 Hz oscillation of about half
the interval's peak score, against at most a third for every true expression. An interval whose mouth oscillates
that much (`speech_ratio` of its peak; 0 turns the check off) is dropped and counted as speech.

The cost: an expression made while talking, or a fast repeated one (laughter), can be dropped too.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

from aullm.spotting.intervals import Interval, _fill
from aullm.spotting.regions import REGION_NAMES

MOUTH: tuple[str, ...] = ("mouth_left", "mouth_right", "upper_lip", "chin")
BAND_HZ: tuple[float, float] = (2.5, 8.0)
#: The oscillation is measured over the interval and this much on either side of it (seconds).
MARGIN_S = 0.2


def mouth_oscillation(trajectory: np.ndarray, tracked: np.ndarray, fps: float) -> np.ndarray | None:
    """[T, 4] squared magnitude of each mouth region's motion in the speech band; None when the frame rate is too
    low to hold the band (below twice its upper edge)."""
    if fps <= 2 * BAND_HZ[1] + 1 or len(trajectory) < 16:
        return None
    columns = [REGION_NAMES.index(name) for name in MOUTH]
    values = np.asarray(trajectory, dtype=np.float64)[:, columns]
    missing = ~np.asarray(tracked, dtype=bool)
    if missing.all():
        return None
    values = _fill(values, missing)
    band = sosfiltfilt(butter(4, BAND_HZ, btype="band", fs=fps, output="sos"), values, axis=0)
    energy = (band**2).sum(axis=2)
    energy[missing] = 0.0
    return energy


def speech_ratio(interval: Interval, energy: np.ndarray, fps: float) -> float:
    """The largest mouth region's RMS speech-band motion around `interval`, over the interval's peak score."""
    margin = int(round(MARGIN_S * fps))
    window = energy[max(0, interval.onset - margin) : interval.offset + margin + 1]
    rms = float(np.sqrt(window.mean(axis=0)).max()) if len(window) else 0.0
    return rms / max(interval.score, 1e-9)


__all__ = ["BAND_HZ", "MOUTH", "mouth_oscillation", "speech_ratio"]
