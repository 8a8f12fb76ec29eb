#!/usr/bin/env bash
# bench/run_fsm_bench.sh — the FSM consumer throughput benchmark (issue 4) with 1 and 2 consumers.
#
#   scripts/stack up && make -j2 src/consumer/jobmon-fsm bench/fsm_throughput
#   bench/run_fsm_bench.sh                        # 100k tasks, 4 workflows, 1 then 2 consumers
#   TASKS=10000 CONSUMERS="1" bench/run_fsm_bench.sh
#
# Isolation from whatever else uses the shared stack: the benchmark has its own topic
# (BENCH_TOPIC, created with BENCH_PARTITIONS partitions; consumer_offset rows are per topic) and
# consumer group, and starts its own jobmon-fsm processes (one consumer thread each, reaper
# interval 24 h so it never scans) with PID files in a private /tmp directory; it stops only
# those.  Every run uses a new workflow_args tag, so its workflows, tasks and runs are new rows;
# nothing is deleted.  The stack's own consumers are left alone (they do not read BENCH_TOPIC).
#
# MODE=live (default): consumers are started and settle first, then the events are published
# while they apply (apply time = first to last applied event).
# MODE=backlog: everything is published first, then the consumers start and drain the backlog.
#
# PROFILE=pqtime: consumers run with bench/pqtime.c preloaded (time per SQL statement, written
#   to $OUT/pqtime-c<N>-<i>.txt at exit).  PROFILE=callgrind: consumers run under valgrind
#   --tool=callgrind ($OUT/callgrind-c<N>-<i>.out; use a small TASKS).  PROFILE=perf: a
#   system-wide `perf record -e cpu-clock -g` during each measurement ($OUT/perf-c<N>.data).
#
# BENCH_SCHEMA=name: run against a fresh PostgreSQL schema of that name (dropped and re-created,
#   migrated from this checkout's schemas/sql) instead of the stack's public schema, so that a
#   migration under test is measured without touching the shared database's schema.  The
#   consumers and the checks use the writer role with options=-csearch_path=<name>.  The fresh
#   consumer_offset starts every partition at 0, so the topic defaults to a new one per run
#   (jobmon.bench.<name>.<stamp>) instead of replaying the shared bench topic's history.
#   At exit the schema is dropped and that topic deleted (a 100k-task run leaves ~0.5 GB in
#   PostgreSQL and up to ~120 MB in Kafka; A/B series filled the disk); KEEP=1 keeps both.
#
# REPORTS=N: workers' running and done reports travel as ti.reports events of up to N instances,
#   as the distributor's relay sends them (local plugins; Slurm workers over the TCP channel),
#   instead of one ti.running / ti.done event each; the table then also gives instance reports
#   per second (a ti.reports event counts its items).  Heartbeats stay one event each.
#
# Settings (env): TASKS=100000 WORKFLOWS=4 CONSUMERS="1 2" HEARTBEATS=1.0 REPORTS=0 MODE=live PROFILE=
#   BENCH_TOPIC=jobmon.bench.events BENCH_PARTITIONS=4 BATCH_MAX=(config default) OUT=/tmp/...
#   BENCH_EXTRA_SQL=file (with BENCH_SCHEMA: SQL run after the migrations, for experiments)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench/fsm_throughput
FSM_BIN=${JOBMON_STACK_FSM_BIN:-$ROOT/src/consumer/jobmon-fsm}
TASKS=${TASKS:-100000}
WORKFLOWS=${WORKFLOWS:-4}
CONSUMERS=${CONSUMERS:-"1 2"}
HEARTBEATS=${HEARTBEATS:-1.0}
MODE=${MODE:-live}
PROFILE=${PROFILE:-}
PARTS=${BENCH_PARTITIONS:-4}
RUN_DIR=$(mktemp -d /tmp/jobmon-fsm-bench.XXXXXX)
OUT=${OUT:-$RUN_DIR}
mkdir -p "$OUT"
REPORTS=${REPORTS:-0}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
if [[ -n "${BENCH_SCHEMA:-}" ]]; then
    TOPIC=${BENCH_TOPIC:-jobmon.bench.$BENCH_SCHEMA.$STAMP}
else
    TOPIC=${BENCH_TOPIC:-jobmon.bench.events}
fi

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

