"""SynME: synthetic micro-expressions with known AU ground truth (docs/design.md, SynME), the project's default
dataset."""

from aullm.data.synme.codes import ALL_AUS, DISTRACTOR_AUS, TARGET_AUS
from aullm.data.synme.motion import SynMEParams, au_bumps, au_region
from aullm.data.synme.presets import DEMO_PARAMS, DEMO_SYNME, PRESETS
from aullm.data.synme.writer import (
    CASME2_SHEET,
    META_FILE,
    SAMM_SHEET,
    TRUTH_FILE,
    generate_synme,
    subject_face,
    written_with,
)

__all__ = [
    "ALL_AUS",
    "CASME2_SHEET",
    "DEMO_PARAMS",
    "DEMO_SYNME",
    "DISTRACTOR_AUS",
    "META_FILE",
    "PRESETS",
    "SAMM_SHEET",
    "TARGET_AUS",
    "TRUTH_FILE",
    "SynMEParams",
    "au_bumps",
    "au_region",
    "generate_synme",
    "subject_face",
    "written_with",
]
