"""AU-LLM end to end on the tiny-random LLM: every variant × token position, reset equality, trainable state,
parameter report, registry, and a small learnable problem. (LoRA placement details: tests/test_reasoner.py.)"""

from __future__ import annotations

import pytest
import torch

from aullm.config import Config, LLMConfig, config_from_dict
from aullm.core.errors import UserError
from aullm.models.au_llm.modeling_au_llm import AULLM, VARIANTS
from aullm.models.base import ModelOutput
from aullm.models.factory import build_model
from aullm.models.llm.loading import TINY_CONFIG, load_llm
from aullm.models.registry import list_models, model_spec
from aullm.models.summary import llm_parameter_counts, log_parameter_report, parameter_report
from aullm.training.losses import build_loss

CPU = torch.device("cpu")
AUS = ["AU1", "AU2", "AU4"]
FRAMES, SIZE = 6, 32


@pytest.fixture(scope="module")
def tiny():
    return load_llm(LLMConfig(name="tiny-random"), CPU)


def _cfg(variant: str = "all", position: str = "append", **model: object) -> Config:
    return config_from_dict(
        {
            "data": {"frames": FRAMES, "size": SIZE, "aus": AUS},
            "model": {"variant": variant, "token_position": position, "prompt_vectors": 4, **model},
            "llm": {"name": "tiny-random", "lora": {"r": 4, "alpha": 8}},
        }
    )


def _build(tiny, variant: str = "all", position: str = "append", seed: int = 0, **model: object) -> AULLM:
    return build_model(_cfg(variant, position, **model), AUS, tiny, seed=seed)


@pytest.mark.parametrize("position", ["append", "prepend"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_backward_every_variant(tiny, variant: str, position: str) -> None:
    model = _build(tiny, variant, position)
    model.train()
    x = torch.rand(3, FRAMES, SIZE, SIZE)
    out = model(x)
    assert isinstance(out, ModelOutput) and out.aux_loss is None
    assert out.logits.shape == (3, len(AUS)) and out.logits.dtype == torch.float32
    build_loss(_cfg().train.loss)(out.logits, torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])).backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    # (The LED gain α cancels in the normaliser at the reference's stabiliser; its gradient exists but is ~0.)
    assert grads["backbone.led.log_alpha"] is not None
    for name in ("backbone.led.log_r1", "backbone.led.log_r2", "head.weight"):
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
    # LoRA B starts at zero, so its gradient is the first to move; every trainable LoRA tensor gets one.
    lora_b = [g for name, g in grads.items() if "lora_B" in name]
    assert lora_b and all(g is not None for g in lora_b) and any(g.abs().sum() > 0 for g in lora_b)
    if variant == "prompt_learning":
        assert model.prompt_vectors.grad.abs().sum() > 0 and model.projector is None
    else:
        assert model.projector is not None and model.prompt_vectors is None
    # The base LLM stays frozen: no gradient, and only LoRA is trainable inside the reasoner.
    for name, param in model.reasoner.named_parameters():
        assert param.requires_grad == ("lora_" in name), name
        if not param.requires_grad:
            assert param.grad is None


def test_projector_inputs_follow_variant(tiny) -> None:
    mid, high, d = 64 * 2 * 3 * 3, 256, tiny.hidden_size
    assert _build(tiny, "all").projector.fc1.in_features == mid + high
    assert _build(tiny, "all").projector.fc1.out_features == (mid + high + d) // 2
    assert _build(tiny, "f_high").projector.fc1.in_features == high
    f_mid = _build(tiny, "f_mid")
    assert f_mid.projector.fc1.in_features == mid and not f_mid.backbone.fc_high.weight.requires_grad
    linear = _build(tiny, "efp_linear").projector
    assert [type(m).__name__ for m in linear.modules()] == ["LinearProjector", "Linear"]
    assert (linear.fc.in_features, linear.fc.out_features) == (mid + high, d)
    prompt = _build(tiny, "prompt_learning")
    assert prompt.prompt_vectors.shape == (4, d) and prompt.fusion[0].in_features == d + high


