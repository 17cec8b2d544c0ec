#!/usr/bin/env bash
# Every CPU speed measurement of the README's Speed section, one after the other, with the machine's load before
# each (run it on a quiet machine; the numbers are only as good as the quiet):
#   0. the CPU's peak float32 GEMM rate and copy bandwidth, and the lower bounds they put on the backbone's step
#      and the demo (benchmarks/bench_bounds.py);
#   1. the backbone's training step, fast vs the straightforward 3D reference and vs the backbone as shipped before
#      this work (c87a6a5, read from git history), batch 256, median of 7;
#   2. `aullm bench step --llm smollm2-135m --batch 64 --repeats 7`, three times (process-to-process spread), then
#      benchmarks/bench_prepack.py: the same step with and without oneDNN pre-packed weights (llm.prepack);
#   3. a fold-sized training run (247 clips, batch 256, SmolLM2), fast vs naive LLM path, and each path with the
#      other kind of products (pre-packed / torch's default), 3 epochs each;
#   4. `make demo`'s run, timed, into a fresh run directory (the SynME data is reused if present).
#
#   benchmarks/speed_report.sh [OUT_DIR]      # default runs/speed_report; logs and a summary land there
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/speed_report}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
step() { echo "== $1 (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$SUMMARY"; }

step "this CPU's peak GEMM rate and bandwidth, and the arithmetic's lower bounds (benchmarks/bench_bounds.py)"
"$PYTHON" benchmarks/bench_bounds.py 2>"$OUT/bench_bounds.log" | tee -a "$SUMMARY"

step "backbone forward+backward, batch 256"
BEFORE=${AULLM_BACKBONE_BEFORE:-c87a6a5}
if git cat-file -e "$BEFORE^{commit}" 2>/dev/null; then against=(--against "$BEFORE"); else against=(); fi
"$PYTHON" benchmarks/bench_backbone.py --batch 256 --repeats 7 "${against[@]}" | tee -a "$SUMMARY"

for run in 1 2 3; do
  step "aullm bench step --llm smollm2-135m --batch 64 --repeats 7 (run $run of 3)"
  "$PYTHON" -m aullm -q bench step --llm smollm2-135m --batch 64 --repeats 7 | tee -a "$SUMMARY"
done
step "the same step with and without oneDNN pre-packed weights (benchmarks/bench_prepack.py)"
"$PYTHON" benchmarks/bench_prepack.py --batch 64 --repeats 7 2>"$OUT/bench_prepack.log" | tee -a "$SUMMARY"

step "fold-sized epoch (247 clips, batch 256, SmolLM2), fast vs naive (and each with the other products), 3 epochs each"
"$PYTHON" benchmarks/bench_fold.py --llm smollm2-135m --epochs 3 --paths fast naive naive-prepacked fast-plain 2>"$OUT/bench_fold.log" | tee -a "$SUMMARY"

step "make demo (aullm demo into a fresh run directory)"
rm -rf "$OUT/demo"
start=$(date +%s)
"$PYTHON" -m aullm demo --out "$OUT/demo" --data data/synme >"$OUT/demo.log" 2>&1
echo "demo wall time: $(( $(date +%s) - start )) s; $(grep -E '^│ Avg\.' "$OUT/demo.log" | head -1)" | tee -a "$SUMMARY"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$SUMMARY"
