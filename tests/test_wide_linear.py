"""The projectors' wide layers in the CPU's transposed layout (models/wide_linear.py): the same function and the same
gradients as `nn.Linear`, on the same parameters, and the plain product wherever the rule does not apply."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aullm.models.blocks.projectors import EnhancedFusionProjector, LinearProjector
from aullm.models.kernels.wide_linear import uses_transposed_product, wide_linear

pytestmark = pytest.mark.usefixtures("one_thread")


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> bool:
    return bool((a - b).abs().max() <= rel * b.abs().max())


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [1, 16, 37])
def test_same_output_and_gradients_as_linear(bias, rows):
    torch.manual_seed(0)
    linear = nn.Linear(300, 120, bias=bias)
    x = torch.randn(rows, 300, requires_grad=True)
    assert uses_transposed_product(x, linear)
    weights = torch.randn(rows, 120)
    out = wide_linear(x, linear)
    assert out.is_contiguous()
    reference = F.linear(x, linear.weight, linear.bias)
    assert _close(out, reference)
    params = [x, *linear.parameters()]
    grads = torch.autograd.grad((out * weights).sum(), params)
    expected = torch.autograd.grad((reference * weights).sum(), params)
    for got, want in zip(grads, expected):
        assert got.shape == want.shape and _close(got, want)


def test_gradient_only_where_asked():
    linear = nn.Linear(64, 32)
    linear.requires_grad_(False)
    x = torch.randn(4, 64, requires_grad=True)
    wide_linear(x, linear).sum().backward()
    assert x.grad is not None and linear.weight.grad is None
    frozen_input = torch.randn(4, 64)
    trainable = nn.Linear(64, 32)
    wide_linear(frozen_input, trainable).sum().backward()
    assert trainable.weight.grad is not None and trainable.bias.grad is not None


def test_rule_keeps_plain_product_elsewhere():
    linear = nn.Linear(16, 8)
    assert not uses_transposed_product(torch.randn(8, 16), linear)  # as many rows as outputs
    assert not uses_transposed_product(torch.randn(2, 3, 16), linear)  # not 2-D
    assert not uses_transposed_product(torch.randn(2, 16, dtype=torch.float64), linear)  # dtype differs
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not uses_transposed_product(torch.randn(2, 16), linear)
        assert wide_linear(torch.randn(2, 16), linear).dtype == torch.bfloat16  # autocast still applies
    batch = torch.randn(2, 3, 16)
    assert torch.equal(wide_linear(batch, linear), linear(batch))


def test_projectors_compute_what_their_layers_say():
    torch.manual_seed(1)
    efp = EnhancedFusionProjector(200, 24, dropout=0.0).eval()
    x = torch.randn(5, 200)
    plain = efp.fc2(efp.act(efp.fc1(x)))
    assert _close(efp(x), plain)
    assert set(efp.state_dict()) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    linear = LinearProjector(200, 24)
    assert _close(linear(x), linear.fc(x))
