"""Parameter report: how many weights each part of a model has and how many of them are trained.

Printed at train start, because "is the base LLM really frozen, and is LoRA where I asked?" is the first thing to
check when a run looks wrong, and the counts go into the README and the issue notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table
from torch import nn

from aullm.core.console import logger, stderr_console
from aullm.models.base import AUModel


@dataclass(frozen=True)
class PartCount:
    part: str
    total: int
    trainable: int


def parameter_report(model: nn.Module) -> list[PartCount]:
    """Counts per part (the model's `parameter_parts()`, else its top-level children), then a `total` row.

    Shared (tied) parameters are counted once.
    """
    if isinstance(model, AUModel):
        parts = model.parameter_parts()
    else:
        parts = {}
        for name, param in model.named_parameters():
            parts.setdefault(name.split(".", 1)[0], []).append((name, param))
    rows: list[PartCount] = []
    seen: set[int] = set()
    for part, named in parts.items():
        total = trainable = 0
        for _, param in named:
            if id(param) in seen:
                continue
            seen.add(id(param))
            total += param.numel()
            trainable += param.numel() if param.requires_grad else 0
        rows.append(PartCount(part, total, trainable))
    rows.append(PartCount("total", sum(r.total for r in rows), sum(r.trainable for r in rows)))
    return rows


def report_table(rows: list[PartCount], title: str = "parameters") -> Table:
    table = Table(title=title)
    table.add_column("part")
    table.add_column("total", justify="right")
    table.add_column("trainable", justify="right")
    for row in rows:
        style = "bold" if row.part == "total" else None
        table.add_row(row.part, f"{row.total:,}", f"{row.trainable:,}", style=style)
    return table


def log_parameter_report(model: nn.Module) -> list[PartCount]:
    """Print the report as a table (stderr, with the logs) and return the numbers."""
    rows = parameter_report(model)
    if logger.isEnabledFor(20):  # INFO
        stderr_console.print(report_table(rows, f"{type(model).__name__} parameters"))
    return rows


def lora_parameter_count(model: nn.Module, r: int, targets: list[str]) -> int:
    """Parameters LoRA adds: r·(in + out) for every nn.Linear whose name ends in one of `targets`."""
    count = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in targets:
            count += r * (module.in_features + module.out_features)
    return count


def llm_parameter_counts(hf_config: Any, r: int, targets: list[str]) -> tuple[int, int]:
    """(base, LoRA) parameter counts of a causal LM built from its config on the meta device (no weights, no
    memory), e.g. to report a Qwen2.5-1.5B-shaped model without downloading it."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    base = sum(p.numel() for p in model.parameters())  # parameters() yields tied weights once
    return base, lora_parameter_count(model, r, targets)
