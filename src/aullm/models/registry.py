"""The one list of model names: `model.name` → its options class and the function that builds it (as timm keeps
one registry of names).

The registry imports only the light option modules (no torch), so loading a config can validate the `model`
section against the chosen model's own options. Builders are named by "module:function" and imported on first
use, so `aullm` starts fast and a run imports only the model it trains.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from aullm.errors import ConfigError
from aullm.models.au_llm_config import AULLMConfig
from aullm.models.aullmpp_config import AULLMPPConfig
from aullm.models.baselines_config import LBPTOPConfig, ResNetConfig, ResNetLEDConfig, SSSNetLEDConfig
from aullm.options import ModelConfig

if TYPE_CHECKING:  # type-only: config.py imports this registry at run time
    from aullm.config import Config


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its options class and its builder `(cfg, aus, llm, seed) -> model`."""

    options: type[ModelConfig]
    builder: str  # "module:function"

    def load_builder(self) -> Callable[[Config, list[str], Any, int], Any]:
        module, function = self.builder.split(":")
        builder: Callable[[Config, list[str], Any, int], Any] = getattr(importlib.import_module(module), function)
        return builder


MODELS: dict[str, ModelSpec] = {
    "au_llm": ModelSpec(AULLMConfig, "aullm.models.au_llm:build_au_llm"),
    "aullmpp": ModelSpec(AULLMPPConfig, "aullm.models.aullmpp:build_aullmpp"),
    "sssnet_led": ModelSpec(SSSNetLEDConfig, "aullm.models.baselines:build_sssnet_led"),
    "resnet18_led": ModelSpec(ResNetLEDConfig, "aullm.models.baselines:build_resnet"),
    "resnet18": ModelSpec(ResNetConfig, "aullm.models.baselines:build_resnet"),
    "resnet34": ModelSpec(ResNetConfig, "aullm.models.baselines:build_resnet"),
    "lbptop": ModelSpec(LBPTOPConfig, "aullm.models.baselines:build_lbptop"),
}
DEFAULT_MODEL = "au_llm"


def list_models() -> list[str]:
    return sorted(MODELS)


def model_spec(name: str) -> ModelSpec:
    """The registered model `name`; an unknown name is a ConfigError listing the known ones."""
    if name not in MODELS:
        raise ConfigError(f"invalid value for model.name: {name!r} (known: {', '.join(list_models())})")
    return MODELS[name]


def build_model(cfg: Config, aus: list[str], llm: Any, *, seed: Optional[int] = None) -> Any:
    """Build `cfg.model.name` for the AUs `aus`; its trainable weights start as `model.reset(seed)` would make them
    (seed defaults to the config's first seed). `llm` is a loaded LLM (`models.llm.LoadedLLM`) or None; it is
    typed loosely so that this config-layer module never imports the models."""
    if cfg.model.needs_llm and llm is None:
        raise ValueError(f"model {cfg.model.name!r} needs a loaded LLM (load_llm) and got None")
    builder = model_spec(cfg.model.name).load_builder()
    return builder(cfg, list(aus), llm, int(cfg.seeds[0] if seed is None else seed))


__all__ = ["DEFAULT_MODEL", "MODELS", "ModelSpec", "build_model", "list_models", "model_spec"]
