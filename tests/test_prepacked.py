"""oneDNN pre-packed products of the frozen LLM weights (llm.prepack): the same function and gradients as
F.linear, on the same parameters, shared across reasoners, and the plain product wherever packing does not apply."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from aullm.config import LLMConfig, LoraConfig, config_from_dict
from aullm.core.errors import ConfigError
from aullm.models.kernels import prepacked
from aullm.models.kernels.prepacked import PrepackedLinear, prepack_frozen_linears, should_prepack
from aullm.models.llm.loading import load_llm, randomly_initialised
from aullm.models.llm.reasoner import LLMReasoner

CPU = torch.device("cpu")
PROMPT = "Analyze the facial features to classify action units:"

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not prepacked.onednn_available(), reason="this torch build has no oneDNN"),
]


@pytest.fixture(scope="module")
def tiny():
    return load_llm(LLMConfig(name="tiny-random"), CPU)


def _frozen_linear(in_features: int, out_features: int, bias: bool, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    linear = nn.Linear(in_features, out_features, bias=bias)
    linear.requires_grad_(False)
    return linear


def _packed(linear: nn.Linear) -> PrepackedLinear:
    holder = nn.Sequential(linear)
    assert prepack_frozen_linears(holder, {}) == 1
    module = holder[0]
    assert isinstance(module, PrepackedLinear)
    return module


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> bool:
    return bool((a - b).abs().max() <= rel * b.abs().max())


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 37), (74, 37), (3, 5, 37)])
def test_product_and_input_gradient_equal_f_linear(bias, shape):
    linear = _frozen_linear(37, 53, bias)
    module = _packed(linear)
    x = torch.randn(*shape, requires_grad=True)
    reference = torch.nn.functional.linear(x, linear.weight, linear.bias)
    out = module(x)
    assert out.shape == reference.shape and _close(out, reference)
    weights = torch.randn(reference.shape)
    (grad_ref,) = torch.autograd.grad((reference * weights).sum(), x)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)
    assert _close(grad, grad_ref)


def test_non_contiguous_input_and_gradient():
    linear = _frozen_linear(48, 20, True)
    module = _packed(linear)
    base = torch.randn(48, 30, requires_grad=True)
    x = base.t()  # [30, 48], not contiguous
    assert not x.is_contiguous()
    out = module(x)
    assert _close(out, torch.nn.functional.linear(x, linear.weight, linear.bias))
    out.sum().backward()
    expected = linear.weight.sum(0).expand(30, 48).t()
    assert base.grad is not None and _close(base.grad, expected)


def test_same_parameters_and_state_dict_keys():
    linear = _frozen_linear(16, 8, True)
    module = _packed(linear)
    assert module.weight is linear.weight and module.bias is linear.bias
    assert isinstance(module, nn.Linear)
    assert set(module.state_dict()) == {"weight", "bias"}


def test_weight_changed_in_place_is_not_served_stale():
    linear = _frozen_linear(16, 8, False)
    module = _packed(linear)
    x = torch.randn(4, 16)
    with torch.no_grad():
        linear.weight.mul_(-2.0)
    assert _close(module(x), torch.nn.functional.linear(x, linear.weight))


def test_weight_that_trains_gets_its_gradient():
    """If someone unfreezes a packed weight, it must learn like an nn.Linear, not silently get no gradient."""
    linear = _frozen_linear(16, 8, True)
    module = _packed(linear)
    linear.weight.requires_grad_(True)
    x = torch.randn(4, 16)
    module(x).sum().backward()
    assert linear.weight.grad is not None
    assert _close(linear.weight.grad, x.sum(0).expand(8, 16))


def test_other_dtypes_and_trainable_linears_are_left_alone():
    holder = nn.Sequential(_frozen_linear(8, 8, False), nn.Linear(8, 8), _frozen_linear(8, 8, False).bfloat16())
    assert prepack_frozen_linears(holder, {}) == 1
    assert [type(m) for m in holder] == [PrepackedLinear, nn.Linear, nn.Linear]
    module = _packed(_frozen_linear(8, 8, False))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts the plain product; the packed one would not
        assert module(torch.randn(2, 8)).dtype == torch.bfloat16


def test_pickled_copy_computes_the_same_and_deepcopy_keeps_the_packing():
    linear = _frozen_linear(12, 6, True)
    module = _packed(linear)
    x = torch.randn(3, 12)
    restored = pickle.loads(pickle.dumps(module))
    assert restored.packed is None and _close(restored(x), module(x))
    clone = copy.deepcopy(module)
    assert clone.packed is module.packed and _close(clone(x), module(x))


def test_policy():
    model = nn.Sequential(_frozen_linear(8, 8, False))
    assert should_prepack("auto", model, CPU, torch.float32)
    assert should_prepack(True, model, CPU, torch.float32)
    assert not should_prepack(False, model, CPU, torch.float32)
    assert not should_prepack("auto", model, CPU, torch.bfloat16)
    assert not should_prepack(True, model, torch.device("cuda"), torch.float32)


def test_auto_stays_off_when_the_copies_would_not_fit(monkeypatch):
    model = nn.Sequential(_frozen_linear(64, 64, False))  # two packed copies: 32 KiB
    monkeypatch.setattr(prepacked, "physical_memory_bytes", lambda: 100 * 1024)
    assert not should_prepack("auto", model, CPU, torch.float32)
    assert should_prepack(True, model, CPU, torch.float32)


def test_config_key():
    assert config_from_dict({}).llm.prepack == "auto"
    assert config_from_dict({"llm": {"prepack": False}}).llm.prepack is False
    with pytest.raises(ConfigError, match=r"llm\.prepack"):
        config_from_dict({"llm": {"prepack": "sometimes"}})


# ---------------------------------------------------------------------------------------------- in the reasoner


def _perturb(reasoner: LLMReasoner) -> None:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in reasoner.lora_parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)


def test_reasoner_packs_every_frozen_linear_once_per_loaded_llm(tiny):
    first = LLMReasoner(tiny, LoraConfig(), PROMPT, seed=1)
    layers = tiny.model.config.num_hidden_layers
    assert first.prepacked_modules == 7 * layers  # q, k, v, o, gate, up, down
    second = LLMReasoner(tiny, LoraConfig(), PROMPT, seed=2)
    a = first.decoder.layers[0].mlp.up_proj
    b = second.decoder.layers[0].mlp.up_proj
    assert isinstance(a, PrepackedLinear) and a.packed is b.packed  # packed once, shared
    assert a.weight is tiny.model.get_decoder().layers[0].mlp.up_proj.weight  # no copy of the base weight
    assert type(tiny.model.get_decoder().layers[0].mlp.up_proj) is nn.Linear  # the loaded model is untouched
    assert LLMReasoner(tiny, LoraConfig(), PROMPT, seed=1, prepack=False).prepacked_modules == 0
    # LoRA's own (trainable) linears are never packed
    lora = [m for name, m in first.decoder.named_modules() if name.endswith((".lora_A.default", ".lora_B.default"))]
    assert len(lora) == 4 * layers and all(type(m) is nn.Linear for m in lora)


def test_random_init_llm_gets_its_own_packing(tiny):
    other = randomly_initialised(tiny, seed=3)
    reasoner = LLMReasoner(other, LoraConfig(), PROMPT, seed=1)
    packed = reasoner.decoder.layers[0].mlp.up_proj
    assert isinstance(packed, PrepackedLinear)
    x = torch.randn(2, tiny.hidden_size)
    assert _close(packed(x), torch.nn.functional.linear(x, other.model.get_decoder().layers[0].mlp.up_proj.weight))


@pytest.mark.parametrize("path", ["full", "packed", "kv"])
def test_reasoner_outputs_and_gradients_equal_the_plain_products(tiny, path):
    plain = LLMReasoner(tiny, LoraConfig(dropout=0.0), PROMPT, seed=4, prepack=False)
    fast = LLMReasoner(tiny, LoraConfig(dropout=0.0), PROMPT, seed=4, prepack=True)
    _perturb(plain)
    _perturb(fast)
    tokens = torch.randn(5, 1, tiny.hidden_size) * 0.5
    outs, grads = [], []
    for reasoner in (plain, fast):
        reasoner.train()
        x = tokens.clone().requires_grad_(True)
        out = reasoner.forward_path(x, path)
        weights = torch.linspace(-1.0, 1.0, out.numel()).reshape(out.shape)
        params = [x, *reasoner.lora_parameters()]
        grads.append(torch.autograd.grad((out * weights).sum(), params))
        outs.append(out)
    assert _close(outs[1], outs[0])
    for g_fast, g_plain in zip(grads[1], grads[0]):
        assert _close(g_fast, g_plain, rel=1e-4)
