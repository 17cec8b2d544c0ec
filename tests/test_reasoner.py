"""LLMReasoner: LoRA placement, reset equality, and the prefix-cache fast path == the full-sequence path."""

from __future__ import annotations

import logging

import pytest
import torch

from aullm.config import LLMConfig, LoraConfig
from aullm.core.errors import UserError
from aullm.models.llm import reasoner as reasoner_module
from aullm.models.llm.loading import load_llm
from aullm.models.llm.reasoner import LLMReasoner

CPU = torch.device("cpu")
PROMPT = "Analyze the facial features to classify action units:"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    return load_llm(LLMConfig(name="tiny-random"), CPU)


def _perturb_lora(reasoner: LLMReasoner, seed: int = 0) -> None:
    """LoRA B starts at zero (LoRA is a no-op then): make it non-zero so the checks cover LoRA's effect."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in reasoner.lora_parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)


def _grads(output: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    weights = torch.linspace(-1.0, 1.0, output.numel()).reshape(output.shape)
    return list(torch.autograd.grad((output * weights).sum(), inputs))


def test_lora_only_in_configured_modules_base_frozen(tiny):
    reasoner = LLMReasoner(tiny, LoraConfig(r=8, alpha=16, targets=["q_proj", "v_proj"]), PROMPT, seed=1)
    trainable = {name: p for name, p in reasoner.named_parameters() if p.requires_grad}
    assert trainable
    for name in trainable:
        assert ".lora_A." in name or ".lora_B." in name
        assert ".q_proj." in name or ".v_proj." in name
    # 2 layers × (q: 64→64, v: 64→32) with r=8: A = 8×64 each, B = 64×8 and 32×8
    expected = 2 * ((8 * 64 + 64 * 8) + (8 * 64 + 32 * 8))
    assert sum(p.numel() for p in trainable.values()) == expected
    frozen = [p for name, p in reasoner.named_parameters() if not p.requires_grad]
    assert frozen and all(p.dtype == torch.float32 for p in trainable.values())
    # base weights are shared with the loaded LLM, not copied
    base_ptrs = {p.data_ptr() for p in tiny.model.parameters()}
    assert all(p.data_ptr() in base_ptrs for p in frozen)
    assert not any("lora_" in name for name, _ in tiny.model.named_parameters())
    # one registered copy of the decoder: state_dict = base weights once + LoRA
    assert [name for name, _ in reasoner.named_children()] == ["decoder"]
    assert len(reasoner.state_dict()) == len(tiny.model.get_decoder().state_dict()) + len(trainable)


def test_lora_targets_from_config(tiny):
    reasoner = LLMReasoner(tiny, LoraConfig(r=4, targets=["k_proj", "o_proj", "down_proj"]), PROMPT, seed=1)
    names = [name for name, p in reasoner.named_parameters() if p.requires_grad]
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names} == {"k_proj", "o_proj", "down_proj"}
    with pytest.raises(UserError, match="no_such_proj"):
        LLMReasoner(tiny, LoraConfig(targets=["no_such_proj"]), PROMPT)


def test_reset_equals_a_fresh_application(tiny):
    lora = LoraConfig(r=8, alpha=16, dropout=0.1)
    fresh = LLMReasoner(tiny, lora, PROMPT, seed=7)
    used = LLMReasoner(tiny, lora, PROMPT, seed=3)
    _perturb_lora(used)
    used.reset(7)
    a, b = fresh.trainable_state_dict(), used.trainable_state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], LLMReasoner(tiny, lora, PROMPT, seed=8).trainable_state_dict()[k]) for k in a)
    # without an explicit seed, construction follows torch.manual_seed and does not consume the global stream
    torch.manual_seed(7)
    implicit = LLMReasoner(tiny, lora, PROMPT)
    after = torch.rand(1)
    torch.manual_seed(7)
    assert torch.equal(torch.rand(1), after)
    assert all(torch.equal(implicit.trainable_state_dict()[k], a[k]) for k in a)


def test_state_dict_roundtrip_and_key_check(tiny):
    lora = LoraConfig(r=4)
    source = LLMReasoner(tiny, lora, PROMPT, seed=1)
    _perturb_lora(source)
    target = LLMReasoner(tiny, lora, PROMPT, seed=2)
    target.load_trainable_state_dict(source.trainable_state_dict())
    x = torch.randn(3, 1, 64)
    source.eval()
    target.eval()
    with torch.no_grad():
        assert torch.equal(source(x), target(x))
    with pytest.raises(UserError):
        target.load_trainable_state_dict({"nope": torch.zeros(1)})


@pytest.mark.parametrize("path", ["packed", "kv"])
@pytest.mark.parametrize("n_tokens", [1, 3])
def test_fast_paths_match_full_path_outputs_and_gradients(tiny, path, n_tokens):
    reasoner = LLMReasoner(tiny, LoraConfig(r=8, alpha=16, dropout=0.1), PROMPT, "append", True, seed=0)
    _perturb_lora(reasoner)
    reasoner.eval()  # LoRA dropout off, so every path computes the same function
    assert reasoner.uses_fast_path
    x = torch.randn(6, n_tokens, 64, requires_grad=True)
    params = reasoner.lora_parameters()
    fast = reasoner.forward_path(x, path)
    full = reasoner.forward_full(x)
    assert fast.shape == (6, 64) and fast.dtype == torch.float32
    assert (fast - full).abs().max().item() <= 1e-4
    grads_fast = _grads(fast, [x, *params])
    grads_full = _grads(full, [x, *params])
    for g_fast, g_full in zip(grads_fast, grads_full):
        scale = max(1.0, g_full.abs().max().item())
        assert (g_fast - g_full).abs().max().item() <= 1e-4 * scale
    assert all(g.abs().sum() > 0 for g in grads_fast)  # every LoRA matrix (and the tokens) gets a gradient


def test_forward_dispatch_uses_packed_in_training_and_kv_when_too_long(tiny):
    reasoner = LLMReasoner(tiny, LoraConfig(r=8, alpha=16, dropout=0.0), PROMPT, seed=0)
    _perturb_lora(reasoner)
    x = torch.randn(5, 1, 64, requires_grad=True)
    full = reasoner.forward_full(x)
    used = []
    for name in ("_forward_packed", "_forward_prefix_cached"):
        original = getattr(reasoner, name)
        setattr(reasoner, name, lambda *a, _o=original, _n=name: (used.append(_n), _o(*a))[1])
    assert (reasoner(x) - full).abs().max().item() <= 1e-4
    reasoner.packed_max_len = reasoner.prompt_tokens + 4  # 5 tokens do not fit: broadcast-KV form
    assert (reasoner(x) - full).abs().max().item() <= 1e-4
    assert used == ["_forward_packed", "_forward_prefix_cached"]


def test_packed_path_with_eager_attention(tiny):
    reasoner = LLMReasoner(tiny, LoraConfig(r=8, alpha=16), PROMPT, seed=0)
    _perturb_lora(reasoner)
    reasoner.eval()
    reasoner.decoder.config._attn_implementation = "eager"
    x = torch.randn(4, 2, 64)
    packed = reasoner.forward_path(x, "packed")
    assert (packed - reasoner.forward_full(x)).abs().max().item() <= 1e-4
    assert tiny.model.config._attn_implementation == "sdpa"  # the base model's config is not touched


def test_fast_path_matches_in_train_mode_without_dropout(tiny):
    reasoner = LLMReasoner(tiny, LoraConfig(r=8, alpha=16, dropout=0.0), PROMPT, seed=0)
    _perturb_lora(reasoner)
    reasoner.train()
    x = torch.randn(4, 1, 64)
    assert (reasoner(x) - reasoner.forward_full(x)).abs().max().item() <= 1e-4


def test_eval_cache_reused_and_invalidated_by_weight_changes(tiny):
    reasoner = LLMReasoner(tiny, LoraConfig(r=8, alpha=16), PROMPT, seed=0)
    _perturb_lora(reasoner)
    reasoner.eval()
    x = torch.randn(4, 1, 64)
    calls = []
    original = reasoner._call.forward
    keyword = reasoner._cache_keyword
    reasoner._call.forward = lambda *a, **k: (calls.append(k.get(keyword) is None), original(*a, **k))[1]
    try:
        with torch.no_grad():
            first = reasoner(x)
            reasoner(x)
            assert calls.count(True) == 1  # the prompt ran once for two batches
            optimizer = torch.optim.SGD(reasoner.lora_parameters(), lr=0.5)
            for param in reasoner.lora_parameters():
                param.grad = torch.ones_like(param)
            optimizer.step()  # in-place update: the cached prompt keys/values are stale now
            changed = reasoner(x)
            assert calls.count(True) == 2
    finally:
        reasoner._call.forward = original
    assert not torch.allclose(first, changed)
    assert (changed - reasoner.forward_full(x).detach()).abs().max().item() <= 1e-4


def test_prepend_falls_back_to_full_path_and_logs_once(tiny, caplog):
    reasoner = LLMReasoner(tiny, LoraConfig(r=8), PROMPT, "prepend", True, seed=0)
    _perturb_lora(reasoner)
    reasoner.eval()
    assert not reasoner.uses_fast_path
    reasoner_module._LOGGED_FALLBACKS.clear()
    logger = logging.getLogger("aullm")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="aullm"):
            x = torch.randn(3, 1, 64)
            out = reasoner(x)
            reasoner(x)
    finally:
        logger.removeHandler(caplog.handler)
    # (the same record may reach caplog twice: through the root logger and the handler added above)
    messages = {id(r) for r in caplog.records if "prepend" in r.getMessage()}
    assert len(messages) == 1
    # prepend really puts the token first: the last position is the prompt's last token, not the visual token
    append = LLMReasoner(tiny, LoraConfig(r=8), PROMPT, "append", True, seed=0)
    append.load_trainable_state_dict(reasoner.trainable_state_dict())
    append.eval()
    with torch.no_grad():
        assert not torch.allclose(out, append(x))
        prompt_only = reasoner._call(inputs_embeds=reasoner._prompt_embeddings(), use_cache=False)
    # with prepend, different visual tokens give different outputs (the prompt attends to them)
    with torch.no_grad():
        assert not torch.allclose(reasoner(x[:1]), reasoner(x[1:2]))
    assert prompt_only.last_hidden_state.shape[1] == reasoner.prompt_tokens


def test_prefix_cache_disabled_uses_full_path(tiny):
    reasoner = LLMReasoner(tiny, LoraConfig(r=8), PROMPT, "append", False, seed=0)
    assert not reasoner.uses_fast_path
    reasoner.eval()
    x = torch.randn(2, 1, 64)
    with torch.no_grad():
        assert torch.equal(reasoner(x), reasoner.forward_full(x))


def test_no_transformers_deprecation_warnings_on_any_path(tiny, caplog: pytest.LogCaptureFixture) -> None:
    """A user's console shows aullm's own lines only: no path passes transformers a deprecated keyword."""
    import warnings

    caplog.set_level(logging.WARNING)
    reasoner = LLMReasoner(tiny, LoraConfig(r=4, alpha=8), PROMPT, seed=0)
    x = torch.randn(3, 1, 64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reasoner.train()
        for path in ("full", "packed", "kv"):
            reasoner.forward_path(x, path).sum().backward()
        reasoner.eval()
        with torch.no_grad():
            reasoner(x)
            reasoner(x)
    deprecations = [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert deprecations == []
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]


@pytest.mark.slow  # compiles the decoder three times (train, train backward, no-grad evaluation): about a minute
def test_compiled_decoder_trains_like_the_eager_one(tiny):
    """`llm.compile: true` wraps the decoder in torch.compile: the packed training step (forward and every LoRA
    gradient) and the no-grad evaluation path give what the eager decoder gives."""
    eager = LLMReasoner(tiny, LoraConfig(r=8, alpha=16, dropout=0.0), PROMPT, seed=0)
    compiled = LLMReasoner(tiny, LoraConfig(r=8, alpha=16, dropout=0.0), PROMPT, seed=0, compile=True)
    _perturb_lora(eager)
    compiled.load_trainable_state_dict(eager.trainable_state_dict())
    x = torch.randn(5, 1, 64, requires_grad=True)
    eager.train()
    compiled.train()
    out_eager, out_compiled = eager(x), compiled(x)
    assert (out_compiled - out_eager).abs().max().item() <= 1e-5
    grads_eager = _grads(out_eager, [x, *eager.lora_parameters()])
    grads_compiled = _grads(out_compiled, [x, *compiled.lora_parameters()])
    for g_compiled, g_eager in zip(grads_compiled, grads_eager):
        assert (g_compiled - g_eager).abs().max().item() <= 1e-5 * max(1.0, g_eager.abs().max().item())
    eager.eval()
    compiled.eval()
    with torch.no_grad():
        assert (compiled(x) - eager(x)).abs().max().item() <= 1e-5
