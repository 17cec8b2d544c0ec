"""Options of our AULLM++ reconstruction (`model.name: aullmpp`), beside its modelling file `aullmpp.py`.

Every component has a switch, for ablations: `mge_efp` (evidence construction), `r_augnn` (AU relation graph,
with its `graph` prior), `ccr` (counterfactual consistency regularisation, training only). The designs the figure
leaves open are options too (docs/aullmpp.md): `token_order`, `ct_tokens`, `it_tokens`, and CCR's weight and form.

The defaults are the design issue #31's study chose by its rule fixed in advance (docs/aullmpp.md, Choosing the
default): `[prompt][IT][CT]`, MGE-EFP read by the backbone's own extraction with zero-initialised branches and
separable meso convs, CCR on a quarter of each batch. The first reconstruction (the figure's order, MGE-EFP's own
extraction, CCR on the whole batch) is `configs/synme_demo_aullmpp_figure.yaml`, or these keys set by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aullm.core.options import DropoutOptions, LEDOptions, SEOptions, check
from aullm.models.au_llm.configuration_au_llm import DEFAULT_PROMPT

TokenOrder = Literal["figure", "prompt_ct_it", "prompt_it_ct"]
#: Where each order puts the structured tokens: `figure` is the framework figure's [CT][IT][task prompt] (the
#: classifier reads the last prompt token, which must gather the evidence through attention; no prompt cache);
#: the other two put the prompt first (cached exactly as AU-LLM's `append`) and the tokens where the classifier reads.
TOKEN_ORDERS: tuple[str, ...] = ("figure", "prompt_ct_it", "prompt_it_ct")
Readout = Literal["last", "structured"]
#: What the classifier reads: `last`, the sequence's last position (the CT in `prompt_it_ct`); `structured`, the
#: final hidden states of every structured token (IT and CT) side by side, so the IT's content reaches the head
#: through the LLM without depending on the CT's attention to it (docs/aullmpp.md, Round 4).
READOUTS: tuple[str, ...] = ("last", "structured")


@dataclass
class GraphConfig:
    """R-AUGNN: which AU-relation prior masks the graph, and how deep it is."""

    prior: Literal["facs", "cooccurrence", "both", "none"] = "both"
    layers: int = 2
    cooccurrence_threshold: float = 0.2
    # The weight of the node states' own loss (the main loss on the per-AU state logits against the clip's AU
    # labels): 0 leaves the states latent (learned only through the LLM's prediction), > 0 makes node k's state
    # "AU k is active", which gives the graph and CCR's AU flip their meaning (docs/aullmpp.md).
    supervision: float = 0.0

    def __post_init__(self) -> None:
        check(1 <= self.layers <= 3, "model.graph.layers", self.layers, "must be 1, 2 or 3")
        check(self.supervision >= 0.0, "model.graph.supervision", self.supervision, "must be >= 0")


@dataclass
class MGEConfig:
    """MGE-EFP's open designs: whose mid/high-level extraction reads x_fused (`own`: MGE-EFP's conv + BN + pool
    and its own fc; `backbone`: the backbone's pool and fc_high, as AU-LLM's F_mid and F_high are made), and
    whether the harmonised branches start at exactly zero (x_fused = x_att at the start)."""

    extraction: Literal["own", "backbone"] = "backbone"
    zero_init: bool = True
    # The two meso-scale convs: `full` k×k convs, or `separable` (depthwise k×k + pointwise 1×1), far cheaper.
    conv: Literal["full", "separable"] = "separable"


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
    # What the AU-flip counterfactual perturbs: the AU node states, the relation edges, or both (the default, as
    # before this option existed).
    perturb: Literal["both", "states", "edges"] = "both"
    # The share of each batch that gets a counterfactual (the first ⌈fraction·B⌉ of a shuffled batch): the
    # counterfactual pass costs LLM tokens, and a quarter of the batch still gives the regulariser a signal.
    fraction: float = 0.25
    # How an AU flip changes a node state: `soft`, s → 1 − s (as before this option existed); `hard`, s → 1 if
    # s < 0.5 else 0, the opposite premise stated outright. Latent states stay within ~0.07 of 0.5 in trained
    # models, where a soft flip changes almost nothing (docs/aullmpp.md, Round 3).
    flip: Literal["soft", "hard"] = "soft"

    def __post_init__(self) -> None:
        check(0.0 <= self.flip_prob <= 1.0, "model.ccr.flip_prob", self.flip_prob, "must be in [0, 1]")
        check(self.lambda_ >= 0.0, "model.ccr.lambda", self.lambda_, "must be >= 0")
        check(0.0 < self.fraction <= 1.0, "model.ccr.fraction", self.fraction, "must be in (0, 1]")


@dataclass
class AULLMPPConfig(SEOptions, LEDOptions, DropoutOptions):
    """AULLM++ (reconstruction). `token_order` places the Content and Instruction tokens around the task prompt
    (`figure` = [CT][IT][prompt]); `ct_tokens` / `it_tokens` make each one token or several."""

    name: str = "aullmpp"
    prompt: str = DEFAULT_PROMPT
    mge_efp: bool = True
    r_augnn: bool = True
    graph: GraphConfig = field(default_factory=GraphConfig)
    ccr: CCRConfig = field(default_factory=CCRConfig)
    mge: MGEConfig = field(default_factory=MGEConfig)
    token_order: TokenOrder = "prompt_it_ct"
    readout: Readout = "last"
    # Several content tokens: the projector's output is split into `ct_tokens` LLM tokens. Several instruction
    # tokens: `it_tokens` structural-attention pooling queries, each giving one token.
    ct_tokens: int = 1
    it_tokens: int = 1

    def __post_init__(self) -> None:
        check(1 <= self.ct_tokens <= 8, "model.ct_tokens", self.ct_tokens, "must be 1 to 8")
        check(1 <= self.it_tokens <= 8, "model.it_tokens", self.it_tokens, "must be 1 to 8")
        super().__post_init__()

    @property
    def needs_llm(self) -> bool:
        return True
