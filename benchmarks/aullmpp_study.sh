#!/bin/bash
# Issue #31, part 3: choose AULLM++'s default design on SynME's DEFAULT preset, then measure it on the demo's SynME.
# One torch thread per run (train.threads=1 for every run compared), 3 seeds (1, 2, 3), the demo's training
# settings (configs/synme_demo_aullmpp.yaml = configs/demo.yaml except name and model). Two queues, one per core,
# so every run shares the machine with exactly one other run of the study (timings compared are made alike).
#
#   benchmarks/aullmpp_study.sh OUT DEFAULT_DATA DEMO_DATA
#   DEFAULT_DATA: aullm synth D --preset default --subjects 6 --clips-per-subject 20 --seed 1
#   DEMO_DATA:    aullm synth D --preset demo --subjects 6 --clips-per-subject 20   (the demo's data)
#   (smoke test: EXTRA="--set llm.name=tiny-random --set train.epochs=1 ..." DIAG=1 BENCH=1 add the extra stages)
#
# Queue A: select it_ct, ct_it | wait for the selection | final: the chosen design, the same without CCR
# Queue B: select it_ct_sep; final: AU-LLM (the demo's config), AU-LLM without the LLM | wait | the chosen design
#          without MGE-EFP, without R-AUGNN (and with it CCR)
# The selection (benchmarks/select_aullmpp.py: (AUC + F1 macro with validation-subject thresholds) / 2, the cheaper
# of near-equals) reads the three default-preset runs only; nothing from the demo data is read before it is written.
# Then the paired `aullm compare`s, and (DIAG=1) one-fold diagnostics of CCR's weight and form and of several tokens.
# Run from a frozen copy of the repository (git archive) when the tree may change under it; finished runs are skipped.
set -u
if [ $# -ne 3 ] || [ ! -d "$2" ] || [ ! -d "$3" ]; then
    echo "usage: $0 OUT DEFAULT_DATA DEMO_DATA (both data folders must exist; see the comment at the top)" >&2
    exit 2
fi
OUT=$(realpath -m "$1")
DEF=$(realpath "$2")
DEMO=$(realpath "$3")
cd "$(dirname "$0")/.."
mkdir -p "$OUT/sel" "$OUT/final" "$OUT/bench" "$OUT/diag"
# shellcheck source=benchmarks/study_queue.sh
source benchmarks/study_queue.sh  # PY, LOG, PP, COMMON, say, train

BASE="--set model.token_order=prompt_it_ct --set model.mge.extraction=backbone --set model.mge.zero_init=true"
BASE="$BASE --set model.ccr.fraction=0.25"
declare -A CAND
CAND[it_ct]="$BASE"
CAND[it_ct_sep]="$BASE --set model.mge.conv=separable"
CAND[ct_it]="$BASE --set model.token_order=prompt_ct_it"
ORDER=(it_ct it_ct_sep ct_it)

chosen() {  # waits for the three selection runs, selects once, prints the chosen candidate's name (or nothing)
    local c
    for c in "${ORDER[@]}"; do
        while [ ! -f "$OUT/sel/$c/metrics.json" ] && [ ! -f "$OUT/sel/$c.rc" ]; do sleep 20; done
        [ -f "$OUT/sel/$c/metrics.json" ] || { say "selection run $c failed (see $OUT/sel/$c.log)"; return 1; }
    done
    if [ ! -s "$OUT/sel/selected.txt" ]; then
        local args=()
        for c in "${ORDER[@]}"; do args+=("$c=$OUT/sel/$c:$OUT/sel/$c.log"); done
        "$PY" benchmarks/select_aullmpp.py --out "$OUT/sel/selected.json" "${args[@]}" > "$OUT/sel/selected.tmp" \
            2>> "$LOG" && mv "$OUT/sel/selected.tmp" "$OUT/sel/selected.txt"
    fi
    cat "$OUT/sel/selected.txt"
}

queue_a() {
    local c
    for c in it_ct ct_it; do
        # shellcheck disable=SC2086
        train "sel_$c" "$OUT/sel/$c" "$PP" --set "data.root=$DEF" "${COMMON[@]}" ${CAND[$c]}
    done
    local pick
    pick=$(chosen)
    [ -n "$pick" ] && [ -n "${CAND[$pick]+set}" ] || { say "selection failed: stopping"; return 1; }
    say "selected: $pick (${CAND[$pick]})"
    # shellcheck disable=SC2086
    train aullmpp "$OUT/final/aullmpp" "$PP" --set "data.root=$DEMO" "${COMMON[@]}" ${CAND[$pick]}
    # shellcheck disable=SC2086
    train aullmpp_no_ccr "$OUT/final/aullmpp_no_ccr" "$PP" --set "data.root=$DEMO" "${COMMON[@]}" ${CAND[$pick]} \
        --set model.ccr.enabled=false
}

queue_b() {
    # shellcheck disable=SC2086
    train sel_it_ct_sep "$OUT/sel/it_ct_sep" "$PP" --set "data.root=$DEF" "${COMMON[@]}" ${CAND[it_ct_sep]}
    train au_llm "$OUT/final/au_llm" configs/demo.yaml --set "data.root=$DEMO" "${COMMON[@]}"
    train au_llm_no_llm "$OUT/final/au_llm_no_llm" configs/synme_demo_au_llm_no_llm.yaml --set "data.root=$DEMO" \
        "${COMMON[@]}"
    local pick
    pick=$(chosen)
    [ -n "$pick" ] && [ -n "${CAND[$pick]+set}" ] || { say "selection failed: stopping"; return 1; }
    # shellcheck disable=SC2086
    train aullmpp_no_mge_efp "$OUT/final/aullmpp_no_mge_efp" "$PP" --set "data.root=$DEMO" "${COMMON[@]}" \
        ${CAND[$pick]} --set model.mge_efp=false
    # shellcheck disable=SC2086
    train aullmpp_no_r_augnn "$OUT/final/aullmpp_no_r_augnn" "$PP" --set "data.root=$DEMO" "${COMMON[@]}" \
        ${CAND[$pick]} --set model.r_augnn=false --set model.ccr.enabled=false
}

say "study started (PID $$, commit $(cat COMMIT 2>/dev/null || git rev-parse --short HEAD))"

# 0. (BENCH=1) the step time, one thread, 7 alternating steps: two candidates and the figure's order.
[ -z "${BENCH:-}" ] || for design in it_ct it_ct_sep figure; do
    # shellcheck disable=SC2206
    if [ "$design" = figure ]; then sets=(--set model.token_order=figure); else sets=(${CAND[$design]}); fi
    say "bench step --model aullmpp ($design)"
    "$PY" -m aullm bench step --model aullmpp "${sets[@]}" --repeats 7 --json \
        > "$OUT/bench/step_$design.json" 2> "$OUT/bench/step_$design.log"
done

# 1 + 2. selection and the final runs, two queues
Q=A queue_a &
Q=B queue_b &
wait
F=$OUT/final
"$PY" -m aullm compare "$OUT/sel/it_ct" "$OUT/sel/it_ct_sep" "$OUT/sel/ct_it" > "$OUT/sel/compare.txt" 2>&1
"$PY" -m aullm compare "$F/au_llm" "$F/aullmpp" > "$F/compare_au_llm.txt" 2>&1
"$PY" -m aullm compare "$F/au_llm_no_llm" "$F/aullmpp" > "$F/compare_no_llm.txt" 2>&1
"$PY" -m aullm compare "$F/aullmpp" "$F/aullmpp_no_mge_efp" "$F/aullmpp_no_r_augnn" "$F/aullmpp_no_ccr" \
    > "$F/compare_ablations.txt" 2>&1
say "compared: $OUT/sel/compare.txt, $F/compare_*.txt"

# 3. (DIAG=1) one-fold diagnostics of CCR's weight and form and of several tokens (default preset, 9 epochs)
diag() {
    local name=$1
    shift
    say "diag $name"
    "$PY" benchmarks/diag_aullmpp.py "$PP" "$@" --data "$DEF" --fold 1 --probe-every 3 --set train.epochs=9 \
        --out "$OUT/diag/$name.json" > "$OUT/diag/$name.log" 2>&1
}
if [ -n "${DIAG:-}" ]; then
    SEL=${CAND[$(cat "$OUT/sel/selected.txt")]}
    # shellcheck disable=SC2086
    {
        diag ccr_lambda1 $SEL --set model.ccr.lambda=1.0
        diag ccr_states $SEL --set model.ccr.perturb=states
        diag ccr_mse $SEL --set model.ccr.loss=mse
        diag ccr_fraction1 $SEL --set model.ccr.fraction=1.0
        diag ct_tokens2 $SEL --set model.ct_tokens=2
        diag it_tokens2 $SEL --set model.it_tokens=2
    }
fi
say "study finished"
