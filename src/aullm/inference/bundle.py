"""Model bundles: a trained model packaged for use on new clips (`aullm predict`, `aullm explain`).

A bundle is a folder:

    config.yaml          the fully resolved config the model was trained with (architecture, input, LLM, LoRA)
    weights.safetensors  every trained tensor (backbone, projector, LoRA, head, BN statistics); no base LLM weights
    bundle.json          AU list, per-AU decision thresholds and where they came from, the base LLM reference
                         (name = preset / hub id / path, source, sha256), input settings, what it was trained on
    manifest.json        sha256 of every other file
    adapter/             the LoRA adapter in PEFT's format (adapter_config.json + adapter_model.safetensors), for
                         `peft.PeftModel.from_pretrained(base_llm, "bundle/adapter")` outside aullm

The base LLM is referenced, never copied: a 1.5B model is gigabytes while the trained part is megabytes, and the
reference's sha256 makes sure the LoRA weights are applied to the very weights they were trained on. The manifest
catches corrupted or edited files (integrity, not a signature: someone rewriting the manifest too is not caught).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from aullm.config import Config, ConfigError, load_config, save_config
from aullm.core.console import logger
from aullm.core.errors import UserError, arg
from aullm.core.hashing import sha256_file
from aullm.core.io import atomic_dir, atomic_path
from aullm.core.version import __version__
from aullm.models.base import AUModel
from aullm.models.llm.loading import LoadedLLM
from aullm.models.llm.peft_export import write_peft_adapter

BUNDLE_FORMAT = "aullm-bundle"
BUNDLE_VERSION = 1
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "bundle.json"
MANIFEST_FILE = "manifest.json"
ADAPTER_DIR = "adapter"
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE, META_FILE)


class BundleError(UserError):
    """A bundle that cannot be used (missing, tampered, wrong LLM): one clear line, exit code 2."""


# ------------------------------------------------------------------------------------------------ manifest


def write_manifest(folder: Path) -> dict[str, str]:
    """Hash every file of the bundle (but the manifest itself) into manifest.json; returns the hashes."""
    folder = Path(folder)
    files = {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_FILE
    }
    manifest = {"format": BUNDLE_FORMAT, "algorithm": "sha256", "files": files}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return files


def resolve_bundle_dir(folder: Path) -> Path:
    """A bundle folder as given, or the `bundle/` inside a run directory written with --save-final."""
    inner = Path(folder) / "bundle"
    if not (Path(folder) / MANIFEST_FILE).is_file() and (inner / MANIFEST_FILE).is_file():
        return inner
    return Path(folder)


def verify_bundle(folder: Path) -> dict[str, Any]:
    """Check the manifest against the files and return bundle.json; any mismatch is refused (BundleError)."""
    folder = resolve_bundle_dir(Path(folder))
    if not folder.exists():
        raise BundleError(f"model bundle not found: {folder}")
    if not folder.is_dir():
        raise BundleError(
            f"{folder} is not a model bundle (a folder written by train with {arg('save_final', True)} or by export)"
        )
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(
            f"{folder} is not a model bundle: no {MANIFEST_FILE} (written by train with {arg('save_final', True)} "
            "or by export)"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files: dict[str, str] = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BundleError(f"bundle {folder}: unreadable {MANIFEST_FILE} ({err}); refusing to load it") from None
    for name in REQUIRED_FILES:
        if name not in files:
            raise BundleError(f"bundle {folder}: {MANIFEST_FILE} does not list {name}; refusing to load it")
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise BundleError(f"bundle {folder} is incomplete: {', '.join(missing)} is missing; refusing to load it")
    for name, expected in files.items():
        actual = sha256_file(folder / name)
        if actual != expected:
            raise BundleError(
                f"bundle {folder} was modified or corrupted: {name} has sha256 {actual[:12]}…, the manifest says "
                f"{expected[:12]}…; refusing to load it (re-export the bundle from its run)"
            )
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except ValueError as err:
        raise BundleError(f"bundle {folder}: unreadable {META_FILE} ({err})") from None
    if meta.get("format") != BUNDLE_FORMAT or int(meta.get("version", 0)) > BUNDLE_VERSION:
        raise BundleError(
            f"bundle {folder}: format {meta.get('format')!r} version {meta.get('version')!r} is not "
            f"one this aullm ({__version__}) reads ({BUNDLE_FORMAT} ≤ {BUNDLE_VERSION})"
        )
    return meta


# ------------------------------------------------------------------------------------------------ writing


def llm_kind(name: str) -> str:
    """How `llm.name` designates the model: preset, hub id or local path (said in bundle.json and messages)."""
    from aullm.models.llm.loading import PRESETS

    if name in PRESETS:
        return "preset"
    if name.endswith(".gguf") or name.startswith((".", "/", "~")) or Path(name).expanduser().exists():
        return "path"
    return "hub_id"


def write_bundle(
    out: Path,
    cfg: Config,
    state: dict[str, torch.Tensor],
    *,
    llm_reference: Optional[dict[str, str]],
    thresholds: dict[str, float],
    threshold_source: str,
    trained_on: dict[str, Any],
    adapter_llm: Optional[LoadedLLM] = None,
) -> Path:
    """Write a bundle folder atomically (built beside `out`, then renamed); an existing bundle there is replaced,
    any other existing folder is refused."""
    out = Path(out)
    aus = list(cfg.data.aus)
    missing = [au for au in aus if au not in thresholds]
    if missing:
        raise ValueError(f"no threshold for {missing}")
    if out.exists() and not (out / MANIFEST_FILE).is_file():
        raise UserError(f"{out} exists and is not a model bundle; refusing to overwrite it")
    with atomic_dir(out) as tmp:
        save_config(cfg, tmp / CONFIG_FILE)
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": BUNDLE_FORMAT, "model": cfg.model.name})
        llm = None
        if llm_reference is not None:
            llm = {**llm_reference, "kind": llm_kind(cfg.llm.name), "config_name": cfg.llm.name}
        meta = {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "aullm_version": __version__,
            "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "name": cfg.name,
            "model": cfg.model.name,
            "variant": cfg.model.variant_label,
            "aus": aus,
            "thresholds": {au: float(thresholds[au]) for au in aus},
            "threshold_source": threshold_source,
            "input": {
                "kind": cfg.data.input,
                "frames": cfg.data.frames,
                "size": cfg.data.size,
                "face_crop": cfg.data.face_crop,
            },
            "llm": llm,
            "trained_on": trained_on,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        # The LoRA adapter again, in PEFT's format, for tools outside aullm; not for a randomly initialised base
        # LLM (llm.init: random), whose weights exist only inside aullm, so PEFT would pair it with the wrong base.
        if adapter_llm is not None and cfg.llm.init == "pretrained":
            write_peft_adapter(tmp / ADAPTER_DIR, tensors, cfg.llm.lora, adapter_llm, base_name=cfg.llm.name)
        write_manifest(tmp)
    logger.info("wrote model bundle %s (%s, %d AUs, thresholds: %s)", out, cfg.model.name, len(aus), threshold_source)
    return out


# ------------------------------------------------------------------------------------------------ loading


@dataclass
class Bundle:
    """A loaded bundle: the model (eval mode, on `device`), its config, AUs and per-AU thresholds."""

    path: Path
    cfg: Config
    meta: dict[str, Any]
    model: Any
    device: torch.device
    aus: list[str] = field(default_factory=list)
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def frames(self) -> int:
        return int(self.cfg.data.frames)

    @property
    def size(self) -> int:
        return int(self.cfg.data.size)

    @property
    def input_kind(self) -> str:
        return str(self.cfg.data.input)


def _load_base_llm(
    cfg: Config, meta: dict[str, Any], folder: Path, device: torch.device, llm_override: Optional[str]
) -> Any:
    """The bundle's base LLM, checked against its sha256; one line saying what is missing and how to provide it."""
    from aullm.models.llm.loading import load_llm

    ref = meta.get("llm") or {}
    name = cfg.llm.name
    what = f"{name!r}" + (f" ({ref['source']}, sha256 {str(ref.get('sha256', ''))[:12]}…)" if ref.get("source") else "")
    if llm_override:
        cfg.llm.name = llm_override
    try:
        loaded = load_llm(cfg.llm, device)
    except UserError as err:
        hint = (
            f"pass {arg('llm', 'PATH')} to a local copy of the same weights"
            if not llm_override
            else f"{arg('llm', llm_override)} could not be loaded either"
        )
        raise BundleError(
            f"bundle {folder} needs the base LLM {what}, which is not available here: {err}; {hint}".replace("\n", " ")
        ) from None
    expected = ref.get("sha256")
    if expected and loaded.reference.get("sha256") != expected:
        raise BundleError(
            f"bundle {folder} was trained on LLM {name!r} with sha256 {expected[:12]}…, but "
            f"{cfg.llm.name!r} here has sha256 {loaded.reference.get('sha256', '?')[:12]}…: its LoRA weights would "
            f"not fit these base weights; provide the original weights ({arg('llm', 'PATH')})"
        )
    if ref.get("source") and loaded.reference.get("source") != ref.get("source"):
        logger.info(
            "base LLM %s loaded from %s (bundle trained with %s; same sha256)",
            cfg.llm.name,
            loaded.reference.get("source"),
            ref.get("source"),
        )
    return loaded


