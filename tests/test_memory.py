"""keep_freed_memory: a training step's re-allocated buffers come back without page faults (glibc Linux only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SNIPPET = """
import resource
from aullm.core.memory import keep_freed_memory
applied = keep_freed_memory()
import torch
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):  # warm-up: the heap grows until freed blocks fit the next request
    torch.ones(12_500_000)
before = faults()
for _ in range(10):  # allocate, touch and free 50 MB, as each training step does with its activations
    block = torch.ones(12_500_000)
    del block
print(applied, faults() - before)
"""


def _run(keep: str) -> tuple[bool, int]:
    env = {**os.environ, "AULLM_KEEP_FREED_MEMORY": keep, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_are_reused_without_page_faults() -> None:
    applied, faults = _run("1")
    default_applied, default_faults = _run("0")
    assert applied and not default_applied
    assert default_faults > 100_000  # glibc's default: each of the ten 50 MB blocks is fresh 4 KB pages again
    assert faults < default_faults / 3  # kept: at most a block or two still land on new pages (heap fragmentation)
