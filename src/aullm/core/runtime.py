"""Reproducibility and device/precision resolution, shared by training, benchmarks and prediction."""

from __future__ import annotations

import os
import random
from typing import Optional

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); ask torch for deterministic kernels where it has them.

    `warn_only` keeps ops without a deterministic kernel usable (they warn instead of raising), so the same
    code runs on every device.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


DEVICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str = "auto", parameter: Optional[str] = None) -> torch.device:
    """`auto` → cuda when available, else cpu; anything else is taken as written, once checked to exist here.

    Errors name where the value came from: the keyword argument `parameter` (`device`: the user's `--device` on the
    command line), else the config key `train.device`."""
    from aullm.core.errors import UserError, arg

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    where = arg(parameter, name) if parameter else f"train.device {name}"
    device = parse_device(name, parameter)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"{where}: no CUDA device is available on this machine (use auto or cpu)")
        if device.index is not None and device.index >= count:
            raise UserError(f"{where}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"{where}: Apple's MPS is not available on this machine (use auto or cpu)")
    return device


def parse_device(name: str, parameter: Optional[str] = None) -> torch.device:
    """A device name as torch reads it, limited to the kinds aullm runs on (no check that it exists here)."""
    from aullm.core.errors import UserError, arg

    where = arg(parameter, name) if parameter else f"train.device {name}"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserError(f"{where}: not a device; use {DEVICES}") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"{where}: not a device aullm runs on; use {DEVICES}")
    return device


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto` → bf16 on CUDA (when supported), fp32 on CPU, where bf16 matmuls are slow on most machines."""
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return _DTYPES[name]
