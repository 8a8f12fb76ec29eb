#!/usr/bin/env bash
# bench/worker_overhead.sh [N] [builddir] — jobmon-worker's overhead over the command it wraps
# (issue 6 goal: <= 5 ms added latency, <= 4 MB added RSS).
#
# Runs each case N times (default 200), one after the other, and prints a markdown table of
# wall time (median, p90, p99, max) and peak RSS (VmHWM via GNU time's %M, which for the worker
# is the worker process itself: its command `sh -c true` is far smaller), then the overhead of
# each worker case over `sh -c true` (difference of the medians / p90 / p99 / max RSS):
#   sh -c true          the command alone
#   worker sink=file    `jobmon-worker ... --command true --events-file F` (no Kafka at all)
#   worker sink=kafka   the same publishing to the stack's Kafka and waiting for the acks=all
#                       acknowledgement of ti.running + ti.done (needs scripts/stack up; the
#                       events go to the stack's topic, for workflow 900000001 unknown to the FSM)
#   worker sink=channel the worker started by bench/chan_ack with --report-fd 3, which answers
#                       each event at once (the local plugins' path without the distributor's
#                       Kafka round trip); its overhead is over `chan_ack sh -c true` (case
#                       chansh), so chan_ack's own start cancels too
#   worker sink=tcp     the worker started by `bench/chan_ack --tcp`, which listens on 127.0.0.1
#                       and gives it JOBMON_REPORT_ADDR/TOKEN (the Slurm jobs' network channel:
#                       connect, token, events framed on TCP), answering each event at once; its
#                       overhead is over `chan_ack --tcp sh -c true` (case tcpsh)
# Every case is started the same way (bash → /usr/bin/time → command) so the launcher's cost
# cancels in the differences.  A header gives the machine, the time and the load average:
# results taken under load are not comparable, rerun when `uptime` shows the machine idle.
# Env: JOBMON_CONFIG (default .stack/jobmon.conf), WORKER (binary to measure; default
# <builddir>/jobmon-worker), CASES (default "sh file kafka chansh channel tcpsh tcp").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-200}
B=${2:-$ROOT}
W=${WORKER:-$B/jobmon-worker}
CASES=${CASES:-sh file kafka chansh channel tcpsh tcp}
ACK=${ACK:-$B/bench/chan_ack}
export JOBMON_CONFIG=${JOBMON_CONFIG:-$ROOT/.stack/jobmon.conf}
[[ -x /usr/bin/time ]] || { echo "worker_overhead: needs GNU time (/usr/bin/time)" >&2; exit 2; }
[[ -x "$W" ]] || { echo "worker_overhead: $W not found (build first)" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
args=(--ti-id 1 --workflow-id 900000001 --run-id 1 --task-id 1 --no-kill-check
      --logs-dir "$TMP/logs" --command true)

# run LABEL CMD... — N timed runs; appends "label median p90 p99 max_ms rss_max rss_median"
# (ms, kB) to $TMP/summary.
run() {
    local label=$1; shift
    local i t0 t1
    : >"$TMP/t"
    : >"$TMP/m"
    "$@" >/dev/null 2>&1 || { echo "worker_overhead: '$label' failed: $*" >&2; exit 1; }
    for ((i = 0; i < N; i++)); do
        t0=$EPOCHREALTIME
        /usr/bin/time -o "$TMP/rss" -f %M "$@" >/dev/null 2>&1 || true
        t1=$EPOCHREALTIME
        echo "${t0/./} ${t1/./}" >>"$TMP/t"
        tail -n 1 "$TMP/rss" >>"$TMP/m"
    done
    local rss_max rss_med
    rss_max=$(sort -n "$TMP/m" | tail -n 1)
    rss_med=$(sort -n "$TMP/m" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    awk '{print ($2 - $1) / 1000}' "$TMP/t" | sort -n | awk -v l="$label" -v rm="$rss_max" \
        -v rd="$rss_med" '
        function q(p,  k) { k = int(p * NR + 0.999999); if (k < 1) k = 1; return a[k] }
        {a[NR] = $1}
        END {printf "%s|%.2f|%.2f|%.2f|%.2f|%d|%d\n", l, q(0.5), q(0.9), q(0.99), a[NR], rm, rd}' \
        >>"$TMP/summary"
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "## jobmon-worker overhead, N=$N"
echo
echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPU(s), $cpu"
echo "- worker: $W; librdkafka $(pkg-config --modversion rdkafka 2>/dev/null || echo '?')"
echo "- load average before: $(load)"
: >"$TMP/summary"
for c in $CASES; do
    case $c in
    sh) run "sh -c true" sh -c true ;;
    file) run "worker sink=file" "$W" "${args[@]}" --events-file "$TMP/ev" ;;
    kafka) run "worker sink=kafka" "$W" "${args[@]}" ;;
    chansh) run "chan_ack sh -c true" "$ACK" sh -c true ;;
    channel) run "worker sink=channel" "$ACK" "$W" "${args[@]}" --report-fd 3 ;;
    tcpsh) run "chan_ack --tcp sh -c true" "$ACK" --tcp sh -c true ;;
    tcp) run "worker sink=tcp" "$ACK" --tcp "$W" "${args[@]}" ;;
    *) echo "worker_overhead: unknown case $c" >&2; exit 2 ;;
    esac
    rm -f "$TMP/ev"
done
echo "- load average after: $(load)"
echo
echo "| case | median ms | p90 ms | p99 ms | max ms | max RSS kB | median RSS kB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
awk -F'|' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}' \
    "$TMP/summary"
if grep -q '^sh -c true|' "$TMP/summary"; then
    echo
    echo "| overhead over sh -c true | median ms | p90 ms | p99 ms | max RSS kB |"
    echo "|---|---:|---:|---:|---:|"
    # the channel (tcp) case over chan_ack's own (sh -c true under chan_ack [--tcp]) when that
    # was measured
    awk -F'|' 'function base(k) {bm[k] = $2; b9[k] = $3; b99[k] = $4; br[k] = $6}
        $1 == "sh -c true" {base("")}
        $1 == "chan_ack sh -c true" {base("worker sink=channel")}
        $1 == "chan_ack --tcp sh -c true" {base("worker sink=tcp")}
        $1 != "sh -c true" && $1 !~ /^chan_ack / {
            l[++n] = $1; a[n] = $2; b[n] = $3; c[n] = $4; d[n] = $6}
        END {for (i = 1; i <= n; i++) {
                 k = (l[i] in bm) ? l[i] : ""
                 sfx = ""
                 if (k == "worker sink=channel") sfx = " (over chan_ack sh -c true)"
                 if (k == "worker sink=tcp") sfx = " (over chan_ack --tcp sh -c true)"
                 printf "| %s%s | %+.2f | %+.2f | %+.2f | %+d |\n", l[i], sfx,
                        a[i] - bm[k], b[i] - b9[k], c[i] - b99[k], d[i] - br[k]}}' \
        "$TMP/summary"
fi
