"""The LED stabiliser at the reference's pixel scale: aullm on [0, 1] pixels computes what the AU-LLM authors'
script (and MEB's LED) computes on the same clip in 0–255 pixels; the SE layer has no biases, as theirs; the old
behaviour stays reachable through model.led_stability / model.se_bias."""

from __future__ import annotations

import pytest
import torch

from aullm.config import LLMConfig, config_from_dict
from aullm.core.errors import ConfigError
from aullm.models.au_llm.modeling_au_llm import AULLM
from aullm.models.baselines.modeling_baselines import ResNetBaseline, SSSNetLED
from aullm.models.blocks.backbone import AUBackbone
from aullm.models.blocks.led import AULLM_LED_STABILITY, MEB_LED_STABILITY, LEDFilter
from aullm.models.factory import build_model
from aullm.models.llm.loading import load_llm
from reference_au_llm import REFERENCE_PROMPT, reference_au_llm_logits, reference_led, reference_led_matrix

pytestmark = pytest.mark.usefixtures("one_thread")
AUS = ["AU1", "AU2", "AU4", "AU12"]


@pytest.mark.parametrize(("pixel_stability", "reference"), [(AULLM_LED_STABILITY, 1e-8), (MEB_LED_STABILITY, 1.0)])
def test_led_on_unit_pixels_equals_the_reference_on_0_255_pixels(pixel_stability: float, reference: float) -> None:
    generator = torch.Generator().manual_seed(0)
    clip = torch.rand(3, 6, 9, 7, dtype=torch.float64, generator=generator)
    clip[0, :, :2] = 0.0  # an all-dark patch: the stabiliser keeps it finite
    led = LEDFilter(alpha=8.0, r1=0.35, r2=0.06, pixel_stability=pixel_stability).double()
    ours = led.filter_frames(clip)
    w = reference_led_matrix(led.alpha.item(), led.r1.item(), led.r2.item(), 6)
    theirs = reference_led((clip * 255).unsqueeze(2), w, reference)[:, 1:, 0]
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert torch.isfinite(ours).all()


def test_reference_stabiliser_cancels_brightness_and_the_old_one_did_not() -> None:
    """The normalisation exists for brightness invariance: with the reference's stabiliser a clip and the same
    clip at half the brightness filter alike; aullm's earlier stabiliser (1.0 on [0, 1] pixels, 255 here) did not."""
    clip = torch.rand(2, 6, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    for pixel_stability, close in ((AULLM_LED_STABILITY, True), (255.0, False)):
        led = LEDFilter(pixel_stability=pixel_stability)
        gap = (led.filter_frames(clip) - led.filter_frames(clip * 0.5)).abs().max().item()
        assert (gap < 1e-5) == close, (pixel_stability, gap)


def test_se_has_no_biases_by_default_and_old_layout_is_reachable() -> None:
    names = set(AUBackbone(frames=6, size=32).state_dict())
    assert {"se.fc1.weight", "se.fc2.weight"} <= names and not {"se.fc1.bias", "se.fc2.bias"} & names
    old = AUBackbone(frames=6, size=32, se_bias=True, led_stability=255.0)
    assert {"se.fc1.bias", "se.fc2.bias"} <= set(old.state_dict())
    assert old.led is not None and old.led.stability == pytest.approx(1.0)


def test_config_keys_reach_every_led_model() -> None:
    """model.led_stability (0–255 units; each model's default is its reference's) and model.se_bias."""
    tiny = load_llm(LLMConfig(name="tiny-random"), torch.device("cpu"))

    def build(name: str, **model: object) -> torch.nn.Module:
        cfg = config_from_dict(
            {"data": {"size": 32, "aus": AUS}, "model": {"name": name, **model}, "llm": {"name": "tiny-random"}}
        )
        return build_model(cfg, AUS, tiny if name in ("au_llm", "aullmpp") else None, seed=0)

    au_llm = build("au_llm")
    assert isinstance(au_llm, AULLM) and au_llm.backbone.led is not None
    assert au_llm.backbone.led.pixel_stability == AULLM_LED_STABILITY and au_llm.backbone.se.fc1.bias is None
    old = build("au_llm", led_stability=255, se_bias=True)
    assert old.backbone.led.stability == pytest.approx(1.0) and old.backbone.se.fc1.bias is not None
    aullmpp = build("aullmpp", se_bias=True)
    assert aullmpp.backbone.led.pixel_stability == AULLM_LED_STABILITY and aullmpp.backbone.se.fc1.bias is not None
    sssnet = build("sssnet_led")
    assert isinstance(sssnet, SSSNetLED) and sssnet.backbone.led.pixel_stability == MEB_LED_STABILITY
    resnet = build("resnet18_led", led_stability=3.0)
    assert isinstance(resnet, ResNetBaseline) and resnet.led is not None and resnet.led.pixel_stability == 3.0
    assert build("resnet18_led").led.pixel_stability == MEB_LED_STABILITY
    with pytest.raises(ConfigError, match=r"model\.led_stability"):
        config_from_dict({"model": {"led_stability": 0}})
    with pytest.raises(ConfigError, match="led_stability"):  # no LED, no such option
        config_from_dict({"model": {"name": "resnet18", "led_stability": 1.0}})


def _au_llm(**model: object) -> AULLM:
    tiny = load_llm(LLMConfig(name="tiny-random"), torch.device("cpu"))
    cfg = config_from_dict(
        {
            "data": {"frames": 6, "size": 64, "aus": AUS},
            "model": {"name": "au_llm", "prompt": REFERENCE_PROMPT, **model},
            "llm": {"name": "tiny-random", "prefix_cache": False},
        }
    )
    built = build_model(cfg, AUS, tiny, seed=3)
    assert isinstance(built, AULLM)
    return built.eval()


def test_au_llm_equals_the_authors_network_on_the_same_weights() -> None:
    """aullm's AU-LLM and a re-implementation of the authors' Net_EnhancedFusion_LLM, loaded with the same
    weights, give the same logits now; with aullm's earlier stabiliser (and zero SE biases) they did not."""
    clips = torch.rand(4, 6, 64, 64, generator=torch.Generator().manual_seed(2))
    model = _au_llm()
    with torch.no_grad():
        gap_now = (model(clips).logits - reference_au_llm_logits(model, clips)).abs().max().item()
    old = _au_llm(led_stability=255.0, se_bias=True)
    with torch.no_grad():
        old.backbone.se.fc1.bias.zero_()
        old.backbone.se.fc2.bias.zero_()
        gap_old = (old(clips).logits - reference_au_llm_logits(old, clips)).abs().max().item()
    assert gap_now < 1e-5
    assert gap_old > 100 * max(gap_now, 1e-7)
