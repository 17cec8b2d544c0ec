#!/usr/bin/env bash
# The GPU check in one call (at most 8 minutes on one H100/H200): LLM step naive vs fast in bf16 with its
# exactness against float32, a fold-sized benchmark at the paper's settings projected to a full LOSO, and a
# 2-fold LOSO of SynME with SmolLM2 in bf16. Writes device_check.json and device_check.md into --out
# (default runs/device_check/). `--smoke` runs the same code on the CPU with the tiny-random LLM in seconds.
#
#   benchmarks/device_check.sh                      # on the GPU machine
#   benchmarks/device_check.sh --smoke --out /tmp/dc
#
# Uses the project's own set-up: $PYTHON if set, else .venv/bin/python, else python3; the source in src/ is
# imported directly, so nothing is installed. See benchmarks/device_check.py for what each section checks.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$PYTHON" benchmarks/device_check.py "$@"
