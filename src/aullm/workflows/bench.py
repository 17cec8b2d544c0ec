"""Speed benchmarks of the LLM side : one training step, naive vs prefix-cached, and a whole fold.

"Naive" is the straightforward implementation — the full [prompt + token] sequence per sample with torch's default
products, as the authors' reference code runs it; "fast" is aullm's training path: the reasoner's prefix-cache path,
with the frozen weights' products on oneDNN pre-packed weights where `llm.prepack` applies (CPU, float32). Both
run in one process on the same weights (LoRA included), batch and prompt, so the ratio is a fair measure of the
saving and `max_abs_diff` shows they agree. `benchmarks/bench_prepack.py` separates the two savings.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from aullm.config import LLMConfig, LoraConfig, config_to_dict
from aullm.core.runtime import resolve_device
from aullm.models.au_llm.configuration_au_llm import DEFAULT_PROMPT
from aullm.models.llm.loading import LoadedLLM, load_llm
from aullm.models.llm.reasoner import LLMReasoner
from aullm.training.losses import training_loss

CONTRACT_KEYS = ("llm", "batch", "prompt_tokens", "naive_s", "fast_s", "speedup", "max_abs_diff")


@dataclass
class StepBench:
    """Median seconds of one training step (forward + backward) on each path, and their largest logit gap."""

    llm: str
    batch: int
    prompt_tokens: int
    naive_s: float
    fast_s: float
    speedup: float
    max_abs_diff: float
    device: str
    dtype: str
    repeats: int
    load_s: float
    compiled: bool = False
    prepacked: bool = False  # the fast path ran the frozen products on oneDNN pre-packed weights (llm.prepack)
    naive_times: tuple[float, ...] = ()
    fast_times: tuple[float, ...] = ()

    @property
    def speedup_range(self) -> tuple[float, float]:
        """Lowest and highest per-repeat ratio (the two paths alternate within each repeat)."""
        ratios = [n / f for n, f in zip(self.naive_times, self.fast_times)] or [self.speedup]
        return min(ratios), max(ratios)

    def contract(self) -> dict[str, Any]:
        """The `aullm bench step --json` object (docs/design.md, Command line): exactly these keys."""
        values = asdict(self)
        return {key: values[key] for key in CONTRACT_KEYS}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(eq=False)
class StepHarness:
    """What a benchmarked LLM step wraps around the reasoner (AU-LLM minus the 3D-CNN): random features → Linear
    projector → visual token, and the reasoner's hidden state → Linear head → BCE against random labels. Shared by
    bench step, benchmarks/bench_prepack.py and the GPU check, so all of them time and compare the same step."""

    projector: nn.Linear
    head: nn.Linear
    features: Tensor
    labels: Tensor

    @classmethod
    def build(
        cls, hidden_size: int, batch: int, device: torch.device, feature_dim: int = 256, n_aus: int = 8, seed: int = 0
    ) -> StepHarness:
        """Features and labels from `seed`; the two layers from torch's global generator (seed it for repeats)."""
        generator = torch.Generator().manual_seed(seed)
        return cls(
            projector=nn.Linear(feature_dim, hidden_size).to(device),
            head=nn.Linear(hidden_size, n_aus).to(device),
            features=torch.randn(batch, feature_dim, generator=generator).to(device),
            labels=(torch.rand(batch, n_aus, generator=generator) < 0.3).float().to(device),
        )

    def token(self) -> Tensor:
        """The visual token [B, 1, hidden]."""
        return self.projector(self.features).unsqueeze(1)

    def loss(self, hidden: Tensor) -> Tensor:
        return nn.functional.binary_cross_entropy_with_logits(self.head(hidden), self.labels)

    def parameters(self) -> list[nn.Parameter]:
        return [*self.projector.parameters(), *self.head.parameters()]


