"""What every aullm model shares: the output record, seed-exact re-initialisation, and the trainable state.

LOSO trains one model per held-out subject. Loading a 1.5B LLM 26 times is the slow part, so a model is built
once and `reset(seed)` re-initialises its trainable parts before every fold. A reset must produce exactly the
weights a fresh build with that seed would (docs/design.md, Determinism): `init_module_` draws every value from a
CPU `torch.Generator` seeded by the caller and copies it into place.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Optional, Protocol, Union, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn


@dataclass
class ModelOutput:
    """Logits [B, K] (one per AU) and what else training adds to the main loss: `aux_loss`, already weighted
    (e.g. AULLM++ CCR), and `aux_logits` [B, K], more per-AU logits that the trainer scores against the same
    labels with the main loss, times `aux_logits_weight` (deep supervision, e.g. AULLM++'s R-AUGNN node states)."""

    logits: Tensor
    aux_loss: Optional[Tensor] = None
    aux_logits: Optional[Tensor] = None
    aux_logits_weight: float = 0.0


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator: the same numbers for a seed on every device and whatever the global RNG state is."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(seed))
    return generator


@torch.no_grad()
def fill_uniform_(tensor: Tensor, bound: float, generator: torch.Generator) -> None:
    """U(-bound, bound) drawn on the CPU from `generator`, copied into `tensor` (any device, any dtype)."""
    values = torch.empty(tensor.shape, dtype=torch.float32).uniform_(-bound, bound, generator=generator)
    tensor.copy_(values)


@torch.no_grad()
def fill_normal_(tensor: Tensor, std: float, generator: torch.Generator) -> None:
    """N(0, std²) drawn on the CPU from `generator`, copied into `tensor`."""
    values = torch.empty(tensor.shape, dtype=torch.float32).normal_(0.0, std, generator=generator)
    tensor.copy_(values)


def _fan_in(weight: Tensor) -> int:
    return int(weight.shape[1] * math.prod(weight.shape[2:])) if weight.dim() > 1 else int(weight.shape[0])


LinearLike = Union[nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d]


@runtime_checkable
class OwnInit(Protocol):
    """A module with parameters of its own kind (e.g. the LED filter's log-rates) that it re-initialises itself."""

    def init_own_parameters(self, generator: torch.Generator) -> None: ...


def _init_linear_or_conv(module: LinearLike, generator: torch.Generator) -> None:
    # PyTorch's default: kaiming_uniform_(a=√5) gives bound 1/√fan_in for the weight; the bias uses the same bound.
    bound = 1.0 / math.sqrt(max(1, _fan_in(module.weight)))
    fill_uniform_(module.weight, bound, generator)
    if module.bias is not None:
        fill_uniform_(module.bias, bound, generator)


_LINEAR_LIKE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def init_module_(module: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise every parameter and buffer under `module` as PyTorch's defaults would, from `generator`.

    Modules are visited in registration order, so the draw sequence (and hence every value) is fixed by the
    seed. A module with its own parameters implements `init_own_parameters(generator)`; an unknown module that
    holds parameters directly is an error rather than silently keeping its old (trained) values.
    """
    for sub in module.modules():
        own = list(sub.parameters(recurse=False))
        if isinstance(sub, OwnInit):
            sub.init_own_parameters(generator)
        elif isinstance(sub, _LINEAR_LIKE):
            _init_linear_or_conv(sub, generator)
        elif isinstance(sub, _NORMS):
            sub.reset_parameters()  # deterministic: weight 1, bias 0, running statistics cleared
        elif isinstance(sub, nn.Embedding):
            fill_normal_(sub.weight, 1.0, generator)
        elif own:
            raise TypeError(
                f"init_module_ does not know how to initialise {type(sub).__name__}; "
                "give it an init_own_parameters(generator) method"
            )


class Reasoner(Protocol):
    """What AU-LLM and AULLM++ need of the module that reads their tokens (the LoRA LLM, or no LLM at all):
    tokens [B, n, hidden_size] → one vector [B, hidden_size] per sample (with `last` = r: the last r positions'
    vectors, [B, r, hidden_size]), re-initialised by `reset(seed)`."""

    @property
    def hidden_size(self) -> int: ...

    def reset(self, seed: int) -> None: ...

    def __call__(self, tokens: Tensor, last: Optional[int] = None) -> Tensor: ...


@runtime_checkable
class OwnState(Protocol):
    """A child module that says itself what of it is trained (the LLM reasoner: its LoRA, not the frozen base)."""

    def trainable_state_dict(self) -> dict[str, Tensor]: ...

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None: ...


class AUModel(nn.Module):
    """Base class of the torch models: the contract the trainer and the protocol rely on.

    Subclasses implement `forward(x) -> ModelOutput` and `reset(seed)`; `on_fold_start` is an optional hook. A
    child module that defines its own `trainable_state_dict` (the LLM reasoner, which leaves out the frozen base
    weights) is asked for it; everything else (parameters and persistent buffers such as BatchNorm statistics) is
    trainable state.
    """

    def reset(self, seed: int) -> None:  # pragma: no cover - every model overrides it
        """Re-initialise every trainable part from `seed`, exactly as a fresh build with that seed would."""
        raise NotImplementedError

    def on_fold_start(self, train_labels: np.ndarray) -> None:
        """Called after `reset` with the fold's TRAINING labels [N, K] only (e.g. to count an AU co-occurrence
        prior); held-out labels never reach a model. Does nothing unless a model needs it."""

    def _state_sources(self) -> tuple[dict[str, Tensor], dict[str, OwnState]]:
        """Live tensors owned here, and children (by dotted prefix) that report their own trainable state."""
        tensors: dict[str, Tensor] = {}
        delegates: dict[str, OwnState] = {}

        def walk(module: nn.Module, prefix: str) -> None:
            for name, param in module.named_parameters(recurse=False):
                tensors[prefix + name] = param
            for name, buf in module.named_buffers(recurse=False):
                if buf is not None and name not in module._non_persistent_buffers_set:
                    tensors[prefix + name] = buf
            for name, child in module.named_children():
                if isinstance(child, OwnState):
                    delegates[prefix + name] = child
                else:
                    walk(child, f"{prefix}{name}.")

        walk(self, "")
        return tensors, delegates

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """Every trained tensor (parameters + BN buffers), without the frozen base LLM: what a fold saves.

        A snapshot (copies), so later training steps do not change what was taken.
        """
        tensors, delegates = self._state_sources()
        state = {name: t.detach().clone() for name, t in tensors.items()}
        for prefix, child in delegates.items():
            for name, t in child.trainable_state_dict().items():
                state[f"{prefix}.{name}"] = t.detach().clone()
        return state

    @torch.no_grad()
    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load what `trainable_state_dict` saved; missing or unexpected keys and shape mismatches are errors."""
        tensors, delegates = self._state_sources()
        routed: dict[str, dict[str, Tensor]] = {prefix: {} for prefix in delegates}
        unexpected: list[str] = []
        for key, value in state.items():
            if key in tensors:
                continue
            prefix = next((p for p in delegates if key.startswith(p + ".")), None)
            if prefix is None:
                unexpected.append(key)
            else:
                routed[prefix][key[len(prefix) + 1 :]] = value
        missing = [key for key in tensors if key not in state]
        if missing or unexpected:
            raise ValueError(
                f"trainable state does not match the model: missing {missing[:5]}{'…' if len(missing) > 5 else ''}, "
                f"unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}"
            )
        for key, target in tensors.items():
            value = state[key]
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"{key}: saved shape {tuple(value.shape)} != model shape {tuple(target.shape)}")
            target.copy_(value.to(device=target.device, dtype=target.dtype))
        for prefix, child in delegates.items():
            child.load_trainable_state_dict(routed[prefix])

    def parameter_parts(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Named groups for the parameter report; by default one group per top-level child."""
        parts: dict[str, list[tuple[str, nn.Parameter]]] = {}
        for name, param in self.named_parameters():
            parts.setdefault(name.split(".", 1)[0], []).append((name, param))
        return parts


class ClassicalModel(abc.ABC):
    """Base class of models fitted in closed form on whole arrays (LBP-TOP + SVM): no gradients, no device.

    The trainer calls `fit(clips, labels)` once per fold and `predict_proba(clips)`, with the same clip sampling
    every other model gets, so such a model shares data, folds and metrics with the torch models.
    """

    @abc.abstractmethod
    def reset(self, seed: int) -> None:
        """Forget what was fitted; `seed` drives any randomness of the next `fit`."""

    def on_fold_start(self, train_labels: np.ndarray) -> None:  # noqa: B027 - an optional hook, not abstract
        """Same hook as AUModel.on_fold_start; unused by default."""

    @abc.abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray) -> ClassicalModel:
        """Fit on clips [N, T, H, W] in [0, 1] and 0/1 labels [N, K]."""

    @abc.abstractmethod
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities [N, K]."""

    @abc.abstractmethod
    def trainable_state_dict(self) -> dict[str, Tensor]:
        """What a fold saves (as safetensors, like the torch models' weights)."""

    @abc.abstractmethod
    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load what `trainable_state_dict` saved."""


#: Anything the trainer can train on a fold.
FoldModel = Union[AUModel, ClassicalModel]
