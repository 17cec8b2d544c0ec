"""ResNet-18/34 (He et al., CVPR 2016) written out by hand, layer for layer as torchvision builds them.

Why by hand: the only torchvision wheels reachable here are CUDA builds whose compiled ops fail to load next to the
CPU torch, and the baselines only need the plain BasicBlock network. Architecture, layer names, default
initialisation (Kaiming-normal fan-out for convs, BN weight 1 / bias 0, PyTorch default for the final Linear,
`zero_init_residual=False`) follow torchvision's `resnet18`/`resnet34`, so a torchvision state dict with the same
`in_channels` loads into it.

Two deliberate differences, both for micro-expression input:
- `in_channels` is a parameter: clips arrive as gray frames stacked as channels, not RGB.
- The stem is torchvision's (7×7 stride-2 conv + 3×3 stride-2 max-pool) and is *not* adapted to 64×64 inputs.
  The reference baselines (the MEB benchmark behind the LED paper's "ResNet18" rows) run the unmodified torchvision
  network on 64×64 clips; a CIFAR-style stem would be a different, 16× more expensive baseline. At 64 px the
  final map is 2×2, which global average pooling handles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import torch
from torch import Tensor, nn

from aullm.models.base import OwnInit, fill_normal_, fill_uniform_

RESNET_LAYERS: dict[int, tuple[int, int, int, int]] = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convs with BN and a residual connection; a 1×1 conv + BN projects the shortcut when shapes change."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """BasicBlock ResNet: stem → layer1..4 (64, 128, 256, 512 channels) → global average pool → fc.

    `num_classes=0` drops the fc so the model returns the 512-d pooled feature (`feature_dim`).
    """

    def __init__(self, layers: Sequence[int], in_channels: int = 3, num_classes: int = 1000) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"ResNet needs four stage depths, got {list(layers)}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        self.in_channels = in_channels
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.feature_dim = 512 * BasicBlock.expansion
        self.fc: Optional[nn.Linear] = nn.Linear(self.feature_dim, num_classes) if num_classes > 0 else None
        # Like torchvision, a plain build draws from the global RNG; seed-exact resets pass their own generator.
        self.init_weights(torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item())))

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * BasicBlock.expansion, stride),
                nn.BatchNorm2d(planes * BasicBlock.expansion),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * BasicBlock.expansion
        layers += [BasicBlock(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator) -> None:
        """torchvision's initialisation, every value drawn from `generator` in module order (seed-exact resets)."""
        init_resnet_(self, generator)

    def features(self, x: Tensor) -> Tensor:
        """The pooled 512-d feature [B, 512]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: Tensor) -> Tensor:
        f = self.features(x)
        return f if self.fc is None else self.fc(f)


@torch.no_grad()
def init_resnet_(module: nn.Module, generator: torch.Generator) -> None:
    """Kaiming-normal (fan-out, ReLU gain) for every Conv2d, BN to weight 1 / bias 0 with fresh statistics, and
    PyTorch's default U(±1/√fan_in) for Linear layers — torchvision's ResNet initialisation, drawn from
    `generator` so that `reset(seed)` equals a fresh build with that seed. Modules with their own init
    (`init_own_parameters`, e.g. the LED filter) are asked; anything else holding parameters is an error."""
    for sub in module.modules():
        own = list(sub.parameters(recurse=False))
        if isinstance(sub, nn.Conv2d):
            fan_out = sub.out_channels * math.prod(sub.kernel_size) // sub.groups
            fill_normal_(sub.weight, math.sqrt(2.0 / fan_out), generator)
            if sub.bias is not None:
                sub.bias.zero_()
        elif isinstance(sub, nn.Linear):
            bound = 1.0 / math.sqrt(max(1, sub.in_features))
            fill_uniform_(sub.weight, bound, generator)
            if sub.bias is not None:
                fill_uniform_(sub.bias, bound, generator)
        elif isinstance(sub, nn.modules.batchnorm._BatchNorm):
            sub.reset_parameters()
        elif isinstance(sub, OwnInit):
            sub.init_own_parameters(generator)
        elif own:
            raise TypeError(f"init_resnet_ does not know how to initialise {type(sub).__name__}")


def resnet(depth: int, in_channels: int = 3, num_classes: int = 1000) -> ResNet:
    """ResNet-18 or ResNet-34 (BasicBlock depths as in the paper's Table 1)."""
    if depth not in RESNET_LAYERS:
        raise ValueError(f"only ResNet-18 and ResNet-34 are provided (BasicBlock), got depth {depth}")
    return ResNet(RESNET_LAYERS[depth], in_channels=in_channels, num_classes=num_classes)


def resnet18(in_channels: int = 3, num_classes: int = 1000) -> ResNet:
    return resnet(18, in_channels, num_classes)


def resnet34(in_channels: int = 3, num_classes: int = 1000) -> ResNet:
    return resnet(34, in_channels, num_classes)
