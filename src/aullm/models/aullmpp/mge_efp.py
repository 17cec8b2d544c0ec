"""MGE-EFP: the Multi-Granularity Evidence-Enhanced Fusion Projector of AULLM++ — OUR RECONSTRUCTION.

AULLM++ (arXiv 2603.08387) has no public code or method text; this module is rebuilt from its abstract and
framework figure only (docs/design.md, AULLM++). The figure shows, on the backbone's attended map `x_att`: two "Meso
Conv"
branches, a "Global Conv" branch and a "Laplacian" branch → a "Harmonization Layer" → an "MoE Gate" weighting
them → Σ (with `x_att` as a skip) = `x_fused` → "Mid-level Extraction" = F_mid → "High-level Extraction" = F_high
→ F_mid ⊕ F_high → Content Token. Every concrete choice below (kernel sizes, GCNet-style global context, BN as the
harmoniser, gate MLP, pooling) is ours, made so that with the AU-LLM backbone F_mid keeps AU-LLM's size
(64×2×9×9) and the two models differ only in how the evidence is built.

Why four branches: micro-expression AUs are 1–3 px local deformations (meso-scale texture at two receptive
fields), some are read relative to the whole face (global context), and the Laplacian is a fixed high-pass that
keeps edges/creases while suppressing smooth illumination — the "low-density, noise-prone evidence" problem the
abstract names. The gate lets each clip choose its mix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aullm.models.blocks.projectors import EnhancedFusionProjector

BRANCHES: tuple[str, ...] = ("meso3", "meso5", "global", "laplacian")
#: x_fused → (F_mid [B, D_mid], F_high [B, D_high]): the backbone's mid/high extraction (`extraction="backbone"`).
Extract = Callable[[Tensor], tuple[Tensor, Tensor]]

# The 4-neighbour discrete Laplacian: a fixed (never trained) spatial high-pass filter.
LAPLACIAN_KERNEL = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


@dataclass
class MGEOutput:
    """The Content Token [B, d] plus the intermediates tests and plots look at."""

    token: Tensor
    gate: Tensor  # [B, n_branches], rows sum to 1
    fused: Tensor  # x_fused [B, C, T, H, W]
    f_mid: Tensor  # [B, D_mid] flattened
    f_high: Tensor  # [B, D_high]
    branches: list[Tensor]  # harmonised branch maps, each [B, C, T, H, W]


def _as_volume(x: Tensor) -> Tensor:
    """Accept [B, C, H, W] (one "frame", e.g. optical flow features) as [B, C, 1, H, W]."""
    if x.dim() == 4:
        return x.unsqueeze(2)
    if x.dim() != 5:
        raise ValueError(f"MGE-EFP expects a feature map [B, C, T, H, W] or [B, C, H, W], got {tuple(x.shape)}")
    return x


def _meso_conv(channels: int, k: int, conv: Literal["full", "separable"]) -> list[nn.Module]:
    """A per-frame k×k conv: `full` (C·C·k² weights), or `separable` — depthwise k×k then pointwise 1×1
    (MobileNet's factorisation: C·k² + C·C weights, about k²× fewer products), the receptive field unchanged."""
    pad = (0, k // 2, k // 2)
    if conv == "full":
        return [nn.Conv3d(channels, channels, (1, k, k), padding=pad)]
    return [
        nn.Conv3d(channels, channels, (1, k, k), padding=pad, groups=channels),
        nn.Conv3d(channels, channels, kernel_size=1),
    ]


class LaplacianHighPass(nn.Module):
    """Depthwise 3×3 Laplacian on every frame of every channel; the kernel is a non-persistent buffer, so it is
    neither trained nor saved (it is a constant of the architecture). Replicate padding avoids fake border edges."""

    kernel: Tensor  # non-persistent buffer [C, 1, 1, 3, 3]

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        kernel = LAPLACIAN_KERNEL.view(1, 1, 1, 3, 3).repeat(channels, 1, 1, 1, 1)
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        padded = F.pad(x, (1, 1, 1, 1, 0, 0), mode="replicate")
        return F.conv3d(padded, self.kernel.to(x.dtype), groups=self.channels)


class GlobalContextConv(nn.Module):
    """GCNet-style global context: attention-pool the whole clip map into one vector per channel (1×1×1 conv →
    softmax over positions), transform it with a 1×1 bottleneck, broadcast it back to every position. This is a
    "global conv" in the sense of a conv block whose receptive field is the whole map."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.attend = nn.Conv3d(channels, 1, kernel_size=1)
        self.transform = nn.Sequential(
            nn.Conv3d(channels, hidden, kernel_size=1), nn.ReLU(), nn.Conv3d(hidden, channels, kernel_size=1)
        )

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[:2]
        weights = torch.softmax(self.attend(x).flatten(2), dim=-1)  # [B, 1, THW]
        context = torch.einsum("bcn,bon->bc", x.flatten(2), weights).view(b, c, 1, 1, 1)
        return self.transform(context).expand_as(x)


class MGEEFP(nn.Module):
    """x_att [B, C, T, H, W] → Content Token [B, out_dim] (reconstruction; see the module docstring).

    Branches: meso3 (3×3 conv), meso5 (5×5 conv), global (GCNet context), laplacian (fixed high-pass). The
    harmonisation layer is a per-branch 1×1×1 conv + BatchNorm: the branches' outputs differ in scale by orders
    of magnitude (a Laplacian response vs. a broadcast context vector), and BN brings each to zero mean / unit
    variance before they are mixed, so the gate weights, not raw magnitudes, decide the mix. The MoE gate is an
    MLP on the globally pooled x_att with a softmax over branches (weights sum to 1 per sample). x_fused =
    x_att + Σ_i g_i · h_i (the skip keeps the backbone's evidence even when the branches are still untrained).
    Mid-level extraction: 3×3 conv + BN + ReLU + max-pool(2) + Dropout3d → F_mid; high-level extraction:
    Linear(F_mid → 256) + ReLU + Dropout → F_high (as AU-LLM's fc); concat → EFP MLP → CT.

    `branches` selects a subset (for finer ablations); `in_shape` is (C, T, H, W) of x_att.

    `extraction="backbone"` (docs/aullmpp.md, Designs): the mid- and high-level extraction are the backbone's own
    (its pool + dropout → F_mid, its fc_high → F_high, passed in as `extract`), applied to x_fused instead of x_att,
    so MGE-EFP changes only the map they read; `mid_dim`/`high_dim` are then the backbone's. `zero_init` starts every
    harmonised branch at exactly zero (BatchNorm scale 0, the zero-initialised residual branch of ReZero / Goyal et
    al. 2017): x_fused = x_att at the start, and the branches grow in as far as they help. `conv="separable"`
    factorises the two meso convs (depthwise k×k + pointwise 1×1): the same receptive fields for a fraction of
    the products, which were most of MGE-EFP's cost.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_dim: int,
        *,
        dropout: float = 0.3,
        high_dim: int = 256,
        branches: Optional[tuple[str, ...]] = None,
        gate_hidden: Optional[int] = None,
        extraction: Literal["own", "backbone"] = "own",
        mid_dim: Optional[int] = None,
        zero_init: bool = False,
        conv: Literal["full", "separable"] = "full",
    ) -> None:
        super().__init__()
        if len(in_shape) == 3:
            in_shape = (in_shape[0], 1, in_shape[1], in_shape[2])
        if len(in_shape) != 4:
            raise ValueError(f"in_shape must be (C, T, H, W) or (C, H, W), got {in_shape}")
        names = tuple(branches) if branches is not None else BRANCHES
        unknown = [b for b in names if b not in BRANCHES]
        if unknown or not names:
            raise ValueError(f"unknown or empty MGE-EFP branches {names} (known: {', '.join(BRANCHES)})")
        if conv not in ("full", "separable"):
            raise ValueError(f"MGE-EFP conv must be full or separable, got {conv!r}")
        if extraction not in ("own", "backbone"):
            raise ValueError(f"MGE-EFP extraction must be own or backbone, got {extraction!r}")
        if extraction == "backbone" and mid_dim is None:
            raise ValueError("MGE-EFP extraction='backbone' needs the backbone's mid_dim")
        c, t, h, w = (int(v) for v in in_shape)
        self.in_shape = (c, t, h, w)
        self.branch_names = names
        self.extraction = extraction
        self.zero_init = bool(zero_init)

        paths: dict[str, nn.Module] = {}
        for name in names:
            if name in ("meso3", "meso5"):
                k = 3 if name == "meso3" else 5
                paths[name] = nn.Sequential(*_meso_conv(c, k, conv), nn.ReLU())
            elif name == "global":
                paths[name] = GlobalContextConv(c)
            else:
                paths[name] = LaplacianHighPass(c)
        self.paths = nn.ModuleDict(paths)
        self.harmonise = nn.ModuleDict(
            {name: nn.Sequential(nn.Conv3d(c, c, kernel_size=1), nn.BatchNorm3d(c)) for name in names}
        )
        hidden = gate_hidden or max(8, c // 4)
        self.gate = nn.Sequential(nn.Linear(c, hidden), nn.ReLU(), nn.Linear(hidden, len(names)))

        self.mid: Optional[nn.Module] = None
        self.high: Optional[nn.Module] = None
        self.high_dim = high_dim
        if extraction == "own":
            pool_t, pool_s = min(2, t), (2 if min(h, w) >= 4 else 1)
            self.mid = nn.Sequential(
                nn.Conv3d(c, c, (1, 3, 3), padding=(0, 1, 1)),
                nn.BatchNorm3d(c),
                nn.ReLU(),
                nn.MaxPool3d(kernel_size=(pool_t, pool_s, pool_s), stride=(pool_t, pool_s, pool_s)),
                nn.Dropout3d(dropout),
            )
            self.mid_shape: Optional[tuple[int, ...]] = (c, t // pool_t, h // pool_s, w // pool_s)
            self.mid_dim = math.prod(self.mid_shape)
            self.high = nn.Sequential(nn.Linear(self.mid_dim, high_dim), nn.ReLU(), nn.Dropout(dropout))
        else:
            self.mid_shape = None
            self.mid_dim = int(mid_dim)  # type: ignore[arg-type]  # checked above
        self.projector = EnhancedFusionProjector(self.mid_dim + high_dim, out_dim, dropout)

    @torch.no_grad()
    def zero_branches_(self) -> None:
        """Harmonised branches output exactly 0 (BatchNorm scale 0); called after every (re-)initialisation when
        `zero_init` is set, so x_fused starts as x_att."""
        for name in self.branch_names:
            layers = self.harmonise[name]
            assert isinstance(layers, nn.Sequential)
            norm = layers[1]
            assert isinstance(norm, nn.BatchNorm3d)
            norm.weight.zero_()

    def gate_weights(self, x_att: Tensor) -> Tensor:
        """Softmax over branches from the globally pooled input: [B, n_branches], each row sums to 1."""
        pooled = _as_volume(x_att).mean(dim=(2, 3, 4))
        return torch.softmax(self.gate(pooled), dim=-1)

    def evidence(self, x_att: Tensor, extract: Optional[Extract] = None) -> MGEOutput:
        """`extract` is the backbone's mid/high extraction (needed with `extraction="backbone"`, else unused)."""
        x = _as_volume(x_att)
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"MGE-EFP built for x_att {self.in_shape}, got {tuple(x.shape[1:])}")
        gate = self.gate_weights(x)
        branches = [self.harmonise[name](self.paths[name](x)) for name in self.branch_names]
        mixed = torch.einsum("bn,nbcthw->bcthw", gate.to(x.dtype), torch.stack(branches))
        fused = x + mixed
        if self.mid is not None and self.high is not None:
            f_mid = self.mid(fused).flatten(1)
            f_high = self.high(f_mid)
        elif extract is None:
            raise ValueError("MGE-EFP with extraction='backbone' needs the backbone's extract function")
        else:
            f_mid, f_high = extract(fused if x_att.dim() == 5 else fused[:, :, 0])
        token = self.projector(torch.cat([f_mid, f_high], dim=1))
        return MGEOutput(token=token, gate=gate, fused=fused, f_mid=f_mid, f_high=f_high, branches=branches)

    def forward(self, x_att: Tensor, extract: Optional[Extract] = None) -> Tensor:
        """The Content Token [B, out_dim]."""
        return self.evidence(x_att, extract).token
