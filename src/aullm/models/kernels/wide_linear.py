"""x·Wᵀ + b for a large weight and a batch of few rows, on the CPU, computed as (W·xᵀ)ᵀ.

Why: the Enhanced Fusion Projector's first layer (10624 → 5600 for 6×64×64 clips and SmolLM2: 59.5 M weights,
238 MB) multiplies a batch of 16–256 rows, and PyTorch's CPU GEMM is much slower in `F.linear`'s layout for that
shape than in the transposed one. Measured on a 2-core AMD EPYC (Zen 1; torch 2.13 CPU build), medians of 7:
forward at 16 rows 157 ms as `x @ W.T` against 65 ms as `(W @ x.T).T`, the input gradient 109 ms as `g @ W`
against 43 ms as `(W.T @ g.T).T` (at 256 rows: 637 vs 468 and 557 vs 441 ms), while the weight gradient is
fastest as `g.T @ x`. Same float32 products and sums, in another order (as between any two GEMM kernels).

Used by the projectors only, and only on the CPU for 2-D float inputs with fewer rows than the layer has outputs;
everywhere else (GPU, other shapes) it is `F.linear`. A deterministic rule of the shapes, never a timing, so two
processes always take the same path and give the same bits.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _TransposedProduct(torch.autograd.Function):
    """x·Wᵀ + b as (W·xᵀ)ᵀ, with the gradients of x, W and b."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        out = torch.mm(weight, x.t()) if bias is None else torch.addmm(bias.unsqueeze(1), weight, x.t())
        return out.t().contiguous()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], Optional[Tensor], Optional[Tensor]]:
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.mm(weight.t(), grad.t()).t()
        if ctx.needs_input_grad[1]:
            grad_weight = torch.mm(grad.t(), x)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_x, grad_weight, grad_bias


def uses_transposed_product(x: Tensor, linear: nn.Linear) -> bool:
    """The rule: CPU, a 2-D float input of the layer's dtype, fewer rows than the layer has outputs."""
    weight = linear.weight
    return (
        x.device.type == "cpu"
        and weight.device.type == "cpu"
        and x.dim() == 2
        and x.dtype == weight.dtype
        and x.dtype in (torch.float32, torch.float64)
        and x.shape[0] < linear.out_features
        and not torch.is_autocast_enabled("cpu")
    )


def wide_linear(x: Tensor, linear: nn.Linear) -> Tensor:
    """`linear(x)`, the same function and gradients, in the CPU's faster layout for a wide layer (see above)."""
    if not uses_transposed_product(x, linear):
        return F.linear(x, linear.weight, linear.bias)
    return _TransposedProduct.apply(x, linear.weight, linear.bias)
