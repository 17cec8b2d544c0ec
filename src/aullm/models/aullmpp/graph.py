"""R-AUGNN: the Relation-Aware AU Graph Neural Network of AULLM++ and its AU-relation priors — OUR RECONSTRUCTION.

AULLM++ (arXiv 2603.08387) publishes only an abstract and a framework figure; this is rebuilt from them
(docs/design.md, AULLM++). The figure: x_att → "AU Node Chunking" → K AU nodes → "AUs Relation Graph" (solid and
dashed edges) with "Learned attention" / "Relational Reasoning" → "Structural Attention Pooling" → Instruction
Token. The abstract: "we encode AU relationships as a sparse structural prior and learn interaction strengths".

Our choices (each explained where it is made):
- Nodes: one learned spatial attention map per AU over x_att (not channel chunks), then a per-AU projection.
- Each node carries a soft binary *state* s_k ∈ (0, 1) ("is AU k active?"), embedded as s·e_on + (1−s)·e_off,
  so the CCR counterfactual can flip an AU (s_k → 1 − s_k), as the figure's "Counterfactual Generator (AU Flip)".
- Edges: a 0/1 prior mask (FACS pairs and/or training-fold co-occurrence, self-loops always on); attention
  logits = scaled dot product + a learned per-pair bias (the "interaction strength"); off-prior logits are −inf,
  so their attention is exactly zero.
- Pooling: attention over nodes whose score sees both the node's content and its structural centrality (how much
  attention the other nodes give it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aullm.models.base import fill_normal_

Prior = Literal["facs", "cooccurrence", "both", "none"]

# Anatomical / FACS relations between AUs (unordered pairs), with why each is an edge. Relations can be
# co-activation or antagonism: both are information one AU gives about another, and the learned attention and
# value maps decide the sign. Pairs follow the AU-relation knowledge used in AU-graph work (e.g. Zhang et al.,
# CVPR 2018; Li et al., SRERL, AAAI 2019) restricted to well-established FACS facts; only pairs whose two AUs are
# both in `data.aus` are used (CASME II's 8 AUs keep 1–2, 4–7, 12–14, 12–15, 12–17, 15–17; SAMM's 4 keep 4–7).
FACS_RELATIONS: tuple[tuple[int, int, str], ...] = (
    (1, 2, "frontalis pars medialis/lateralis: inner and outer brow raise co-occur (surprise, fear)"),
    (
        4,
        7,
        "corrugator + orbicularis oculi (palpebral): brow lowering with lid tightening (anger, disgust, "
        "concentration); the most frequent pair in CASME II",
    ),
    (6, 12, "orbicularis oculi (orbital) + zygomaticus major: the Duchenne smile"),
    (15, 17, "depressor anguli oris + mentalis: lip-corner depression with chin raise (sadness, suppression)"),
    (
        12,
        15,
        "antagonists on the lip corner (zygomaticus major pulls up, depressor anguli oris pulls down): "
        "rarely co-active",
    ),
    (12, 17, "antagonistic lower-face configuration (smile vs. chin raise), a negative relation in SRERL"),
    (
        12,
        14,
        "both move the lip corner (zygomaticus major vs. buccinator dimpler); annotators confuse them — "
        "SAMM's corrected samples 011_4_2 and 014_5_2 were 'L12 or L14' / 'R12 or R14'",
    ),
    (4, 9, "corrugator/procerus with levator labii alaeque nasi: brow lowering with nose wrinkle (disgust)"),
    (7, 9, "lid tightening with nose wrinkle (disgust)"),
    (17, 24, "mentalis with orbicularis oris: chin raise with lip press"),
)


def _au_numbers(aus: Sequence[str]) -> list[int]:
    return [int(str(au).upper().removeprefix("AU")) for au in aus]


def facs_prior(aus: Sequence[str]) -> np.ndarray:
    """Bool [K, K]: the FACS pairs among `aus`, symmetric, self-loops on."""
    numbers = _au_numbers(aus)
    index = {n: i for i, n in enumerate(numbers)}
    mask = np.eye(len(numbers), dtype=bool)
    for a, b, _ in FACS_RELATIONS:
        if a in index and b in index:
            mask[index[a], index[b]] = mask[index[b], index[a]] = True
    return mask


def cooccurrence_prior(labels: np.ndarray, threshold: float) -> np.ndarray:
    """Bool [K, K] from a training fold's labels [N, K]: an edge i–j when the two AUs co-occur at least once and
    max(P(j | i), P(i | j)) ≥ threshold. Conditional probabilities (not the joint) so a rare AU that almost always
    comes with a frequent one (AU2 with AU1) still gets its edge. Self-loops on.

    Only ever call this with TRAINING rows (the model's `on_fold_start` gets exactly those), so no test label leaks.
    """
    y = (np.nan_to_num(np.asarray(labels, dtype=np.float64)) > 0.5).astype(np.float64)
    if y.ndim != 2:
        raise ValueError(f"labels must be [N, K], got shape {y.shape}")
    co = y.T @ y  # co[i, j] = #samples with both i and j; co[i, i] = #samples with i
    count = np.diag(co).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(count[:, None] > 0, co / np.maximum(count[:, None], 1.0), 0.0)  # P(j | i)
    strength = np.maximum(cond, cond.T)
    mask = (co > 0) & (strength >= threshold)
    k = y.shape[1]
    mask[np.arange(k), np.arange(k)] = True
    return mask


def static_prior(kind: Prior, aus: Sequence[str]) -> np.ndarray:
    """The part of the prior known before any data: FACS pairs, self-loops only (co-occurrence, until a fold's
    labels arrive), or dense (`none` = no sparsity prior, every pair may interact)."""
    k = len(aus)
    if kind == "none":
        return np.ones((k, k), dtype=bool)
    if kind in ("facs", "both"):
        return facs_prior(aus)
    return np.eye(k, dtype=bool)


def build_prior(kind: Prior, aus: Sequence[str], train_labels: Optional[np.ndarray], threshold: float) -> np.ndarray:
    """The full prior mask for a fold: static part ∪ (co-occurrence from `train_labels` when the kind uses it)."""
    mask = static_prior(kind, aus)
    if kind in ("cooccurrence", "both") and train_labels is not None:
        if np.asarray(train_labels).shape[1] != len(aus):
            raise ValueError(f"train_labels have {np.asarray(train_labels).shape[1]} AUs, the graph has {len(aus)}")
        mask = mask | cooccurrence_prior(train_labels, threshold)
    return mask


# ---------------------------------------------------------------------------------------------- modules


class AUNodeAttention(nn.Module):
    """K AU nodes from x_att: a learned spatial attention map per AU pools the map into one vector per AU, then a
    per-AU linear projection gives the node feature.

    Why spatial attention and not channel chunks: AUs are defined by *where* the skin moves (brows, lids, lip
    corners, chin), while the backbone's channels carry no AU identity — splitting 64 channels into K chunks
    would also tie K to the channel count (8 for CASME II, 4 for SAMM). Per-AU attention maps are the standard
    AU-specific feature extractor (JAA-Net, ME-GraphAU's AFG) and stay interpretable (one heat map per AU).
    Pooling happens before the projection (both are linear), so memory is O(B·K·C), not O(B·K·d·THW).
    """

    def __init__(self, channels: int, num_aus: int, node_dim: int) -> None:
        super().__init__()
        self.num_aus, self.channels, self.node_dim = num_aus, channels, node_dim
        self.attend = nn.Conv3d(channels, num_aus, kernel_size=1)
        self.project = nn.Conv1d(num_aus * channels, num_aus * node_dim, kernel_size=1, groups=num_aus)

    def forward(self, x_att: Tensor) -> tuple[Tensor, Tensor]:
        """Nodes [B, K, d] and the attention maps [B, K, T·H·W] (each row sums to 1)."""
        b = x_att.shape[0]
        maps = torch.softmax(self.attend(x_att).flatten(2), dim=-1)  # [B, K, N]
        pooled = torch.einsum("bcn,bkn->bkc", x_att.flatten(2), maps)  # [B, K, C]
        nodes = self.project(pooled.reshape(b, self.num_aus * self.channels, 1))
        return nodes.view(b, self.num_aus, self.node_dim), maps


class AUStateEmbedding(nn.Module):
    """Node state s_k = σ(w_k·v_k + b_k) (a per-AU "active?" score) and h⁰_k = LN(v_k) + s_k e_on,k + (1−s_k) e_off,k.

    The state is the handle the CCR counterfactual flips. By default it is learned end to end only through the
    LLM's prediction, a soft latent switch; with `model.graph.supervision` > 0 its logit w_k·v_k + b_k is also
    trained against AU k's label (the trainer applies the main loss to it), so node k's state means "AU k is
    active" and an AU flip flips that meaning.
    """

    def __init__(self, num_aus: int, node_dim: int, embed_std: float = 0.5) -> None:
        super().__init__()
        self.num_aus, self.node_dim, self.embed_std = num_aus, node_dim, embed_std
        self.score = nn.Conv1d(num_aus * node_dim, num_aus, kernel_size=1, groups=num_aus)
        self.norm = nn.LayerNorm(node_dim)
        self.state_embed = nn.Parameter(torch.zeros(2, num_aus, node_dim))  # [off, on]

    def init_own_parameters(self, generator: torch.Generator) -> None:
        fill_normal_(self.state_embed, self.embed_std, generator)

    def logits(self, nodes: Tensor) -> Tensor:
        """The per-AU state logits [B, K]; the states are their sigmoid."""
        b = nodes.shape[0]
        return self.score(nodes.reshape(b, -1, 1)).view(b, self.num_aus)

    def embed(self, nodes: Tensor, states: Tensor) -> Tensor:
        s = states.unsqueeze(-1).to(nodes.dtype)
        return self.norm(nodes) + s * self.state_embed[1] + (1 - s) * self.state_embed[0]


class MaskedRelationLayer(nn.Module):
    """One message-passing layer over the AU graph: multi-head attention whose logits are the scaled dot
    product plus a learned per-pair bias (interaction strength), with −inf wherever the mask has no edge, so
    non-edges get exactly zero attention. Post-norm residual + feed-forward, as a transformer block restricted
    to the graph."""

    def __init__(self, num_aus: int, dim: int, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"node_dim {dim} must be divisible by heads {heads}")
        self.heads, self.dim = heads, dim
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.edge_bias = nn.Parameter(torch.zeros(num_aus, num_aus))
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def init_own_parameters(self, generator: torch.Generator) -> None:
        """Interaction strengths start neutral (0): the prior decides the edges, training their weights."""
        with torch.no_grad():
            self.edge_bias.zero_()

    def forward(self, h: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """h [B, K, d], mask bool [K, K] or [B, K, K] (row i = whom node i listens to) → (h', attention
        [B, heads, K, K])."""
        b, k, d = h.shape
        q, key, v = self.qkv(h).view(b, k, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        logits = q @ key.transpose(-1, -2) / math.sqrt(d // self.heads) + self.edge_bias
        edge = mask if mask.dim() == 3 else mask.unsqueeze(0)
        logits = logits.masked_fill(~edge.unsqueeze(1), float("-inf"))
        attn = torch.softmax(logits.float(), dim=-1).to(h.dtype)
        message = (self.dropout(attn) @ v).transpose(1, 2).reshape(b, k, d)
        h = self.norm1(h + self.dropout(self.out(message)))
        h = self.norm2(h + self.dropout(self.ffn(h)))
        return h, attn


class StructuralAttentionPooling(nn.Module):
    """Graph → `queries` vectors: for each query, softmax over nodes of a content score (w_q·tanh(W h_k)) plus a
    learned multiple of the node's structural centrality (mean attention it receives in the last layer).
    Centrality lets the pool favour AUs the graph found informative for the others, which plain mean pooling
    cannot. Several queries give several Instruction Tokens (`model.it_tokens`); with one, the parameters are
    exactly the single-query pool's (older checkpoints load)."""

    def __init__(self, dim: int, queries: int = 1) -> None:
        super().__init__()
        self.queries = int(queries)
        # No bias on the score: softmax over nodes ignores a constant, so a bias there gets exactly zero gradient.
        self.content = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, self.queries, bias=False))
        self.structure = nn.Linear(1, self.queries, bias=False)

    def forward(self, h: Tensor, attention: Tensor) -> tuple[Tensor, Tensor]:
        """h [B, K, d], attention [B, heads, K, K] → (pooled [B, queries, d], weights [B, queries, K])."""
        centrality = attention.mean(dim=1).mean(dim=1).unsqueeze(-1)  # [B, K, 1]: attention node j receives
        scores = self.content(h) + self.structure(centrality.to(h.dtype))  # [B, K, queries]
        weights = torch.softmax(scores.transpose(1, 2), dim=-1)  # [B, queries, K]
        return weights @ h, weights


