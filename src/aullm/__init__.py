"""aullm: micro-expression Action Unit detection with an LLM as the reasoning engine (AU-LLM, AULLM++).

The public API (docs/api.md walks through it):

    import aullm
    aullm.synth("data/synme", subjects=6, clips_per_subject=20, preset="demo")
    run = aullm.train("synme_demo_sssnet_led", out="runs/sssnet", overrides=["data.root=data/synme"])
    run.metrics.to_frame()                                   # tidy scores with 95% intervals
    aullm.compare(["runs/sssnet", run.path]).to_frame()      # is B better than A, or is it noise?
    detector = aullm.Detector.load(run.path)                 # with train(..., save_final=True)
    detector.predict(frames)                                 # frames folder, video, manifest or NumPy frames

Names are imported on first use, so `import aullm` (and the command line) starts without loading torch. Every
function of `aullm.api` (one per command) is also a name here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aullm.core.errors import ConfigError as ConfigError
from aullm.core.errors import DataError as DataError
from aullm.core.errors import RunFailed as RunFailed
from aullm.core.errors import UserError as UserError
from aullm.core.version import __version__ as __version__

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and IDEs
    from aullm import datasets as datasets
    from aullm.api import *  # noqa: F403
    from aullm.config import Config as Config
    from aullm.inference.bundle import BundleError as BundleError

#: The public names of `aullm.api` that `import aullm` offers at the top level (imported on first access).
_API = (
    "SYNME_AUS",
    "Comparison",
    "Detector",
    "ExecutorSpec",
    "Metrics",
    "Run",
    "SweepResult",
    "bench_step",
    "compare",
    "configs",
    "crop",
    "demo",
    "evaluate",
    "explain",
    "export",
    "load_config",
    "predict",
    "predict_videos",
    "report",
    "spot",
    "spot_eval",
    "sweep",
    "synth",
    "synth_long",
    "train",
)
#: public name → the module that defines it.
_LAZY: dict[str, str] = {
    **dict.fromkeys(_API, "aullm.api"),
    "BundleError": "aullm.inference.bundle",
    "Config": "aullm.config",
}


def __getattr__(name: str) -> Any:
    if name == "datasets":
        return importlib.import_module("aullm.datasets")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aullm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, "datasets"])


__all__ = sorted(["ConfigError", "DataError", "RunFailed", "UserError", "__version__", "datasets", *_LAZY])