def _perturb_lora(reasoner: LLMReasoner, seed: int) -> None:
    """LoRA B starts at zero (LoRA is then a no-op); give it trained-looking small values so both paths exercise it."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in reasoner.decoder.named_parameters():
            if ".lora_B." in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.01)


def _step_times(steps: list[Callable[[], None]], device: torch.device, repeats: int, warmup: int) -> list[list[float]]:
    """Seconds of each step in every repeat; the steps alternate within every repeat, so a change in machine load
    (other processes on a shared CPU) affects them alike and their ratio stays fair."""
    for _ in range(warmup):
        for step in steps:
            step()
    synchronize(device)
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for i, step in enumerate(steps):
            start = time.perf_counter()
            step()
            synchronize(device)
            times[i].append(time.perf_counter() - start)
    return times


def bench_step(
    llm: str = "smollm2-135m",
    batch: int = 64,
    device: Optional[str] = None,
    repeats: Optional[int] = None,
    prompt: str = DEFAULT_PROMPT,
    n_aus: int = 8,
    feature_dim: int = 256,
    seed: int = 0,
    compile: bool = False,
    prepack: Union[bool, Literal["auto"]] = "auto",
) -> StepBench:
    """Time one training step of both paths: random features → Linear projector → visual token → reasoner →
    Linear head → BCE; backward reaches LoRA, the projector and the head (as in AU-LLM, minus the 3D-CNN).

    `compile` runs the decoder under torch.compile (`llm.compile: true`) on both paths; compilation happens in
    the untimed warm-up step. `prepack` (`llm.prepack`) is the fast path's setting; the naive path always runs
    torch's default products (a second reasoner on the same base weights and LoRA values, where they differ)."""
    dev = resolve_device(device or "auto", "device")
    start = time.perf_counter()
    loaded = load_llm(LLMConfig(name=llm), dev)
    load_s = time.perf_counter() - start
    reasoner = LLMReasoner(loaded, LoraConfig(), prompt, "append", True, seed=seed, compile=compile, prepack=prepack)
    _perturb_lora(reasoner, seed)
    naive_reasoner = reasoner
    if reasoner.prepacked_modules:
        naive_reasoner = LLMReasoner(loaded, LoraConfig(), prompt, "append", True, seed=seed, prepack=False)
        _perturb_lora(naive_reasoner, seed)
    harness = StepHarness.build(loaded.hidden_size, batch, dev, feature_dim, n_aus, seed)
    params = [*reasoner.lora_parameters(), *naive_reasoner.lora_parameters(), *harness.parameters()]

    def hidden(fast: bool) -> Tensor:
        token = harness.token()
        return reasoner(token) if fast else naive_reasoner.forward_full(token)

    def step(fast: bool) -> None:
        for param in params:
            param.grad = None
        harness.loss(hidden(fast)).backward()

    reasoner.train()
    naive_reasoner.train()
    if repeats is None:
        repeats = 10 if dev.type == "cuda" else 5
    warmup = 2 if dev.type == "cuda" else 1
    naive_times, fast_times = _step_times([lambda: step(False), lambda: step(True)], dev, repeats, warmup)
    naive_s, fast_s = statistics.median(naive_times), statistics.median(fast_times)
    reasoner.eval()  # LoRA dropout off: both paths compute the same function
    naive_reasoner.eval()
    with torch.no_grad():
        diff = (harness.head(hidden(True)).float() - harness.head(hidden(False)).float()).abs().max().item()
    return StepBench(
        llm=llm,
        batch=batch,
        prompt_tokens=reasoner.prompt_tokens,
        naive_s=round(naive_s, 6),
        fast_s=round(fast_s, 6),
        speedup=round(naive_s / fast_s, 3),
        max_abs_diff=float(diff),
        device=str(dev),
        dtype=str(loaded.dtype).replace("torch.", ""),
        repeats=repeats,
        load_s=round(load_s, 3),
        compiled=compile,
        prepacked=reasoner.prepacked_modules > 0,
        naive_times=tuple(round(t, 6) for t in naive_times),
        fast_times=tuple(round(t, 6) for t in fast_times),
    )


# ---------------------------------------------------------------------------------------------- whole model step


@dataclass
class ModelStepBench(StepBench):
    """A whole training step (clips → model → ASL (+ CCR) → backward → Adam) of `model`, on its straightforward
    path (`llm.prefix_cache: false`: the full sequence per sample) and its fast path, timed alternately with
    AU-LLM's step (the demo's model, fast path) on the same LLM, batch and clips. `max_abs_diff` is the gap
    between the two paths' logits (same weights)."""

    model: str = "aullmpp"
    options: dict[str, Any] = field(default_factory=dict)
    au_llm_s: float = 0.0
    ratio_to_au_llm: float = 0.0
    au_llm_times: tuple[float, ...] = ()

    def contract(self) -> dict[str, Any]:
        """The contract keys, then what this form adds (docs/design.md, Command line: keys are only added),
        every repeat's seconds included."""
        values = asdict(self)
        extra = ("model", "options", "au_llm_s", "ratio_to_au_llm", "naive_times", "fast_times", "au_llm_times")
        return {key: values[key] for key in (*CONTRACT_KEYS, *extra)}


