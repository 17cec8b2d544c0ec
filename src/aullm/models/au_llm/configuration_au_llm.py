"""Options of AU-LLM (`model.name: au_llm`), beside its modelling file `au_llm.py`.

`variant` selects the paper's Table 3 ablations; `token_position` where the visual token goes relative to the
prompt (`append` lets the constant prompt be shared across the batch); `prompt_vectors` is the soft prompt's
length for the `prompt_learning` variant; `reasoner: none` is the ablation without any LLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from aullm.core.options import ModelConfig, check, check_led_stability

Variant = Literal["all", "f_high", "f_mid", "efp_linear", "prompt_learning"]
VARIANTS_ORDER: tuple[str, ...] = ("all", "f_high", "f_mid", "efp_linear", "prompt_learning")
DEFAULT_PROMPT = "Analyze the facial features to classify action units:"


@dataclass
class AULLMConfig(ModelConfig):
    """AU-LLM: backbone → Enhanced Fusion Projector → one visual token → LoRA LLM → last hidden state → head."""

    name: str = "au_llm"
    variant: Variant = "all"
    dropout: float = 0.3
    token_position: Literal["append", "prepend"] = "append"
    prompt: str = DEFAULT_PROMPT
    prompt_vectors: int = 8
    # `none` removes the LLM (the visual token goes straight to the head; same backbone, EFP and head, at the width
    # of the LLM named in llm.name), isolating what the LLM contributes. No LLM is loaded.
    reasoner: Literal["llm", "none"] = "llm"
    # The constant added to the LED normaliser, in 0–255 pixel units as the reference codes state it (aullm feeds
    # [0, 1] pixels and divides it by 255): the AU-LLM authors' script adds 1e-8; 255 reproduces aullm's earlier
    # filter (1.0 on its [0, 1] pixels).
    led_stability: float = 1.0e-8
    # Biases in the SE layer's two linear maps: the reference's SE has none; true reproduces aullm's earlier layer.
    se_bias: bool = False

    def __post_init__(self) -> None:
        check(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "must be in [0, 1)")
        check_led_stability(self.led_stability)
        check(self.prompt_vectors >= 1, "model.prompt_vectors", self.prompt_vectors, "must be at least 1")
        check(
            self.reasoner == "llm" or self.variant != "prompt_learning",
            "model.reasoner",
            self.reasoner,
            "none needs a visual token to pass on; the prompt_learning variant has none",
        )

    @property
    def needs_llm(self) -> bool:
        return self.reasoner != "none"

    @property
    def variant_label(self) -> Optional[str]:
        return self.variant
