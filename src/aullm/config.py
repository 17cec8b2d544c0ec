"""The experiment config (docs/design.md, Config files): typed dataclasses, YAML loading, `--set` overrides, validation.

Every key has a default, so a config file only states what differs. Unknown keys and wrong types are errors
that name the key, because a silently ignored typo in a research config wastes a GPU-day.
Over 450 lines because it is the one schema of DESIGN §5: each section a small dataclass with its checks beside
it, so a key, its default and its bound are read in one place (the model options live in models/*/configuration_*.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin, get_type_hints

import dacite
import yaml

from aullm.core.errors import ConfigError, arg
from aullm.core.io import write_text
from aullm.core.names import check_name
from aullm.core.options import ModelConfig, check
from aullm.core.paths import describe
from aullm.core.yamlfile import load_yaml
from aullm.models.au_llm.configuration_au_llm import AULLMConfig
from aullm.models.registry import DEFAULT_MODEL, MODELS, model_spec

CASME2_AUS = ["AU1", "AU2", "AU4", "AU7", "AU12", "AU14", "AU15", "AU17"]
SAMM_AUS = ["AU2", "AU4", "AU7", "AU12"]
FaceCrop = Literal["none", "detect", "align"]
# `data.face_crop` when a config leaves it out: `align` for footage shipped uncropped (CAS(ME)³-A's full colour
# frames; a manifest, whose clips are usually new recordings), `none` elsewhere (CASME II ships aligned crops, SynME
# is written as crops, and the AU-LLM reference read SAMM's whole frames, which its reproduction configs keep).
FACE_CROP_DEFAULTS: dict[str, FaceCrop] = {"casme3a": "align", "manifest": "align"}

#: Upper bounds of what a config can make aullm allocate: every clip is stored as `data.frames` frames of
#: `data.size`² pixels, so data.size 100000 would ask for terabytes before the first clip is decoded.
MAX_SIZE = 1024
MAX_FRAMES = 256
MAX_LORA_RANK = 4096
#: Bootstrap replicates of an interval (each one a row of subject multiplicities and a scoring pass).
MAX_BOOTSTRAP = 100_000

# YAML keys that are Python keywords, stored under another attribute name.
_KEY_ALIASES = {"lambda": "lambda_"}
_ALIAS_KEYS = {v: k for k, v in _KEY_ALIASES.items()}


@dataclass
class DataConfig:
    """Which dataset to read and how each clip is turned into model input."""

    dataset: Literal["casme2", "samm", "casme3a", "manifest", "synme"] = "casme2"
    root: Optional[str] = None
    annotations: Optional[str] = None
    frames_dir: Optional[str] = None
    face_crop: Optional[FaceCrop] = None  # left out (None): the dataset's default, FACE_CROP_DEFAULTS
    input: Literal["clip", "flow"] = "clip"
    frames: int = 6
    size: int = 64
    aus: list[str] = field(default_factory=lambda: list(CASME2_AUS))
    or_policy: Literal["drop_sample", "union", "first"] = "drop_sample"
    corrections: bool = True
    include_unknown: bool = False
    cache_dir: Optional[str] = None

    def __post_init__(self) -> None:
        if self.face_crop is None:
            self.face_crop = FACE_CROP_DEFAULTS.get(self.dataset, "none")
        check(self.frames >= 2, "data.frames", self.frames, "must be at least 2")
        check(self.frames <= MAX_FRAMES, "data.frames", self.frames, f"must be at most {MAX_FRAMES}")
        check(self.size >= 16, "data.size", self.size, "must be at least 16")
        check(self.size <= MAX_SIZE, "data.size", self.size, f"must be at most {MAX_SIZE} pixels")
        check(len(self.aus) > 0, "data.aus", self.aus, "must name at least one AU")
        for au in self.aus:
            check(au.startswith("AU") and au[2:].isdigit(), "data.aus", au, "AUs are written AU<number>, e.g. AU12")


@dataclass
class LoraConfig:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.1
    targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])

    def __post_init__(self) -> None:
        check(self.r >= 1, "llm.lora.r", self.r, "must be at least 1")
        check(self.r <= MAX_LORA_RANK, "llm.lora.r", self.r, f"must be at most {MAX_LORA_RANK}")
        check(finite(self.alpha) and self.alpha > 0, "llm.lora.alpha", self.alpha, "must be > 0")
        check(0.0 <= self.dropout < 1.0, "llm.lora.dropout", self.dropout, "must be in [0, 1)")
        check(len(self.targets) > 0, "llm.lora.targets", self.targets, "must name at least one module")


@dataclass
class LLMConfig:
    """Which LLM reasons over the visual token, and how it is run."""

    name: str = "smollm2-135m"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    prefix_cache: bool = True
    compile: bool = False
    # CPU only: the frozen weights' products run on oneDNN with the weights pre-packed once
    # (models/kernels/prepacked.py; float32 as before, about a quarter off a fast LLM step, two packed copies of
    # the weights in memory).
    # auto: on for a float32 LLM on the CPU when the copies fit in a quarter of physical memory.
    prepack: Union[bool, Literal["auto"]] = "auto"
    lora: LoraConfig = field(default_factory=LoraConfig)
    # `random`: the same architecture and size with freshly initialised weights drawn from `init_seed`, so the
    # LLM's pretrained knowledge is the only difference from `pretrained`.
    init: Literal["pretrained", "random"] = "pretrained"
    init_seed: int = 0


@dataclass
class LossConfig:
    name: Literal["asl", "bce"] = "asl"
    gamma_pos: float = 0.0
    gamma_neg: float = 4.0
    clip: float = 0.05
    eps: float = 1.0e-8

    def __post_init__(self) -> None:
        for key in ("gamma_pos", "gamma_neg"):
            value = getattr(self, key)
            check(finite(value) and value >= 0, f"train.loss.{key}", value, "must be a finite number >= 0")
        check(0.0 <= self.clip < 1.0, "train.loss.clip", self.clip, "must be in [0, 1)")
        check(finite(self.eps) and self.eps > 0, "train.loss.eps", self.eps, "must be > 0")


@dataclass
class TrainConfig:
    epochs: int = 350
    batch_size: int = 256
    lr: float = 3.0e-5
    weight_decay: float = 0.005
    device: str = "auto"
    loss: LossConfig = field(default_factory=LossConfig)
    save_final: bool = False
    # torch CPU threads per fold (0: leave torch's setting as it is). It changes the order of floating-point sums,
    # so two runs give byte-identical numbers only with the same count; a Ray task uses --cpus-per-task when 0.
    threads: int = 0

    def __post_init__(self) -> None:
        check(self.epochs >= 1, "train.epochs", self.epochs, "must be at least 1")
        check(self.threads >= 0, "train.threads", self.threads, "must be >= 0 (0: torch's default)")
        check(self.batch_size >= 1, "train.batch_size", self.batch_size, "must be at least 1")
        check(finite(self.lr) and self.lr > 0, "train.lr", self.lr, "must be a finite number > 0")
        check(
            finite(self.weight_decay) and self.weight_decay >= 0,
            "train.weight_decay",
            self.weight_decay,
            "must be a finite number >= 0",
        )
        check(
            self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda") or self.device == "mps",
            "train.device",
            self.device,
            "must be auto, cpu, cuda, cuda:N or mps",
        )


@dataclass
class ProtocolConfig:
    """LOSO over one dataset, or cross-domain (train on `data`, test on `target`)."""

    name: Literal["loso", "cross_domain"] = "loso"
    folds: Union[Literal["all"], list[str]] = "all"
    target: Optional[DataConfig] = None

    def __post_init__(self) -> None:
        if isinstance(self.folds, list):
            for fold in self.folds:
                check_name(fold, "protocol.folds")  # a fold names a folder (folds/<subject>) and a lock file


@dataclass
class EvalConfig:
    threshold: float = 0.5
    validation_subjects: int = 0
    # Subject-level bootstrap replicates behind every 95% interval (0 turns intervals off), and their seed.
    bootstrap: int = 2000
    bootstrap_seed: int = 0

    def __post_init__(self) -> None:
        check(0.0 < self.threshold < 1.0, "eval.threshold", self.threshold, "must be in (0, 1)")
        check(self.validation_subjects >= 0, "eval.validation_subjects", self.validation_subjects, "must be >= 0")
        check(
            0 <= self.bootstrap <= MAX_BOOTSTRAP,
            "eval.bootstrap",
            self.bootstrap,
            f"must be 0..{MAX_BOOTSTRAP:,} (0 turns intervals off)",
        )
        check(self.bootstrap_seed >= 0, "eval.bootstrap_seed", self.bootstrap_seed, "must be >= 0")


@dataclass
class Config:
    """One experiment: data, model, LLM, training, protocol and evaluation settings, and the seeds to run."""

    name: str = "experiment"
    seeds: list[int] = field(default_factory=lambda: [1])
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=AULLMConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        check(len(self.seeds) > 0, "seeds", self.seeds, "must list at least one seed")
        check(not any(isinstance(s, bool) for s in self.seeds), "seeds", self.seeds, "seeds are integers")
        twice = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
        check(not twice, "seeds", self.seeds, f"seed {', '.join(map(str, twice))} is listed twice; list each once")
        check_name(self.name, "name")
        if self.protocol.name == "cross_domain":
            check(self.protocol.target is not None, "protocol.target", None, "cross_domain needs a target data section")


def finite(value: float) -> bool:
    """A real number that is neither inf nor NaN (YAML reads `.inf` and `.nan`)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------------------------------------- loading


