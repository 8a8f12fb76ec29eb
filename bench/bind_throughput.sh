#!/usr/bin/env bash
# bench/bind_throughput.sh — issue 5's bind benchmark through the real system (Kafka → jobmon-fsm
# → PostgreSQL).  For each size N:
#   1. API:  bench/bind_gen --send --wait DEADLINE N under /usr/bin/time -v: client build +
#      validate + publish until every event is acknowledged (jm_workflow_bind), client peak RSS,
#      then the time until the FSM has applied workflow.bound (workflow.bound_at IS NOT NULL,
#      polled through the reader role, bounded by DEADLINE seconds);
#   2. CLI (SUBMIT=1, the default for N ≤ SUBMIT_MAX): the same DAG as a workflow file
#      (bind_gen --file), `jobmon submit --cluster dummy FILE` under /usr/bin/time -v (its whole
#      process: parse, validate, bind, run.start, daemonised distributor, then it waits up to 10 s
#      for the FSM to show the run, which comes after the whole bind), then the same bound_at
#      poll; the file sets max_concurrently_running 1 and the run is stopped (`jobmon stop`) once
#      bound, so the shared stack is not flooded with task-instance events;
#   3. FILE (N > SUBMIT_MAX): the client half of submit for big files, without starting a run:
#      bench/bind_gen --send --load FILE (parse + validate + bind + acks), publish-only when
#      N > APPLY_MAX.
# Prints Markdown rows.  Needs the stack up (scripts/stack up) and a build (make -j2; BUILD=DIR
# for a VPATH build directory).
#
#   bench/bind_throughput.sh [N...]        (default: 100000 1500000)
#   DEADLINE=1800 SUBMIT=0 SUBMIT_MAX=100000 bench/bind_throughput.sh 100000
#   APPLY_MAX=100000 bench/bind_throughput.sh 100000 1500000
#       sizes above APPLY_MAX are published to $BENCH_TOPIC (default jobmon.bench.bind, which no
#       consumer reads; auto-created by the broker) and not waited for: client numbers only
#
# Polls with a deadline; never sleeps a fixed time to wait for state.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT}
DEADLINE=${DEADLINE:-1800}
SUBMIT=${SUBMIT:-1}
SUBMIT_MAX=${SUBMIT_MAX:-100000}
APPLY_MAX=${APPLY_MAX:-100000000}
BENCH_TOPIC=${BENCH_TOPIC:-jobmon.bench.bind}
SIZES=${*:-100000 1500000}
"$ROOT/scripts/stack" status >/dev/null || {
    echo "bind_throughput: the stack is not (fully) up: scripts/stack up" >&2
    exit 1
}
eval "$("$ROOT/scripts/stack" env)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/jobmon-bind-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
export XDG_STATE_HOME=$tmp/state
tag=bb-$(date +%s)-$$

rss_mb() { awk -F': ' '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$1"; }
wall_s() { awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; printf "%.2f", s}' "$1"; }
mono() { date +%s.%N; }

# wait_bound WF DEADLINE_S — poll bound_at through the reader role; prints the elapsed seconds.
wait_bound() {
    local wf=$1 start end
    start=$(mono)
    end=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt $end ]; do
        b=$(psql "$JOBMON_POSTGRES_READER_CONNINFO" -XAtc "SELECT bound_at IS NOT NULL FROM workflow WHERE id = $wf" 2>/dev/null)
        if [ "$b" = t ]; then
            printf '%.1f\n' "$(echo "$(mono) - $start" | bc)"
            return 0
        fi
        sleep 0.2 # poll interval (the deadline bounds the wait)
    done
    echo TIMEOUT
    return 1
}

# The publish-only topic: 4 partitions like jobmon.events, short retention (nobody reads it).
ensure_bench_topic() {
    kcat -b "$JOBMON_KAFKA_BROKERS" -m 5 -L -t "$BENCH_TOPIC" 2>/dev/null | grep -q "topic \"$BENCH_TOPIC\" with [1-9]" && return 0
    java -Xms64m -Xmx256m -XX:+UseSerialGC -cp "$ROOT/.stack/kafka/libs/*" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$JOBMON_KAFKA_BROKERS" --create --if-not-exists --topic "$BENCH_TOPIC" \
        --partitions 4 --replication-factor 1 --config retention.ms=600000 >"$tmp/topic.log" 2>&1 || {
        echo "bind_throughput: cannot create topic $BENCH_TOPIC:" >&2
        tail -5 "$tmp/topic.log" >&2
        exit 1
    }
}
for n in $SIZES; do [ "$n" -le "$APPLY_MAX" ] || { ensure_bench_topic; break; }; done

