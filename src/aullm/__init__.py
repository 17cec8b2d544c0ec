"""aullm: micro-expression Action Unit detection with an LLM as the reasoning engine (AU-LLM, AULLM++).

The public API (docs/api.md walks through it):

    import aullm
    aullm.synth("data/synme", subjects=6, clips_per_subject=20, preset="demo")
    run = aullm.train("configs/synme_demo_sssnet_led.yaml", out="runs/sssnet", overrides=["data.root=data/synme"])
    run.metrics.to_frame()                                   # tidy scores with 95% intervals
    aullm.compare(["runs/sssnet", run.path]).to_frame()      # is B better than A, or is it noise?
    detector = aullm.Detector.load(run.path)                 # with train(..., save_final=True)
    detector.predict(frames)                                 # frames folder, video, manifest or NumPy frames

Names are imported on first use, so `import aullm` (and the command line) starts without loading torch. The
rest of the API (`predict`, `explain`, `crop`, `demo`, `bench_step`: one function per command) is in `aullm.api`;
at the top level those names are the modules that implement them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aullm.errors import ConfigError, DataError, RunFailed, UserError
from aullm.version import __version__

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and IDEs
    from aullm import datasets
    from aullm.api import (
        SYNME_AUS,
        Comparison,
        Detector,
        Metrics,
        Run,
        SweepResult,
        compare,
        evaluate,
        export,
        load_config,
        report,
        sweep,
        synth,
        train,
    )
    from aullm.bundle import BundleError
    from aullm.config import Config

#: public name → the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "SYNME_AUS",
            "Comparison",
            "Detector",
            "Metrics",
            "Run",
            "SweepResult",
            "compare",
            "evaluate",
            "export",
            "load_config",
            "report",
            "sweep",
            "synth",
            "train",
        ),
        "aullm.api",
    ),
    "BundleError": "aullm.bundle",
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


__all__ = [
    "SYNME_AUS",
    "BundleError",
    "Comparison",
    "Config",
    "ConfigError",
    "DataError",
    "Detector",
    "Metrics",
    "Run",
    "RunFailed",
    "SweepResult",
    "UserError",
    "__version__",
    "compare",
    "datasets",
    "evaluate",
    "export",
    "load_config",
    "report",
    "sweep",
    "synth",
    "train",
]
