"""Named SynME settings: `default` (CASME II-like AU rates, nuisances stronger than the signal) and `demo`.

The demo's SynME is easier than the default one, so that a 10-minute CPU run can show learning on all 8 AUs:
- more repression and sadness clips than CASME II's marginals, so the mouth AUs 14, 15, 17 have ~20 positives
  each in 6 subjects' 120 clips instead of ~9;
- those mouth AUs (whose bumps move little texture) at 1.25-1.4x amplitude;
- milder head motion (about half), fewer blinks, apex in the first half of the clip. Head motion alone is then
  smaller than the AU motion, though all nuisances together still change the frames more than the AUs do.
`aullm synth --preset demo` writes it; with the demo's sizes (`DEMO_SYNME`) it is exactly the demo's data.
"""

from __future__ import annotations

from typing import Any

from aullm.data.synme.motion import SynMEParams

DEMO_PARAMS = SynMEParams(
    head_shift_px=(0.2, 0.8),
    head_rot_deg=(0.0, 0.4),
    head_scale=0.004,
    tremor_px=0.05,
    blink_prob=0.25,
    apex_at=(0.25, 0.5),
    emotions=(
        ("others", 0.26),
        ("disgust", 0.21),
        ("happiness", 0.14),
        ("repression", 0.18),
        ("surprise", 0.10),
        ("sadness", 0.11),
    ),
    au_gain=((14, 1.25), (15, 1.25), (17, 1.4)),
)
PRESETS: dict[str, SynMEParams] = {"default": SynMEParams(), "demo": DEMO_PARAMS}
#: Everything `generate_synme` needs to write the demo's copy of SynME.
DEMO_SYNME: dict[str, Any] = {"subjects": 6, "clips_per_subject": 20, "seed": 0, "size": 128, "params": DEMO_PARAMS}

__all__ = ["DEMO_PARAMS", "DEMO_SYNME", "PRESETS"]