def test_flow_input(tiny) -> None:
    cfg = config_from_dict({"data": {"input": "flow", "size": SIZE, "aus": AUS}, "llm": {"name": "tiny-random"}})
    model = build_model(cfg, AUS, tiny)
    assert model(torch.rand(2, 3, SIZE, SIZE)).logits.shape == (2, 3)


def _train_steps(model: AULLM, steps: int = 2) -> None:
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(torch.rand(4, FRAMES, SIZE, SIZE)).logits.pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("variant", ["all", "prompt_learning"])
def test_reset_equals_fresh_build(tiny, variant: str) -> None:
    fresh = _build(tiny, variant, seed=5).trainable_state_dict()
    used = _build(tiny, variant, seed=1)
    _train_steps(used)  # moves every trainable tensor and the BN running statistics
    assert any(not torch.equal(fresh[k], v) for k, v in used.trainable_state_dict().items())
    torch.manual_seed(12345)  # the global RNG state must not matter
    used.reset(5)
    after = used.trainable_state_dict()
    assert after.keys() == fresh.keys()
    for key in fresh:
        assert torch.equal(fresh[key], after[key]), key
    other = _build(tiny, variant, seed=6).trainable_state_dict()
    assert not torch.equal(other["backbone.conv1.weight"], fresh["backbone.conv1.weight"])
    assert not torch.equal(other["head.weight"], fresh["head.weight"])


def test_trainable_state_covers_everything_but_the_base_llm(tiny) -> None:
    model = _build(tiny, "all", seed=0)
    state = model.trainable_state_dict()
    own = {name for name, p in model.named_parameters() if p.requires_grad and not name.startswith("reasoner.")}
    assert own <= set(state)
    assert {"backbone.bn1.running_mean", "backbone.bn2.running_var", "backbone.bn1.num_batches_tracked"} <= set(state)
    lora = {k for k in state if k.startswith("reasoner.")}
    assert lora == {f"reasoner.{k}" for k in model.reasoner.trainable_state_dict()}
    assert all("lora_" in k for k in lora)  # no frozen base weight is saved
    buffers = {k for k in state if "running_" in k or "num_batches" in k}
    assert len(buffers) == 6  # two BatchNorms × (running mean, var, batches tracked)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(state[k].numel() for k in set(state) - buffers) == trainable

    _train_steps(model)
    assert not torch.equal(state["head.weight"], model.head.weight)  # a snapshot, not live references
    state = model.trainable_state_dict()
    target = _build(tiny, "all", seed=9)
    target.load_trainable_state_dict(state)
    model.eval()
    target.eval()
    x = torch.rand(2, FRAMES, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, target(x).logits, rtol=0, atol=0)
    with pytest.raises(ValueError, match="missing"):
        target.load_trainable_state_dict({k: v for k, v in state.items() if k != "head.bias"})


def test_parameter_report_parts(tiny, caplog) -> None:
    model = _build(tiny, "all")
    rows = {r.part: r for r in parameter_report(model)}
    assert list(rows) == ["backbone", "projector", "llm base", "lora", "head", "total"]
    tiny_base = sum(p.numel() for p in tiny.model.parameters())
    assert rows["llm base"].total == tiny_base and rows["llm base"].trainable == 0
    assert rows["lora"].trainable == rows["lora"].total == 2 * (4 * (64 + 64) + 4 * (64 + 32))
    assert rows["head"].total == 64 * 3 + 3
    assert rows["backbone"].total == rows["backbone"].trainable
    total = rows["total"]
    assert total.total == sum(p.numel() for p in model.parameters())
    assert total.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert total.total - total.trainable == tiny_base
    assert log_parameter_report(model) == list(rows.values())
    prompt = {r.part: r for r in parameter_report(_build(tiny, "prompt_learning"))}
    assert "projector" not in prompt and prompt["prompt"].total == 4 * 64 + (64 + 256) * 64 + 64
    # Counting from a config on the meta device agrees with the real model.
    from transformers import Qwen2Config

    base, lora = llm_parameter_counts(Qwen2Config(**TINY_CONFIG), 4, ["q_proj", "v_proj"])
    assert (base, lora) == (tiny_base, rows["lora"].total)


