"""The fast backbone computes what the straightforward 3D one computes (tests/reference_backbone.py): outputs,
gradients, batch-norm statistics and dropout masks, on the same weights; and its two hand-written pieces (the
pooled first convolution, the fused batch norm) against the PyTorch layers they replace."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aullm.models.base import init_module_, seeded_generator
from aullm.models.blocks.backbone import AUBackbone, BackboneOutput, FrameSqueezeExcitation
from aullm.models.kernels.channels_last import batch_norm_gate
from aullm.models.kernels.conv_pool import conv2d_relu_max_pool
from reference_backbone import reference_forward

pytestmark = pytest.mark.usefixtures("one_thread")

Forward = Callable[[AUBackbone, torch.Tensor], BackboneOutput]
CASES = [
    pytest.param({"frames": 6, "size": 64}, (4, 6, 64, 64), id="paper-6x64"),
    pytest.param({"frames": 2, "size": 16}, (3, 2, 16, 16), id="2x16"),
    pytest.param({"frames": 8, "size": 47}, (3, 1, 8, 47, 47), id="8x47-odd-pooling"),
    pytest.param({"frames": 5, "size": 32, "se": False}, (3, 5, 32, 32), id="no-se-sssnet"),
    pytest.param({"frames": 6, "size": 32, "input_kind": "flow"}, (3, 3, 32, 32), id="flow"),
]


def _fast(backbone: AUBackbone, x: torch.Tensor) -> BackboneOutput:
    return backbone(x)


def _run(backbone: AUBackbone, x: torch.Tensor, forward: Forward, seed: int) -> dict[str, Any]:
    """One forward + backward on a copy (so both implementations start from the same state), seeded RNG."""
    model = copy.deepcopy(backbone)
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)
    out = forward(model, x)
    rng_after = torch.get_rng_state()
    weights = torch.linspace(-1.0, 1.0, out.f_mid.shape[1], dtype=x.dtype)
    loss = (out.f_mid * weights).sum() + out.f_high.square().sum() + out.x_att.square().mean()
    loss.backward()
    return {
        "f_mid": out.f_mid.detach(),
        "f_high": out.f_high.detach(),
        "x_att": out.x_att.detach(),
        "grads": {n: p.grad for n, p in model.named_parameters() if p.grad is not None},
        "x_grad": x.grad,
        "state": {n: t.clone() for n, t in model.state_dict().items()},
        "rng": rng_after,
    }


def _backbone(kwargs: dict[str, Any], dtype: torch.dtype, train: bool) -> AUBackbone:
    backbone = AUBackbone(**kwargs)
    init_module_(backbone, seeded_generator(3))
    return backbone.to(dtype).train(train)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("kwargs", "shape"), CASES)
def test_fast_backbone_is_the_reference_function(kwargs: dict[str, Any], shape: tuple[int, ...], train: bool) -> None:
    """In float64 every output, gradient and running statistic equals the reference's to 1e-10: the same
    function, the same dropout masks (same random stream) and the same batch-norm updates."""
    backbone = _backbone(kwargs, torch.float64, train)
    x = torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fast, ref = _run(backbone, x, _fast, seed=11), _run(backbone, x, reference_forward, seed=11)
    assert torch.equal(fast["rng"], ref["rng"])  # dropout drew exactly the same numbers
    for key in ("f_mid", "f_high", "x_att", "x_grad"):
        torch.testing.assert_close(fast[key], ref[key], rtol=1e-10, atol=1e-12, msg=key)
    assert fast["grads"].keys() == ref["grads"].keys()
    for name, grad in ref["grads"].items():
        torch.testing.assert_close(fast["grads"][name], grad, rtol=1e-10, atol=1e-10, msg=name)
    for name, value in ref["state"].items():
        torch.testing.assert_close(fast["state"][name], value, rtol=1e-12, atol=1e-12, msg=name)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_fast_backbone_float32_agrees_with_reference_within_1e5(train: bool) -> None:
    """In float32 (as trained): outputs within 1e-5 of the reference; each gradient within 1e-5 of the reference
    relative to its size, or, where float32 rounding alone moves a gradient that much (sums that nearly cancel), no
    further from the float64 result than twice the larger of the reference's own error and 1e-5 of its size.

    The LED rates' gradients are such sums: every pixel's term is divided by its magnitude-weighted sum with almost
    no stabiliser (the reference's 1e-8 in 0–255 units), so dark pixels weigh heavily, and the terms nearly cancel.
    Over four inputs and both modes the float32 reference was 1e-6 to 9e-5 of their size from float64 depending on
    the input, and the fast backbone as far, on either side of it; which of the two a given CPU's kernels make
    luckier is a matter of summation order."""
    kwargs, shape = {"frames": 6, "size": 64}, (8, 6, 64, 64)
    backbone = _backbone(kwargs, torch.float32, train)
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    fast, ref = _run(backbone, x, _fast, seed=5), _run(backbone, x, reference_forward, seed=5)
    exact = _run(copy.deepcopy(backbone).double(), x.double(), reference_forward, seed=5)
    for key in ("f_mid", "f_high", "x_att"):
        assert (fast[key] - ref[key]).abs().max().item() <= 1e-5, key
    for name, grad in ref["grads"].items():
        truth = exact["grads"][name]
        scale = truth.abs().max().item()
        gap = (fast["grads"][name] - grad).abs().max().item()
        fast_error = (fast["grads"][name].double() - truth).abs().max().item()
        ref_error = (grad.double() - truth).abs().max().item()
        assert gap <= 1e-5 * scale or fast_error <= 2 * max(ref_error, 1e-5 * scale), name
    # The input gradient itself is not compared pixel by pixel in float32: each pixel's gradient follows the winner
    # of its max-pooling cells, and where two candidates are within float32 rounding of each other (typically a value
    # at ReLU's zero) the two implementations may pick different winners, as any two summation orders would. The
    # model uses the input gradient only through the LED parameters, whose gradients are checked above; float64
    # checks it exactly.


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("kwargs", "shape"), CASES)
def test_gpu_arrangement_equals_cpu_arrangement(kwargs: dict[str, Any], shape: tuple[int, ...], train: bool) -> None:
    """On CUDA the layers run one after the other (cuDNN); run here on the CPU, that path gives the same x_att."""
    backbone = _backbone(kwargs, torch.float64, train)
    x = torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    frames = backbone._frames(x)
    results = []
    for block in (backbone._block_cpu, backbone._block_3d):
        model = copy.deepcopy(backbone)
        torch.manual_seed(3)
        results.append(getattr(model, block.__name__)(frames, x.shape[0]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-10, atol=1e-12)


def test_state_dict_layout_is_unchanged() -> None:
    """Checkpoints and seeded initialisation depend on the parameter names, shapes and registration order
    (with SE biases, as before they were dropped to match the reference; without them, the same minus those two)."""
    layout = [(name, tuple(t.shape)) for name, t in AUBackbone(frames=6, size=64, se_bias=True).state_dict().items()]
    expected = [
        ("led.log_alpha", ()),
        ("led.log_r1", ()),
        ("led.log_r2", ()),
        ("conv1.weight", (32, 1, 1, 5, 5)),
        ("conv1.bias", (32,)),
        ("bn1.weight", (32,)),
        ("bn1.bias", (32,)),
        ("bn1.running_mean", (32,)),
        ("bn1.running_var", (32,)),
        ("bn1.num_batches_tracked", ()),
        ("conv2.weight", (64, 32, 2, 3, 3)),
        ("conv2.bias", (64,)),
        ("bn2.weight", (64,)),
        ("bn2.bias", (64,)),
        ("bn2.running_mean", (64,)),
        ("bn2.running_var", (64,)),
        ("bn2.num_batches_tracked", ()),
        ("se.fc1.weight", (4, 64)),
        ("se.fc1.bias", (4,)),
        ("se.fc2.weight", (64, 4)),
        ("se.fc2.bias", (64,)),
        ("fc_high.weight", (256, 10368)),
        ("fc_high.bias", (256,)),
    ]
    assert layout == expected
    default = [(name, tuple(t.shape)) for name, t in AUBackbone(frames=6, size=64).state_dict().items()]
    assert default == [item for item in expected if item[0] not in ("se.fc1.bias", "se.fc2.bias")]


# ---------------------------------------------------------------------------------------------- conv → ReLU → pool


@pytest.mark.parametrize(("channels", "height", "width"), [(1, 64, 64), (3, 32, 41), (1, 16, 17)])
def test_pooled_convolution_equals_conv_relu_maxpool(channels: int, height: int, width: int) -> None:
    x = torch.rand(5, channels, height, width, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(8, channels, 5, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(8, dtype=torch.float64, requires_grad=True)
    fast = conv2d_relu_max_pool(x, weight, bias, 3).permute(0, 3, 1, 2)
    ref = F.max_pool2d(F.relu(F.conv2d(x, weight, bias)), 3)
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ref)
    for a, b in zip(
        torch.autograd.grad(fast, (x, weight, bias), grad), torch.autograd.grad(ref, (x, weight, bias), grad)
    ):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    with torch.no_grad():  # the inference path keeps nothing for a backward pass, same values
        torch.testing.assert_close(conv2d_relu_max_pool(x, weight, bias, 3).permute(0, 3, 1, 2), ref)


def test_pooled_convolution_ties_go_to_the_first_maximum_like_max_pooling() -> None:
    """A flat image makes every candidate of a cell equal: max pooling sends the gradient to the first one."""
    x = torch.full((2, 1, 16, 16), 0.5, dtype=torch.float64, requires_grad=True)
    x.data[:, :, 8:, 8:] = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    weight = torch.rand(4, 1, 5, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    grad = torch.rand(2, 4, 4, 4, dtype=torch.float64)
    fast = torch.autograd.grad(conv2d_relu_max_pool(x, weight, bias, 3).permute(0, 3, 1, 2), (x, weight), grad)
    ref = torch.autograd.grad(F.max_pool2d(F.relu(F.conv2d(x, weight, bias)), 3), (x, weight), grad)
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------- fused batch norm


def _se_reference(se: FrameSqueezeExcitation, x: torch.Tensor) -> torch.Tensor:
    squeezed = x.mean(dim=(3, 4)).transpose(1, 2)
    weights = torch.sigmoid(se.fc2(F.relu(se.fc1(squeezed)))).transpose(1, 2)
    return x * weights[..., None, None]


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("kind", ["relu-bn-se", "bn-dropout", "bn"])
def test_fused_batch_norm_equals_the_layers(kind: str, momentum: float | None) -> None:
    torch.manual_seed(0)
    bn = nn.BatchNorm3d(6, momentum=momentum).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    se = FrameSqueezeExcitation(6, reduction=3).double()
    drop = nn.Dropout3d(0.4)
    x = (torch.randn(3, 6, 4, 5, 5, dtype=torch.float64) + 0.7).contiguous(memory_format=torch.channels_last_3d)
    grad = torch.randn(3, 6, 4, 5, 5, dtype=torch.float64)

    def run(fused: bool, train: bool) -> list[torch.Tensor]:
        layer, excite = copy.deepcopy(bn).train(train), copy.deepcopy(se)
        dropout = copy.deepcopy(drop).train(train)
        inputs = x.clone().requires_grad_()
        torch.manual_seed(7)
        if kind == "relu-bn-se":
            out = (
                batch_norm_gate(inputs, layer, relu=True, se=excite)
                if fused
                else _se_reference(excite, layer(F.relu(inputs)))
            )
        elif kind == "bn-dropout":
            out = batch_norm_gate(inputs, layer, dropout=dropout) if fused else dropout(layer(inputs))
        else:
            out = batch_norm_gate(inputs, layer) if fused else layer(inputs)
        params = [inputs, layer.weight, layer.bias, *excite.parameters()]
        grads = torch.autograd.grad(out, params, grad, allow_unused=True)
        extra = [layer.running_mean, layer.running_var, layer.num_batches_tracked.double()]
        return [out, *[g if g is not None else torch.zeros(()) for g in grads], *extra]

    for train in (True, False):
        for a, b in zip(run(True, train), run(False, train)):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_fused_batch_norm_float32_is_as_accurate_as_pytorchs_default_layout() -> None:
    """The reason it exists: PyTorch's channels-last CPU batch norm is ~30× less accurate in float32."""
    x = torch.rand(16, 32, 5, 20, 20, generator=torch.Generator().manual_seed(0)) * 3 + 2
    bn = nn.BatchNorm3d(32)
    truth = copy.deepcopy(bn).double()(x.double())
    default = copy.deepcopy(bn)(x)
    fused = batch_norm_gate(x.contiguous(memory_format=torch.channels_last_3d), copy.deepcopy(bn))
    error_default = (default.double() - truth).abs().max().item()
    error_fused = (fused.double() - truth).abs().max().item()
    assert error_fused <= 2 * error_default
