"""LED: the learnable temporal filter of the AU-LLM paper's Eq. 1 (Learnable Eulerian Dynamics, Varanka et al.).

Micro-expression motion is 1–3 px over a few frames; a linearised Eulerian band-pass over time turns it into an
intensity signal a small CNN can see. Its three scalars (gain α, two IIR rates r1 > r2) are learned, stored as
logarithms so they stay positive under gradient descent.

The stabiliser. The filtered frame is normalised by the magnitude-weighted sum of the input plus a small constant,
so a global brightness change cancels out. The reference implementations state that constant for raw 0–255
pixels: the AU-LLM authors' script adds 1e-8, MEB's LED adds 1. aullm feeds [0, 1] pixels, where the same
constant, relative to the signal, would be 255× stronger, damping every filtered frame and weakening the
brightness invariance. Constants are therefore given in 0–255 pixel units (`pixel_stability`) and divided by
255 here, which makes the filter on [0, 1] input equal to the reference's on the same clip in 0–255.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: The pixel range the reference codes' stabilisers are stated for (raw 8-bit pixels).
PIXEL_RANGE = 255.0
#: The AU-LLM authors' LED stabiliser (AULLMmain.py: `out /= div + 1e-8`), in 0–255 pixel units.
AULLM_LED_STABILITY = 1e-8
#: MEB's LED stabiliser (the LED benchmark network: `out /= div + 1`), in 0–255 pixel units.
MEB_LED_STABILITY = 1.0


def led_matrix(alpha: Tensor, r1: Tensor, r2: Tensor, frames: int) -> Tensor:
    """The T×T matrix W of Eq. 1, built with broadcasting (differentiable in α, r1, r2).

    W[i, j] = α((1−r1)^(j−i) r1^min(1,i) − (1−r2)^(j−i) r2^min(1,i)) for j > i, α(r1 − r2) on the diagonal,
    0 below it. Column j holds the weights that input frame i gives to output frame j (a causal filter).
    """
    idx = torch.arange(frames, device=alpha.device)
    i = idx[:, None]
    j = idx[None, :]
    lag = (j - i).clamp(min=0).to(alpha.dtype)
    first = i.clamp(max=1).to(alpha.dtype)  # min(1, i)
    upper = alpha * ((1 - r1) ** lag * r1**first - (1 - r2) ** lag * r2**first)
    diagonal = (alpha * (r1 - r2)).expand(frames, frames)
    zero = torch.zeros((), dtype=alpha.dtype, device=alpha.device)
    return torch.where(j > i, upper, torch.where(j == i, diagonal, zero))


class LEDFilter(nn.Module):
    """Normalised LED filtering of a clip [B, C, T, H, W] along T; output frame 0 is input frame 0.

    Output frame j = Σ_i W[i,j] x_i / (Σ_i |W[i,j]| x_i + s): the signed filter response divided by the
    magnitude-weighted sum (as the reference LED code does), so a global brightness change cancels out and the
    result lies in [−1, 1] for non-negative input; s keeps all-dark pixels finite. `pixel_stability` is s in 0–255
    pixel units (see the module docstring); the input is in [0, 1], so s = pixel_stability / 255 (`stability`).
    """

    def __init__(
        self, alpha: float = 10.0, r1: float = 0.4, r2: float = 0.05, pixel_stability: float = AULLM_LED_STABILITY
    ) -> None:
        super().__init__()
        if not pixel_stability > 0:
            raise ValueError(f"the LED stabiliser must be > 0 (all-dark pixels would give 0/0), got {pixel_stability}")
        self.init_values = (float(alpha), float(r1), float(r2))
        self.pixel_stability = float(pixel_stability)
        self.stability = self.pixel_stability / PIXEL_RANGE
        self.log_alpha = nn.Parameter(torch.tensor(math.log(alpha)))
        self.log_r1 = nn.Parameter(torch.tensor(math.log(r1)))
        self.log_r2 = nn.Parameter(torch.tensor(math.log(r2)))

    def init_own_parameters(self, generator: torch.Generator) -> None:
        """Back to the prior-work initial values (no randomness; `generator` is part of the reset protocol)."""
        with torch.no_grad():
            for param, value in zip((self.log_alpha, self.log_r1, self.log_r2), self.init_values):
                param.fill_(math.log(value))

    @property
    def alpha(self) -> Tensor:
        return self.log_alpha.exp()

    @property
    def r1(self) -> Tensor:
        return self.log_r1.exp()

    @property
    def r2(self) -> Tensor:
        return self.log_r2.exp()

    def matrix(self, frames: int) -> Tensor:
        return led_matrix(self.alpha, self.r1, self.r2, frames)

    def filter_frames(self, x: Tensor) -> Tensor:
        """The filtered frames 1..T−1 of clips x [B, T, H, W] → [B, T−1, H, W] (what the networks use).

        The signed response and the magnitude come from one matrix product over time.
        """
        if x.dim() != 4:
            raise ValueError(f"LEDFilter.filter_frames expects [B, T, H, W], got shape {tuple(x.shape)}")
        b, t, h, w = x.shape
        weights = self.matrix(t).to(x.dtype)[:, 1:]
        both = torch.matmul(torch.cat([weights, weights.abs()], dim=1).t(), x.reshape(b, t, h * w))
        signed, magnitude = both.split(t - 1, dim=1)
        return (signed / (magnitude + self.stability)).view(b, t - 1, h, w)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ValueError(f"LEDFilter expects [B, C, T, H, W], got shape {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        filtered = self.filter_frames(x.reshape(b * c, t, h, w)).view(b, c, t - 1, h, w)
        return torch.cat([x[:, :, :1], filtered], dim=2)

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha.item():.3g}, r1={self.r1.item():.3g}, r2={self.r2.item():.3g}, "
            f"stability={self.pixel_stability:g}/255"
        )