[[ -x "$BENCH" ]] || die "build it first: make -j2 bench/fsm_throughput"
[[ -x "$FSM_BIN" ]] || die "build it first: make -j2 src/consumer/jobmon-fsm"
status=$("$ROOT/scripts/stack" status || true)
for svc in kafka postgres redis; do
    grep -Eq "^$svc +up" <<<"$status" || die "$svc is not up: scripts/stack up"
done
eval "$("$ROOT/scripts/stack" env)"

if [[ -n "${BENCH_SCHEMA:-}" ]]; then
    [[ "$BENCH_SCHEMA" =~ ^[a-z_][a-z0-9_]*$ && "$BENCH_SCHEMA" != public ]] ||
        die "BENCH_SCHEMA must be a plain lower-case name other than public"
    psql "$JOBMON_POSTGRES_CONNINFO" -XAtq -v ON_ERROR_STOP=1 \
        -c "DROP SCHEMA IF EXISTS $BENCH_SCHEMA CASCADE" -c "CREATE SCHEMA $BENCH_SCHEMA" ||
        die "cannot create schema $BENCH_SCHEMA"
    JOBMON_POSTGRES_CONNINFO="$JOBMON_POSTGRES_CONNINFO options=-csearch_path=$BENCH_SCHEMA"
    JOBMON_POSTGRES_READER_CONNINFO=$JOBMON_POSTGRES_CONNINFO
    export JOBMON_POSTGRES_CONNINFO JOBMON_POSTGRES_READER_CONNINFO
    "$ROOT/scripts/migrate" "$JOBMON_POSTGRES_CONNINFO" >/dev/null || die "migrations failed"
    if [[ -n "${BENCH_EXTRA_SQL:-}" ]]; then # an experiment's DDL on top of the migrations
        psql "$JOBMON_POSTGRES_CONNINFO" -XAtq -v ON_ERROR_STOP=1 -f "$BENCH_EXTRA_SQL" >/dev/null ||
            die "BENCH_EXTRA_SQL $BENCH_EXTRA_SQL failed"
    fi
fi

# Our consumers: private topic and group, one consume thread per process, no reaper scans.
export JOBMON_KAFKA_TOPIC=$TOPIC
export JOBMON_FSM_GROUP_ID=jobmon-fsm-bench
export JOBMON_FSM_CONSUMERS=1
export JOBMON_REAPER_POLL_INTERVAL=86400
if [[ -n "${BATCH_MAX:-}" ]]; then
    export JOBMON_FSM_BATCH_MAX=$BATCH_MAX
fi

if [[ "$PROFILE" == pqtime ]]; then
    cc -shared -fPIC -O2 $(pkg-config --cflags libpq) "$ROOT/bench/pqtime.c" \
        -o "$RUN_DIR/pqtime.so" -ldl -lpthread || die "cannot build bench/pqtime.c"
fi

PIDS=()
start_consumers()
{
    local n=$1 i wrap
    PIDS=()
    for ((i = 1; i <= n; i++)); do
        wrap=(env)
        case $PROFILE in
        pqtime) wrap=(env LD_PRELOAD="$RUN_DIR/pqtime.so" PQTIME_OUT="$OUT/pqtime-c$n-$i.txt") ;;
        callgrind) wrap=(valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind-c$n-$i.out") ;;
        esac
        # application_name: fsm_throughput counts the CPU of these backends separately
        JOBMON_POSTGRES_CONNINFO="$JOBMON_POSTGRES_CONNINFO application_name=jobmon-fsm-bench" \
            setsid "${wrap[@]}" "$FSM_BIN" --config "$JOBMON_CONFIG" </dev/null \
            >"$RUN_DIR/fsm-$n-$i.log" 2>&1 &
        echo $! >"$RUN_DIR/fsm-$i.pid"
        PIDS+=("$!")
    done
    say "started $n jobmon-fsm: ${PIDS[*]} (logs $RUN_DIR/fsm-$n-*.log)"
}

stop_consumers()
{
    local pid f
    for f in "$RUN_DIR"/fsm-*.pid; do
        [[ -e "$f" ]] || continue
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 150); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
    PIDS=()
}
# With BENCH_SCHEMA, the run's schema and generated topic go at exit unless KEEP=1.
drop_run_data()
{
    [[ -n "${BENCH_SCHEMA:-}" && -z "${KEEP:-}" ]] || return 0
    psql "$JOBMON_POSTGRES_CONNINFO" -XAtq -c "SET client_min_messages = warning" \
        -c "DROP SCHEMA IF EXISTS $BENCH_SCHEMA CASCADE" && say "dropped schema $BENCH_SCHEMA" ||
        say "warning: schema $BENCH_SCHEMA not dropped"
    if [[ -z "${BENCH_TOPIC:-}" ]]; then # generated for this run
        "$BENCH" --delete-topic --topic "$TOPIC" >/dev/null && say "deleted topic $TOPIC" ||
            say "warning: topic $TOPIC not deleted"
    fi
}
trap 'stop_consumers; drop_run_data' EXIT

