"""A trained LoRA adapter in PEFT's own format, so tools outside aullm can open it.

aullm injects LoRA into the base LLM's decoder and keeps its tensors under the model's `reasoner.` prefix. PEFT
saves an adapter as `adapter_config.json` + `adapter_model.safetensors`, keyed from the causal-LM wrapper
(`base_model.model.<decoder path>.<layer>.lora_A.weight`, without the adapter's name). Only the keys are renamed:
the tensors are the same, so `peft.PeftModel.from_pretrained(base, folder)` computes what aullm's reasoner
computes (tested).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from safetensors.torch import save_file
from torch import Tensor

from aullm.config import LoraConfig
from aullm.models.llm.loading import LoadedLLM

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
ADAPTER = "default"  # the adapter name peft gives an injected adapter; saved files leave it out


def decoder_path(loaded: LoadedLLM) -> str:
    """Where the decoder (the module aullm adapts) sits inside the causal-LM model, e.g. `model`."""
    decoder = loaded.model.get_decoder()
    for name, module in loaded.model.named_modules():
        if module is decoder:
            return name
    raise ValueError(f"{loaded.name}: its decoder is not a submodule of the model")


def peft_state(state: dict[str, Tensor], loaded: LoadedLLM, prefix: str = "reasoner.") -> dict[str, Tensor]:
    """The LoRA tensors of an aullm model's trainable state, under PEFT's key names (empty when it has none)."""
    base = f"base_model.model.{decoder_path(loaded)}."
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith(prefix) and ".lora_" in key:
            inner = key[len(prefix) :].replace(f".{ADAPTER}.", ".")
            out[base + inner] = value.detach().cpu().contiguous()
    return out


def write_peft_adapter(
    folder: Path, state: dict[str, Tensor], lora: LoraConfig, loaded: LoadedLLM, base_name: Optional[str] = None
) -> Optional[Path]:
    """Write the adapter into `folder` in PEFT's format; None (nothing written) for a model without LoRA."""
    from peft import LoraConfig as PeftLoraConfig

    tensors = peft_state(state, loaded)
    if not tensors:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.targets),
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=base_name or loaded.name,
    )
    config.save_pretrained(str(folder))
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    return folder


__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "decoder_path", "peft_state", "write_peft_adapter"]
