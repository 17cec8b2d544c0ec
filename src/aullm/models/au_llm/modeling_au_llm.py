"""AU-LLM (paper §3): backbone → projector → one visual token → LoRA-tuned LLM → last hidden state → linear head.

Variants (paper Table 3):
- `all`: the EFP sees concat(flatten F_mid, F_high) — the paper's model.
- `f_high` / `f_mid`: the EFP sees one feature level only.
- `efp_linear` ("EFP−"): the projector is a single linear layer.
- `prompt_learning`: no visual token. `model.prompt_vectors` learnable soft-prompt vectors (CoOp-style) go through
  the LLM in the token's place; F_high is fused late with the LLM output (concat → Linear → ReLU → Dropout)
  before the classifier. The ReLU keeps the fusion from collapsing into the classifier's own linear map.

The LLM side (loading, LoRA, prompt placement, prefix cache) lives in `aullm.models.llm.reasoner.LLMReasoner`; this
file only builds the vision parts around it and wires them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

import torch
from torch import Tensor, nn

from aullm.models.au_llm.configuration_au_llm import VARIANTS_ORDER, AULLMConfig, Variant
from aullm.models.base import AUModel, ModelOutput, Reasoner, fill_normal_, init_module_, seeded_generator
from aullm.models.blocks.backbone import AUBackbone
from aullm.models.blocks.led import AULLM_LED_STABILITY
from aullm.models.blocks.projectors import EnhancedFusionProjector, LinearProjector

if TYPE_CHECKING:
    from aullm.config import Config
    from aullm.models.llm.loading import LoadedLLM

VARIANTS: tuple[str, ...] = VARIANTS_ORDER
PROMPT_VECTOR_STD = 0.02  # CoOp's initialisation of learnable context vectors


class AULLM(AUModel):
    """The AU-LLM model around an LLM reasoner (`forward(tokens [B, n, d]) -> [B, d]`, `reset(seed)`,
    `hidden_size`, `trainable_state_dict()`)."""

    def __init__(
        self,
        reasoner: Reasoner,
        num_aus: int,
        *,
        frames: int = 6,
        size: int = 64,
        input_kind: Literal["clip", "flow"] = "clip",
        variant: Variant = "all",
        dropout: float = 0.3,
        prompt_vectors: int = 8,
        seed: int = 0,
        aus: Optional[list[str]] = None,
        led_stability: float = AULLM_LED_STABILITY,
        se_bias: bool = False,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown au_llm variant {variant!r} (known: {', '.join(VARIANTS)})")
        self.variant = variant
        self.aus = list(aus) if aus is not None else [f"AU{k}" for k in range(num_aus)]
        hidden = int(reasoner.hidden_size)

        self.backbone = AUBackbone(
            frames=frames,
            size=size,
            input_kind=input_kind,
            dropout=dropout,
            led_stability=led_stability,
            se_bias=se_bias,
        )
        mid, high = self.backbone.mid_dim, self.backbone.high_dim
        self.projector: Optional[nn.Module] = None
        self.prompt_vectors: Optional[nn.Parameter] = None
        self.fusion: Optional[nn.Sequential] = None
        if variant == "all":
            self.projector = EnhancedFusionProjector(mid + high, hidden, dropout)
        elif variant == "f_high":
            self.projector = EnhancedFusionProjector(high, hidden, dropout)
        elif variant == "f_mid":
            self.projector = EnhancedFusionProjector(mid, hidden, dropout)
            # F_high is not used by this variant: keep its layer out of the optimiser and the trainable count.
            self.backbone.fc_high.requires_grad_(False)
        elif variant == "efp_linear":
            self.projector = LinearProjector(mid + high, hidden)
        else:  # prompt_learning
            self.prompt_vectors = nn.Parameter(torch.zeros(prompt_vectors, hidden))
            self.fusion = nn.Sequential(nn.Linear(hidden + high, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.reasoner: Reasoner = reasoner  # an nn.Module too: registered as a child
        self.head = nn.Linear(hidden, num_aus)
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """Re-initialise every trainable part from `seed`: afterwards the trainable state equals a fresh build's."""
        generator = seeded_generator(seed)
        init_module_(self.backbone, generator)
        if self.projector is not None:
            init_module_(self.projector, generator)
        if self.prompt_vectors is not None:
            fill_normal_(self.prompt_vectors, PROMPT_VECTOR_STD, generator)
        if self.fusion is not None:
            init_module_(self.fusion, generator)
        init_module_(self.head, generator)
        self.reasoner.reset(seed)
        self.backbone.clear_captures()

    def visual_token(self, x: Tensor) -> Tensor:
        """The projector's token [B, d] for a batch of clips (not defined for `prompt_learning`)."""
        if self.projector is None:
            raise RuntimeError("the prompt_learning variant has no visual token")
        feats = self.backbone(x)
        if self.variant == "f_high":
            features = feats.f_high
        elif self.variant == "f_mid":
            features = feats.f_mid  # (the backbone still computes F_high; it is small and unused here)
        else:
            features = torch.cat([feats.f_mid, feats.f_high], dim=1)
        return self.projector(features)

    def forward(self, x: Tensor) -> ModelOutput:
        if self.prompt_vectors is not None:
            feats = self.backbone(x)
            # The soft prompt does not depend on the sample: run the LLM once and share its output.
            context = self.reasoner(self.prompt_vectors.unsqueeze(0)).float()
            context = context.expand(feats.f_high.shape[0], -1)
            assert self.fusion is not None  # built together with the prompt vectors
            hidden = self.fusion(torch.cat([context, feats.f_high], dim=1))
        else:
            token = self.visual_token(x)
            hidden = self.reasoner(token.unsqueeze(1)).float()
        return ModelOutput(logits=self.head(hidden))

    def parameter_parts(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """backbone (with LED) · projector or prompt vectors + late fusion · LLM base · LoRA · head."""
        parts: dict[str, list[tuple[str, nn.Parameter]]] = {
            "backbone": [],
            "projector": [],
            "prompt": [],
            "llm base": [],
            "lora": [],
            "head": [],
        }
        for name, param in self.named_parameters():
            top = name.split(".", 1)[0]
            if top == "reasoner":
                parts["lora" if "lora_" in name else "llm base"].append((name, param))
            elif top in ("prompt_vectors", "fusion"):
                parts["prompt"].append((name, param))
            else:
                parts[top].append((name, param))
        return {k: v for k, v in parts.items() if v}


def build_au_llm(cfg: Config, aus: list[str], llm: Optional[LoadedLLM], seed: int) -> AULLM:
    """AU-LLM on the loaded LLM, with LoRA and prompt placement from the config; with `model.reasoner: none`, the
    same backbone, EFP and head with the visual token fed straight to the head (sized like llm.name's LLM)."""
    from aullm.models.llm.loading import llm_hidden_size
    from aullm.models.llm.reasoner import LLMReasoner, PassThroughReasoner

    options = cfg.model
    if not isinstance(options, AULLMConfig):
        raise TypeError(f"build_au_llm needs AU-LLM options, got {type(options).__name__}")
    reasoner: Reasoner
    if not options.needs_llm:
        reasoner = PassThroughReasoner(llm_hidden_size(cfg.llm))
    elif llm is None:
        raise ValueError("au_llm needs a loaded LLM")
    else:
        reasoner = LLMReasoner(
            llm,
            cfg.llm.lora,
            options.prompt,
            options.token_position,
            cfg.llm.prefix_cache,
            seed=seed,
            compile=cfg.llm.compile,
            prepack=cfg.llm.prepack,
        )
    return AULLM(
        reasoner,
        len(aus),
        frames=cfg.data.frames,
        size=cfg.data.size,
        input_kind=cfg.data.input,
        variant=options.variant,
        dropout=options.dropout,
        prompt_vectors=options.prompt_vectors,
        seed=seed,
        aus=aus,
        led_stability=options.led_stability,
        se_bias=options.se_bias,
    )
