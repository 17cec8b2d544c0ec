#!/bin/bash
# Issue #31, part 3: choose AULLM++'s default design on SynME's DEFAULT preset, then measure it on the demo's SynME.
# One run at a time, one torch thread each (train.threads=1 for every run compared), 3 seeds (1, 2, 3), the demo's
# training settings (configs/synme_demo_aullmpp.yaml = configs/demo.yaml except name and model).
#
#   benchmarks/aullmpp_study.sh OUT DEFAULT_DATA DEMO_DATA [WAIT_PID]
#   (smoke test: EXTRA="--set llm.name=tiny-random --set train.epochs=1 ..." SKIP_BENCH=1 SKIP_DIAG=1)
#
# 0. `aullm bench step --model aullmpp` (7 alternating steps, one thread): two candidates and the figure's order.
# 1. Selection, DEFAULT preset only: the candidates below, then `aullm compare`, then the rule fixed beforehand
#    (benchmarks/select_aullmpp.py: (AUC + F1 macro with validation-subject thresholds) / 2, the cheaper of
#    near-equals). Nothing from the demo data is read before the choice is written.
# 2. Final, demo data: the chosen design, AU-LLM (the demo's config), AU-LLM without the LLM, and the chosen design
#    with each of MGE-EFP, R-AUGNN (and with it CCR), CCR switched off; paired `aullm compare`s.
# 3. Extra one-fold diagnostics (CCR weight and form, several tokens) on the default preset.
set -u
OUT=$1
DEF=$2
DEMO=$3
WAIT=${4:-}
cd "$(dirname "$0")/.."  # run a frozen copy of the repository (git archive): the queue outlives edits and rebases
PY=${PY:-/work/main/.venv/bin/python}
export PYTHONPATH=$PWD/src
mkdir -p "$OUT/sel" "$OUT/final" "$OUT/bench" "$OUT/diag"
LOG=$OUT/queue.log
say() { echo "$(date '+%F %T') $*" >> "$LOG"; }
if [ -n "$WAIT" ]; then
    say "waiting for PID $WAIT (diagnostics) to finish"
    while kill -0 "$WAIT" 2>/dev/null; do sleep 10; done
fi
say "queue started (PID $$, commit $(cat COMMIT 2>/dev/null || git rev-parse --short HEAD))"

PP=configs/synme_demo_aullmpp.yaml
# shellcheck disable=SC2206
COMMON=(--set 'seeds=[1,2,3]' --set train.threads=1 ${EXTRA:-})
BASE=(--set model.token_order=prompt_it_ct --set model.mge.extraction=backbone --set model.mge.zero_init=true
      --set model.ccr.fraction=0.25)
declare -A CAND
CAND[it_ct]="${BASE[*]}"
CAND[it_ct_sep]="${BASE[*]} --set model.mge.conv=separable"
CAND[ct_it]="${BASE[*]} --set model.token_order=prompt_ct_it"
ORDER=(it_ct it_ct_sep ct_it)

train() {  # NAME OUTDIR CONFIG ARGS...
    local name=$1 out=$2
    shift 2
    if [ -f "$out/metrics.json" ]; then say "skip $name (done)"; return 0; fi
    say "start $name -> $out: aullm train $*"
    "$PY" -m aullm train "$@" --out "$out" > "$out.log" 2>&1
    say "done $name rc=$? ($(grep -c 'trained .* clips in' "$out.log") fold-seeds, $(grep -o 'trained [0-9]* clips in [0-9.]*s' "$out.log" | awk '{s+=substr($5,1,length($5)-1)} END {printf "%.0f", s}') s training)"
}

# 0. step time
[ -n "${SKIP_BENCH:-}" ] || for design in it_ct it_ct_sep figure; do
    # shellcheck disable=SC2206
    if [ "$design" = figure ]; then sets=(--set model.token_order=figure); else sets=(${CAND[$design]}); fi
    say "bench step --model aullmpp ($design)"
    OMP_NUM_THREADS=1 "$PY" -m aullm bench step --model aullmpp "${sets[@]}" --repeats 7 --json \
        > "$OUT/bench/step_$design.json" 2> "$OUT/bench/step_$design.log"