echo "machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "### API: bench/bind_gen --send --wait $DEADLINE N"
first=1
for n in $SIZES; do
    if [ "$n" -gt "$APPLY_MAX" ]; then # publish only, to a topic no consumer reads
        extra=(--topic "$BENCH_TOPIC" --wait 0)
    else
        extra=(--wait "$DEADLINE")
    fi
    /usr/bin/time -v "$BUILD/bench/bind_gen" --send "${extra[@]}" --tag "$tag-api-$n" "$n" \
        >"$tmp/api.out" 2>"$tmp/api.time"
    rc=$?
    if [ $first = 1 ]; then
        echo "$(head -1 "$tmp/api.out") process wall s | process peak RSS MB (time -v) |"
        echo "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
        first=0
    fi
    row=$(sed -n 3p "$tmp/api.out")
    echo "$row $(wall_s "$tmp/api.time") | $(rss_mb "$tmp/api.time") |"
    [ $rc -eq 0 ] || { echo "# bind_gen exit $rc:"; grep -v '^\s' "$tmp/api.time" | tail -3 | sed 's/^/# /'; }
done

[ "$SUBMIT" = 1 ] || exit 0
echo
echo "### CLI: jobmon submit --cluster dummy FILE (whole process), then bound_at"
echo "| tasks | file MB | submit wall s | submit peak RSS MB | bound_at after submit returned s | start → bound s | end-to-end tasks/s | workflow_id |"
echo "|---:|---:|---:|---:|---:|---:|---:|---|"
for n in $SIZES; do
    "$BUILD/bench/bind_gen" --file "$tmp/wf.json" --tag "$tag-cli-$n" "$n" || exit 1
    if [ "$n" -gt "$SUBMIT_MAX" ]; then # client half only: parse + validate + bind, no run
        if [ "$n" -gt "$APPLY_MAX" ]; then
            extra=(--topic "$BENCH_TOPIC" --wait 0)
        else
            extra=(--wait "$DEADLINE")
        fi
        /usr/bin/time -v "$BUILD/bench/bind_gen" --send "${extra[@]}" --load "$tmp/wf.json" \
            >"$tmp/load.out" 2>"$tmp/load.time"
        echo "| $n | $(du -m "$tmp/wf.json" | cut -f1) | (bind_gen --load, no run) $(wall_s "$tmp/load.time") | $(rss_mb "$tmp/load.time") | $(sed -n 3p "$tmp/load.out" | cut -d'|' -f7) | | | $(sed -n 3p "$tmp/load.out" | cut -d'|' -f10) |"
        sed -n 3p "$tmp/load.out" | sed 's/^/# bind_gen --load: /'
        continue
    fi
    mb=$(du -m "$tmp/wf.json" | cut -f1)
    t0=$(mono)
    /usr/bin/time -v "$BUILD/jobmon" submit --json --cluster dummy "$tmp/wf.json" >"$tmp/sub.out" 2>"$tmp/sub.time"
    rc=$?
    wf=$(grep -o '"workflow_id":[0-9]*' "$tmp/sub.out" | head -1 | cut -d: -f2)
    if [ $rc -ne 0 ] || [ -z "$wf" ]; then
        echo "| $n | $mb | submit failed (exit $rc) ||||||"
        grep -v '^\s' "$tmp/sub.time" | tail -3 | sed 's/^/# /'
        continue
    fi
    after=$(wait_bound "$wf" "$DEADLINE")
    total=$(echo "$(mono) - $t0" | bc)
    rate=$(echo "$n / $total" | bc)
    echo "| $n | $mb | $(wall_s "$tmp/sub.time") | $(rss_mb "$tmp/sub.time") | $after | $(printf %.1f "$total") | $rate | $wf |"
    "$BUILD/jobmon" stop "$wf" >/dev/null 2>&1 || echo "# jobmon stop $wf failed"
done
