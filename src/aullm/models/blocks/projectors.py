"""Projectors from visual features to one LLM token (paper §3.2, Table 3 "EFP−").

A single linear map from the last visual layer discards the mid-level detail that subtle AUs need; the Enhanced
Fusion Projector (EFP) fuses flattened F_mid and F_high with a two-layer MLP into one token of the LLM's width.
"""

from __future__ import annotations

from torch import Tensor, nn

from aullm.models.kernels.wide_linear import wide_linear


class EnhancedFusionProjector(nn.Module):
    """Linear(d_in → (d_in + d_out) / 2) → ReLU → Dropout → Linear(→ d_out).

    The wide first layer (and the linear projector) multiply in the CPU's faster layout (`wide_linear`); the
    parameters and state-dict keys are plain `nn.Linear`'s."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.3) -> None:
        super().__init__()
        hidden = (in_dim + out_dim) // 2
        self.fc1 = nn.Linear(in_dim, hidden)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, out_dim)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc2(self.dropout(self.act(wide_linear(features, self.fc1))))


class LinearProjector(nn.Module):
    """The "EFP−" ablation: one linear layer, no non-linear fusion."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)

    def forward(self, features: Tensor) -> Tensor:
        return wide_linear(features, self.fc)