done

# 1. selection on the default preset
for c in "${ORDER[@]}"; do
    # shellcheck disable=SC2086
    train "sel_$c" "$OUT/sel/$c" "$PP" --set "data.root=$DEF" "${COMMON[@]}" ${CAND[$c]}
done
"$PY" -m aullm compare "$OUT/sel/it_ct" "$OUT/sel/it_ct_sep" "$OUT/sel/ct_it" --json > "$OUT/sel/compare.json" 2> "$OUT/sel/compare.log"
args=()
for c in "${ORDER[@]}"; do args+=("$c=$OUT/sel/$c:$OUT/sel/$c.log"); done
CHOSEN=$("$PY" benchmarks/select_aullmpp.py --out "$OUT/sel/selected.json" "${args[@]}" 2>> "$LOG")
if [ -z "$CHOSEN" ] || [ -z "${CAND[$CHOSEN]+set}" ]; then say "selection failed: stopping"; exit 1; fi
say "selected: $CHOSEN (${CAND[$CHOSEN]})"
SEL=${CAND[$CHOSEN]}

# 2. final on the demo's data
# shellcheck disable=SC2086
train aullmpp "$OUT/final/aullmpp" "$PP" --set "data.root=$DEMO" "${COMMON[@]}" $SEL
train au_llm "$OUT/final/au_llm" configs/demo.yaml --set "data.root=$DEMO" "${COMMON[@]}"
train au_llm_no_llm "$OUT/final/au_llm_no_llm" configs/synme_demo_au_llm_no_llm.yaml --set "data.root=$DEMO" "${COMMON[@]}"
"$PY" -m aullm compare "$OUT/final/au_llm" "$OUT/final/aullmpp" --json > "$OUT/final/compare_au_llm.json" 2>&1
"$PY" -m aullm compare "$OUT/final/au_llm_no_llm" "$OUT/final/aullmpp" --json > "$OUT/final/compare_no_llm.json" 2>&1
say "compared with AU-LLM and AU-LLM without the LLM"
# shellcheck disable=SC2086
train aullmpp_no_mge_efp "$OUT/final/aullmpp_no_mge_efp" "$PP" --set "data.root=$DEMO" "${COMMON[@]}" $SEL --set model.mge_efp=false
# shellcheck disable=SC2086
train aullmpp_no_r_augnn "$OUT/final/aullmpp_no_r_augnn" "$PP" --set "data.root=$DEMO" "${COMMON[@]}" $SEL --set model.r_augnn=false --set model.ccr.enabled=false
# shellcheck disable=SC2086
train aullmpp_no_ccr "$OUT/final/aullmpp_no_ccr" "$PP" --set "data.root=$DEMO" "${COMMON[@]}" $SEL --set model.ccr.enabled=false
"$PY" -m aullm compare "$OUT/final/aullmpp" "$OUT/final/aullmpp_no_mge_efp" "$OUT/final/aullmpp_no_r_augnn" \
    "$OUT/final/aullmpp_no_ccr" --json > "$OUT/final/compare_ablations.json" 2>&1
say "compared the ablations"

# 3. one-fold diagnostics of CCR's weight and form and of several tokens (default preset, 9 epochs)
diag() {
    local name=$1
    shift
    say "diag $name"
    "$PY" benchmarks/diag_aullmpp.py "$PP" "$@" --data "$DEF" --fold 1 --probe-every 3 --set train.epochs=9 \
        --out "$OUT/diag/$name.json" > "$OUT/diag/$name.log" 2>&1
}
# shellcheck disable=SC2086
[ -n "${SKIP_DIAG:-}" ] || {
    diag ccr_lambda1 $SEL --set model.ccr.lambda=1.0
    diag ccr_states $SEL --set model.ccr.perturb=states
    diag ccr_mse $SEL --set model.ccr.loss=mse
    diag ccr_fraction1 $SEL --set model.ccr.fraction=1.0
    diag ct_tokens2 $SEL --set model.ct_tokens=2
    diag it_tokens2 $SEL --set model.it_tokens=2
}
say "queue finished"