def _step_config(model: str, llm: str, prefix_cache: bool, overrides: list[str]) -> Any:
    """The demo's config for `model` with `overrides` (`model.KEY=VALUE`) and the LLM's prefix cache on or off."""
    from aullm.config import apply_overrides, config_from_dict

    raw: dict[str, Any] = {"model": {"name": model}, "llm": {"name": llm, "prefix_cache": prefix_cache}}
    return config_from_dict(apply_overrides(raw, overrides))


def _paths_disagree_by(fast: nn.Module, naive: nn.Module, clips: torch.Tensor) -> float:
    """Largest logit difference between the two LLM paths on the same weights (same seed) before any step: the
    cached-prefix path must agree with the plain one. Leaves both in training mode."""
    fast.eval()
    naive.eval()
    with torch.no_grad():
        diff = (fast(clips).logits.float() - naive(clips).logits.float()).abs().max().item()
    fast.train()
    naive.train()
    return float(diff)


def _train_step(
    net: nn.Module, optimizer: torch.optim.Optimizer, clips: torch.Tensor, labels: torch.Tensor, loss_fn: Any
) -> None:
    """One whole training step: forward, the loss with the model's auxiliary term, backward, the update."""
    loss = training_loss(loss_fn, net(clips), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def bench_model_step(
    model: str = "aullmpp",
    llm: str = "smollm2-135m",
    batch: int = 16,
    device: Optional[str] = None,
    repeats: Optional[int] = None,
    overrides: Optional[list[str]] = None,
    seed: int = 0,
) -> ModelStepBench:
    """Median seconds of one whole training step of `model` (options from `overrides`, `model.KEY=VALUE`) on both
    of its LLM paths, beside AU-LLM's (the demo's settings: 6 frames of 64×64, 8 AUs, Adam, ASL)."""
    from aullm.core.options import ModelConfig
    from aullm.models.factory import build_model
    from aullm.training.losses import build_loss
    from aullm.training.trainer import make_optimizer

    dev = resolve_device(device or "auto")
    start = time.perf_counter()
    loaded = load_llm(LLMConfig(name=llm), dev)
    load_s = time.perf_counter() - start

    cfg_fast = _step_config(model, llm, True, list(overrides or []))
    cfg_naive = _step_config(model, llm, False, list(overrides or []))
    cfg_base = _step_config("au_llm", llm, True, [])
    aus = list(cfg_base.data.aus)
    generator = torch.Generator().manual_seed(seed)
    clips = torch.rand(batch, cfg_base.data.frames, cfg_base.data.size, cfg_base.data.size, generator=generator)
    labels = (torch.rand(batch, len(aus), generator=generator) < 0.3).float()
    clips, labels = clips.to(dev), labels.to(dev)
    loss_fn = build_loss(cfg_base.train.loss)

    def prepared(cfg: Any) -> tuple[nn.Module, torch.optim.Optimizer]:
        net = build_model(cfg, aus, loaded, seed=seed).to(dev)
        params = [p for p in net.parameters() if p.requires_grad]
        return net, make_optimizer(params, cfg.train.lr, cfg.train.weight_decay)

    fast, fast_opt = prepared(cfg_fast)
    naive, naive_opt = prepared(cfg_naive)
    base, base_opt = prepared(cfg_base)
    diff = _paths_disagree_by(fast, naive, clips)
    base.train()
    if repeats is None:
        repeats = 10 if dev.type == "cuda" else 5
    warmup = 2 if dev.type == "cuda" else 1
    base_times, naive_times, fast_times = _step_times(
        [
            lambda: _train_step(base, base_opt, clips, labels, loss_fn),
            lambda: _train_step(naive, naive_opt, clips, labels, loss_fn),
            lambda: _train_step(fast, fast_opt, clips, labels, loss_fn),
        ],
        dev,
        repeats,
        warmup,
    )
    base_s, naive_s, fast_s = (statistics.median(t) for t in (base_times, naive_times, fast_times))
    options = cfg_fast.model
    assert isinstance(options, ModelConfig)
    return ModelStepBench(
        llm=llm,
        batch=batch,
        prompt_tokens=int(getattr(fast.reasoner, "prompt_tokens", 0)),
        naive_s=round(naive_s, 6),
        fast_s=round(fast_s, 6),
        speedup=round(naive_s / fast_s, 3),
        max_abs_diff=float(diff),
        device=str(dev),
        dtype=str(loaded.dtype).replace("torch.", ""),
        repeats=repeats,
        load_s=round(load_s, 3),
        prepacked=bool(getattr(fast.reasoner, "prepacked_modules", 0)),
        naive_times=tuple(round(t, 6) for t in naive_times),
        fast_times=tuple(round(t, 6) for t in fast_times),
        model=model,
        options={k: v for k, v in config_to_dict(cfg_fast)["model"].items() if k != "name"},
        au_llm_s=round(base_s, 6),
        ratio_to_au_llm=round(fast_s / base_s, 3),
        au_llm_times=tuple(round(t, 6) for t in base_times),
    )


# ---------------------------------------------------------------------------------------------- whole fold


def synthetic_prepared(n_clips: int, frames: int, size: int, aus: list[str], seed: int = 0) -> Any:
    """A PreparedDataset of random clips (10–40 frames, like SynME/CASME II) for timing: content does not matter."""
    import pandas as pd

    from aullm.data.cache import PreparedDataset

    rng = np.random.default_rng(seed)
    lengths = rng.integers(max(frames, 10), 41, size=n_clips)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    pixels = rng.integers(0, 256, size=(int(lengths.sum()), size, size), dtype=np.uint8)
    labels = (rng.random((n_clips, len(aus))) < 0.3).astype(np.float32)
    subjects = np.array([f"{i % 26 + 1:02d}" for i in range(n_clips)])
    index = pd.DataFrame({"subject": subjects, "sample": [f"clip{i:03d}" for i in range(n_clips)]})
    return PreparedDataset(
        index=index,
        frames=pixels,
        offsets=offsets,
        lengths=lengths.astype(np.int64),
        flow=None,
        labels=labels,
        subjects=subjects,
        aus=list(aus),
        skipped=[],
        size=size,
        input="clip",
        dataset="synthetic",
    )


@dataclass
class FoldBench:
    llm: str
    prefix_cache: bool
    prepack: Union[bool, str]
    clips: int
    epochs: int
    batch: int
    train_s: float
    epoch_s: float
    predict_s: float
    peak_memory_mb: float
    device: str


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated by torch (CUDA), else the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def bench_fold(
    llm: str = "smollm2-135m",
    clips: int = 247,
    epochs: int = 2,
    batch: int = 256,
    prefix_cache: bool = True,
    device: Optional[str] = None,
    seed: int = 1,
    size: int = 64,
    prepack: Union[bool, Literal["auto"]] = "auto",
) -> FoldBench:
    """Train the real AU-LLM model (build_model + the trainer) for `epochs` on `clips` synthetic clips, then predict
    26 held-out clips: the work of one CASME II LOSO fold at 1/350-scale per epoch."""
    from aullm.config import Config, config_from_dict
    from aullm.models.factory import build_model
    from aullm.training.trainer import predict_torch_model, train_torch_model

    dev = resolve_device(device or "auto", "device")
    cfg: Config = config_from_dict(
        {
            "data": {"size": size},
            "llm": {"name": llm, "prefix_cache": prefix_cache, "prepack": prepack},
            "train": {"epochs": epochs, "batch_size": batch},
        }
    )
    data = synthetic_prepared(clips + 26, cfg.data.frames, cfg.data.size, cfg.data.aus, seed)
    loaded: LoadedLLM = load_llm(cfg.llm, dev)
    model = build_model(cfg, cfg.data.aus, loaded, seed=seed).to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    rows = np.arange(clips)
    synchronize(dev)
    start = time.perf_counter()
    train_torch_model(model, data, rows, cfg, seed, dev, description=f"fold bench ({llm})")
    synchronize(dev)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    predict_torch_model(model, data, np.arange(clips, clips + 26), cfg, dev)
    synchronize(dev)
    predict_s = time.perf_counter() - start
    return FoldBench(
        llm=llm,
        prefix_cache=prefix_cache,
        prepack=prepack,
        clips=clips,
        epochs=epochs,
        batch=batch,
        train_s=round(train_s, 3),
        epoch_s=round(train_s / epochs, 4),
        predict_s=round(predict_s, 3),
        peak_memory_mb=round(peak_memory_mb(dev), 1),
        device=str(dev),
    )
