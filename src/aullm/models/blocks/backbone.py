"""The AU-LLM visual backbone (paper §3.1): LED filter → small 3D-CNN with per-frame Squeeze-and-Excitation.

It yields the two feature levels the Enhanced Fusion Projector fuses: F_mid (the pooled map after the second
conv block, local texture and shape) and F_high (one fully-connected layer on top, global). Layer sizes follow
the reference LED/SSSNet network; every shape is derived from `frames` and `size`, so other clip lengths and
resolutions work without edits. For `input: flow` (a precomputed u, v, strain triple) the same layers run on a
single 3-channel "frame" and the LED filter is skipped.

Speed: the layers are the reference's 3D modules (same names, shapes and initialisation; a straightforward 3D
implementation is kept in the tests, which check outputs and gradients against it), but the pass is arranged for
the CPU, where PyTorch's 3D convolution and pooling are slow on the default memory layout and memory traffic, not
arithmetic, bounds the first block:
- conv1 has a temporal kernel of 1, so conv1 → ReLU → pool1 is a 2D operation on every frame, computed at the
  pooled resolution (`conv_pool.conv2d_relu_max_pool`) without ever writing the full-resolution map;
- everything after it runs on channels-last tensors (`torch.channels_last_3d`), for which the CPU kernels of
  Conv3d, BatchNorm3d and MaxPool3d are several times faster, and the LED filter is one matrix product.
Module calls are otherwise the reference's, so dropout draws the same random numbers in the same order. On other
devices (CUDA) the layers run one after the other as written, where cuDNN's 3D kernels are the fast choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aullm.models.blocks.led import AULLM_LED_STABILITY, LEDFilter
from aullm.models.kernels.channels_last import batch_norm_gate
from aullm.models.kernels.conv_pool import conv2d_relu_max_pool


@dataclass
class BackboneOutput:
    """f_mid [B, D_mid] (flattened), f_high [B, D_high], and x_att [B, C, T', H', W']: the SE-attended map
    after the second conv (what Grad-CAM and AULLM++'s evidence branches look at)."""

    f_mid: Tensor
    f_high: Tensor
    x_att: Tensor


class FrameSqueezeExcitation(nn.Module):
    """Squeeze-and-Excitation applied to each frame on its own: channel weights [B, C, T] from spatial means.

    Without biases, as the reference's SE layer (`bias=True` adds them: `model.se_bias`). The weights of the last
    forward pass are kept in `last_weights` (detached) for SE plots.
    """

    def __init__(self, channels: int, reduction: int = 16, bias: bool = False) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden, bias=bias)
        self.fc2 = nn.Linear(hidden, channels, bias=bias)
        self.last_weights: Optional[Tensor] = None

    def forward(self, x: Tensor) -> Tensor:
        """x [B, C, T, H, W] (any memory layout) → the attended map, in x's layout."""
        frames = x.permute(0, 2, 3, 4, 1)  # [B, T, H, W, C]: contiguous for a channels-last x
        squeezed = frames.mean(dim=(2, 3))  # [B, T, C]
        weights = torch.sigmoid(self.fc2(F.relu(self.fc1(squeezed))))
        self.last_weights = weights.detach().transpose(1, 2)  # [B, C, T]
        return (frames * weights[:, :, None, None, :]).permute(0, 4, 1, 2, 3)


class AUBackbone(nn.Module):
    """LED + Conv3d(1→32,(1,5,5)) → ReLU → MaxPool(1,3,3) → BN → Dropout3d → Conv3d(32→64,(2,3,3)) → ReLU → BN
    → per-frame SE → MaxPool(2,2,2) → Dropout3d = F_mid;  Linear(D_mid→256) → ReLU → Dropout = F_high.

    Input: clips [B, T, H, W] (or [B, 1, T, H, W]) in [0, 1], or flow [B, 3, H, W]. The LED output's first frame
    is the unfiltered input frame, so it is dropped (as in the reference). With 6×64×64 clips F_mid is
    64×2×9×9 = 10368 values.

    `led_stability` is the LED normaliser's constant in 0–255 pixel units (default: the AU-LLM reference's 1e-8);
    `se_bias` adds biases to the SE layer (the reference has none).

    Set `capture_activations = True` to keep the attended map of the last forward in `last_activations` with its
    gradient retained (Grad-CAM); off by default so training does not hold an extra batch of activations.
    """

    def __init__(
        self,
        frames: int = 6,
        size: int = 64,
        input_kind: Literal["clip", "flow"] = "clip",
        dropout: float = 0.3,
        channels: tuple[int, int] = (32, 64),
        high_dim: int = 256,
        se_reduction: int = 16,
        se: bool = True,
        led_stability: float = AULLM_LED_STABILITY,
        se_bias: bool = False,
    ) -> None:
        super().__init__()
        if input_kind not in ("clip", "flow"):
            raise ValueError(f"input_kind must be clip or flow, got {input_kind!r}")
        if input_kind == "clip" and frames < 2:
            raise ValueError(f"the LED backbone needs at least 2 frames, got {frames}")
        self.frames = frames
        self.size = size
        self.input_kind = input_kind
        c1, c2 = channels
        in_channels = 1 if input_kind == "clip" else 3
        depth = frames - 1 if input_kind == "clip" else 1  # frames that reach conv1

        # Temporal kernels shrink to fit very short inputs (flow is one "frame"); 6-frame clips use (2, 2).
        conv2_t = min(2, depth)
        depth2 = depth - conv2_t + 1
        pool2_t = min(2, depth2)
        spatial1 = (size - 4) // 3
        spatial2 = spatial1 - 2
        if spatial2 < 2:
            raise ValueError(f"data.size {size} is too small for the backbone (need at least 16)")
        self.att_shape = (c2, depth2, spatial2, spatial2)
        self.mid_shape = (c2, depth2 // pool2_t, spatial2 // 2, spatial2 // 2)
        self.mid_dim = math.prod(self.mid_shape)
        self.high_dim = high_dim

        self.led = LEDFilter(pixel_stability=led_stability) if input_kind == "clip" else None
        self.conv1 = nn.Conv3d(in_channels, c1, kernel_size=(1, 5, 5))
        self.pool1 = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 3, 3))
        self.pool_size = 3  # pool1's spatial kernel = stride (its temporal kernel is 1)
        self.bn1 = nn.BatchNorm3d(c1)
        self.drop1 = nn.Dropout3d(dropout)
        self.conv2 = nn.Conv3d(c1, c2, kernel_size=(conv2_t, 3, 3))
        self.bn2 = nn.BatchNorm3d(c2)
        # se=False: the plain LED 3D-CNN (the SSSNet LED baseline); Identity keeps layer names and shapes.
        self.se: nn.Module = FrameSqueezeExcitation(c2, se_reduction, bias=se_bias) if se else nn.Identity()
        self.pool2 = nn.MaxPool3d(kernel_size=(pool2_t, 2, 2), stride=(pool2_t, 2, 2))
        self.drop2 = nn.Dropout3d(dropout)
        self.fc_high = nn.Linear(self.mid_dim, high_dim)
        self.drop_high = nn.Dropout(dropout)

        self.capture_activations = False
        self.last_activations: Optional[Tensor] = None

    def clear_captures(self) -> None:
        """Forget the activations and SE weights kept from the last forward pass (after a reset they are stale)."""
        self.last_activations = None
        if isinstance(self.se, FrameSqueezeExcitation):
            self.se.last_weights = None

    def _frames(self, x: Tensor) -> Tensor:
        """The frames conv1 sees, [B·T, C_in, H, W] (T = frames − 1 LED frames, or 1 flow "frame" of 3 channels),
        with a clear error for a wrong input shape."""
        s = self.size
        if self.input_kind == "clip":
            if x.dim() == 5 and tuple(x.shape[1:]) == (1, self.frames, s, s):
                x = x[:, 0]
            elif not (x.dim() == 4 and tuple(x.shape[1:]) == (self.frames, s, s)):
                raise ValueError(f"expected clips [B, {self.frames}, {s}, {s}], got {tuple(x.shape)}")
            assert self.led is not None
            # LED output frame 0 is the unfiltered input frame: dropped, as in the reference.
            return self.led.filter_frames(x).flatten(0, 1).unsqueeze(1)
        if x.dim() == 4 and tuple(x.shape[1:]) == (3, s, s):
            return x
        raise ValueError(f"expected optical flow [B, 3, {s}, {s}], got {tuple(x.shape)}")

    def forward(self, x: Tensor) -> BackboneOutput:
        frames = self._frames(x)
        if frames.device.type == "cpu":
            x_att = self._block_cpu(frames, x.shape[0])
        else:
            x_att = self._block_3d(frames, x.shape[0])
        if self.capture_activations:
            if x_att.requires_grad:
                x_att.retain_grad()
            self.last_activations = x_att
        f_mid = self.drop2(self.pool2(x_att)).flatten(1)
        f_high = self.drop_high(F.relu(self.fc_high(f_mid)))
        return BackboneOutput(f_mid=f_mid, f_high=f_high, x_att=x_att)

    def _block_cpu(self, frames: Tensor, batch: int) -> Tensor:
        """Both conv blocks and the SE, arranged for the CPU (see the module docstring) → x_att, channels last."""
        pooled = conv2d_relu_max_pool(frames, self.conv1.weight[:, :, 0], self.conv1.bias, self.pool_size)
        # [B·T, H', W', C] → [B, C, T, H', W'] in the channels-last 3D layout (a view, no copy)
        x = pooled.unflatten(0, (batch, -1)).permute(0, 4, 1, 2, 3)
        x = batch_norm_gate(x, self.bn1, dropout=self.drop1)
        se = self.se if isinstance(self.se, FrameSqueezeExcitation) else None
        return batch_norm_gate(self.conv2(x), self.bn2, relu=True, se=se)

    def _block_3d(self, frames: Tensor, batch: int) -> Tensor:
        """The same layers one after the other, as the reference writes them: on a GPU, cuDNN's 3D convolution and
        pooling kernels are fast, and the CPU arrangement's many small operations would only add launches."""
        x = frames.unflatten(0, (batch, -1)).transpose(1, 2)  # [B, C_in, T, H, W]
        x = self.drop1(self.bn1(self.pool1(F.relu(self.conv1(x)))))
        return self.se(self.bn2(F.relu(self.conv2(x))))
