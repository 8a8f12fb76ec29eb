#!/usr/bin/env bash
# bench/worker_overhead.sh [N] — jobmon-worker's overhead over the command it wraps.
#
# Runs `sh -c true` and `jobmon-worker ... --command true` N times each (default 200) and
# prints the median and p90 wall time and the max RSS (GNU time %M) of each:
#   sink=file   events to a file (the worker's own cost: fork/exec, pipes, signalfd, tails)
#   sink=kafka  events to the stack's Kafka, waiting for acks=all (needs scripts/stack up)
# Usage: bench/worker_overhead.sh [N] [builddir]; JOBMON_CONFIG selects the stack config
# (default .stack/jobmon.conf).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-200}
B=${2:-$ROOT}
W="$B/jobmon-worker"
export JOBMON_CONFIG=${JOBMON_CONFIG:-$ROOT/.stack/jobmon.conf}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
args=(--ti-id 1 --workflow-id 900000001 --run-id 1 --task-id 1 --no-kill-check
      --logs-dir "$TMP/logs" --command true)

measure() { # label cmd...
    local label=$1; shift
    local i s e
    : >"$TMP/t"
    for ((i = 0; i < N; i++)); do
        s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
        echo $(( (e - s) / 1000 )) >>"$TMP/t"
    done
    local rss
    /usr/bin/time -o "$TMP/rss" -f %M "$@" >/dev/null 2>&1 || true
    rss=$(tail -1 "$TMP/rss")
    sort -n "$TMP/t" | awk -v l="$label" -v rss="$rss" '{a[NR]=$1} END {
        printf "%-28s median %7.2f ms  p90 %7.2f ms  maxrss %6d kB\n", l, a[int(NR/2)+1]/1000,
               a[int(NR*0.9)]/1000, rss}'
}

measure "sh -c true" sh -c true
measure "worker sink=file" "$W" "${args[@]}" --events-file "$TMP/ev"
measure "worker sink=kafka" "$W" "${args[@]}"
