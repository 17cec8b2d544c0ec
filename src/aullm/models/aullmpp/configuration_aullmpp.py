"""Options of our AULLM++ reconstruction (`model.name: aullmpp`), beside its modelling file `aullmpp.py`.

Every component has a switch, for ablations: `mge_efp` (evidence construction), `r_augnn` (AU relation graph,
with its `graph` prior), `ccr` (counterfactual consistency regularisation, training only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aullm.core.options import DropoutOptions, LEDOptions, SEOptions, check
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
class AULLMPPConfig(SEOptions, LEDOptions, DropoutOptions):
    """AULLM++ (reconstruction). The LLM always reads [CT][IT][task prompt]: the token order is the figure's."""

    name: str = "aullmpp"
    prompt: str = DEFAULT_PROMPT
    mge_efp: bool = True
    r_augnn: bool = True
    graph: GraphConfig = field(default_factory=GraphConfig)
    ccr: CCRConfig = field(default_factory=CCRConfig)

    @property
    def needs_llm(self) -> bool:
        return True
