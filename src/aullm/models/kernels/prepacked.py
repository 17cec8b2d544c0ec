"""The frozen LLM's matrix products on the CPU through oneDNN, with the weights pre-packed once per process.

Why: a training step of the prefix-cached reasoner multiplies only a few dozen rows (the prompt plus one token per
sample) by every frozen weight matrix, forward and backward. At that size PyTorch's default CPU GEMM (MKL) spends a
large share of each product re-packing the weight into its blocked layout, and its backward form (`grad @ W`) is
slower still: measured on a 2-core AMD EPYC, one forward + backward pass over SmolLM2's 210 matrices at 74 rows
took 262 ms with the default kernels and 196 ms with oneDNN on pre-packed weights (at 11 rows: 127 vs 61 ms).
oneDNN keeps a copy of each weight in its blocked layout for `x @ Wᵀ` and one of `Wᵀ` for the backward `g @ W`,
packed once and shared by every model built on the same loaded LLM.

What stays the same: the arithmetic is float32 throughout (only the order of the sums differs, as between any two
GEMM libraries), the module keeps the original `weight` and `bias` parameters (state_dict keys, sharing with the
loaded LLM and `isinstance(module, nn.Linear)` are unchanged), and anything else — another device or dtype, a
weight that requires grad, a weight changed in place since it was packed — runs the plain `F.linear`.
The cost: two packed copies of the linear weights (about 2× their size in memory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PREPACK_MEMORY_SHARE = 0.25  # `auto` packs only when the packed copies take at most this share of physical memory


def onednn_available() -> bool:
    """True where this torch build has oneDNN and the two private ops the packing uses (torch's CPU freezing)."""
    if not torch.backends.mkldnn.is_available():
        return False
    ops = torch.ops.mkldnn
    return hasattr(ops, "_reorder_linear_weight") and hasattr(ops, "_linear_pointwise")


def _product(x: Tensor, packed: Tensor, bias: Optional[Tensor]) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


@dataclass(eq=False)
class PackedWeight:
    """oneDNN's blocked copies of one frozen weight W [out, in]: `forward` for x @ Wᵀ, `backward` for g @ W."""

    forward: Tensor
    backward: Tensor
    version: int  # the weight's in-place version counter when packed: a later in-place change makes this stale

    @classmethod
    def of(cls, weight: Tensor) -> PackedWeight:
        with torch.no_grad():
            plain = weight.detach()
            return cls(
                forward=torch.ops.mkldnn._reorder_linear_weight(plain),
                backward=torch.ops.mkldnn._reorder_linear_weight(plain.t().contiguous()),
                version=weight._version,
            )

    def __deepcopy__(self, memo: dict[int, Any]) -> PackedWeight:
        return self  # immutable and shared, like the frozen weight it copies

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _dropped_packing, ()  # oneDNN's opaque tensors do not pickle: a pickled copy runs F.linear


def _dropped_packing() -> None:
    return None


class _PrepackedProduct(torch.autograd.Function):
    """x @ Wᵀ + b with a gradient for x only (W and b are frozen)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, packed: PackedWeight, bias: Optional[Tensor]) -> Tensor:
        ctx.packed = packed
        return _product(x, packed.forward, bias)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], None, None]:
        return _product(grad.contiguous(), ctx.packed.backward, None), None, None


class PrepackedLinear(nn.Linear):
    """A frozen `nn.Linear` whose CPU float32 products run on oneDNN pre-packed weights; the same parameters."""

    packed: Optional[PackedWeight]

    def __init__(self, linear: nn.Linear, packed: Optional[PackedWeight]) -> None:
        nn.Module.__init__(self)  # not nn.Linear.__init__: the parameters are the original ones, not new tensors
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.packed = packed

    def _usable(self, x: Tensor) -> bool:
        weight, bias, packed = self.weight, self.bias, self.packed
        return (
            packed is not None
            and packed.version == weight._version
            and x.device.type == "cpu"
            and weight.device.type == "cpu"
            and x.dtype == weight.dtype == torch.float32
            and not weight.requires_grad
            and (bias is None or not bias.requires_grad)
            and not torch.is_autocast_enabled("cpu")
        )

    def forward(self, input: Tensor) -> Tensor:
        if not self._usable(input):
            return F.linear(input, self.weight, self.bias)
        assert self.packed is not None  # checked by _usable
        return _PrepackedProduct.apply(input, self.packed, self.bias)


def _frozen_linears(module: nn.Module) -> list[tuple[nn.Module, str, nn.Linear]]:
    found = []
    for parent in module.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Linear and not child.weight.requires_grad:
                found.append((parent, name, child))
    return found


def packed_bytes(module: nn.Module) -> int:
    """Memory the packed copies of `module`'s frozen linear weights would take (two copies of each)."""
    return sum(2 * child.weight.numel() * child.weight.element_size() for _, _, child in _frozen_linears(module))


def physical_memory_bytes() -> Optional[int]:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def should_prepack(setting: Any, module: nn.Module, device: torch.device, dtype: torch.dtype) -> bool:
    """`llm.prepack`: true / false, or `auto` — on for a float32 LLM on the CPU when oneDNN is there and the
    packed copies take at most a quarter of physical memory (SmolLM2-135M: 0.85 GB; a 1.5B model: about 10 GB)."""
    if setting is False or device.type != "cpu" or dtype != torch.float32 or not onednn_available():
        return False
    if setting is True:
        return True
    memory = physical_memory_bytes()
    return memory is None or packed_bytes(module) <= PREPACK_MEMORY_SHARE * memory


def prepack_frozen_linears(module: nn.Module, cache: dict[int, tuple[Tensor, PackedWeight]]) -> int:
    """Replace every frozen `nn.Linear` under `module` by a `PrepackedLinear` on the same parameters.

    `cache` maps id(weight) → (weight, packing) and is kept by the caller with the loaded LLM, so reasoners built
    on the same base weights pack them once. Returns the number of modules replaced.
    """
    replaced = 0
    for parent, name, child in _frozen_linears(module):
        if child.weight.device.type != "cpu" or child.weight.dtype != torch.float32:
            continue
        entry = cache.get(id(child.weight))
        if entry is None or entry[0] is not child.weight or entry[1].version != child.weight._version:
            entry = (child.weight, PackedWeight.of(child.weight))
            cache[id(child.weight)] = entry
        setattr(parent, name, PrepackedLinear(child, entry[1]))
        replaced += 1
    return replaced