def test_registry(tiny) -> None:
    assert model_spec("au_llm").options().needs_llm
    with pytest.raises(UserError, match=r"invalid value for model\.name: 'no_such_model' \(known: au_llm"):
        model_spec("no_such_model")
    with pytest.raises(ValueError, match="needs a loaded LLM"):
        build_model(_cfg(), AUS, None)
    # Without an explicit seed the config's first seed is used.
    cfg = config_from_dict(
        {"seeds": [3], "data": {"frames": FRAMES, "size": SIZE, "aus": AUS}, "llm": {"name": "tiny-random"}}
    )
    a, b = build_model(cfg, AUS, tiny), build_model(cfg, AUS, tiny, seed=3)
    assert torch.equal(a.head.weight, b.head.weight)
    assert set(list_models()) >= {"au_llm", "aullmpp", "sssnet_led", "resnet18_led", "resnet18", "resnet34", "lbptop"}


def _separable_batch(n: int, generator: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each AU is a patch that brightens from frame 3 on, in its own place; the noisy background is static."""
    labels = (torch.rand(n, len(AUS), generator=generator) < 0.5).float()
    clips = torch.rand(n, 1, size, size, generator=generator).mul(0.5).expand(n, FRAMES, size, size).clone()
    for k, (r, c) in enumerate([(1, 1), (1, 9), (9, 5)]):
        on = labels[:, k].bool()
        clips[on, 3:, r : r + 6, c : c + 6] += 0.4
    return clips, labels


def test_learns_a_tiny_separable_problem(tiny) -> None:
    """150 Adam steps on 16×16 clips: the loss falls by over 10× and held-out predictions equal the labels."""
    size = 16
    torch.manual_seed(0)
    cfg = config_from_dict(
        {
            "data": {"frames": FRAMES, "size": size, "aus": AUS},
            "model": {"dropout": 0.1},
            "llm": {"name": "tiny-random", "lora": {"r": 4, "alpha": 8}},
        }
    )
    model = build_model(cfg, AUS, tiny, seed=0)
    loss_fn = build_loss(cfg.train.loss)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    x_test, y_test = _separable_batch(32, generator, size)
    model.eval()
    with torch.no_grad():
        first = loss_fn(model(x_test).logits, y_test).item()
    model.train()
    for _ in range(150):
        x, y = _separable_batch(8, generator, size)
        loss = loss_fn(model(x).logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(x_test).logits
    last = loss_fn(logits, y_test).item()
    assert last < 0.1 * first
    assert torch.equal((logits > 0).float(), y_test)


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_au_llm_trains_with_its_llm_in_bfloat16(prefix_cache: bool):
    """`llm.dtype: auto` is bf16 on a GPU, a path no CPU run takes by default: with the frozen LLM in bf16 (here on
    the CPU) both LLM paths train, the logits and the LoRA weights stay float32, and the two paths agree to bf16
    precision."""
    cfg = config_from_dict(
        {
            "data": {"frames": FRAMES, "size": SIZE, "aus": AUS},
            "llm": {"name": "tiny-random", "dtype": "bfloat16", "prefix_cache": prefix_cache},
        }
    )
    low = load_llm(cfg.llm, CPU)
    assert low.dtype == torch.bfloat16
    model = build_model(cfg, AUS, low, seed=0).train()
    assert {p.dtype for n, p in model.named_parameters() if p.requires_grad} == {torch.float32}
    generator = torch.Generator().manual_seed(0)
    clips = torch.rand(8, 1, FRAMES, SIZE, SIZE, generator=generator)
    labels = (torch.rand(8, len(AUS), generator=generator) < 0.4).float()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(12):
        logits = model(clips).logits
        assert logits.dtype == torch.float32
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    model.eval()
    with torch.no_grad():
        token = torch.randn(4, 1, low.hidden_size) * 0.1
        fast, full = model.reasoner.forward_path(token, "packed"), model.reasoner.forward_full(token)
    assert (fast - full).abs().max().item() <= 0.05 * max(1.0, full.abs().max().item())
