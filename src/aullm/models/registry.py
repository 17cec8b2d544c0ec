"""Model registry in the style of timm: `@register_model(name)` on a builder, `build_model(cfg, aus, llm)`.

Model modules are imported lazily, by name, so `aullm` starts fast, a model with heavy dependencies costs
nothing unless it is used, and a model whose issue has not landed fails with one clear line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from torch import nn

from aullm.errors import UserError

if TYPE_CHECKING:
    from aullm.config import Config
    from aullm.models.llm import LoadedLLM

# Builder signature: (cfg, aus, llm, seed) -> model. `seed` fixes the initial trainable weights (see base.py).
Builder = Callable[["Config", list[str], Optional["LoadedLLM"], int], nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    needs_llm: bool


_REGISTRY: dict[str, ModelEntry] = {}

# Where each model of `model.name` is defined: imported on first use, so a run loads only what it needs.
_MODEL_MODULES: dict[str, str] = {
    "au_llm": "aullm.models.au_llm",
    "aullmpp": "aullm.models.aullmpp",
    "sssnet_led": "aullm.models.baselines",
    "resnet18_led": "aullm.models.baselines",
    "resnet18": "aullm.models.baselines",
    "resnet34": "aullm.models.baselines",
    "lbptop": "aullm.models.baselines",
}


def register_model(name: str, *, needs_llm: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: register `builder` under `name`; `needs_llm` tells the protocol to load the LLM first."""

    def decorator(builder: Builder) -> Builder:
        _REGISTRY[name] = ModelEntry(name=name, builder=builder, needs_llm=needs_llm)
        return builder

    return decorator


def _entry(name: str) -> ModelEntry:
    if name not in _REGISTRY and name in _MODEL_MODULES:
        importlib.import_module(_MODEL_MODULES[name])
    if name not in _REGISTRY:
        known = ", ".join(sorted(set(_REGISTRY) | set(_MODEL_MODULES)))
        raise UserError(f"unknown model.name {name!r} (known: {known})")
    return _REGISTRY[name]


def list_models() -> list[str]:
    return sorted(set(_REGISTRY) | set(_MODEL_MODULES))


def model_needs_llm(name: str) -> bool:
    return _entry(name).needs_llm


def build_model(cfg: Config, aus: list[str], llm: Optional[LoadedLLM], *, seed: Optional[int] = None) -> Any:
    """Build `cfg.model.name` for the AUs `aus`; its trainable weights start as `model.reset(seed)` would make them
    (seed defaults to the config's first seed)."""
    entry = _entry(cfg.model.name)
    if entry.needs_llm and llm is None:
        raise ValueError(f"model {entry.name!r} needs a loaded LLM (load_llm) and got None")
    return entry.builder(cfg, list(aus), llm, int(cfg.seeds[0] if seed is None else seed))
