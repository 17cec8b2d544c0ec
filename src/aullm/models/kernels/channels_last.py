"""Batch norm, with the ReLU before it and the gate after it (channel dropout or squeeze-and-excitation), as one
pass over a channels-last map: the backbone's BN layers with their neighbours, accurate and fast on a CPU.

Why by hand: the backbone runs on channels-last tensors, where PyTorch's CPU kernels for Conv3d and MaxPool3d are
several times faster, but its CPU batch norm for that layout accumulates the statistics about 30× less accurately
in float32 (relative error ~1e-5 against ~3e-7 for the default layout), which would make every later activation
and gradient drift from the reference implementation. Here the statistics come from two passes of `torch.sum`
(accurate in any layout), and the gate is folded into the normalisation's per-channel scale and shift, so the
normalised map itself is never written: in training the chain ReLU → BN → gate reads and writes the activations
about half as often as the separate layers do. The gradients are written out below; the tests check them, the
outputs and the running statistics against the separate PyTorch layers.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Excitation(Protocol):
    """A squeeze-and-excitation layer: two linear maps over the channels, and the weights of its last pass."""

    fc1: nn.Linear
    fc2: nn.Linear
    last_weights: Optional[Tensor]

    def __call__(self, x: Tensor) -> Tensor: ...


def _channels_last_frames(x: Tensor) -> Tensor:
    """[B, C, T, H, W] → [B, T, H·W, C]: a view for a channels-last x (a copy otherwise)."""
    b, c, t, h, w = x.shape
    return x.permute(0, 2, 3, 4, 1).reshape(b, t, h * w, c)


def _as_volume(frames: Tensor, height: int, width: int) -> Tensor:
    """[B, T, H·W, C] → the [B, C, T, H, W] view (channels-last 3D layout)."""
    b, t, _, c = frames.shape
    return frames.view(b, t, height, width, c).permute(0, 4, 1, 2, 3)


def _excitation(se: Excitation, squeezed: Tensor) -> Tensor:
    """The squeeze-and-excitation weights from the per-frame channel means [B, T, C]."""
    return torch.sigmoid(F.linear(F.relu(F.linear(squeezed, se.fc1.weight, se.fc1.bias)), se.fc2.weight, se.fc2.bias))


class _ReLUBatchNormGate(torch.autograd.Function):
    """Training-mode [ReLU →] batch norm → gate on frames [B, T, S, C]; returns (out, mean, var, gate).

    The gate is per (sample, frame, channel): the SE weights of the normalised map's per-frame channel means, or a
    per-(sample, channel) dropout scale (given), or none.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor,
        eps: float,
        relu: bool,
        dropout: Optional[Tensor],
        se: Optional[Excitation],
        *se_params: Optional[Tensor],
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        b, t, s, c = x.shape
        count = b * t * s
        if relu:
            centred = torch.relu(x)
            mean = centred.sum(dim=(0, 1, 2)) / count
            centred.sub_(mean)
        else:
            mean = x.sum(dim=(0, 1, 2)) / count
            centred = x - mean
        var = torch.square(centred).sum(dim=(0, 1, 2)) / count
        invstd = torch.rsqrt(var + eps)
        scale = weight * invstd
        frame_sums = centred.sum(dim=2)  # [B, T, C]
        squeezed = frame_sums * (scale / s) + bias  # per-frame channel means of the normalised map
        if se is not None:
            gate = _excitation(se, squeezed)
        elif dropout is not None:
            gate = dropout.view(b, 1, c).expand(b, t, c)
        else:
            gate = torch.ones_like(squeezed)
        out = torch.addcmul((bias * gate).unsqueeze(2), centred, (scale * gate).unsqueeze(2))
        ctx.save_for_backward(
            x if relu else None, centred, frame_sums, squeezed, gate, weight, bias, invstd, *se_params
        )
        ctx.config = (relu, se)
        ctx.mark_non_differentiable(mean, var, gate)
        return out, mean, var, gate

    @staticmethod
    def backward(ctx: Any, grad: Tensor, *_unused: Tensor) -> tuple[Optional[Tensor], ...]:
        x, centred, frame_sums, squeezed, gate, weight, bias, invstd, *se_params = ctx.saved_tensors
        relu, se = ctx.config
        b, t, s, c = centred.shape
        count = b * t * s
        scale = weight * invstd
        grad_sums = grad.sum(dim=2)  # [B, T, C]
        grad_centred = (grad * centred).sum(dim=2)  # Σ over the frame of g·(x − μ)
        grad_squeezed = torch.zeros_like(squeezed)
        se_grads: tuple[Optional[Tensor], ...] = ()
        if se is not None:
            # out = z·gate with z the normalised map: dL/dgate = Σ_frame g·z; then back through the small MLP.
            grad_gate = scale * grad_centred + bias * grad_sums
            with torch.enable_grad():
                leaf = squeezed.detach().requires_grad_()
                params = [None if p is None else p.detach().requires_grad_() for p in se_params]
                fc1_w, fc1_b, fc2_w, fc2_b = params
                assert fc1_w is not None and fc2_w is not None
                gate_again = torch.sigmoid(F.linear(F.relu(F.linear(leaf, fc1_w, fc1_b)), fc2_w, fc2_b))
                present = [p for p in params if p is not None]
                grad_squeezed, *present_grads = torch.autograd.grad(gate_again, [leaf, *present], grad_gate)
            grads = iter(present_grads)
            se_grads = tuple(None if p is None else next(grads) for p in params)
        # dz = g·gate + dsqueezed / S (the squeeze is the frame mean of z); the batch-norm gradient of z:
        grad_bias = (gate * grad_sums + grad_squeezed).sum(dim=(0, 1))
        grad_weight_raw = (gate * grad_centred + grad_squeezed * frame_sums / s).sum(dim=(0, 1))  # Σ dz·(x − μ)
        grad_weight = grad_weight_raw * invstd
        shift = scale * (grad_squeezed / s - grad_bias / count)
        grad_x = torch.addcmul(shift.unsqueeze(2), grad, (scale * gate).unsqueeze(2))
        grad_x.addcmul_(centred, (-scale * invstd * invstd * grad_weight_raw / count).view(1, 1, 1, c))
        if relu:
            grad_x = torch.ops.aten.threshold_backward(grad_x, x, 0.0)  # ReLU's own backward kernel: one pass
        return (grad_x, grad_weight, grad_bias, None, None, None, None, *se_grads)


