"""LED filter (Eq. 1 against a direct loop), the 3D-CNN + SE backbone's shapes, projectors, and seeded init."""

from __future__ import annotations

import pytest
import torch

from aullm.models.base import init_module_, seeded_generator
from aullm.models.blocks.backbone import AUBackbone
from aullm.models.blocks.led import LEDFilter
from aullm.models.blocks.projectors import EnhancedFusionProjector, LinearProjector


def _eq1_loop(alpha: float, r1: float, r2: float, T: int) -> torch.Tensor:
    """Eq. 1 of the paper written out entry by entry."""
    W = torch.zeros(T, T, dtype=torch.float64)
    for i in range(T):
        for j in range(T):
            if j > i:
                W[i, j] = alpha * ((1 - r1) ** (j - i) * r1 ** min(1, i) - (1 - r2) ** (j - i) * r2 ** min(1, i))
            elif j == i:
                W[i, j] = alpha * (r1 - r2)
    return W


def _filter_loop(x: torch.Tensor, W: torch.Tensor, stability: float) -> torch.Tensor:
    """Normalised filtering, one output frame at a time; frame 0 passes through."""
    out = x.clone()
    for j in range(1, x.shape[2]):
        signed = sum(W[i, j] * x[:, :, i] for i in range(x.shape[2]))
        magnitude = sum(abs(W[i, j]) * x[:, :, i] for i in range(x.shape[2]))
        out[:, :, j] = signed / (magnitude + stability)
    return out


@pytest.mark.parametrize("T", [2, 3, 6, 9])
def test_led_matrix_and_filter_match_direct_loop(T: int) -> None:
    led = LEDFilter(alpha=7.0, r1=0.35, r2=0.08).double()
    W = led.matrix(T)
    assert (led.alpha.item(), led.r1.item(), led.r2.item()) == pytest.approx((7.0, 0.35, 0.08), rel=1e-6)
    expected = _eq1_loop(led.alpha.item(), led.r1.item(), led.r2.item(), T)
    torch.testing.assert_close(W, expected, rtol=1e-12, atol=1e-12)
    x = torch.rand(2, 1, T, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(led(x), _filter_loop(x, expected, led.stability), rtol=1e-10, atol=1e-12)
    # The default initialisation is the prior work's: α = 10, r1 = 0.4, r2 = 0.05 (stored as logs).
    default = LEDFilter()
    assert default.alpha.item() == pytest.approx(10.0) and default.r1.item() == pytest.approx(0.4)
    assert default.r2.item() == pytest.approx(0.05)


def test_led_gradients_reach_r1_r2_and_alpha_only_through_the_stabiliser() -> None:
    """r1 and r2 (the filter's shape) always learn. The gain α scales the signed response and the normaliser alike,
    so with the reference's tiny stabiliser it cancels (output ≈ S/M) and its gradient is rounding noise, as in the
    authors' network; with a strong stabiliser (255: aullm's earlier filter) it gets a real gradient."""
    x = torch.rand(3, 1, 6, 8, 8, generator=torch.Generator().manual_seed(0))
    target = torch.rand(3, 1, 6, 8, 8, generator=torch.Generator().manual_seed(1))
    for pixel_stability in (1e-8, 255.0):
        led = LEDFilter(pixel_stability=pixel_stability)
        ((led(x) - target) ** 2).mean().backward()
        grads = {p: getattr(led, p).grad for p in ("log_alpha", "log_r1", "log_r2")}
        assert all(g is not None and torch.isfinite(g) for g in grads.values())
        assert grads["log_r1"].abs().item() > 1e-3 and grads["log_r2"].abs().item() > 1e-4
        alpha_learns = grads["log_alpha"].abs().item() > 1e-4
        assert alpha_learns == (pixel_stability == 255.0)


def test_led_cancels_global_brightness() -> None:
    """Normalised filtering: a static clip gives the same response whatever its brightness (default stabiliser)."""
    led = LEDFilter()
    still = torch.full((1, 1, 6, 4, 4), 0.3)
    out = led(still)[:, :, 1:]
    brighter = led(still * 3)[:, :, 1:]
    torch.testing.assert_close(out, brighter, atol=1e-5, rtol=1e-4)


def test_backbone_shapes_clip_and_flow() -> None:
    backbone = AUBackbone(frames=6, size=64)
    assert backbone.mid_shape == (64, 2, 9, 9) and backbone.mid_dim == 10368
    out = backbone(torch.rand(3, 6, 64, 64))
    assert out.f_mid.shape == (3, 10368) and out.f_high.shape == (3, 256)
    assert out.x_att.shape == (3, 64, 4, 18, 18)
    assert backbone.se.last_weights.shape == (3, 64, 4)  # per-frame SE weights, kept for plots
    assert backbone(torch.rand(2, 1, 6, 64, 64)).f_mid.shape == (2, 10368)
    flow = AUBackbone(frames=6, size=64, input_kind="flow")
    assert flow.led is None and flow(torch.rand(2, 3, 64, 64)).f_mid.shape == (2, 64 * 9 * 9)
    with pytest.raises(ValueError, match="expected clips"):
        backbone(torch.rand(2, 5, 64, 64))


@pytest.mark.parametrize(("frames", "size"), [(2, 16), (4, 32), (8, 48)])
def test_backbone_shapes_follow_config(frames: int, size: int) -> None:
    backbone = AUBackbone(frames=frames, size=size)
    out = backbone(torch.rand(2, frames, size, size))
    assert out.f_mid.shape == (2, backbone.mid_dim)
    assert backbone.mid_dim == int(torch.tensor(backbone.mid_shape).prod())


def test_backbone_captures_activations_for_gradcam() -> None:
    backbone = AUBackbone(frames=6, size=32)
    backbone.capture_activations = True
    out = backbone(torch.rand(2, 6, 32, 32))
    out.f_high.sum().backward()
    act = backbone.last_activations
    assert act is not None and act.grad is not None and act.grad.shape == act.shape


def test_projectors() -> None:
    efp = EnhancedFusionProjector(10624, 576, dropout=0.3)
    assert efp.fc1.out_features == (10624 + 576) // 2 and efp.fc2.out_features == 576
    assert efp(torch.rand(2, 10624)).shape == (2, 576)
    assert LinearProjector(100, 64)(torch.rand(2, 100)).shape == (2, 64)


def test_seeded_init_is_exact_and_independent_of_global_rng() -> None:
    a, b = AUBackbone(frames=6, size=32), AUBackbone(frames=6, size=32)
    torch.manual_seed(123)
    init_module_(a, seeded_generator(5))
    torch.manual_seed(999)
    init_module_(b, seeded_generator(5))
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    init_module_(b, seeded_generator(6))
    assert not torch.equal(a.conv1.weight, b.conv1.weight)
    with pytest.raises(TypeError, match="init_own_parameters"):

        class Odd(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.w = torch.nn.Parameter(torch.zeros(3))

        init_module_(Odd(), seeded_generator(0))
