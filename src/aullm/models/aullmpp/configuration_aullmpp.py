"""Options of our AULLM++ reconstruction (`model.name: aullmpp`), beside its modelling file `aullmpp.py`.

Every component has a switch, for ablations: `mge_efp` (evidence construction), `r_augnn` (AU relation graph,
with its `graph` prior), `ccr` (counterfactual consistency regularisation, training only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aullm.core.options import ModelConfig, check, check_led_stability
from aullm.models.au_llm.configuration_au_llm import DEFAULT_PROMPT


@dataclass
class GraphConfig:
    """R-AUGNN: which AU-relation prior masks the graph, and how deep it is."""

    prior: Literal["facs", "cooccurrence", "both", "none"] = "both"
    layers: int = 2
    cooccurrence_threshold: float = 0.2

    def __post_init__(self) -> None:
        check(1 <= self.layers <= 3, "model.graph.layers", self.layers, "must be 1, 2 or 3")


@dataclass
class CCRConfig:
    """Counterfactual consistency regularisation (training only)."""

    enabled: bool = True
    loss: Literal["kl", "mse"] = "kl"
    lambda_: float = 0.1
    flip_prob: float = 0.2
    # Which AUs the consistency loss covers: `unflipped` leaves out the AUs whose node state was flipped (their
    # prediction may legitimately change); `all` asks every prediction to ignore the counterfactual.
    scope: Literal["unflipped", "all"] = "unflipped"

    def __post_init__(self) -> None:
        check(0.0 <= self.flip_prob <= 1.0, "model.ccr.flip_prob", self.flip_prob, "must be in [0, 1]")
        check(self.lambda_ >= 0.0, "model.ccr.lambda", self.lambda_, "must be >= 0")


@dataclass
class AULLMPPConfig(ModelConfig):
    """AULLM++ (reconstruction). The LLM always reads [CT][IT][task prompt]: the token order is the figure's."""

    name: str = "aullmpp"
    dropout: float = 0.3
    prompt: str = DEFAULT_PROMPT
    mge_efp: bool = True
    r_augnn: bool = True
    graph: GraphConfig = field(default_factory=GraphConfig)
    ccr: CCRConfig = field(default_factory=CCRConfig)
    # The constant added to the LED normaliser, in 0–255 pixel units as the reference codes state it (aullm feeds
    # [0, 1] pixels and divides it by 255): the AU-LLM authors' script adds 1e-8; 255 reproduces aullm's earlier
    # filter (1.0 on its [0, 1] pixels).
    led_stability: float = 1.0e-8
    # Biases in the SE layer's two linear maps: the reference's SE has none; true reproduces aullm's earlier layer.
    se_bias: bool = False

    def __post_init__(self) -> None:
        check(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "must be in [0, 1)")
        check_led_stability(self.led_stability)

    @property
    def needs_llm(self) -> bool:
        return True
