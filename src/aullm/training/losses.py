"""Multi-label losses: the Asymmetric Loss of the paper (§3.4, Eq. 4) and plain BCE.

AU labels are sparse (most AUs are absent in most clips), so easy negatives dominate BCE. ASL (Ridnik et al.,
ICCV 2021) down-weights them with a focusing power γ− and discards very easy ones entirely by shifting the
negative probability: p_m = max(p − clip, 0). Both losses sum over AUs and average over the batch (Eq. 4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from aullm.config import LossConfig

if TYPE_CHECKING:
    from aullm.models.base import ModelOutput


class AsymmetricLoss(nn.Module):
    """L = −mean_i Σ_j [ y (1−p)^γ+ log p + (1−y) p_m^γ− log(1−p_m) ],  p = σ(z),  p_m = max(p − clip, 0).

    Probabilities are clamped to `eps` inside the logs, as in the reference implementation. The focusing weights
    stay in the graph (the gradient of the formula as written).
    """

    def __init__(self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05, eps: float = 1e-8) -> None:
        super().__init__()
        if clip < 0 or clip >= 1:
            raise ValueError(f"ASL clip must be in [0, 1), got {clip}")
        self.gamma_pos = float(gamma_pos)
        self.gamma_neg = float(gamma_neg)
        self.clip = float(clip)
        self.eps = float(eps)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        logits = logits.float()
        targets = targets.to(logits.dtype)
        p = torch.sigmoid(logits)
        p_neg = 1.0 - p
        if self.clip > 0:
            p_neg = (p_neg + self.clip).clamp(max=1.0)  # 1 − p_m, with p_m = max(p − clip, 0)
        loss_pos = targets * torch.log(p.clamp(min=self.eps))
        loss_neg = (1.0 - targets) * torch.log(p_neg.clamp(min=self.eps))
        if self.gamma_pos > 0:
            loss_pos = loss_pos * (1.0 - p) ** self.gamma_pos
        if self.gamma_neg > 0:
            loss_neg = loss_neg * (1.0 - p_neg) ** self.gamma_neg
        return -(loss_pos + loss_neg).sum() / logits.shape[0]

    def extra_repr(self) -> str:
        return f"gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, clip={self.clip}, eps={self.eps}"


class MultiLabelBCE(nn.Module):
    """Binary cross-entropy on logits, summed over AUs and averaged over the batch (same scale as ASL)."""

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        logits = logits.float()
        loss = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="sum")
        return loss / logits.shape[0]


def build_loss(cfg: LossConfig) -> nn.Module:
    """`train.loss` → loss module: `asl` (γ+, γ−, clip, eps from the config) or `bce`."""
    if cfg.name == "asl":
        return AsymmetricLoss(cfg.gamma_pos, cfg.gamma_neg, cfg.clip, cfg.eps)
    if cfg.name == "bce":
        return MultiLabelBCE()
    raise ValueError(f"unknown train.loss.name {cfg.name!r} (asl or bce)")


def training_loss(loss_fn: nn.Module, out: ModelOutput, targets: Tensor) -> Tensor:
    """The loss a training step minimises: the main loss on the logits, plus the model's weighted `aux_loss`,
    plus `aux_logits_weight` × the main loss on its `aux_logits` (the same labels). One function, so the
    trainer, `aullm bench step` and the diagnostics optimise the same thing."""
    loss = loss_fn(out.logits.float(), targets)
    if out.aux_loss is not None:
        loss = loss + out.aux_loss
    if out.aux_logits is not None and out.aux_logits_weight > 0:
        loss = loss + out.aux_logits_weight * loss_fn(out.aux_logits.float(), targets)
    return loss