def batch_norm_gate(
    x: Tensor,
    bn: nn.modules.batchnorm._BatchNorm,
    *,
    relu: bool = False,
    se: Optional[Excitation] = None,
    dropout: Optional[nn.Dropout3d] = None,
) -> Tensor:
    """dropout(bn(x)) or se(bn(relu(x))) (as the layers compute them) for x [B, C, T, H, W], channels last.

    `se` is a module with `fc1` and `fc2` (squeeze-and-excitation per frame; its weights of this pass are kept in
    `se.last_weights` [B, C, T]); `dropout` an `nn.Dropout3d`, whose mask is drawn exactly as it draws it. Updates
    the running statistics and `num_batches_tracked` as `_BatchNorm.forward` does. In eval mode it calls the layers
    themselves (PyTorch's kernels are accurate when the statistics are given).
    """
    height, width = x.shape[-2:]
    if not bn.training:
        out = bn(F.relu(x) if relu else x)
        if se is not None:
            return se(out)
        return dropout(out) if dropout is not None else out
    if bn.weight is None or bn.bias is None:
        raise ValueError("batch_norm_gate needs an affine BatchNorm layer")
    mask = None
    if dropout is not None and dropout.training and dropout.p > 0:
        # nn.Dropout3d's draw: one Bernoulli(1 − p) per (sample, channel), scaled by 1 / (1 − p).
        mask = x.new_empty((x.shape[0], x.shape[1], 1, 1, 1))
        mask = mask.zero_() if dropout.p == 1 else mask.bernoulli_(1 - dropout.p).div_(1 - dropout.p)
    se_params = [se.fc1.weight, se.fc1.bias, se.fc2.weight, se.fc2.bias] if se is not None else []
    out, mean, var, gate = _ReLUBatchNormGate.apply(
        _channels_last_frames(x), bn.weight, bn.bias, bn.eps, relu, mask, se, *se_params
    )
    if se is not None:
        se.last_weights = gate.transpose(1, 2)
    if bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None:
        assert bn.num_batches_tracked is not None
        bn.num_batches_tracked.add_(1)
        momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        count = x.numel() // x.shape[1]
        with torch.no_grad():
            bn.running_mean.mul_(1.0 - momentum).add_(mean, alpha=momentum)
            bn.running_var.mul_(1.0 - momentum).add_(var * (count / max(count - 1, 1)), alpha=momentum)
    return _as_volume(out, height, width)
