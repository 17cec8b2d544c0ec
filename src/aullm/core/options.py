"""What every config section shares: validation that names the key, the base of each model's options, and the
options that several models share (dropout, the LED filter's normaliser, SE biases), stated once.

Each model's options live beside its modelling file (`models/<model>/configuration_<model>.py`, as Hugging Face
keeps a configuration file next to each modeling file) and extend `ModelConfig` and the shared option groups they
have; `models/registry.py` maps a `model.name` to its options class. This module sits below the config layer so
that those option files and `aullm.config` can both import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from aullm.core.errors import ConfigError


def check(ok: bool, key: str, value: Any, why: str) -> None:
    """Raise a ConfigError naming the dotted key, the value and the rule it breaks."""
    if not ok:
        raise ConfigError(f"invalid value for {key}: {value!r} ({why})")


def check_led_stability(value: float) -> None:
    """`model.led_stability` is in 0–255 pixel units and must be positive (all-dark pixels would give 0/0)."""
    check(value > 0, "model.led_stability", value, "must be > 0 (0–255 pixel units; all-dark pixels would give 0/0)")


@dataclass
class ModelConfig:
    """The `model` section: `name` picks the model; subclasses add that model's own options (and only those, so
    an option the chosen model does not have is an error instead of being silently ignored)."""

    name: str = "au_llm"

    @property
    def needs_llm(self) -> bool:
        """Whether building this model needs a loaded LLM (the protocol loads it once per process)."""
        return False

    @property
    def bundleable(self) -> bool:
        """Whether a trained model can be saved as a model bundle (torch weights) for `aullm predict`."""
        return True

    @property
    def variant_label(self) -> Optional[str]:
        """The ablation variant reports show beside the model name, if the model has variants."""
        return None

    def __post_init__(self) -> None:
        """Option groups check their own keys and call the next group's check (cooperative inheritance)."""


@dataclass
class DropoutOptions(ModelConfig):
    """`model.dropout`: the feature dropout of the visual backbone's head."""

    dropout: float = 0.3

    def __post_init__(self) -> None:
        check(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "must be in [0, 1)")
        super().__post_init__()


@dataclass
class LEDOptions(ModelConfig):
    """`model.led_stability`: the constant added to the LED normaliser, in 0–255 pixel units as the reference codes
    state it (aullm feeds [0, 1] pixels and divides it by 255). The AU-LLM authors' script adds 1e-8, MEB's LED
    network adds 1; each model sets its reference's value as its default."""

    led_stability: float = 1.0e-8

    def __post_init__(self) -> None:
        check_led_stability(self.led_stability)
        super().__post_init__()


@dataclass
class SEOptions(ModelConfig):
    """`model.se_bias`: biases in the Squeeze-and-Excitation layer's two linear maps (the reference's SE has none)."""

    se_bias: bool = False


__all__ = ["ConfigError", "DropoutOptions", "LEDOptions", "ModelConfig", "SEOptions", "check", "check_led_stability"]
