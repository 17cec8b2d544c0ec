# Shared by the issue #31 study scripts (sourced, not run, from the repository root once OUT is set): the study's
# settings, the queue log and one training run of a queue. Q names the queue in the log.

PY=${PY:-$PWD/.venv/bin/python}
export PYTHONPATH=$PWD/src OMP_NUM_THREADS=1
LOG=$OUT/queue.log
PP=configs/synme_demo_aullmpp.yaml  # the demo's settings, AULLM++
# Seeds 1-3, one torch thread per run (two queues share the 2 cores); EXTRA adds overrides (e.g. a smoke run).
# shellcheck disable=SC2206
COMMON=(--set 'seeds=[1,2,3]' --set train.threads=1 ${EXTRA:-})

say() { echo "$(date '+%F %T') [${Q:-main}] $*" >> "$LOG"; }

train() {  # NAME OUTDIR CONFIG ARGS...: `aullm train`, skipped when finished, resumed by fold when not
    local name=$1 out=$2
    shift 2
    if [ -f "$out/metrics.json" ]; then say "skip $name (done)"; return 0; fi
    rm -f "$out.rc"
    say "start $name -> $out: aullm train $*"
    "$PY" -m aullm train "$@" --out "$out" >> "$out.log" 2>&1  # appended: a resumed run keeps its earlier times
    local rc=$?
    echo "$rc" > "$out.rc"  # the other queue waits for this, not for metrics.json (a failed run must not hang it)
    say "done $name rc=$rc ($(grep -c 'trained .* clips in' "$out.log") fold-seed lines in its log)"
}