def describe_model(cfg: Config) -> str:
    """The model as a person names it: `au_llm (f_mid, LLM qwen2-1.5b)`, `au_llm (no LLM)`, `sssnet_led`."""
    tags = [cfg.model.variant_label] if cfg.model.variant_label not in (None, "all") else []
    if getattr(cfg.model, "reasoner", None) == "none":
        tags.append("no LLM")
    elif cfg.model.needs_llm:
        tags.append(f"LLM {cfg.llm.name}" + (", randomly initialised" if cfg.llm.init == "random" else ""))
    return cfg.model.name + (f" ({', '.join(tags)})" if tags else "")


def prompt_cache_path(model: Any, folder: Path) -> Optional[Path]:
    """Where the LLM's prompt keys/values for this bundle are kept between processes (None: the model has none).

    The key covers everything they depend on: the trained weights (the manifest's sha256), the base LLM's sha256,
    the prompt's tokens, dtype, device and the library versions that compute them."""
    from aullm.models.llm.loading import cache_root
    from aullm.models.llm.reasoner import LLMReasoner

    reasoner = getattr(model, "reasoner", None)
    if not isinstance(reasoner, LLMReasoner) or not reasoner.uses_fast_path:
        return None
    import hashlib

    import transformers

    try:
        weights = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))["files"][WEIGHTS_FILE]
    except (OSError, ValueError, KeyError):
        return None
    parts = [
        weights,
        reasoner.loaded.reference.get("sha256", reasoner.loaded.name),
        torch.as_tensor(reasoner.prompt_ids).flatten().tolist(),
        str(reasoner.loaded.dtype),
        str(reasoner.loaded.device),
        torch.__version__,
        transformers.__version__,
    ]
    key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]
    return cache_root() / "prompt_kv" / f"{key}.safetensors"


