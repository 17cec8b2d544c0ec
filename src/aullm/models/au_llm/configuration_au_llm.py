"""Options of AU-LLM (`model.name: au_llm`), beside its modelling file `au_llm.py`.

`variant` selects the paper's Table 3 ablations; `token_position` where the visual token goes relative to the
prompt (`append` lets the constant prompt be shared across the batch); `prompt_vectors` is the soft prompt's
length for the `prompt_learning` variant; `reasoner: none` is the ablation without any LLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from aullm.core.options import DropoutOptions, LEDOptions, SEOptions, check

Variant = Literal["all", "f_high", "f_mid", "efp_linear", "prompt_learning"]
VARIANTS_ORDER: tuple[str, ...] = ("all", "f_high", "f_mid", "efp_linear", "prompt_learning")
DEFAULT_PROMPT = "Analyze the facial features to classify action units:"


@dataclass
class AULLMConfig(SEOptions, LEDOptions, DropoutOptions):
    """AU-LLM: backbone → Enhanced Fusion Projector → one visual token → LoRA LLM → last hidden state → head."""

    name: str = "au_llm"
    variant: Variant = "all"
    token_position: Literal["append", "prepend"] = "append"
    prompt: str = DEFAULT_PROMPT
    prompt_vectors: int = 8
    # `none` removes the LLM (the visual token goes straight to the head; same backbone, EFP and head, at the width
    # of the LLM named in llm.name), isolating what the LLM contributes. No LLM is loaded.
    reasoner: Literal["llm", "none"] = "llm"

    def __post_init__(self) -> None:
        super().__post_init__()
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
