"""Building a registered model from a config: the registry's "module:function" builder, imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Optional

from aullm.config import Config
from aullm.models.registry import model_spec

Builder = Callable[[Config, list[str], Any, int], Any]


def load_builder(name: str) -> Builder:
    """The builder function of the registered model `name`."""
    module, function = model_spec(name).builder.split(":")
    builder: Builder = getattr(importlib.import_module(module), function)
    return builder


def build_model(cfg: Config, aus: list[str], llm: Any, *, seed: Optional[int] = None) -> Any:
    """Build `cfg.model.name` for the AUs `aus`; its trainable weights start as `model.reset(seed)` would make them
    (seed defaults to the config's first seed). `llm` is a loaded LLM (`models.llm.loading.LoadedLLM`) or None."""
    if cfg.model.needs_llm and llm is None:
        raise ValueError(f"model {cfg.model.name!r} needs a loaded LLM (load_llm) and got None")
    return load_builder(cfg.model.name)(cfg, list(aus), llm, int(cfg.seeds[0] if seed is None else seed))


__all__ = ["build_model", "load_builder"]
