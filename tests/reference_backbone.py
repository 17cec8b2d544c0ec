"""The straightforward 3D implementation of the LED backbone, kept as the reference the fast one is checked against.

This is the backbone as first written (and as the authors' reference network computes it): the LED filter by two
einsums over time, then Conv3d → ReLU → MaxPool3d → BatchNorm3d → Dropout3d → Conv3d → ReLU → BatchNorm3d →
per-frame SE → MaxPool3d → Dropout3d → flatten → Linear. It runs on the very modules (so the very weights) of an
`AUBackbone`, which computes the same function with 2D operations on a frame-major layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aullm.models.blocks.backbone import AUBackbone, BackboneOutput
from aullm.models.blocks.led import LEDFilter


def reference_led(led: LEDFilter, x: Tensor) -> Tensor:
    """Normalised LED filtering of x [B, C, T, H, W]; output frame 0 is input frame 0."""
    w = led.matrix(x.shape[2]).to(x.dtype)
    signed = torch.einsum("bcthw,ts->bcshw", x, w)
    magnitude = torch.einsum("bcthw,ts->bcshw", x, w.abs())
    out = signed / (magnitude + led.stability)
    return torch.cat([x[:, :, :1], out[:, :, 1:]], dim=2)


def reference_se(backbone: AUBackbone, x: Tensor) -> Tensor:
    """Squeeze-and-excitation of each frame of x [B, C, T, H, W] on its own."""
    se = backbone.se
    squeezed = x.mean(dim=(3, 4)).transpose(1, 2)  # [B, T, C]
    weights = torch.sigmoid(se.fc2(F.relu(se.fc1(squeezed)))).transpose(1, 2)  # [B, C, T]
    return x * weights[..., None, None]


def reference_forward(backbone: AUBackbone, x: Tensor) -> BackboneOutput:
    """The backbone's function computed with its 3D modules, one after the other."""
    b = backbone
    if b.input_kind == "clip":
        x = x.unsqueeze(1) if x.dim() == 4 else x
        x = reference_led(b.led, x)[:, :, 1:]
    else:
        x = x.unsqueeze(2)
    x = b.drop1(b.bn1(b.pool1(F.relu(b.conv1(x)))))
    x = b.bn2(F.relu(b.conv2(x)))
    x_att = reference_se(b, x) if isinstance(b.se, torch.nn.Module) and hasattr(b.se, "fc1") else x
    f_mid = b.drop2(b.pool2(x_att)).flatten(1)
    f_high = b.drop_high(F.relu(b.fc_high(f_mid)))
    return BackboneOutput(f_mid=f_mid, f_high=f_high, x_att=x_att)
