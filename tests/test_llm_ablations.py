"""The LLM ablations: `llm.init: random` (same architecture, seeded fresh weights) and `model.reasoner: none` (no
LLM at all): what they build, that they are seeded, that no LLM is loaded without a reasoner, that both learn and
train through the normal protocol, and that their bundles round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from aullm.config import LLMConfig, config_from_dict, load_config
from aullm.core.errors import UserError
from aullm.data.synme import generate_synme
from aullm.models.factory import build_model
from aullm.models.llm.loading import (
    PRESET_HIDDEN_SIZES,
    clear_llm_cache,
    llm_hidden_size,
    load_llm,
    randomly_initialised,
    state_sha256,
)
from aullm.models.llm.reasoner import PassThroughReasoner
from aullm.training.losses import build_loss
from aullm.workflows import experiment as workflows
from test_models_au_llm import AUS as MODEL_AUS
from test_models_au_llm import FRAMES, _separable_batch

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")


def _random(seed: int = 0):
    return load_llm(LLMConfig(name="tiny-random", init="random", init_seed=seed), CPU)


# ---------------------------------------------------------------------------------------------- llm.init: random


def test_random_init_keeps_architecture_size_and_tokenizer_and_redraws_every_weight():
    pretrained = load_llm(LLMConfig(name="tiny-random"), CPU)
    random = _random(0)
    assert type(random.model) is type(pretrained.model)
    assert random.tokenizer.get_vocab() == pretrained.tokenizer.get_vocab()
    assert random.hidden_size == pretrained.hidden_size and random.dtype == pretrained.dtype
    before, after = dict(pretrained.model.named_parameters()), dict(random.model.named_parameters())
    assert {k: v.shape for k, v in before.items()} == {k: v.shape for k, v in after.items()}
    matrices = [name for name, p in before.items() if p.dim() >= 2]
    assert matrices and all(not torch.equal(before[n], after[n]) for n in matrices)
    assert all(not p.requires_grad for p in random.model.parameters()) and not random.model.training
    # what a bundle records: the sha256 of these very weights, and where the architecture came from
    ref = random.reference
    assert ref["init"] == "random" and ref["init_seed"] == "0" and ref["name"] == "tiny-random"
    assert ref["sha256"] == state_sha256(random.model) != pretrained.reference["sha256"]
    assert ref["architecture_of_sha256"] == pretrained.reference["sha256"]


def test_random_init_is_seeded_and_leaves_the_callers_rng_alone():
    pretrained = load_llm(LLMConfig(name="tiny-random"), CPU)
    torch.manual_seed(5)
    first = randomly_initialised(pretrained, 0)
    after_build = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(1), after_build)
    again = randomly_initialised(pretrained, 0)
    assert again.model is not first.model and again.reference["sha256"] == first.reference["sha256"]
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()))
    assert randomly_initialised(pretrained, 1).reference["sha256"] != first.reference["sha256"]
    assert _random(0) is _random(0)  # through load_llm: built once per process, like any LLM
    assert _random(0).reference["sha256"] == first.reference["sha256"]


# ---------------------------------------------------------------------------------------------- reasoner: none


def _cfg(**model: object):
    return config_from_dict(
        {
            "data": {"frames": FRAMES, "size": 16, "aus": MODEL_AUS},
            "model": {"dropout": 0.1, **model},
            "llm": {"name": "tiny-random", "lora": {"r": 4, "alpha": 8}},
        }
    )


def test_no_llm_is_au_llm_minus_the_llm():
    """Same backbone, EFP and head as AU-LLM (same names and shapes), the token sized like the named LLM, no
    LLM or LoRA weights, and nothing to load."""
    cfg = _cfg(reasoner="none")
    assert not cfg.model.needs_llm and _cfg().model.needs_llm
    no_llm = build_model(cfg, MODEL_AUS, None, seed=0)
    with_llm = build_model(_cfg(), MODEL_AUS, load_llm(LLMConfig(name="tiny-random"), CPU), seed=0)
    assert isinstance(no_llm.reasoner, PassThroughReasoner)
    assert no_llm.projector.fc2.out_features == no_llm.head.in_features == PRESET_HIDDEN_SIZES["tiny-random"]
    ours = {k: v.shape for k, v in no_llm.trainable_state_dict().items()}
    theirs = {k: v.shape for k, v in with_llm.trainable_state_dict().items() if not k.startswith("reasoner.")}
    assert ours == theirs
    # the same seed gives the same initial backbone, EFP and head as AU-LLM's
    state = with_llm.trainable_state_dict()
    assert all(torch.equal(v, state[k]) for k, v in no_llm.trainable_state_dict().items())
    x = torch.rand(2, FRAMES, 16, 16)
    no_llm.eval()
    assert torch.allclose(no_llm(x).logits, no_llm.head(no_llm.visual_token(x)))


def test_no_llm_learns_a_tiny_separable_problem():
    torch.manual_seed(0)
    cfg = _cfg(reasoner="none")
    model = build_model(cfg, MODEL_AUS, None, seed=0)
    loss_fn = build_loss(cfg.train.loss)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    x_test, y_test = _separable_batch(32, generator, 16)
    model.eval()
    with torch.no_grad():
        first = loss_fn(model(x_test).logits, y_test).item()
    model.train()
    for _ in range(150):
        x, y = _separable_batch(8, generator, 16)
        loss = loss_fn(model(x).logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(x_test).logits
    assert loss_fn(logits, y_test).item() < 0.1 * first
    assert torch.equal((logits > 0).float(), y_test)


def test_no_llm_width_comes_from_the_named_llms_config(tmp_path):
    from transformers import Qwen2Config

    Qwen2Config(hidden_size=48, num_attention_heads=4, num_key_value_heads=2, intermediate_size=64).save_pretrained(
        tmp_path
    )
    assert llm_hidden_size(LLMConfig(name=str(tmp_path))) == 48
    assert llm_hidden_size(LLMConfig(name="tiny-random")) == load_llm(LLMConfig(name="tiny-random"), CPU).hidden_size
    with pytest.raises(UserError, match=r"model\.reasoner: none sizes its token like the LLM"):
        llm_hidden_size(LLMConfig(name="nobody/not-downloaded"))


# ---------------------------------------------------------------------------------------------- through the protocol


@pytest.fixture(scope="module")
def synme_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synme")
    generate_synme(root, subjects=3, clips_per_subject=4, seed=3, size=128)
    return root


def _config(tmp_path: Path, root: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(f"""
name: tiny
seeds: [1]
data: {{dataset: synme, root: {root}, size: 32, cache_dir: {tmp_path / "cache"}}}
model: {{name: au_llm, dropout: 0.1}}
llm: {{name: tiny-random, lora: {{r: 4, alpha: 8}}}}
train: {{epochs: 2, batch_size: 8, lr: 1.0e-3, save_final: true}}
eval: {{bootstrap: 200}}
""")
    return path


def _predictions(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "predictions.csv")


def test_random_llm_trains_through_the_protocol_and_its_bundle_rebuilds_the_same_weights(tmp_path, synme_root):
    from aullm.inference.bundle import ADAPTER_DIR, load_bundle

    config = _config(tmp_path, synme_root)
    pretrained = workflows.train(load_config(config), tmp_path / "pretrained")
    random = workflows.train(load_config(config, ["llm.init=random"]), tmp_path / "random")
    assert json.loads((random / "metrics.json").read_text())["run"]["llm_init"] == "random"
    probs = [c for c in _predictions(random).columns if c.startswith("prob_")]
    # same data, seeds and trainable initialisation: only the frozen base weights differ, and that shows
    assert not _predictions(random)[probs].equals(_predictions(pretrained)[probs])
    assert (pretrained / "bundle" / ADAPTER_DIR).is_dir()  # PEFT's copy of the adapter: only on a real base LLM
    assert not (random / "bundle" / ADAPTER_DIR).exists()
    meta = json.loads((random / "bundle" / "bundle.json").read_text())
    assert meta["llm"]["init"] == "random" and meta["llm"]["sha256"] == _random(0).reference["sha256"]
    clear_llm_cache()  # the bundle must rebuild the random weights itself
    bundle = load_bundle(random / "bundle", device="cpu")
    assert state_sha256(bundle.model.reasoner.loaded.model) == meta["llm"]["sha256"]


def test_no_llm_trains_through_the_protocol_without_loading_any_llm(tmp_path, synme_root, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("model.reasoner: none must not load an LLM")

    for where in ("aullm.models.llm.loading", "aullm.training.session", "aullm.workflows.export"):
        monkeypatch.setattr(f"{where}.load_llm", refuse)
    from aullm.inference.bundle import load_bundle

    run = workflows.train(load_config(_config(tmp_path, synme_root), ["model.reasoner=none"]), tmp_path / "no_llm")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"]["reasoner"] == "none" and metrics["summary"]["f1_macro"]["avg"]["ci95"] is not None
    log = pd.concat(pd.read_csv(p) for p in run.glob("folds/*/train_log.csv"))
    assert log["loss"].notna().all() and len(log) == 3 * 2
    from safetensors.torch import load_file

    weights = load_file(next(run.glob("folds/*/weights_seed1.safetensors")))
    assert weights and not any("lora_" in k or k.startswith("reasoner.") for k in weights)
    assert json.loads((run / "bundle" / "bundle.json").read_text())["llm"] is None
    bundle = load_bundle(run / "bundle", device="cpu")
    assert isinstance(bundle.model.reasoner, PassThroughReasoner)