def warm_prompt_cache(model: Any, folder: Path) -> None:
    """Give the LLM its prompt's keys/values from the on-disk cache, or compute them now and keep them there: the
    prompt's forward pass (about 2 s on a 2-core CPU for SmolLM2) is then paid once per bundle and machine, not
    once per `predict`. Their values are the computed ones, byte for byte, so predictions do not change."""
    path = prompt_cache_path(model, folder)
    if path is None:
        return
    reasoner = model.reasoner
    if path.is_file():
        try:
            tensors = load_file(str(path))
            layers = len(tensors) // 2
            reasoner.load_prompt_state([(tensors[f"{i}.keys"], tensors[f"{i}.values"]) for i in range(layers)])
            return
        except (SafetensorError, OSError, KeyError) as err:
            logger.debug("prompt cache %s unusable (%s); computing it again", path, err)
    kv = reasoner.prompt_state()
    if kv is None:
        return
    tensors = {}
    for i, (k, v) in enumerate(kv):
        tensors[f"{i}.keys"], tensors[f"{i}.values"] = k.detach().cpu().contiguous(), v.detach().cpu().contiguous()
    with contextlib.suppress(OSError):  # a read-only cache only costs the prompt pass next time
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp))


def _aus_and_thresholds(meta: dict[str, Any], folder: Path) -> tuple[list[str], np.ndarray]:
    """bundle.json's AUs and their decision thresholds, each a probability strictly between 0 and 1 (a threshold of
    5 would mark every clip negative without a word)."""
    aus, given = meta.get("aus"), meta.get("thresholds")
    if not isinstance(aus, list) or not aus or not isinstance(given, dict):
        raise BundleError(f"bundle {folder}: {META_FILE} lacks its AU list or thresholds; refusing to load it")
    values = []
    for au in aus:
        value = given.get(au)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < value < 1.0):
            raise BundleError(
                f"bundle {folder}: {META_FILE} gives {au} the threshold {value!r}; a threshold is a probability "
                "in (0, 1) — refusing to load it (re-export the bundle from its run)"
            )
        values.append(float(value))
    return [str(a) for a in aus], np.array(values, dtype=np.float64)