psql_q() { psql "$JOBMON_POSTGRES_READER_CONNINFO" -XAtqc "$1"; }

# Wait until every partition of the topic is owned and ownership stopped changing for 3 s (the
# consumers bump consumer_offset.owner_epoch on each assignment).
wait_settled()
{
    local before=$1 last='' same=0 now
    for _ in $(seq 1 150); do
        now=$(psql_q "SELECT count(*) FILTER (WHERE owner_epoch > 0) || ':' || sum(owner_epoch)
                      FROM consumer_offset WHERE topic = '$TOPIC'")
        if [[ "$now" == "$last" && "${now%%:*}" == "$PARTS" && "${now#*:}" != "$before" ]]; then
            same=$((same + 1))
            ((same >= 15)) && return 0
        else
            same=0
        fi
        last=$now
        sleep 0.2
    done
    say "warning: consumer group did not settle (consumer_offset: $last)"
}

epochs() { psql_q "SELECT COALESCE(sum(owner_epoch), 0) FROM consumer_offset WHERE topic = '$TOPIC'"; }

"$BENCH" --create-topic "$PARTS" --topic "$TOPIC" >/dev/null

say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
say "tasks $TASKS, workflows $WORKFLOWS, consumers: $CONSUMERS, mode $MODE, topic $TOPIC ($PARTS)"
RESULTS=()
for n in $CONSUMERS; do
    tag="bench-$STAMP-c$n"
    log="$OUT/run-c$n.log"
    common=(--tasks "$TASKS" --workflows "$WORKFLOWS" --heartbeats "$HEARTBEATS" --reports "$REPORTS"
        --partitions "$PARTS" --topic "$TOPIC" --tag "$tag" --consumers "$n")
    if [[ "$MODE" == backlog ]]; then
        "$BENCH" "${common[@]}" --publish --state "$RUN_DIR/state-$n" | tee "$log"
        e0=$(epochs)
        start_consumers "$n"
        pid_args=()
        for p in "${PIDS[@]}"; do pid_args+=(--fsm-pid "$p"); done
        "$BENCH" "${common[@]}" --measure --state "$RUN_DIR/state-$n" "${pid_args[@]}" |
            tee -a "$log" || true
    else
        e0=$(epochs)
        start_consumers "$n"
        wait_settled "$e0"
        pid_args=()
        for p in "${PIDS[@]}"; do pid_args+=(--fsm-pid "$p"); done
        perf_pid=
        if [[ "$PROFILE" == perf ]]; then
            perf record -q -e cpu-clock -F 499 -a -g -o "$OUT/perf-c$n.data" 2>/dev/null &
            perf_pid=$!
        fi
        "$BENCH" "${common[@]}" --publish --measure "${pid_args[@]}" | tee "$log" || true
        if [[ -n "$perf_pid" ]]; then
            kill -INT "$perf_pid" 2>/dev/null || true
            wait "$perf_pid" 2>/dev/null || true
        fi
    fi
    stop_consumers
    line=$(grep '^RESULT ' "$log" | tail -n 1 || true)
    RESULTS+=("${line:-RESULT consumers=$n ok=0}")
done

get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
printf '\n| consumers | tasks | events | instance reports | publish s | apply s | events/s | reports/s | events/s per consumer | peak RSS MB (max over consumers) | check |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--|\n'
for r in "${RESULTS[@]}"; do
    c=$(get consumers "$r")
    eps=$(get eps "$r")
    per=$(awk -v e="${eps:-0}" -v c="${c:-1}" 'BEGIN { printf "%.0f", e / c }')
    ok=$(get ok "$r")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" "$(get tasks "$r")" \
        "$(get events "$r")" "$(get reports "$r")" "$(get publish_s "$r")" "$(get apply_s "$r")" \
        "$eps" "$(get rps "$r")" "$per" "$(get rss_mb "$r")" \
        "$([[ "$ok" == 1 ]] && echo PASS || echo FAIL)"
done
say "logs in $OUT"
