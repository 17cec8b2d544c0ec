#!/bin/bash
# Issue #31, round 2: one new candidate against round 1's chosen default, by round 1's rule, on SynME's DEFAULT
# preset; then, only if it is chosen, the demo's SynME and the ablations re-measured on it.
#
#   benchmarks/aullmpp_round2.sh OUT DEFAULT_DATA DEMO_DATA ROUND1_OUT
#   (the data as in benchmarks/aullmpp_study.sh; ROUND1_OUT = that study's OUT, whose runs are reused, not re-run)
#
# Candidate `sup`: the round-1 default (`it_ct_sep`, today's defaults) with `model.graph.supervision=1`: R-AUGNN's
# node states trained on the clip's AU labels (the main loss, weight 1, as the main loss's own). Why this one
# (docs/aullmpp.md, Round 2): in round 1, R-AUGNN and CCR contributed nothing measurable, and CCR's loss stayed at
# ~1e-5 — an AU flip of a latent state that means nothing changes nothing. Incumbent: round 1's `it_ct_sep` run
# (same data, seeds, settings; the code path it ran is unchanged when supervision is 0, which a test pins).
#
# Queue A: select `sup` (default preset) | choose | if chosen: `sup` without CCR (demo data)
# Queue B: `sup` on the demo data (computed beside the selection, read only after the choice is written) | wait |
#          if chosen: `sup` without MGE-EFP (demo data)
# Without R-AUGNN there are no node states, so round 1's `aullmpp_no_r_augnn` run is that ablation here too.
# One torch thread per run, seeds 1, 2, 3, two queues (one per core). Run from a frozen copy of the repository.
set -u
if [ $# -ne 4 ] || [ ! -d "$2" ] || [ ! -d "$3" ] || [ ! -f "$4/sel/it_ct_sep/metrics.json" ]; then
    echo "usage: $0 OUT DEFAULT_DATA DEMO_DATA ROUND1_OUT (round 1's sel/it_ct_sep must be finished)" >&2
    exit 2
fi
OUT=$(realpath -m "$1")
DEF=$(realpath "$2")
DEMO=$(realpath "$3")
R1=$(realpath "$4")
cd "$(dirname "$0")/.."
PY=${PY:-$PWD/.venv/bin/python}
export PYTHONPATH=$PWD/src OMP_NUM_THREADS=1
mkdir -p "$OUT/sel" "$OUT/final"
LOG=$OUT/queue.log
# shellcheck source=benchmarks/study_queue.sh
source benchmarks/study_queue.sh  # say, train

PP=configs/synme_demo_aullmpp.yaml
# shellcheck disable=SC2206
COMMON=(--set 'seeds=[1,2,3]' --set train.threads=1 ${EXTRA:-})
SUP=(--set model.graph.supervision=1.0)

chosen() {  # waits for the selection run, selects once, prints the chosen name
    while [ ! -f "$OUT/sel/sup/metrics.json" ] && [ ! -f "$OUT/sel/sup.rc" ]; do sleep 20; done
    [ -f "$OUT/sel/sup/metrics.json" ] || { say "selection run failed (see $OUT/sel/sup.log)"; return 1; }
    if [ ! -s "$OUT/sel/selected.txt" ]; then
        "$PY" benchmarks/select_aullmpp.py --out "$OUT/sel/selected.json" \
            "it_ct_sep=$R1/sel/it_ct_sep:$R1/sel/it_ct_sep.log" "sup=$OUT/sel/sup:$OUT/sel/sup.log" \
            > "$OUT/sel/selected.tmp" 2>> "$LOG" && mv "$OUT/sel/selected.tmp" "$OUT/sel/selected.txt"
    fi
    cat "$OUT/sel/selected.txt"
}

queue_a() {
    train sel_sup "$OUT/sel/sup" "$PP" --set "data.root=$DEF" "${COMMON[@]}" "${SUP[@]}"
    [ "$(chosen)" = sup ] || { say "round 1's default stays: no ablations to re-measure"; return 0; }
    train aullmpp_sup_no_ccr "$OUT/final/aullmpp_sup_no_ccr" "$PP" --set "data.root=$DEMO" "${COMMON[@]}" \
        "${SUP[@]}" --set model.ccr.enabled=false
}

queue_b() {
    train aullmpp_sup "$OUT/final/aullmpp_sup" "$PP" --set "data.root=$DEMO" "${COMMON[@]}" "${SUP[@]}"
    [ "$(chosen)" = sup ] || return 0
    train aullmpp_sup_no_mge_efp "$OUT/final/aullmpp_sup_no_mge_efp" "$PP" --set "data.root=$DEMO" \
        "${COMMON[@]}" "${SUP[@]}" --set model.mge_efp=false
}

say "round 2 started (PID $$, commit $(cat COMMIT 2>/dev/null || git rev-parse --short HEAD))"
Q=A queue_a &
Q=B queue_b &
wait
"$PY" -m aullm compare "$R1/sel/it_ct_sep" "$OUT/sel/sup" > "$OUT/sel/compare.txt" 2>&1
if [ "$(cat "$OUT/sel/selected.txt" 2>/dev/null)" = sup ]; then
    F=$OUT/final
    "$PY" -m aullm compare "$R1/final/au_llm" "$F/aullmpp_sup" > "$F/compare_au_llm.txt" 2>&1
    "$PY" -m aullm compare "$R1/final/au_llm_no_llm" "$F/aullmpp_sup" > "$F/compare_no_llm.txt" 2>&1
    "$PY" -m aullm compare "$R1/final/aullmpp" "$F/aullmpp_sup" > "$F/compare_round1.txt" 2>&1
    "$PY" -m aullm compare "$F/aullmpp_sup" "$F/aullmpp_sup_no_mge_efp" "$R1/final/aullmpp_no_r_augnn" \
        "$F/aullmpp_sup_no_ccr" > "$F/compare_ablations.txt" 2>&1
fi
say "round 2 finished"
