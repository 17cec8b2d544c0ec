"""AULLM++ — OUR RECONSTRUCTION from the paper's abstract and framework figure (arXiv 2603.08387; docs/design.md,
AULLM++).

The AULLM++ paper's method section and code are not public. What is rebuilt here follows the figure's wiring;
every layer size, loss detail and the counterfactual's exact form are our choices, documented where they are made
(`mge_efp.py`, `graph.py`, and below). Results from this model are results of the reconstruction, not of AULLM++.

    clip → LED + 3D-CNN + SE (AU-LLM's backbone) → x_att
      ├─ MGE-EFP (evidence construction)  → Content Token CT           (switch: model.mge_efp; off = AU-LLM's EFP)
      └─ R-AUGNN (structure modelling)    → Instruction Token IT       (switch: model.r_augnn; off = no IT)
    [task prompt][IT][CT] (default; the figure: [CT][IT][task prompt]) → the LoRA LLM (shared) → last token
        → Linear → K logits Z;  L_main = ASL (trainer)
    CCR (training only; switch: model.ccr.enabled): AU-flip counterfactual → IT_cf → same LLM, same CT → Z_cf;
        aux_loss = λ · L_cf(Z, Z_cf), which the trainer adds: L_total = L_main + λ L_cf.

Token order (`model.token_order`, docs/aullmpp.md): the figure draws [CT][IT][task prompt] (`figure`: the
reasoner's `prepend` placement, full sequence per sample, no prompt cache; the classifier reads the last prompt
token). `prompt_ct_it` and `prompt_it_ct` put the constant prompt first, so it is computed once per step exactly as
AU-LLM's `append` does, and the classifier reads the last structured token (`prompt_it_ct`, the default chosen by
issue #31's study: the CT itself). `ct_tokens` / `it_tokens` make CT and IT one token or several. With
`model.readout: structured` (prompt-first orders) the classifier reads the final hidden states of every structured
token side by side instead of the last one alone, so the IT reaches it without the CT's attention (docs/aullmpp.md,
Round 4).

CCR batching: the original and counterfactual share the CT and the AU node features, so they go through R-AUGNN's
message passing as one batch of 2B, and through the LLM in one call (`LLMReasoner.forward_branches`): with
`prompt_ct_it` on the fast path the prompt runs once and each sample's CT once, and only the instruction tokens run
twice; with `prompt_it_ct` the prompt runs once; with `figure` the LLM batch is 2B full sequences.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aullm.core.console import logger
from aullm.core.provenance import AULLMPP_NOTE
from aullm.models.aullmpp.configuration_aullmpp import (
    READOUTS,
    TOKEN_ORDERS,
    AULLMPPConfig,
    CCRConfig,
    GraphConfig,
    MGEConfig,
    Readout,
    TokenOrder,
)
from aullm.models.aullmpp.graph import RAUGNN, Prior, consistency_loss
from aullm.models.aullmpp.mge_efp import MGEEFP
from aullm.models.base import AUModel, ModelOutput, Reasoner, init_module_, seeded_generator
from aullm.models.blocks.backbone import AUBackbone
from aullm.models.blocks.led import AULLM_LED_STABILITY
from aullm.models.blocks.projectors import EnhancedFusionProjector

if TYPE_CHECKING:
    from aullm.config import Config
    from aullm.models.llm.loading import LoadedLLM


def _check_readout(readout: str, token_order: str) -> None:
    """`structured` reads the final hidden states of the structured tokens, which must then end the sequence."""
    if readout not in READOUTS:
        raise ValueError(f"unknown AULLM++ readout {readout!r} (known: {', '.join(READOUTS)})")
    if readout == "structured" and token_order == "figure":
        raise ValueError(
            "AULLM++ readout 'structured' needs a prompt-first token_order (prompt_it_ct or prompt_ct_it): in the "
            "figure's order the structured tokens do not end the sequence"
        )


def _check_token_order(reasoner: Reasoner, token_order: str) -> None:
    """The figure's order puts the structured tokens before the prompt; the others after it."""
    if token_order not in TOKEN_ORDERS:
        raise ValueError(f"unknown AULLM++ token_order {token_order!r} (known: {', '.join(TOKEN_ORDERS)})")
    placement = "prepend" if token_order == "figure" else "append"
    if getattr(reasoner, "token_position", placement) != placement:
        raise ValueError(f"AULLM++ token_order {token_order!r} needs a reasoner with token_position={placement!r}")