@dataclass
class GraphOutput:
    """The Instruction Token(s) [B, n, out_dim] with the intermediates tests and CCR use."""

    tokens: Tensor
    nodes: Tensor  # [B, K, d] node features before the state embedding
    states: Tensor  # [B, K] node states used (flipped ones included)
    attention: list[Tensor]  # per layer [B, heads, K, K]
    pool_weights: Tensor  # [B, n, K]

    @property
    def token(self) -> Tensor:
        """The single Instruction Token [B, out_dim] (a graph built with one pooling query)."""
        if self.tokens.shape[1] != 1:
            raise ValueError(f"the graph gives {self.tokens.shape[1]} instruction tokens; use .tokens")
        return self.tokens[:, 0]


@dataclass
class Counterfactual:
    """An AU-flip counterfactual: which node states are flipped [B, K] and the relation mask to use [B, K, K]."""

    flip: Tensor
    mask: Tensor


class RAUGNN(nn.Module):
    """x_att [B, C, T, H, W] → Instruction Token [B, out_dim] (reconstruction; see the module docstring).

    The prior mask is a persistent bool buffer (saved with the fold's weights, so a checkpoint predicts with the
    graph it was trained on). `set_prior(train_labels)` recomputes it for a fold; `reset_prior()` restores the
    data-free part (what a fresh build has).
    """

    prior_mask: Tensor  # registered buffer [K, K] bool

    def __init__(
        self,
        channels: int,
        aus: Sequence[str],
        out_dim: int,
        *,
        prior: Prior = "both",
        layers: int = 2,
        cooccurrence_threshold: float = 0.2,
        node_dim: int = 128,
        heads: int = 4,
        dropout: float = 0.1,
        tokens: int = 1,
    ) -> None:
        super().__init__()
        if not 1 <= layers <= 3:
            raise ValueError(f"R-AUGNN layers must be 1, 2 or 3, got {layers}")
        self.aus = list(aus)
        self.prior_kind: Prior = prior
        self.threshold = float(cooccurrence_threshold)
        k = len(self.aus)
        self.nodes = AUNodeAttention(channels, k, node_dim)
        self.state = AUStateEmbedding(k, node_dim)
        self.layers = nn.ModuleList(MaskedRelationLayer(k, node_dim, heads, dropout) for _ in range(layers))
        self.pool = StructuralAttentionPooling(node_dim, tokens)
        self.to_token = nn.Sequential(
            nn.LayerNorm(node_dim), nn.Linear(node_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim)
        )
        self.register_buffer("prior_mask", torch.from_numpy(static_prior(prior, self.aus)))

    # ---- prior
    @torch.no_grad()
    def reset_prior(self) -> None:
        self.prior_mask.copy_(torch.from_numpy(static_prior(self.prior_kind, self.aus)))

    @torch.no_grad()
    def set_prior(self, train_labels: Optional[np.ndarray]) -> None:
        """The fold's prior: FACS and/or co-occurrence counted on `train_labels` (training rows only)."""
        mask = build_prior(self.prior_kind, self.aus, train_labels, self.threshold)
        self.prior_mask.copy_(torch.from_numpy(mask))

    # ---- forward pieces
    def encode_nodes(self, x_att: Tensor) -> tuple[Tensor, Tensor]:
        """Node features [B, K, d] and their state logits [B, K] (the states are their sigmoid)."""
        x = x_att.unsqueeze(2) if x_att.dim() == 4 else x_att
        nodes, _ = self.nodes(x)
        return nodes, self.state.logits(nodes)

    def propagate(self, nodes: Tensor, states: Tensor, mask: Optional[Tensor] = None) -> GraphOutput:
        """Message passing on the (prior or counterfactual) mask, then pooling → token."""
        mask = self.prior_mask if mask is None else mask
        h = self.state.embed(nodes, states)
        attention = []
        for layer in self.layers:
            h, attn = layer(h, mask)
            attention.append(attn)
        pooled, weights = self.pool(h, attention[-1])
        return GraphOutput(self.to_token(pooled), nodes, states, attention, weights)  # to_token acts per token

    def forward(self, x_att: Tensor) -> GraphOutput:
        nodes, state_logits = self.encode_nodes(x_att)
        return self.propagate(nodes, torch.sigmoid(state_logits))

    def sample_counterfactual(
        self,
        batch: int,
        flip_prob: float,
        device: torch.device,
        generator: Optional[torch.Generator] = None,
        perturb: Literal["both", "states", "edges"] = "both",
    ) -> Counterfactual:
        """AU flip: each AU's state flips with `flip_prob`; each off-diagonal relation (prior edge or not) is
        toggled with `flip_prob`, symmetrically — removing true relations and inventing false ones. Self-loops
        stay, so every node keeps its own evidence. `perturb` keeps only the state flips or only the edge toggles
        (the same random draws either way). Uses the global torch RNG unless a generator is given."""
        k = len(self.aus)
        flip = torch.rand(batch, k, device=device, generator=generator) < flip_prob
        toggle = torch.rand(batch, k, k, device=device, generator=generator) < flip_prob
        if perturb == "edges":
            flip = torch.zeros_like(flip)
        elif perturb == "states":
            toggle = torch.zeros_like(toggle)
        toggle = torch.triu(toggle, diagonal=1)
        toggle = toggle | toggle.transpose(1, 2)
        mask = self.prior_mask.unsqueeze(0) ^ toggle
        return Counterfactual(flip=flip, mask=mask)

    @staticmethod
    def apply_flip(states: Tensor, flip: Tensor, kind: Literal["soft", "hard"] = "soft") -> Tensor:
        """The states [B, K] with the `flip` [B, K] ones flipped: `soft` s → 1 − s; `hard` s → 1 if s < 0.5 else 0
        (the opposite premise outright, however undecided the state was; no gradient reaches a hard-flipped
        state)."""
        if kind == "soft":
            return torch.where(flip, 1.0 - states, states)
        if kind == "hard":
            return torch.where(flip, (states < 0.5).to(states.dtype), states)
        raise ValueError(f"unknown AU flip {kind!r} (soft or hard)")


