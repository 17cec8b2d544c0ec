#!/bin/bash
# Issue #31, rounds 2+: one new candidate against round 1's chosen default, by round 1's rule, on SynME's DEFAULT
# preset; then, only if it is chosen, the demo's SynME and the ablations re-measured on it.
#
#   benchmarks/aullmpp_round.sh OUT DEFAULT_DATA DEMO_DATA ROUND1_OUT NAME KEY=VALUE [KEY=VALUE ...]
#   (the data as in benchmarks/aullmpp_study.sh; ROUND1_OUT = that study's OUT, whose runs are reused, not re-run;
#   NAME names the candidate, the KEY=VALUE overrides make it from today's defaults, e.g. model.ccr.flip=hard)
#
# Incumbent: round 1's `it_ct_sep` run (today's defaults; same data, seeds, settings).
# Queue A: select NAME (default preset) | choose | if chosen: NAME without CCR (demo data)
# Queue B: NAME on the demo data (computed beside the selection, read only after the choice is written) | wait |
#          if chosen: NAME without MGE-EFP (demo data)
# Without R-AUGNN there is no instruction token, so round 1's `aullmpp_no_r_augnn` run is that ablation here too.
# One torch thread per run, seeds 1, 2, 3, two queues (one per core). Run from a frozen copy of the repository.
set -u
if [ $# -lt 6 ] || [ ! -d "$2" ] || [ ! -d "$3" ] || [ ! -f "$4/sel/it_ct_sep/metrics.json" ]; then
    echo "usage: $0 OUT DEFAULT_DATA DEMO_DATA ROUND1_OUT NAME KEY=VALUE... (round 1's sel/it_ct_sep must be finished)" >&2
    exit 2
fi
OUT=$(realpath -m "$1")
DEF=$(realpath "$2")
DEMO=$(realpath "$3")
R1=$(realpath "$4")
NAME=$5
shift 5
CAND=()
for kv in "$@"; do CAND+=(--set "$kv"); done
cd "$(dirname "$0")/.."
mkdir -p "$OUT/sel" "$OUT/final"
# shellcheck source=benchmarks/study_queue.sh
source benchmarks/study_queue.sh  # PY, LOG, PP, COMMON, say, train

chosen() {  # waits for the selection run, selects once, prints the chosen name
    while [ ! -f "$OUT/sel/$NAME/metrics.json" ] && [ ! -f "$OUT/sel/$NAME.rc" ]; do sleep 20; done
    [ -f "$OUT/sel/$NAME/metrics.json" ] || { say "selection run failed (see $OUT/sel/$NAME.log)"; return 1; }
    if [ ! -s "$OUT/sel/selected.txt" ]; then
        "$PY" benchmarks/select_aullmpp.py --out "$OUT/sel/selected.json" \
            "it_ct_sep=$R1/sel/it_ct_sep:$R1/sel/it_ct_sep.log" "$NAME=$OUT/sel/$NAME:$OUT/sel/$NAME.log" \
            > "$OUT/sel/selected.tmp" 2>> "$LOG" && mv "$OUT/sel/selected.tmp" "$OUT/sel/selected.txt"
    fi
    cat "$OUT/sel/selected.txt"
}

queue_a() {
    train "sel_$NAME" "$OUT/sel/$NAME" "$PP" --set "data.root=$DEF" "${COMMON[@]}" "${CAND[@]}"
    [ "$(chosen)" = "$NAME" ] || { say "round 1's default stays: no ablations to re-measure"; return 0; }
    train "aullmpp_${NAME}_no_ccr" "$OUT/final/aullmpp_${NAME}_no_ccr" "$PP" --set "data.root=$DEMO" \
        "${COMMON[@]}" "${CAND[@]}" --set model.ccr.enabled=false
}

queue_b() {
    train "aullmpp_$NAME" "$OUT/final/aullmpp_$NAME" "$PP" --set "data.root=$DEMO" "${COMMON[@]}" "${CAND[@]}"
    [ "$(chosen)" = "$NAME" ] || return 0
    train "aullmpp_${NAME}_no_mge_efp" "$OUT/final/aullmpp_${NAME}_no_mge_efp" "$PP" --set "data.root=$DEMO" \
        "${COMMON[@]}" "${CAND[@]}" --set model.mge_efp=false
}

say "round started: candidate $NAME ($*) (PID $$, commit $(cat COMMIT 2>/dev/null || git rev-parse --short HEAD))"
Q=A queue_a &
Q=B queue_b &
wait
"$PY" -m aullm compare "$R1/sel/it_ct_sep" "$OUT/sel/$NAME" > "$OUT/sel/compare.txt" 2>&1
F=$OUT/final
# The demo run is compared whatever was chosen (it is read only after the choice is written).
"$PY" -m aullm compare "$R1/final/aullmpp" "$F/aullmpp_$NAME" > "$F/compare_round1.txt" 2>&1
"$PY" -m aullm compare "$R1/final/au_llm" "$F/aullmpp_$NAME" > "$F/compare_au_llm.txt" 2>&1
if [ "$(cat "$OUT/sel/selected.txt" 2>/dev/null)" = "$NAME" ]; then
    "$PY" -m aullm compare "$R1/final/au_llm_no_llm" "$F/aullmpp_$NAME" > "$F/compare_no_llm.txt" 2>&1
    "$PY" -m aullm compare "$F/aullmpp_$NAME" "$F/aullmpp_${NAME}_no_mge_efp" "$R1/final/aullmpp_no_r_augnn" \
        "$F/aullmpp_${NAME}_no_ccr" > "$F/compare_ablations.txt" 2>&1
fi
say "round finished"