def load_bundle(path: Path, device: str | torch.device = "auto", llm: Optional[str] = None) -> Bundle:
    """Verify, then rebuild the model and load its trained weights; `llm` points at another copy of the base LLM."""
    from aullm.core.runtime import resolve_device
    from aullm.models.factory import build_model

    folder = resolve_bundle_dir(Path(path))
    meta = verify_bundle(folder)
    try:
        cfg = load_config(folder / CONFIG_FILE, resolved=True)
    except ConfigError as err:
        raise BundleError(f"bundle {folder}: its config.yaml cannot be used by this aullm ({err})") from None
    aus, thresholds = _aus_and_thresholds(meta, folder)
    dev = resolve_device(device, "device") if isinstance(device, str) else torch.device(device)
    cfg.train.device = str(dev)
    if cfg.llm.prepack == "auto":
        # Pre-packing the frozen LLM weights pays off over a training run's many forward and backward steps; to
        # predict it costs more (about 2 s per process) than its forward-only products save.
        cfg.llm.prepack = False
    if aus != list(cfg.data.aus):
        raise BundleError(f"bundle {folder}: bundle.json AUs {aus} differ from config.yaml's {cfg.data.aus}")
    loaded = _load_base_llm(cfg, meta, folder, dev, llm) if cfg.model.needs_llm else None
    model = build_model(cfg, aus, loaded)
    if not isinstance(model, AUModel):
        raise BundleError(
            f"bundle {folder}: model {cfg.model.name!r} is not a torch model; bundles hold torch models only"
        )
    try:
        state = load_file(str(folder / WEIGHTS_FILE))
        model.load_trainable_state_dict(state)
    except (SafetensorError, ValueError, UserError) as err:
        raise BundleError(f"bundle {folder}: weights do not fit the model in its config.yaml ({err})") from None
    model.to(dev)
    model.eval()
    warm_prompt_cache(model, folder)
    logger.info(
        "loaded bundle %s: %s, %d AUs, thresholds from %s",
        folder,
        describe_model(cfg),
        len(aus),
        meta.get("threshold_source", "?"),
    )
    return Bundle(path=folder, cfg=cfg, meta=meta, model=model, device=dev, aus=aus, thresholds=thresholds)


__all__ = [
    "Bundle",
    "BundleError",
    "describe_model",
    "load_bundle",
    "resolve_bundle_dir",
    "sha256_file",
    "verify_bundle",
    "warm_prompt_cache",
    "write_bundle",
    "write_manifest",
]