def consistency_loss(
    z: Tensor, z_cf: Tensor, kind: Literal["kl", "mse"] = "kl", weight: Optional[Tensor] = None
) -> Tensor:
    """CCR consistency between original logits z and counterfactual logits z_cf, both [B, K].

    The original is the (stop-gradient) target: the counterfactual branch is pulled towards it, not both towards
    each other (which would let the model satisfy the loss by making predictions uninformative). `kl`: Bernoulli
    KL(p ‖ p_cf) per AU; `mse`: squared difference of probabilities. `weight` [B, K] (e.g. 0 for flipped AUs,
    whose prediction may legitimately change) masks terms. Sum over AUs, mean over the batch (as the main loss),
    so it is exactly 0 when z_cf equals z.
    """
    target = z.detach().float()
    z_cf = z_cf.float()
    if kind == "kl":
        p = torch.sigmoid(target)
        terms = p * (F.logsigmoid(target) - F.logsigmoid(z_cf)) + (1 - p) * (
            F.logsigmoid(-target) - F.logsigmoid(-z_cf)
        )
    elif kind == "mse":
        terms = (torch.sigmoid(target) - torch.sigmoid(z_cf)) ** 2
    else:
        raise ValueError(f"unknown CCR loss {kind!r} (kl or mse)")
    if weight is not None:
        terms = terms * weight.to(terms.dtype)
    return terms.sum(dim=1).mean()
