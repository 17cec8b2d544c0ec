# Shared by the issue #31 study scripts (sourced, not run): the queue log and one training run of a queue.
# Needs OUT, PY and LOG set; Q names the queue in the log.

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
