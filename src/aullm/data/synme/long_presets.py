"""Named settings of SynME long videos (`aullm synth --long --preset default|hard`).

`default`: a seated, mostly still face, as in the CAS(ME)² / SAMM long-video recordings: slow head drift of a few
pixels, a blink every 2–6 s, a talking burst now and then, macro-expressions and micro-expressions well apart.
`hard` is the benchmark's harder setting: larger and faster head motion, more and longer blinks, more talking,
stronger lighting drift and noise; the expressions themselves are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class LongParams:
    """Signal, distractor and nuisance settings. Pixel figures are for a 256 px face canvas (the drawn head is
    about 0.85 of it wide) and scale with the canvas; durations are in seconds and rates per minute, so the same
    settings give the same video at any frame rate."""

    face_px: tuple[int, int] = (240, 290)  # face canvas at 640×480: the head is ~200–250 px wide
    micro_px: tuple[float, float] = (1.5, 3.0)  # peak displacement of one AU bump at apex (SynME's clip amplitude)
    macro_px: tuple[float, float] = (5.0, 9.0)  # macro-expressions: clearly larger
    micro_s: tuple[float, float] = (0.2, 0.5)  # onset→offset, inclusive frames / fps
    macro_s: tuple[float, float] = (0.6, 4.0)  # from 0.6 s: a margin above the 0.5 s micro/macro split
    micro_per_min: float = 6.0
    macro_per_min: float = 3.0
    gap_s: float = 1.0  # least neutral time between two expressions or talking bursts
    edge_s: float = 0.5  # nothing starts or ends within this of the video's ends
    apex_at: tuple[float, float] = (0.3, 0.6)  # apex position as a fraction of the expression
    blink_every_s: tuple[float, float] = (2.0, 6.0)
    blink_s: tuple[float, float] = (0.1, 0.4)
    talk_per_min: float = 1.5
    talk_s: tuple[float, float] = (1.0, 3.0)
    talk_hz: tuple[float, float] = (3.0, 6.0)
    talk_px: tuple[float, float] = (2.0, 4.0)  # jaw / lower-lip opening at full amplitude
    head_shift_px: float = 6.0  # largest slow translation from the start position
    head_rot_deg: float = 1.5
    head_scale: float = 0.015
    drift_hz: tuple[float, float] = (0.01, 0.1)  # frequencies of the slow head and lighting drift
    tremor_px: float = 0.15  # fast jitter (std, correlated over ~30 ms)
    light_gain: float = 0.06
    light_gradient: float = 0.08
    noise_sigma: float = 2.0  # sensor noise, grey levels
    au_spread: float = 1.35  # as SynME clips
    jpeg_quality: int = 92  # the frames written with `frames=True`


HARD = replace(
    LongParams(),
    head_shift_px=15.0,
    head_rot_deg=4.0,
    head_scale=0.04,
    drift_hz=(0.02, 0.25),
    tremor_px=0.3,
    blink_every_s=(1.0, 3.5),
    blink_s=(0.15, 0.5),
    talk_per_min=4.0,
    light_gain=0.12,
    light_gradient=0.15,
    noise_sigma=3.0,
)
LONG_PRESETS: dict[str, LongParams] = {"default": LongParams(), "hard": HARD}

__all__ = ["HARD", "LONG_PRESETS", "LongParams"]
