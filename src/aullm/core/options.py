"""What every config section shares: validation that names the key, and the base of each model's options.

Each model's options live beside its modelling file (`models/<model>_config.py`, as Hugging Face keeps a
configuration file next to each modeling file) and extend `ModelConfig`; `models/registry.py` maps a
`model.name` to its options class. This module sits at the bottom of the config layer so that those option
files and `aullm.config` can both import it without importing each other.
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


__all__ = ["ConfigError", "ModelConfig", "check", "check_led_stability"]