class AULLMPP(AUModel):
    """AULLM++ (reconstruction) around an LLM reasoner whose placement matches `token_order` (`prepend` for
    `figure`, `append` for the prompt-first orders).

    Switches: `mge_efp` (MGE-EFP Content Token; off → AU-LLM's EFP on concat(F_mid, F_high)), `r_augnn`
    (Instruction Token; off → the LLM sees [CT][prompt]), `ccr` (counterfactual consistency during training;
    needs R-AUGNN, since the counterfactual flips the graph's AU nodes and relations).
    """

    def __init__(
        self,
        reasoner: Reasoner,
        aus: list[str],
        *,
        frames: int = 6,
        size: int = 64,
        input_kind: Literal["clip", "flow"] = "clip",
        dropout: float = 0.3,
        mge_efp: bool = True,
        r_augnn: bool = True,
        prior: Prior = "both",
        graph_layers: int = 2,
        cooccurrence_threshold: float = 0.2,
        graph_supervision: float = GraphConfig.supervision,
        ccr: bool = True,
        # The open designs default to the config's defaults (one source: configuration_aullmpp.py).
        ccr_loss: Literal["kl", "mse"] = CCRConfig.loss,
        ccr_lambda: float = CCRConfig.lambda_,
        ccr_flip_prob: float = CCRConfig.flip_prob,
        ccr_scope: Literal["unflipped", "all"] = CCRConfig.scope,
        ccr_perturb: Literal["both", "states", "edges"] = CCRConfig.perturb,
        ccr_fraction: float = CCRConfig.fraction,
        ccr_flip: Literal["soft", "hard"] = CCRConfig.flip,
        mge_extraction: Literal["own", "backbone"] = MGEConfig.extraction,
        mge_zero_init: bool = MGEConfig.zero_init,
        mge_conv: Literal["full", "separable"] = MGEConfig.conv,
        token_order: TokenOrder = AULLMPPConfig.token_order,
        readout: Readout = AULLMPPConfig.readout,
        ct_tokens: int = 1,
        it_tokens: int = 1,
        seed: int = 0,
        led_stability: float = AULLM_LED_STABILITY,
        se_bias: bool = False,
    ) -> None:
        super().__init__()
        _check_token_order(reasoner, token_order)
        _check_readout(readout, token_order)
        self.token_order: TokenOrder = token_order
        self.readout: Readout = readout
        self.ct_tokens, self.it_tokens = int(ct_tokens), int(it_tokens)
        self.aus = list(aus)
        hidden = int(reasoner.hidden_size)
        self.use_mge_efp = bool(mge_efp)
        self.use_r_augnn = bool(r_augnn)
        if ccr and not r_augnn:
            logger.warning(
                "AULLM++: model.ccr.enabled has no effect without model.r_augnn (the counterfactual "
                "flips the AU graph); CCR is off"
            )
        self.use_ccr = bool(ccr and r_augnn)
        self.graph_supervision = float(graph_supervision)
        self.ccr_loss: Literal["kl", "mse"] = ccr_loss
        self.ccr_lambda = float(ccr_lambda)
        self.ccr_flip_prob = float(ccr_flip_prob)
        self.ccr_scope: Literal["unflipped", "all"] = ccr_scope
        self.ccr_perturb: Literal["both", "states", "edges"] = ccr_perturb
        self.ccr_fraction = float(ccr_fraction)
        self.ccr_flip: Literal["soft", "hard"] = ccr_flip

        self.backbone = AUBackbone(
            frames=frames,
            size=size,
            input_kind=input_kind,
            dropout=dropout,
            led_stability=led_stability,
            se_bias=se_bias,
        )
        channels = self.backbone.att_shape[0]
        self.evidence = self._evidence(hidden * self.ct_tokens, dropout, mge_extraction, mge_zero_init, mge_conv)
        self.graph: Optional[RAUGNN] = None
        if self.use_r_augnn:
            self.graph = RAUGNN(
                channels,
                self.aus,
                hidden,
                prior=prior,
                layers=graph_layers,
                cooccurrence_threshold=cooccurrence_threshold,
                tokens=self.it_tokens,
            )
        self.reasoner: Reasoner = reasoner  # an nn.Module too: registered as a child
        # The reasoner's `last` for the head: None reads the last position; `structured` reads every structured
        # token (IT and CT), their states side by side.
        self.read_last: Optional[int] = None
        if readout == "structured":
            self.read_last = self.ct_tokens + (self.it_tokens if self.use_r_augnn else 0)
        self.head = nn.Linear(hidden * (self.read_last or 1), len(self.aus))
        self.reset(seed)

    def _evidence(
        self,
        width: int,
        dropout: float,
        extraction: Literal["own", "backbone"],
        zero_init: bool,
        conv: Literal["full", "separable"],
    ) -> nn.Module:
        """The content tokens' source: MGE-EFP, or AU-LLM's projector when `mge_efp` is switched off."""
        if not self.use_mge_efp:
            return EnhancedFusionProjector(self.backbone.mid_dim + self.backbone.high_dim, width, dropout)
        if extraction == "own":
            # MGE-EFP builds its own F_mid/F_high from x_fused; the backbone's fc_high is then unused, so it
            # is frozen (no optimiser state, not counted as trainable) rather than trained on no signal.
            self.backbone.fc_high.requires_grad_(False)
        return MGEEFP(
            self.backbone.att_shape,
            width,
            dropout=dropout,
            extraction=extraction,
            mid_dim=self.backbone.mid_dim,
            zero_init=zero_init,
            conv=conv,
        )

    # ------------------------------------------------------------------------------------------ state

    def reset(self, seed: int) -> None:
        """Every trainable part from `seed`, and the graph prior back to its data-free part: equal to a fresh
        build with that seed. The fold's co-occurrence prior is set afterwards by `on_fold_start`."""
        generator = seeded_generator(seed)
        init_module_(self.backbone, generator)
        init_module_(self.evidence, generator)
        if isinstance(self.evidence, MGEEFP) and self.evidence.zero_init:
            self.evidence.zero_branches_()
        if self.graph is not None:
            init_module_(self.graph, generator)
            self.graph.reset_prior()
        init_module_(self.head, generator)
        self.reasoner.reset(seed)
        self.backbone.clear_captures()

    def on_fold_start(self, train_labels: np.ndarray) -> None:
        """Called by the protocol with the fold's TRAINING labels only: the co-occurrence prior is counted here,
        so held-out labels can never shape the graph."""
        if self.graph is None:
            return
        self.graph.set_prior(train_labels)
        mask = self.graph.prior_mask.cpu().numpy()
        edges = [
            f"{self.aus[i]}-{self.aus[j]}"
            for i in range(len(self.aus))
            for j in range(i + 1, len(self.aus))
            if mask[i, j]
        ]
        logger.info(
            "AULLM++ R-AUGNN prior (%s): %d edge(s): %s", self.graph.prior_kind, len(edges), ", ".join(edges) or "none"
        )

    # ------------------------------------------------------------------------------------------ forward

    def content_token(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(CT [B, ct_tokens, d], x_att) for a batch of clips."""
        feats = self.backbone(x)
        if self.use_mge_efp:
            ct = self.evidence(feats.x_att, self._backbone_extract)
        else:
            ct = self.evidence(torch.cat([feats.f_mid, feats.f_high], dim=1))
        return ct.view(ct.shape[0], self.ct_tokens, -1), feats.x_att

    def _backbone_extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The backbone's own mid/high-level extraction (pool + dropout → F_mid, fc_high → F_high) on any map of
        x_att's shape: MGE-EFP's `extraction: backbone` applies it to x_fused."""
        b = self.backbone
        f_mid = b.drop2(b.pool2(x)).flatten(1)
        return f_mid, b.drop_high(F.relu(b.fc_high(f_mid)))

    def sequence(self, ct: Tensor, it: Optional[Tensor]) -> Tensor:
        """The structured tokens in `token_order` ([B, n, d]); the reasoner puts the prompt before or after."""
        if it is None:
            return ct
        it = it.to(ct.dtype)
        return torch.cat([it, ct], dim=1) if self.token_order == "prompt_it_ct" else torch.cat([ct, it], dim=1)

    def _read(self, hidden: Tensor) -> Tensor:
        """The reasoner's output as the head reads it: [B, d], or the structured tokens' states side by side."""
        return hidden.float().flatten(1)

    def _logits(self, tokens: Tensor) -> Tensor:
        return self.head(self._read(self.reasoner(tokens, last=self.read_last)))

    def _pair_hidden(self, ct: Tensor, it: Tensor, it_cf: Tensor) -> tuple[Tensor, Tensor]:
        """The reasoner's output for the original sequences [B, d] and the counterfactual ones [B_cf, d] (the first
        B_cf samples), in one call that shares what they have in common (the prompt; with `prompt_ct_it`, each
        sample's CT too)."""
        n_cf = it_cf.shape[0]
        branches = getattr(self.reasoner, "forward_branches", None)
        if branches is not None and self.token_order == "prompt_ct_it" and self.read_last is None:
            z, z_cf = branches(ct, [it.to(ct.dtype), it_cf.to(ct.dtype)])
            return z, z_cf
        pair = [self.sequence(ct, it), self.sequence(ct[:n_cf], it_cf)]
        if branches is not None:
            z, z_cf = branches(None, pair, last=self.read_last)
            return self._read(z), self._read(z_cf)
        hidden = self._read(self.reasoner(torch.cat(pair), last=self.read_last))
        return hidden[: ct.shape[0]], hidden[ct.shape[0] :]

    def forward(self, x: Tensor) -> ModelOutput:
        ct, x_att = self.content_token(x)
        if self.graph is None:
            return ModelOutput(logits=self._logits(ct))
        nodes, state_logits = self.graph.encode_nodes(x_att)
        states = torch.sigmoid(state_logits)
        # The node states' own loss (model.graph.supervision), scored by the trainer against the clip's labels.
        node_logits = state_logits if self.graph_supervision > 0 else None
        node_weight = self.graph_supervision
        if not (self.training and self.use_ccr):
            z = self._logits(self.sequence(ct, self.graph.propagate(nodes, states).tokens))
            return ModelOutput(logits=z, aux_logits=node_logits, aux_logits_weight=node_weight)

        batch = ct.shape[0]
        n_cf = max(1, math.ceil(self.ccr_fraction * batch))  # the batch is shuffled: the first n_cf are a sample
        cf = self.graph.sample_counterfactual(n_cf, self.ccr_flip_prob, ct.device, perturb=self.ccr_perturb)
        mask = torch.cat([self.graph.prior_mask.expand(batch, -1, -1), cf.mask])
        states_cf = RAUGNN.apply_flip(states[:n_cf], cf.flip, self.ccr_flip)
        both = self.graph.propagate(torch.cat([nodes, nodes[:n_cf]]), torch.cat([states, states_cf]), mask)
        it, it_cf = both.tokens.split([batch, n_cf])
        hidden, hidden_cf = self._pair_hidden(ct, it, it_cf)
        z, z_cf = self.head(hidden.float()), self.head(hidden_cf.float())
        weight = (~cf.flip).float() if self.ccr_scope == "unflipped" else None
        l_cf = consistency_loss(z[:n_cf], z_cf, self.ccr_loss, weight)
        return ModelOutput(
            logits=z, aux_loss=self.ccr_lambda * l_cf, aux_logits=node_logits, aux_logits_weight=node_weight
        )

    def parameter_parts(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """backbone · MGE-EFP (or EFP) · R-AUGNN · LLM base · LoRA · head."""
        parts: dict[str, list[tuple[str, nn.Parameter]]] = {
            "backbone": [],
            "mge_efp" if self.use_mge_efp else "efp": [],
            "r_augnn": [],
            "llm base": [],
            "lora": [],
            "head": [],
        }
        for name, param in self.named_parameters():
            top = name.split(".", 1)[0]
            if top == "reasoner":
                parts["lora" if "lora_" in name else "llm base"].append((name, param))
            elif top == "evidence":
                parts["mge_efp" if self.use_mge_efp else "efp"].append((name, param))
            elif top == "graph":
                parts["r_augnn"].append((name, param))
            else:
                parts[top].append((name, param))
        return {k: v for k, v in parts.items() if v}


def build_aullmpp(cfg: Config, aus: list[str], llm: Optional[LoadedLLM], seed: int) -> AULLMPP:
    """AULLM++ (reconstruction) on the loaded LLM; LoRA from `llm.lora`, switches and designs from `model`. The
    reasoner places the structured tokens before the prompt for `token_order: figure` ([CT][IT][task prompt]) and
    after it otherwise (the prompt is then cached as AU-LLM's `append`)."""
    from aullm.models.llm.reasoner import LLMReasoner

    m = cfg.model
    if not isinstance(m, AULLMPPConfig):
        raise TypeError(f"build_aullmpp needs AULLM++ options, got {type(m).__name__}")
    if llm is None:
        raise ValueError("aullmpp needs a loaded LLM")
    reasoner = LLMReasoner(
        llm,
        cfg.llm.lora,
        m.prompt,
        "prepend" if m.token_order == "figure" else "append",
        cfg.llm.prefix_cache,
        seed=seed,
        compile=cfg.llm.compile,
        prepack=cfg.llm.prepack,
    )
    logger.info(AULLMPP_NOTE)
    return AULLMPP(
        reasoner,
        aus,
        frames=cfg.data.frames,
        size=cfg.data.size,
        input_kind=cfg.data.input,
        dropout=m.dropout,
        mge_efp=m.mge_efp,
        r_augnn=m.r_augnn,
        prior=m.graph.prior,
        graph_layers=m.graph.layers,
        cooccurrence_threshold=m.graph.cooccurrence_threshold,
        graph_supervision=m.graph.supervision,
        ccr=m.ccr.enabled,
        ccr_loss=m.ccr.loss,
        ccr_lambda=m.ccr.lambda_,
        ccr_flip_prob=m.ccr.flip_prob,
        ccr_scope=m.ccr.scope,
        ccr_perturb=m.ccr.perturb,
        ccr_fraction=m.ccr.fraction,
        ccr_flip=m.ccr.flip,
        mge_extraction=m.mge.extraction,
        mge_zero_init=m.mge.zero_init,
        mge_conv=m.mge.conv,
        token_order=m.token_order,
        readout=m.readout,
        ct_tokens=m.ct_tokens,
        it_tokens=m.it_tokens,
        seed=seed,
        led_stability=m.led_stability,
        se_bias=m.se_bias,
    )
