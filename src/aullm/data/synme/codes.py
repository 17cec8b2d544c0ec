"""Which AUs a SynME clip shows: emotion-driven templates with CASME II-like base rates and co-occurrence.

Labels are drawn per clip, independently of the subject, so a subject's appearance says nothing about its AUs
(a single-frame model cannot shortcut through identity). Templates follow the co-occurrence seen in CASME II
(1+2 together, 4 with 7, 15 with 17, 12 alone or with 6, 14 with repression) and include non-target AUs
(6, 9, 10, 25) as distractor motion, so some clips move without any target AU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TARGET_AUS: tuple[int, ...] = (1, 2, 4, 7, 12, 14, 15, 17)
DISTRACTOR_AUS: tuple[int, ...] = (6, 9, 10, 25)
ALL_AUS: tuple[int, ...] = tuple(sorted(TARGET_AUS + DISTRACTOR_AUS))
# AUs that CASME II / SAMM often code on one side only (L12, R14, L10, L2).
_SIDED = {2: 0.08, 10: 0.3, 12: 0.3, 14: 0.45}

EMOTIONS: tuple[tuple[str, float], ...] = (
    ("others", 0.36),
    ("disgust", 0.25),
    ("happiness", 0.13),
    ("repression", 0.11),
    ("surprise", 0.10),
    ("sadness", 0.05),
)


@dataclass(frozen=True)
class AUCode:
    """One coded AU of a clip: number, side ('' both, 'L' subject's left, 'R' subject's right), intensity 0..1."""

    au: int
    side: str
    intensity: float


def _pick(rng: np.random.Generator, options: list[tuple[tuple[int, ...], float]]) -> tuple[int, ...]:
    """One of several mutually exclusive AU groups (weights need not sum to 1: the rest is 'none')."""
    r = rng.uniform()
    acc = 0.0
    for aus, p in options:
        acc += p
        if r < acc:
            return aus
    return ()


def _template(emotion: str, rng: np.random.Generator) -> set[int]:
    """AU set for one clip of `emotion` (probabilities tuned so the marginals match CASME II, see module doc)."""
    b = rng.uniform
    aus: set[int] = set()
    if emotion == "disgust":
        if b() < 0.85:
            aus.add(4)
        if b() < (0.55 if 4 in aus else 0.15):
            aus.add(7)
        aus.update(_pick(rng, [((9,), 0.25), ((10,), 0.2)]))
        aus.update(_pick(rng, [((14,), 0.15), ((15, 17), 0.13), ((17,), 0.04)]))
    elif emotion == "happiness":
        aus.update(_pick(rng, [((12,), 0.9)]))
        aus.update(_pick(rng, [((6,), 0.4)]))
        aus.update(_pick(rng, [((25,), 0.2)]))
        aus.update(_pick(rng, [((1, 2), 0.08), ((4,), 0.08)]))
        if b() < 0.1:
            aus.add(7)
    elif emotion == "surprise":
        aus.update(_pick(rng, [((1, 2), 0.8), ((1,), 0.08), ((2,), 0.08)]))
        aus.update(_pick(rng, [((25,), 0.25)]))
        aus.update(_pick(rng, [((4,), 0.05)]))
    elif emotion == "repression":
        aus.update(_pick(rng, [((14,), 0.33), ((15, 17), 0.26), ((17,), 0.08), ((15,), 0.07), ((12,), 0.12)]))
        aus.update(_pick(rng, [((4,), 0.25)]))
        if b() < 0.1:
            aus.add(7)
    elif emotion == "sadness":
        aus.update(_pick(rng, [((1, 4), 0.3), ((4,), 0.4)]))
        aus.update(_pick(rng, [((15, 17), 0.4), ((15,), 0.2), ((14,), 0.1)]))
    else:  # others
        aus.update(_pick(rng, [((4,), 0.46), ((1, 2), 0.12), ((1, 2, 4), 0.03)]))
        if b() < (0.45 if 4 in aus else 0.1):
            aus.add(7)
        aus.update(_pick(rng, [((14,), 0.17), ((15, 17), 0.07), ((17,), 0.02), ((12,), 0.05)]))
        for d in DISTRACTOR_AUS:
            if b() < 0.07:
                aus.add(d)
    if not aus:
        aus.add(int(rng.choice(DISTRACTOR_AUS)))
    return aus


def sample_codes(
    rng: np.random.Generator, emotions: tuple[tuple[str, float], ...] = EMOTIONS
) -> tuple[str, list[AUCode]]:
    """Draw the emotion (weights `emotions`, CASME II-like by default) and the coded AUs (with side and
    intensity) of one clip."""
    unknown = sorted({e for e, _ in emotions} - {e for e, _ in EMOTIONS})
    if unknown:
        raise ValueError(f"unknown SynME emotion(s) {unknown}; known: {[e for e, _ in EMOTIONS]}")
    names = [e for e, _ in emotions]
    probs = np.array([p for _, p in emotions], dtype=float)
    emotion = str(names[int(rng.choice(len(names), p=probs / probs.sum()))])
    codes = []
    for au in sorted(_template(emotion, rng)):
        side = ""
        if au in _SIDED and rng.uniform() < _SIDED[au]:
            side = "L" if rng.uniform() < 0.5 else "R"
        codes.append(AUCode(au, side, float(rng.uniform(0.85, 1.0))))
    # 1+2 share a side when 2 is one-sided (CASME II writes L1+L2).
    sides = {c.au: c.side for c in codes}
    if sides.get(2) and 1 in sides:
        codes = [AUCode(c.au, sides[2], c.intensity) if c.au == 1 else c for c in codes]
    return emotion, codes


def casme2_string(codes: list[AUCode]) -> str | int:
    """CASME II style: `4+7`, `L12`, `1+2+4`; a single bilateral AU is an int cell, as in the official sheet."""
    if len(codes) == 1 and not codes[0].side:
        return codes[0].au
    return "+".join(f"{c.side}{c.au}" for c in codes)


def samm_string(codes: list[AUCode], rng: np.random.Generator) -> str:
    """SAMM style: side prefix and, for some codes, a FACS intensity letter (`4B+7A`, `R12C`)."""
    parts = []
    for c in codes:
        letter = ""
        if rng.uniform() < 0.35:
            letter = "ABCDE"[min(4, int((c.intensity - 0.85) / 0.15 * 5))]
        parts.append(f"{c.side}{c.au}{letter}")
    return "+".join(parts)
