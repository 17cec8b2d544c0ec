"""A bundle's LoRA adapter in PEFT's format: `peft.PeftModel.from_pretrained(base, folder)` opens it and computes the
same hidden states as aullm's own reasoner."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from peft import PeftModel

from aullm.config import config_from_dict
from aullm.inference.bundle import ADAPTER_DIR, verify_bundle, write_bundle
from aullm.models.factory import build_model
from aullm.models.llm.loading import load_llm
from aullm.models.llm.peft_export import CONFIG_FILE, WEIGHTS_FILE, write_peft_adapter

pytestmark = pytest.mark.usefixtures("one_thread")
AUS = ["AU1", "AU2", "AU4"]


def _trained_model():
    cfg = config_from_dict(
        {"data": {"frames": 6, "size": 32, "aus": AUS}, "llm": {"name": "tiny-random", "lora": {"r": 4, "alpha": 8}}}
    )
    llm = load_llm(cfg.llm, torch.device("cpu"))
    model = build_model(cfg, AUS, llm, seed=3)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # LoRA B starts at zero (a no-op): make the adapter change the LLM
        for param in model.reasoner.lora_parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.1)
    return cfg, llm, model


def test_peft_opens_the_adapter_and_gives_the_same_hidden_states(tmp_path) -> None:
    cfg, llm, model = _trained_model()
    folder = write_peft_adapter(tmp_path / "adapter", model.trainable_state_dict(), cfg.llm.lora, llm)
    assert folder is not None and (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()
    assert json.loads((folder / CONFIG_FILE).read_text())["r"] == 4

    peft_model = PeftModel.from_pretrained(copy.deepcopy(llm.model), str(folder))
    peft_model.eval()
    embeds = torch.randn(2, 7, llm.hidden_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model.reasoner.decoder(inputs_embeds=embeds).last_hidden_state
        theirs = peft_model.get_base_model().get_decoder()(inputs_embeds=embeds).last_hidden_state
        plain = llm.model.get_decoder()(inputs_embeds=embeds).last_hidden_state
    assert not torch.allclose(ours, plain, atol=1e-4)  # the adapter matters ...
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)  # ... and PEFT applies it exactly as aullm


def test_bundles_carry_the_adapter_under_their_manifest(tmp_path) -> None:
    cfg, llm, model = _trained_model()
    out = write_bundle(
        tmp_path / "bundle",
        cfg,
        model.trainable_state_dict(),
        llm_reference=llm.reference,
        thresholds=dict.fromkeys(AUS, 0.5),
        threshold_source="test",
        trained_on={},
        adapter_llm=llm,
    )
    verify_bundle(out)
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    assert f"{ADAPTER_DIR}/{WEIGHTS_FILE}" in manifest and f"{ADAPTER_DIR}/{CONFIG_FILE}" in manifest
    PeftModel.from_pretrained(copy.deepcopy(llm.model), str(out / ADAPTER_DIR))  # opens as written
