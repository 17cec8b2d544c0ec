"""The spotter's settings, every length in seconds and every distance relative to the face.

Stating lengths in seconds and distances in units of the face makes one set of settings serve 30 fps and 200 fps
footage, small and large faces alike: they are converted with the stream's frame rate and the face's eye distance
when a video is read. The defaults follow the optical-flow spotters of He et al. (ACM MM 2021) and Yu et al.
(MEGC 2022, `docs/spotting.md` says which choice comes from where); the numbers marked "tuned" were chosen on
SynME long videos of development seeds, never on the seeds the results are reported for.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from aullm.core.errors import UserError, arg

Kind = Literal["micro", "macro", "both"]
KINDS: tuple[str, ...] = ("micro", "macro", "both")


@dataclass(frozen=True)
class SpotSettings:
    """Spotter settings (see the module's docstring for units)."""

    #: A micro-expression lasts at most this long (onset to offset); longer intervals are macro-expressions.
    micro_max_s: float = 0.5
    #: Intervals shorter than this are dropped (noise); longer than `longest_s` too (not one expression).
    shortest_s: float = 0.12
    longest_s: float = 4.5
    #: Frames are analysed at about this rate: higher-rate footage is read every k-th frame (SAMM: 200 fps → 1 in 7).
    analysis_fps: float = 30.0
    #: Face crop: the distance between the eyes is scaled to half of `face_px` (the crop is 2 eye distances wide).
    face_px: int = 256
    #: Run the face detector this often (and whenever the face is lost); the crop changes only when the face moved.
    redetect_s: float = 2.0
    #: Relative change of the eye positions that makes a re-detection move the crop (a fraction of the eye distance).
    recrop_tolerance: float = 0.06
    #: Optical flow is measured against a keyframe renewed this often (longer: less drift, more appearance change).
    keyframe_s: float = 0.5
    #: Motion above this frequency is noise, not an expression (He et al. use 2–5 Hz).
    lowpass_hz: float = 3.0
    #: The neutral position of a region is the running median of its trajectory over this window (centred).
    baseline_s: float = 8.0
    #: A frame is part of an expression when a region moved more than this from its neutral position, in pixels of
    #: the `face_px` crop (tuned), and more than `noise_factor` times the video's own noise level.
    threshold_px: float = 0.6
    noise_factor: float = 4.0
    #: An interval is widened to where its score falls below this fraction of its height above the typical score
    #: (He et al.'s valley rule, which uses a third).
    edge_fraction: float = 0.1
    #: Runs closer than this are one expression.
    join_gap_s: float = 0.1
    #: An interval whose mouth oscillates at speech rates by this fraction of its peak score is speech, not an
    #: expression, and is dropped (`speech.py`; 0: keep everything). Chosen on the development videos.
    speech_ratio: float = 0.4

    def frames(self, seconds: float, fps: float) -> int:
        """`seconds` as a whole number of frames at `fps` (at least 1)."""
        return max(1, int(round(seconds * fps)))

    def stride(self, fps: float) -> int:
        """Read every k-th frame so that the analysed rate is about `analysis_fps`."""
        return max(1, int(round(fps / self.analysis_fps)))


def settings_from(overrides: dict[str, Any]) -> SpotSettings:
    """SpotSettings with `overrides` applied; an unknown name or an impossible value is a UserError naming it."""
    known = {f.name: f for f in dataclasses.fields(SpotSettings)}
    for name in overrides:
        if name not in known:
            raise UserError(f"unknown spotting setting {name!r} (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for name, value in overrides.items():
        kind = int if known[name].type in ("int", int) else float
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise UserError(f"spotting setting {name}: {value!r} is not a number") from None
        if not math.isfinite(number) or number < 0 or (number == 0 and name != "speech_ratio"):
            raise UserError(f"spotting setting {name}: {value!r} must be a positive number")
        values[name] = number
    settings = dataclasses.replace(SpotSettings(), **values)
    if settings.shortest_s >= settings.longest_s:
        raise UserError(f"spotting settings: shortest_s {settings.shortest_s} must be below longest_s")
    if not 0 < settings.edge_fraction < 1:
        raise UserError(f"spotting setting edge_fraction {settings.edge_fraction} must lie in (0, 1)")
    if settings.face_px < 64 or settings.face_px > 1024:
        raise UserError(f"spotting setting face_px {settings.face_px} must lie in 64..1024")
    return settings


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UserError(f"{arg('kind', repr(kind))}: choose micro, macro or both")
    return kind


__all__ = ["KINDS", "Kind", "SpotSettings", "check_kind", "settings_from"]
