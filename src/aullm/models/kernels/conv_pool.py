"""Convolution → ReLU → non-overlapping max pooling, computed at the pooled resolution (the backbone's first block).

The first block convolves every 64×64 frame with 32 filters and then keeps the maximum of each 3×3 cell: 8 of
every 9 values it computes are thrown away, and on a CPU, writing, pooling and back-propagating that full-resolution
map (0.6 GB at batch 256) costs far more than the arithmetic. Here each pooled cell is computed directly: the p×p
conv outputs of a cell depend on one (p+k−1)² input window, so the filters placed at the p² offsets of that window
form one matrix, a single matrix product gives every candidate of every cell, and their maximum is the pooled value.
Only the pooled map and the offset of each maximum are kept for the backward pass, which puts each cell's gradient
on that offset and multiplies back. Frames are processed in chunks that stay in cache. Written by hand because
PyTorch has no fused convolution-pooling operator for the CPU.

ReLU is monotonic, so pooling then ReLU equals ReLU then pooling, and adding the bias after the maximum equals
adding it before (max(v + b) = max(v) + b, also in floating point). The result equals
`max_pool2d(relu(conv2d(x, w, b)), p)` up to float rounding (the products are summed in another order); among
equal candidates the first in row-major order wins, as in max pooling.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

# Frames per chunk: a chunk's candidates (chunk × cells × p²·C_out floats) stay within a core's cache.
CHUNK_FRAMES = 64


def _window_weight(weight: Tensor, pool: int) -> Tensor:
    """[C_in·(p+k−1)², p²·C_out]: column (a, b, c) is filter c placed at offset (a, b) of the input window."""
    shifted = [F.pad(weight, (b, pool - 1 - b, a, pool - 1 - a)) for a in range(pool) for b in range(pool)]
    return torch.cat(shifted, dim=0).flatten(1).t()


class _ConvReLUMaxPool(torch.autograd.Function):
    """x [N, C_in, H, W], window weight [C_in·K², p²·C_out], bias [C_out] → [N, H', W', C_out] (channels last)."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, window_weight: Tensor, bias: Tensor, pool: int, window: int, backward: bool
    ) -> Tensor:
        n, _, height, width = x.shape
        out_h, out_w = (height - window) // pool + 1, (width - window) // pool + 1
        cells, channels, offsets = out_h * out_w, bias.shape[0], pool * pool
        out = x.new_empty((n, cells, channels))
        # The input windows, kept for the backward pass (they are a fraction of the size of the conv output).
        cols = x.new_empty((n if backward else min(CHUNK_FRAMES, n), cells, window_weight.shape[0]))
        # Per cell and channel, p² − (offset of the first maximum): the largest (p² − offset) among the candidates
        # equal to the maximum (`max` with indices is many times slower than `amax` on the CPU for a dimension
        # that is not the innermost); decoded in the backward pass.
        first = torch.empty((n, cells, channels), dtype=torch.uint8, device=x.device) if backward else None
        rank = torch.arange(offsets, 0, -1, dtype=x.dtype, device=x.device).view(1, 1, offsets, 1)
        buffer = x.new_empty((min(CHUNK_FRAMES, n), cells, offsets * channels))  # reused: no fresh pages per chunk
        s_n, s_c, s_h, s_w = x.stride()
        for start in range(0, n, CHUNK_FRAMES):
            stop = min(start + CHUNK_FRAMES, n)
            chunk_cols = cols[start:stop] if backward else cols[: stop - start]
            # The (C_in, K, K) window of every cell, as a strided view of the frames: one copy, no im2col pass.
            windows = x[start:stop].as_strided(
                (stop - start, out_h, out_w, x.shape[1], window, window),
                (s_n, pool * s_h, pool * s_w, s_c, s_h, s_w),
            )
            chunk_cols.view(stop - start, out_h, out_w, x.shape[1], window, window).copy_(windows)
            candidates = torch.matmul(chunk_cols, window_weight, out=buffer[: stop - start])
            candidates = candidates.view(stop - start, cells, offsets, channels)
            best = torch.amax(candidates, dim=2, out=out[start:stop])
            if first is not None:
                first[start:stop] = candidates.eq_(best.unsqueeze(2)).mul_(rank).amax(dim=2)
        torch.relu_(out.add_(bias))
        if backward:
            ctx.save_for_backward(cols, window_weight, first, out)
            ctx.geometry = (pool, window, height, width)
        return out.view(n, out_h, out_w, channels)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], ...]:
        cols, window_weight, first, out = ctx.saved_tensors
        pool, window, height, width = ctx.geometry
        n, cells, channels = out.shape
        offsets = pool * pool
        grad = grad.reshape(out.shape) * (out > 0)  # ReLU
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = cols.new_empty((n, window_weight.shape[0] // window**2, height, width)) if need_x else None
        grad_w = torch.zeros_like(window_weight) if need_w else None
        grad_b = grad.sum(dim=(0, 1)) if need_b else None
        if need_x or need_w:
            spread = grad.new_empty((min(CHUNK_FRAMES, n), cells, offsets, channels))
            grad_cols = grad.new_empty((min(CHUNK_FRAMES, n) * cells, window_weight.shape[0]))
            for start in range(0, n, CHUNK_FRAMES):
                stop = min(start + CHUNK_FRAMES, n)
                rows = (stop - start) * cells
                # Each cell's gradient goes to the candidate that was its maximum.
                chunk = spread[: stop - start].zero_()
                argmax = offsets - first[start:stop, :, None].long()
                chunk.scatter_(2, argmax, grad[start:stop, :, None])
                flat = chunk.view(rows, offsets * channels)
                if grad_w is not None:
                    grad_w.addmm_(cols[start:stop].view(rows, -1).t(), flat)
                if grad_x is not None:
                    back = torch.mm(flat, window_weight.t(), out=grad_cols[:rows]).view(stop - start, cells, -1)
                    grad_x[start:stop] = F.fold(back.transpose(1, 2), (height, width), window, stride=pool)
        return grad_x, grad_w, grad_b, None, None, None


def conv2d_relu_max_pool(x: Tensor, weight: Tensor, bias: Optional[Tensor], pool: int) -> Tensor:
    """`max_pool2d(relu(conv2d(x, weight, bias)), pool)` as a channels-last [N, H', W', C_out] tensor.

    x [N, C_in, H, W], weight [C_out, C_in, k, k]; stride 1 and no padding for the convolution, pooling kernel =
    stride = `pool` (floor mode), as the backbone's conv1 and pool1.
    """
    window = weight.shape[-1] + pool - 1
    if bias is None:
        bias = weight.new_zeros(weight.shape[0])
    # What the backward pass needs (input windows, positions of the maxima) is kept only when it will run.
    backward = torch.is_grad_enabled() and any(t.requires_grad for t in (x, weight, bias))
    return _ConvReLUMaxPool.apply(x, _window_weight(weight, pool), bias, pool, window, backward)