def _known_keys(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {_ALIAS_KEYS.get(f.name, f.name): hints[f.name] for f in dataclasses.fields(cls)}


def _nested_dataclass(tp: Any) -> Optional[type]:
    """The dataclass type inside `tp` (plain or Optional[...]), if any."""
    for candidate in (tp, *get_args(tp)) if get_origin(tp) is Union else (tp,):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _check_keys(raw: Any, cls: type, prefix: str = "") -> None:
    """Reject unknown keys with the full dotted name and a close match, before type conversion."""
    if not isinstance(raw, dict):
        where = prefix.rstrip(".") or "the config file"
        raise ConfigError(f"{where} must be a mapping of keys to values, got {type(raw).__name__}")
    known = _known_keys(cls)
    for key, value in raw.items():
        if key not in known:
            hint = difflib.get_close_matches(str(key), list(known), n=1)
            suggestion = f" (did you mean {prefix}{hint[0]}?)" if hint else ""
            raise ConfigError(f"unknown config key {prefix}{key}{suggestion}")
        sub = _nested_dataclass(known[key])
        if sub is not None and value is not None:
            _check_keys(value, sub, f"{prefix}{key}.")


def _check_lists(raw: Any, cls: type, prefix: str = "") -> None:
    """A key that holds a list given something else (`data.aus: AU1`, `seeds: {a: 1}`) or a list of lists: one
    line naming the key and the value (dacite would print a generator object or raise a bare ValueError)."""
    if not isinstance(raw, dict):
        return
    for key, value in raw.items():
        tp = _known_keys(cls).get(key)
        if tp is None or value is None:
            continue
        sub = _nested_dataclass(tp)
        if sub is not None:
            _check_lists(value, sub, f"{prefix}{key}.")
            continue
        options = get_args(tp) if get_origin(tp) is Union else (tp,)
        lists = [o for o in options if get_origin(o) is list]
        if not lists:
            continue
        others = [o for o in options if get_origin(o) is not list]
        if not isinstance(value, list):
            if others:
                continue  # e.g. protocol.folds: all — dacite checks the literal
            raise ConfigError(
                f"invalid value for {prefix}{key}: {value!r} (expected {_type_name(lists[0])}: [a, b, …])"
            )
        nested = [v for v in value if isinstance(v, (list, dict)) or v is None]
        if nested:
            raise ConfigError(
                f"invalid value for {prefix}{key}: {value!r} ({nested[0]!r} is not a single value; "
                f"expected {_type_name(lists[0])})"
            )


def _to_attr_names(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {_KEY_ALIASES.get(k, k): _to_attr_names(v) for k, v in raw.items()}
    return raw


def _to_yaml_names(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {_ALIAS_KEYS.get(k, k): _to_yaml_names(v) for k, v in raw.items()}
    return raw


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """Small conveniences: YAML reads subject 7 as an int and 1e-5 as a string; accept both."""
    protocol = raw.get("protocol")
    if isinstance(protocol, dict) and isinstance(protocol.get("folds"), list):
        protocol["folds"] = [str(s) for s in protocol["folds"]]
    for section, key in (("train", "lr"), ("train", "weight_decay")):
        value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # left as text: dacite then names the key and the type
                raw[section][key] = float(value)
    return raw


# Keys of the single, shared `model` section of earlier aullm versions. Run directories and bundles written then
# hold all of them whatever the model; reading such a resolved file drops the ones its model does not have.
LEGACY_MODEL_KEYS = frozenset(
    {
        "variant",
        "dropout",
        "token_position",
        "prompt",
        "prompt_vectors",
        "mge_efp",
        "r_augnn",
        "graph",
        "ccr",
        "lbp_grid",
        "svm_c",
    }
)


def _model_options(raw: Any) -> type[ModelConfig]:
    """The options class of the model the `model` section names (the default model when it names none)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"model must be a mapping of keys to values, got {type(raw).__name__}")
    name = raw.get("name", DEFAULT_MODEL)
    if not isinstance(name, str):
        raise ConfigError(f"invalid value for model.name: {name!r} (expected a model name)")
    return model_spec(name).options


def _check_model_keys(raw: dict[str, Any], options: type[ModelConfig], *, legacy: bool) -> dict[str, Any]:
    """Options the chosen model does not have are an error naming the key (or, in a legacy resolved file, dropped)."""
    known = _known_keys(options)
    name = raw.get("name", DEFAULT_MODEL)
    checked: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            if legacy and key in LEGACY_MODEL_KEYS:
                continue
            if key in LEGACY_MODEL_KEYS or any(key in _known_keys(s.options) for s in MODELS.values()):
                own = ", ".join(k for k in known if k != "name") or "none"
                raise ConfigError(f"model.{key} is not an option of model {name} (its options: {own})")
            hint = difflib.get_close_matches(str(key), list(known), n=1)
            suggestion = f" (did you mean model.{hint[0]}?)" if hint else ""
            raise ConfigError(f"unknown config key model.{key}{suggestion}")
        sub = _nested_dataclass(known[key])
        if sub is not None and value is not None:
            _check_keys(value, sub, f"model.{key}.")
        checked[key] = value
    return checked


_DACITE = dacite.Config(strict=True, cast=[], check_types=True)


def _from_dict(cls: type[Any], raw: dict[str, Any], prefix: str = "") -> Any:
    try:
        return dacite.from_dict(cls, raw, config=_DACITE)
    except dacite.WrongTypeError as err:
        raise ConfigError(
            f"invalid value for {prefix}{err.field_path}: {err.value!r} (expected {_type_name(err.field_type)})"
        ) from None
    except dacite.DaciteError as err:
        raise ConfigError(f"invalid config: {err}") from None


def config_from_dict(raw: dict[str, Any], *, legacy_model_keys: bool = False) -> Config:
    """Build a validated Config; every missing key takes its default.

    The `model` section is checked against the chosen model's own options (`models/registry.py`).
    `legacy_model_keys` accepts resolved files of earlier versions, whose `model` section listed every model's keys.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"the config file must be a mapping of sections, got {type(raw).__name__}")
    raw = dict(raw)
    model_raw = raw.pop("model", None)
    options = _model_options(model_raw)
    model_raw = _check_model_keys(dict(model_raw or {}), options, legacy=legacy_model_keys)
    _check_keys(raw, Config)
    raw = _to_attr_names(raw)
    _check_lists(raw, Config)
    raw = _normalise(raw)
    model_raw = _to_attr_names(model_raw)
    _check_lists(model_raw, options, "model.")
    model = _from_dict(options, model_raw, "model.")
    cfg: Config = _from_dict(Config, raw)
    cfg.model = model
    return cfg


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is Union:
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def config_to_dict(config: Config) -> dict[str, Any]:
    return _to_yaml_names(dataclasses.asdict(config))


def parse_override(text: str) -> tuple[list[str], Any]:
    """`section.key=value` → (["section", "key"], value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"{arg('overrides')} expects section.key=value, got {text!r}")
    key, value = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"{arg('overrides')} expects section.key=value, got {text!r}")
    try:
        parsed = load_yaml(value, f"{arg('overrides', text)}") if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return path, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{arg('overrides', text)}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return raw


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(describe(path, "config file", "file"))
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"), f"config file {path}")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not text (not UTF-8): is it the right file?") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise ConfigError(f"cannot parse config file {path}{where}: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(raw).__name__}")
    return raw


#: The configs shipped with the package (`aullm configs`): every cell of the paper's tables, the ablations, the demo.
CONFIGS_DIR = Path(__file__).resolve().parent / "configs"


def shipped_configs() -> dict[str, Path]:
    """Every shipped config by name (its file name without `.yaml`)."""
    return {path.name[: -len(".yaml")]: path for path in sorted(CONFIGS_DIR.glob("*.yaml"))}


def config_description(path: Path) -> str:
    """A config's one-line description: the first line of the comment it starts with (empty when it has none)."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text.startswith("#"):
            return text.lstrip("#").strip()
        if text:
            break
    return ""


def find_config(source: Union[str, Path]) -> Path:
    """The YAML file a CONFIG argument names: a file, or else the name of a shipped config (`casme2_au_llm_qwen2`,
    `demo`). A file wins over a shipped config of the same name."""
    path = Path(source)
    if path.is_file():
        return path
    shipped = shipped_configs()
    text = str(source)
    if len(path.parts) == 1 and text in shipped:
        return shipped[text]
    if path.exists():
        raise ConfigError(f"config {text} is a folder, not a config file")
    if len(path.parts) > 1:
        raise ConfigError(f"config file not found: {text}")
    stem = text[: -len(".yaml")] if text.endswith(".yaml") else text
    if stem in shipped:
        hint = f" (the shipped config of that name is {stem})"
    else:
        close = difflib.get_close_matches(stem, shipped, n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise ConfigError(
        f"config {text} is neither a file nor the name of a shipped config{hint}; `aullm configs` lists them"
    )


def load_config(
    path: Union[str, Path, None] = None, overrides: Optional[list[str]] = None, *, resolved: bool = False
) -> Config:
    """Load a YAML config (a file, or a shipped config by name; None: the defaults), apply `--set` overrides,
    validate.

    `resolved` reads a config that aullm wrote itself (a run directory's or a bundle's), which earlier versions
    wrote with every model's keys; it is always a file.
    """
    if path is None:
        raw: dict[str, Any] = {}
    else:
        raw = read_yaml(Path(path) if resolved else find_config(path))
    return config_from_dict(apply_overrides(raw, list(overrides or [])), legacy_model_keys=resolved)


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)


def save_config(config: Config, path: Path) -> None:
    """Write the fully resolved config (every key, defaults included) atomically: a run directory's or a bundle's.

    `train.save_final` is written false: it asks one command for a bundle, and a config read back from a finished
    run to run again must not ask for one the user did not (whether a run has a bundle, its `bundle/` says)."""
    resolved = dataclasses.replace(config, train=dataclasses.replace(config.train, save_final=False))
    write_text(Path(path), dump_config(resolved))
