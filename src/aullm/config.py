"""The experiment config (DESIGN §5): typed dataclasses, YAML loading, `--set` overrides, validation.

Every key has a default, so a config file only states what differs. Unknown keys and wrong types are errors
that name the key, because a silently ignored typo in a research config wastes a GPU-day.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin, get_type_hints

import dacite
import yaml

from aullm.errors import ConfigError

CASME2_AUS = ["AU1", "AU2", "AU4", "AU7", "AU12", "AU14", "AU15", "AU17"]
SAMM_AUS = ["AU2", "AU4", "AU7", "AU12"]

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
    face_crop: Literal["none", "detect"] = "none"
    input: Literal["clip", "flow"] = "clip"
    frames: int = 6
    size: int = 64
    aus: list[str] = field(default_factory=lambda: list(CASME2_AUS))
    or_policy: Literal["drop_sample", "union", "first"] = "drop_sample"
    corrections: bool = True
    include_unknown: bool = False
    cache_dir: Optional[str] = None

    def __post_init__(self) -> None:
        _check(self.frames >= 2, "data.frames", self.frames, "must be at least 2")
        _check(self.size >= 16, "data.size", self.size, "must be at least 16")
        _check(len(self.aus) > 0, "data.aus", self.aus, "must name at least one AU")
        for au in self.aus:
            _check(au.startswith("AU") and au[2:].isdigit(), "data.aus", au, "AUs are written AU<number>, e.g. AU12")


@dataclass
class GraphConfig:
    """AULLM++ R-AUGNN (our reconstruction): which AU-relation prior masks the graph."""

    prior: Literal["facs", "cooccurrence", "both", "none"] = "both"
    layers: int = 2
    cooccurrence_threshold: float = 0.2

    def __post_init__(self) -> None:
        _check(1 <= self.layers <= 3, "model.graph.layers", self.layers, "must be 1, 2 or 3")


@dataclass
class CCRConfig:
    """AULLM++ counterfactual consistency regularisation (our reconstruction); training only."""

    enabled: bool = True
    loss: Literal["kl", "mse"] = "kl"
    lambda_: float = 0.1
    flip_prob: float = 0.2
    # Which AUs the consistency loss covers: `unflipped` leaves out the AUs whose node state was flipped (their
    # prediction may legitimately change); `all` asks every prediction to ignore the counterfactual.
    scope: Literal["unflipped", "all"] = "unflipped"

    def __post_init__(self) -> None:
        _check(0.0 <= self.flip_prob <= 1.0, "model.ccr.flip_prob", self.flip_prob, "must be in [0, 1]")
        _check(self.lambda_ >= 0.0, "model.ccr.lambda", self.lambda_, "must be >= 0")


@dataclass
class ModelConfig:
    """The model family and its variant (paper Table 3 ablations, baselines, AULLM++ switches)."""

    name: Literal["au_llm", "aullmpp", "sssnet_led", "resnet18_led", "resnet18", "resnet34", "lbptop"] = "au_llm"
    variant: Literal["all", "f_high", "f_mid", "efp_linear", "prompt_learning"] = "all"
    dropout: float = 0.3
    token_position: Literal["append", "prepend"] = "append"
    prompt: str = "Analyze the facial features to classify action units:"
    prompt_vectors: int = 8
    mge_efp: bool = True
    r_augnn: bool = True
    graph: GraphConfig = field(default_factory=GraphConfig)
    ccr: CCRConfig = field(default_factory=CCRConfig)
    lbp_grid: int = 5  # lbptop: LBP-TOP histograms per cell of an N×N spatial block grid
    svm_c: float = 1.0  # lbptop: the linear SVMs' C

    def __post_init__(self) -> None:
        _check(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "must be in [0, 1)")
        _check(self.prompt_vectors >= 1, "model.prompt_vectors", self.prompt_vectors, "must be at least 1")
        _check(self.lbp_grid >= 1, "model.lbp_grid", self.lbp_grid, "must be at least 1")
        _check(self.svm_c > 0, "model.svm_c", self.svm_c, "must be > 0")


@dataclass
class LoraConfig:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.1
    targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])

    def __post_init__(self) -> None:
        _check(self.r >= 1, "llm.lora.r", self.r, "must be at least 1")
        _check(len(self.targets) > 0, "llm.lora.targets", self.targets, "must name at least one module")


@dataclass
class LLMConfig:
    """Which LLM reasons over the visual token, and how it is run."""

    name: str = "smollm2-135m"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    prefix_cache: bool = True
    compile: bool = False
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class LossConfig:
    name: Literal["asl", "bce"] = "asl"
    gamma_pos: float = 0.0
    gamma_neg: float = 4.0
    clip: float = 0.05
    eps: float = 1.0e-8


@dataclass
class TrainConfig:
    epochs: int = 350
    batch_size: int = 256
    lr: float = 3.0e-5
    weight_decay: float = 0.005
    device: str = "auto"
    loss: LossConfig = field(default_factory=LossConfig)
    save_final: bool = False

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "train.epochs", self.epochs, "must be at least 1")
        _check(self.batch_size >= 1, "train.batch_size", self.batch_size, "must be at least 1")
        _check(self.lr > 0, "train.lr", self.lr, "must be > 0")
        _check(
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


@dataclass
class EvalConfig:
    threshold: float = 0.5
    validation_subjects: int = 0

    def __post_init__(self) -> None:
        _check(0.0 < self.threshold < 1.0, "eval.threshold", self.threshold, "must be in (0, 1)")
        _check(self.validation_subjects >= 0, "eval.validation_subjects", self.validation_subjects, "must be >= 0")


@dataclass
class Config:
    """One experiment: data, model, LLM, training, protocol and evaluation settings, and the seeds to run."""

    name: str = "experiment"
    seeds: list[int] = field(default_factory=lambda: [1])
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        _check(len(self.seeds) > 0, "seeds", self.seeds, "must list at least one seed")
        if self.protocol.name == "cross_domain":
            _check(
                self.protocol.target is not None, "protocol.target", None, "cross_domain needs a target data section"
            )


def _check(ok: bool, key: str, value: Any, why: str) -> None:
    if not ok:
        raise ConfigError(f"invalid value for {key}: {value!r} ({why})")


# ---------------------------------------------------------------------------------------------- loading


def _known_keys(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {_ALIAS_KEYS.get(f.name, f.name): hints[f.name] for f in dataclasses.fields(cls)}


def _nested_dataclass(tp: Any) -> Optional[type]:
    """The dataclass inside `tp` (plain or Optional[...]), if any."""
    if dataclasses.is_dataclass(tp):
        return tp
    if get_origin(tp) is Union:
        for arg in get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg
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


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build a validated Config; every missing key takes its default."""
    _check_keys(raw, Config)
    raw = _normalise(_to_attr_names(raw))
    try:
        return dacite.from_dict(Config, raw, config=dacite.Config(strict=True, cast=[], check_types=True))
    except dacite.WrongTypeError as err:
        raise ConfigError(
            f"invalid value for {err.field_path}: {err.value!r} (expected {_type_name(err.field_type)})"
        ) from None
    except dacite.DaciteError as err:
        raise ConfigError(f"invalid config: {err}") from None


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
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    key, value = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
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
                raise ConfigError(f"--set {text}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return raw


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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


def load_config(path: Optional[Path] = None, overrides: Optional[list[str]] = None) -> Config:
    """Load a YAML config (or the defaults), apply `--set` overrides, validate."""
    raw = read_yaml(Path(path)) if path is not None else {}
    return config_from_dict(apply_overrides(raw, list(overrides or [])))


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)


def save_config(config: Config, path: Path) -> None:
    """Write the fully resolved config (every key, defaults included) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump_config(config), encoding="utf-8")
    tmp.replace(path)
