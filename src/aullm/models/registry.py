"""The one list of model names: `model.name` → its options class and the function that builds it (as timm keeps
one registry of names).

The registry imports only the light option modules (no torch), so loading a config can validate the `model`
section against the chosen model's own options. Builders are named by "module:function" and imported on first
use (`models/factory.py`), so `aullm` starts fast and a run imports only the model it trains.
"""

from __future__ import annotations

from dataclasses import dataclass

from aullm.core.errors import ConfigError
from aullm.core.options import ModelConfig
from aullm.models.au_llm.configuration_au_llm import AULLMConfig
from aullm.models.aullmpp.configuration_aullmpp import AULLMPPConfig
from aullm.models.baselines.configuration_baselines import LBPTOPConfig, ResNetConfig, ResNetLEDConfig, SSSNetLEDConfig


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its options class and its builder `(cfg, aus, llm, seed) -> model`, named as
    "module:function" so that it is imported only when a model is built."""

    options: type[ModelConfig]
    builder: str


MODELS: dict[str, ModelSpec] = {
    "au_llm": ModelSpec(AULLMConfig, "aullm.models.au_llm.modeling_au_llm:build_au_llm"),
    "aullmpp": ModelSpec(AULLMPPConfig, "aullm.models.aullmpp.modeling_aullmpp:build_aullmpp"),
    "sssnet_led": ModelSpec(SSSNetLEDConfig, "aullm.models.baselines.modeling_baselines:build_sssnet_led"),
    "resnet18_led": ModelSpec(ResNetLEDConfig, "aullm.models.baselines.modeling_baselines:build_resnet"),
    "resnet18": ModelSpec(ResNetConfig, "aullm.models.baselines.modeling_baselines:build_resnet"),
    "resnet34": ModelSpec(ResNetConfig, "aullm.models.baselines.modeling_baselines:build_resnet"),
    "lbptop": ModelSpec(LBPTOPConfig, "aullm.models.baselines.modeling_baselines:build_lbptop"),
}
DEFAULT_MODEL = "au_llm"


def list_models() -> list[str]:
    return sorted(MODELS)


def model_spec(name: str) -> ModelSpec:
    """The registered model `name`; an unknown name is a ConfigError listing the known ones."""
    if name not in MODELS:
        raise ConfigError(f"invalid value for model.name: {name!r} (known: {', '.join(list_models())})")
    return MODELS[name]


__all__ = ["DEFAULT_MODEL", "MODELS", "ModelSpec", "list_models", "model_spec"]
