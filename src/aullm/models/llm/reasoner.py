"""The LLM as reasoning engine: [prompt + visual tokens] → LoRA-tuned decoder → last position's hidden state.

Every path gives the same result (fp32: max abs diff ≤ 1e-4, gradients too):
- full path: every sample runs the whole sequence (prompt + its tokens) — the authors' reference code;
- fast path (`token_position: append` with `prefix_cache`): the prompt does not depend on the sample, so it runs
  once per step at batch 1 (with gradients: LoRA changes its keys/values) and each sample runs only its own tokens:
  * training (`packed`): one decoder pass over [prompt, tokens of sample 1, tokens of sample 2, ...] with positions
    restarting after the prompt and a mask letting each sample see the prompt and its own tokens only. One pass
    instead of two halves the per-layer overhead (kernel launches on GPU); measured 1.5× faster than the
    two-pass form on a 2-core CPU (SmolLM2-135M, batch 64);
  * `kv` (no-grad evaluation, sequences too long to pack, attention kernels without custom masks): the prompt's
    keys/values at batch 1, broadcast over the batch as a DynamicCache, then the tokens. In no-grad evaluation
    the prompt's keys/values are kept across calls until a LoRA weight changes, so an evaluation runs the prompt
    once.
Each reasoner has its own module tree that shares the frozen base weights of the loaded LLM (no copy), so several
models can live in one process while the base model is loaded once. On the CPU the frozen matrix products of every
path run on oneDNN with pre-packed weights (`llm.prepack`, models/kernels/prepacked.py), packed once per loaded LLM.
Over 450 lines because the three paths must stay side by side: they are one computation, tested equal, and a
change to one is checked against the others in the same file.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Optional, Union

import torch
from torch import Tensor, nn

from aullm.config import LoraConfig
from aullm.core.console import logger
from aullm.core.errors import UserError
from aullm.models.kernels.prepacked import packed_bytes, prepack_frozen_linears, should_prepack
from aullm.models.llm.loading import LoadedLLM

TokenPosition = Literal["append", "prepend"]
_LOGGED_FALLBACKS: set[str] = set()


def _log_once(message: str) -> None:
    """Fallback reasons are said once per process, not once per step."""
    if message not in _LOGGED_FALLBACKS:
        _LOGGED_FALLBACKS.add(message)
        logger.info(message)


def _check_last(last: Optional[int], length: int) -> int:
    """How many final positions to read: `last` (1 when None), at most the `length` tokens handed in."""
    r = 1 if last is None else int(last)
    if not 1 <= r <= length:
        raise ValueError(f"cannot read the last {r} positions of a {length}-token sequence")
    return r


def _shaped(hidden: Tensor, last: Optional[int]) -> Tensor:
    """[B, r, d] as the caller asked: [B, d] (the last position) when it gave no `last`."""
    return hidden[:, -1] if last is None else hidden


def _cache_keyword(decoder: nn.Module) -> str:
    """The decoder's keyword for a key/value cache: `cache` in current transformers (which warns on every call
    that still passes the old name), `past_key_values` in the releases before the rename."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def _returned_cache(out: Any) -> Any:
    """The key/value cache a decoder returned, read under its current name (`cache`) or its old one."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _shared_copy(module: nn.Module) -> nn.Module:
    """A new module tree whose parameters are the very same tensors (frozen base weights are not duplicated)."""
    memo: dict[int, Any] = {id(p): p for p in module.parameters()}
    return copy.deepcopy(module, memo)


class LLMReasoner(nn.Module):
    """LoRA-adapted decoder over [prompt, tokens] (append) or [tokens, prompt] (prepend); returns [B, hidden] fp32."""

    _call: Callable[..., Any]  # the decoder, or its torch.compile wrapper (kept out of the module registry)

    def __init__(
        self,
        loaded: LoadedLLM,
        lora: LoraConfig,
        prompt: str,
        token_position: TokenPosition = "append",
        prefix_cache: bool = True,
        *,
        seed: Optional[int] = None,
        compile: bool = False,
        prepack: Union[bool, Literal["auto"]] = "auto",
    ) -> None:
        super().__init__()
        from peft import LoraConfig as PeftLoraConfig
        from peft import inject_adapter_in_model

        if token_position not in ("append", "prepend"):
            raise UserError(f"model.token_position must be append or prepend, got {token_position!r}")
        self.loaded = loaded
        self.token_position: TokenPosition = token_position
        self.prefix_cache = prefix_cache
        self.lora_config = lora
        self.decoder: Any = _shared_copy(loaded.model.get_decoder())  # the transformers decoder, LoRA injected
        peft_config = PeftLoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.targets), bias="none"
        )
        try:
            with torch.random.fork_rng(devices=[]):  # peft's own init is overwritten by reset(); keep caller's RNG
                inject_adapter_in_model(peft_config, self.decoder)
        except ValueError as err:
            raise UserError(
                f"llm.lora.targets {list(lora.targets)} do not match modules of LLM {loaded.name!r}: {err}"
            ) from None
        self._lora_params: list[tuple[str, nn.Parameter]] = []
        for name, param in self.decoder.named_parameters():
            if ".lora_" in name:
                # fp32 master weights for the trainable part, whatever the base dtype (bf16 on GPU).
                param.data = param.data.float()
                param.requires_grad_(True)
                self._lora_params.append((name, param))
            else:
                param.requires_grad_(False)
        if not self._lora_params:
            raise UserError(f"llm.lora.targets {list(lora.targets)} matched no module of LLM {loaded.name!r}")
        # torch.compile makes its own kernels: the packed products would only break its graph.
        self.prepacked_modules = 0
        if not compile and should_prepack(prepack, self.decoder, loaded.device, loaded.dtype):
            self.prepacked_modules = self._prepack(loaded)
        ids = (
            loaded.tokenizer(prompt, add_special_tokens=True, return_tensors="pt")["input_ids"]
            if prompt
            else torch.zeros(1, 0, dtype=torch.long)
        )
        self.register_buffer("prompt_ids", ids.to(loaded.device), persistent=False)
        self.prompt_tokens = int(ids.shape[1])
        self._autocast_dtype: Optional[torch.dtype] = None if loaded.dtype == torch.float32 else loaded.dtype
        # Set outside nn.Module's registry: the decoder must not appear twice in state_dict() / named_modules().
        call = torch.compile(self.decoder, dynamic=True) if compile else self.decoder
        object.__setattr__(self, "_call", call)
        self._cache_keyword = _cache_keyword(self.decoder)
        self._eval_kv: Optional[tuple[tuple[Any, ...], list[tuple[Tensor, Tensor]]]] = None
        self._masks: dict[tuple[object, ...], Tensor] = {}
        self._version = 0
        # Longest packed sequence (prompt + all samples' tokens): the mask and attention scores grow as its square.
        self.packed_max_len = 2048
        self.decoder.eval()
        self.reset(torch.initial_seed() if seed is None else seed)

    def _prepack(self, loaded: LoadedLLM) -> int:
        """Swap the decoder's frozen linears for oneDNN pre-packed ones; the packing is kept with the loaded LLM."""
        cache = loaded.extra.setdefault("prepacked", {})
        fresh = not cache
        start = time.perf_counter()
        size = packed_bytes(self.decoder)
        count = prepack_frozen_linears(self.decoder, cache)
        if fresh and count:
            logger.info(
                "pre-packed %d frozen LLM weight matrices for oneDNN (%.0f MB, %.1fs; llm.prepack: false turns it off)",
                count,
                size / 2**20,
                time.perf_counter() - start,
            )
        return count

    # ------------------------------------------------------------------------------------------ properties

    @property
    def hidden_size(self) -> int:
        return self.loaded.hidden_size

    @property
    def uses_fast_path(self) -> bool:
        return self.prefix_cache and self.token_position == "append" and self.prompt_tokens > 0

    def lora_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self._lora_params]

    # ------------------------------------------------------------------------------------------ state

    def reset(self, seed: int) -> None:
        """Re-initialise LoRA exactly as a fresh application with `seed` does (A: kaiming-uniform, B: zeros).

        Drawn on CPU from its own generator, so the result is the same on every device and the caller's RNG
        stream is untouched.
        """
        generator = torch.Generator().manual_seed(int(seed) % (2**63))
        with torch.no_grad():
            for name, param in self._lora_params:
                if ".lora_A." in name:
                    fresh = torch.empty(param.shape, dtype=torch.float32)
                    nn.init.kaiming_uniform_(fresh, a=math.sqrt(5), generator=generator)
                    param.copy_(fresh)
                else:
                    param.zero_()
        self._invalidate()

    def trainable_state_dict(self) -> dict[str, Tensor]:
        return {name: param.detach().clone() for name, param in self._lora_params}

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        names = {name for name, _ in self._lora_params}
        missing = sorted(names - set(state))
        unexpected = sorted(set(state) - names)
        if missing or unexpected:
            raise UserError(
                f"LoRA weights do not fit this LLM/LoRA config: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        with torch.no_grad():
            for name, param in self._lora_params:
                param.copy_(state[name])
        self._invalidate()

    def train(self, mode: bool = True) -> LLMReasoner:
        super().train(mode)
        self._invalidate()
        return self

    def _invalidate(self) -> None:
        self._version += 1
        self._eval_kv = None

    # ------------------------------------------------------------------------------------------ forward

    def forward(self, tokens: Tensor, last: Optional[int] = None) -> Tensor:
        """tokens [B, n, d] → the final hidden state at the sequence's last position, [B, d] in fp32; with `last`
        = r, the final hidden states at its last r positions, [B, r, d] (AULLM++'s `readout: structured` reads
        every structured token)."""
        if tokens.dim() != 3 or tokens.shape[-1] != self.hidden_size:
            raise ValueError(f"tokens must be [B, n, {self.hidden_size}], got {tuple(tokens.shape)}")
        r = _check_last(last, tokens.shape[1])
        tokens = tokens.to(device=self.loaded.device, dtype=self.loaded.dtype)
        with self._autocast():
            if not self.uses_fast_path:
                self._log_fallback()
                hidden = self._forward_full(tokens, r)
            elif not torch.is_grad_enabled() and not self.training:
                hidden = self._forward_prefix_cached(tokens, r)
            elif self._can_pack(tokens.shape[0] * tokens.shape[1]):
                hidden = self._forward_packed(tokens, r)
            else:
                hidden = self._forward_prefix_cached(tokens, r)
        return _shaped(hidden.float(), last)

    def forward_branches(
        self, shared: Optional[Tensor], branches: Sequence[Tensor], last: Optional[int] = None
    ) -> list[Tensor]:
        """Several token sequences per sample that share a start: branch m holds [B_m, n, d] tokens for the first
        B_m ≤ B samples, and sample b's sequence in branch m is [prompt][shared_b][branches[m]_b] (append) → the
        last position's hidden state per branch, [B_m, d] fp32 (with `last` = r ≤ n: the last r, [B_m, r, d]).

        Equal to `forward(cat(shared[:B_m], branches[m]), last)` for every m (tested). On the training fast path
        (`append`, prefix cache, a packable length) it is one decoder pass over [prompt, every sample's shared
        tokens, every branch's tokens], where each branch token sees the prompt, its own sample's shared tokens and
        its own branch's earlier tokens: the prompt runs once and the shared tokens once per sample, not once per
        branch (AULLM++'s counterfactual re-runs only the instruction token after a shared content token).
        Elsewhere it runs the full sequences as one batch of Σ B_m."""
        if not branches:
            return []
        n2, width = branches[0].shape[1], branches[0].shape[2]
        batch = branches[0].shape[0] if shared is None else shared.shape[0]
        sizes = [int(b.shape[0]) for b in branches]
        if (
            width != self.hidden_size
            or any(b.dim() != 3 or tuple(b.shape[1:]) != (n2, width) for b in branches)
            or max(sizes) > batch
            or (shared is not None and (shared.dim() != 3 or shared.shape[2] != width))
        ):
            raise ValueError(
                f"shared [B, n, {self.hidden_size}] and branches [B_m <= B, n, {self.hidden_size}] expected"
            )
        n1 = 0 if shared is None else shared.shape[1]
        r = _check_last(last, n2)
        dtype = self.loaded.dtype
        if (
            self.uses_fast_path
            and (torch.is_grad_enabled() or self.training)
            and self._can_pack(batch * n1 + sum(sizes) * n2)
        ):
            with self._autocast():
                hidden = self._forward_tree(
                    None if shared is None else shared.to(dtype), torch.cat(list(branches)).to(dtype), sizes, r
                )
            return [_shaped(h.float(), last) for h in hidden.split(sizes)]
        full = [b if shared is None else torch.cat([shared[: b.shape[0]], b], dim=1) for b in branches]
        return list(self(torch.cat(full), last).split(sizes))

    def _tree_layout(self, batch: int, n1: int, sizes: Sequence[int], n2: int) -> tuple[Tensor, Tensor, Tensor]:
        """For the packed [prompt, shared (sample-major), branches (branch-major, then sample)] sequence: each
        position's sample (−1: prompt), branch (−1: prompt or shared) and position id."""
        device = self.loaded.device
        p = self.prompt_tokens
        ar = lambda n: torch.arange(n, device=device)  # noqa: E731
        minus = torch.full((p,), -1, device=device, dtype=torch.long)
        total = sum(sizes)
        sample = torch.cat([minus, ar(batch).repeat_interleave(n1), *[ar(k).repeat_interleave(n2) for k in sizes]])
        branch = torch.cat(
            [
                minus,
                torch.full((batch * n1,), -1, device=device, dtype=torch.long),
                *[torch.full((k * n2,), m, device=device, dtype=torch.long) for m, k in enumerate(sizes)],
            ]
        )
        pos = torch.cat([ar(p), p + ar(n1).repeat(batch), p + n1 + ar(n2).repeat(total)])
        return sample, branch, pos

    def _tree_mask(self, batch: int, n1: int, sizes: Sequence[int], n2: int, dtype: torch.dtype) -> Tensor:
        kind = str(self.decoder.config._attn_implementation)
        key = (batch, n1, tuple(sizes), n2, f"tree-{kind}-{dtype}")
        mask = self._masks.get(key)
        if mask is not None:
            return mask
        sample, branch, pos = self._tree_layout(batch, n1, sizes, n2)
        prompt = sample < 0
        idx = torch.arange(len(sample), device=sample.device)
        same = (sample[None, :] == sample[:, None]) & ((branch[None, :] < 0) | (branch[None, :] == branch[:, None]))
        allowed = (prompt[None, :] & (idx[None, :] <= idx[:, None])) | (
            ~prompt[None, :] & same & (pos[None, :] <= pos[:, None])
        )
        if kind == "eager":
            mask = torch.zeros(allowed.shape, dtype=dtype, device=idx.device)
            mask = mask.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]
        else:
            mask = allowed[None, None]
        if len(self._masks) >= 4:
            self._masks.clear()
        self._masks[key] = mask
        return mask

    def _forward_tree(self, shared: Optional[Tensor], branches: Tensor, sizes: Sequence[int], last: int) -> Tensor:
        """branches: every branch's tokens concatenated, [Σ B_m, n2, d] → [Σ B_m, last, d]."""
        total, n2, width = branches.shape
        batch = max(sizes) if shared is None else shared.shape[0]
        n1 = 0 if shared is None else shared.shape[1]
        parts = [self._prompt_embeddings().to(branches.dtype)]
        if shared is not None and n1:
            parts.append(shared.reshape(1, batch * n1, width))
        parts.append(branches.reshape(1, total * n2, width))
        sequence = torch.cat(parts, dim=1)
        _, _, pos = self._tree_layout(batch, n1, sizes, n2)
        mask = self._tree_mask(batch, n1, sizes, n2, sequence.dtype)
        out = self._call(inputs_embeds=sequence, attention_mask=mask, position_ids=pos.unsqueeze(0), use_cache=False)
        start = self.prompt_tokens + batch * n1
        return out.last_hidden_state[0, start:].reshape(total, n2, width)[:, n2 - last :]

    def forward_path(self, tokens: Tensor, path: Literal["full", "packed", "kv"], last: Optional[int] = None) -> Tensor:
        """One named computation, whatever the settings: for equivalence checks and benchmarks."""
        r = _check_last(last, tokens.shape[1])
        tokens = tokens.to(device=self.loaded.device, dtype=self.loaded.dtype)
        with self._autocast():
            if path == "full":
                hidden = self._forward_full(tokens, r)
            elif path == "packed":
                hidden = self._forward_packed(tokens, r)
            else:
                hidden = self._forward_prefix_cached(tokens, r)
        return _shaped(hidden.float(), last)

    def forward_full(self, tokens: Tensor, last: Optional[int] = None) -> Tensor:
        """The straightforward computation (full sequence per sample), whatever the settings: for checks/benchmarks."""
        return self.forward_path(tokens, "full", last)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.loaded.device.type, dtype=self._autocast_dtype)

    def _log_fallback(self) -> None:
        if self.token_position == "prepend":
            _log_once(
                "LLM prefix cache off: the visual token precedes the prompt (prepend), so the prompt's "
                "keys/values depend on each sample; running the full sequence per sample"
            )
        elif not self.prefix_cache:
            _log_once("LLM prefix cache off (llm.prefix_cache: false); running the full sequence per sample")

    def _prompt_embeddings(self) -> Tensor:
        return self.decoder.get_input_embeddings()(self.prompt_ids)

    def _forward_full(self, tokens: Tensor, last: int) -> Tensor:
        batch = tokens.shape[0]
        prompt = self._prompt_embeddings().expand(batch, -1, -1).to(tokens.dtype)
        parts = (prompt, tokens) if self.token_position == "append" else (tokens, prompt)
        sequence = torch.cat(parts, dim=1)
        out = self._call(inputs_embeds=sequence, use_cache=False)
        return out.last_hidden_state[:, -last:]

    def _can_pack(self, new_tokens: int) -> bool:
        """Packing needs a custom 4D mask: sdpa and eager attention take one, flash-attention kernels do not."""
        kind = getattr(self.decoder.config, "_attn_implementation", None)
        return kind in ("sdpa", "eager") and self.prompt_tokens + new_tokens <= self.packed_max_len

    def _packed_mask(self, batch: int, n: int, dtype: torch.dtype) -> Tensor:
        """[1, 1, L, L]: causal, and a sample's token sees the prompt and its own earlier tokens only."""
        kind = str(self.decoder.config._attn_implementation)
        key = (batch, n, f"{kind}-{dtype}")
        mask = self._masks.get(key)
        if mask is not None:
            return mask
        prompt = self.prompt_tokens
        idx = torch.arange(prompt + batch * n, device=self.loaded.device)
        sample = torch.where(idx < prompt, -1, torch.div(idx - prompt, n, rounding_mode="floor"))
        allowed = (idx[None, :] <= idx[:, None]) & ((idx[None, :] < prompt) | (sample[None, :] == sample[:, None]))
        if kind == "eager":  # eager attention adds the mask to the scores
            mask = torch.zeros(allowed.shape, dtype=dtype, device=idx.device)
            mask = mask.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]
        else:
            mask = allowed[None, None]
        self._masks = {key: mask}  # batch sizes rarely change: keep one
        return mask

    def _forward_packed(self, tokens: Tensor, last: int) -> Tensor:
        batch, n, width = tokens.shape
        prompt = self.prompt_tokens
        sequence = torch.cat([self._prompt_embeddings().to(tokens.dtype), tokens.reshape(1, batch * n, width)], dim=1)
        idx = torch.arange(prompt + batch * n, device=tokens.device)
        positions = torch.where(idx < prompt, idx, prompt + (idx - prompt) % n).unsqueeze(0)
        mask = self._packed_mask(batch, n, sequence.dtype)
        out = self._call(inputs_embeds=sequence, attention_mask=mask, position_ids=positions, use_cache=False)
        return out.last_hidden_state[0, prompt:].reshape(batch, n, width)[:, n - last :]

    def _lora_key(self) -> tuple[Any, ...]:
        """Identifies the LoRA weights' current values: in-place updates (optimizer steps) bump `_version`."""
        return (
            self._version,
            torch.is_autocast_enabled(self.loaded.device.type),
            tuple((p.data_ptr(), p._version) for _, p in self._lora_params),
        )

    def _prompt_kv(self) -> list[tuple[Tensor, Tensor]]:
        """The prompt's per-layer keys/values at batch 1; kept across calls only in no-grad evaluation."""
        cacheable = not torch.is_grad_enabled() and not self.training
        if cacheable and self._eval_kv is not None and self._eval_kv[0] == self._lora_key():
            return self._eval_kv[1]
        out = self._call(inputs_embeds=self._prompt_embeddings(), use_cache=True)
        kv = [(layer.keys, layer.values) for layer in _returned_cache(out).layers]
        self._eval_kv = (self._lora_key(), kv) if cacheable else None
        return kv

    def prompt_state(self) -> Optional[list[tuple[Tensor, Tensor]]]:
        """The prompt's per-layer keys/values as evaluation uses them (computed now unless cached), or None where
        evaluation does not use them (the prefix cache is off, or the visual token precedes the prompt)."""
        if not self.uses_fast_path or self.training:
            return None
        with torch.no_grad(), self._autocast():
            return self._prompt_kv()

    def load_prompt_state(self, kv: list[tuple[Tensor, Tensor]]) -> None:
        """Reuse the keys/values `prompt_state` gave earlier for these very weights (a bundle's on-disk cache):
        evaluation then starts without the prompt's forward pass. Dropped, as computed ones are, when the LoRA
        weights change or the model trains."""
        device = self.loaded.device
        self._eval_kv = (self._lora_key(), [(k.to(device), v.to(device)) for k, v in kv])

    def _forward_prefix_cached(self, tokens: Tensor, last: int) -> Tensor:
        from transformers import DynamicCache

        batch, n = tokens.shape[0], tokens.shape[1]
        kv = self._prompt_kv()
        # expand() is a broadcast view: its backward sums the per-sample gradients into the single prompt pass.
        past = DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv])
        start = self.prompt_tokens
        positions = torch.arange(start, start + n, device=tokens.device).unsqueeze(0).expand(batch, -1)
        caches = {self._cache_keyword: past}
        out = self._call(inputs_embeds=tokens, position_ids=positions, use_cache=True, **caches)
        return out.last_hidden_state[:, -last:]


class PassThroughReasoner(nn.Module):
    """No LLM (`model.reasoner: none`): the last token itself is the output, so AU-LLM's visual token goes
    straight to the classifier head. Same interface as `LLMReasoner` (hidden_size, reset); nothing to train."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self._hidden_size = int(hidden_size)

    @property
    def hidden_size(self) -> int:
        return self._hidden_size

    def reset(self, seed: int) -> None:
        """Nothing to re-initialise."""

    def forward(self, tokens: Tensor, last: Optional[int] = None) -> Tensor:
        """tokens [B, n, d] → the last token [B, d] in fp32 (with `last` = r: the last r tokens, [B, r, d])."""
        if tokens.dim() != 3 or tokens.shape[-1] != self.hidden_size:
            raise ValueError(f"tokens must be [B, n, {self.hidden_size}], got {tuple(tokens.shape)}")
        return _shaped(tokens[:, -_check_last(last, tokens.shape[1]) :].float(), last)
