#!/usr/bin/env bash
# bench/bind_fsm.sh — issue 5's end-to-end bind (publish start → workflow.bound_at) applied by a
# jobmon-fsm of THIS build, isolated from the shared stack's consumers and model rows:
#   - a private PostgreSQL schema (bindfsm_<stamp>) created from this checkout's migrations
#     (schemas/sql/0NN_*.sql from 002 on, in order), the FSM pointed at it with
#     options=-csearch_path, so the tables start empty and the stack's schema is not touched;
#   - a private topic (4 partitions) and consumer group (dead letters, if any, go to the stack's
#     DLQ topic);
#   - one jobmon-fsm process (JOBMON_FSM_CONSUMERS=1, reaper idle), started before the publish
#     and settled (all partitions owned);
#   - bench/bind_gen --send --wait DEADLINE --topic T N under /usr/bin/time -v (client build,
#     validate, publish + acks, then the bound_at poll through the same search_path).
# The FSM is stopped, the schema dropped and the topic deleted at the end (KEEP=1 keeps both).
#
#   JOBMON_STACK_DIR=/work/main/.stack flock /tmp/jm-bench.lock bench/bind_fsm.sh 100000 1500000
#   PROFILE=pqtime bench/bind_fsm.sh 100000     # + per-statement FSM time ($OUT/pqtime-N.txt)
#   PROFILE=perf bench/bind_fsm.sh 100000       # + perf record of the FSM process ($OUT/perf-fsm-N.data)
#                                               #   and of its PostgreSQL backend ($OUT/perf-pg-N.data)
#
# Settings (env): DEADLINE=900 PROFILE= KEEP= OUT=/tmp/... FSM_BIN=src/consumer/jobmon-fsm
#   SQL_DIR=schemas/sql (FSM_BIN and SQL_DIR of another checkout measure its "before")
#   PROGRESS=S: print the tasks applied every S seconds while waiting (rate over the bind)
#   LOAD=1: the client reads the DAG from a workflow file (bind_gen --load, what `jobmon submit
#           FILE` does before run.start: streamed parse + validate + bind), written before the clock
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FSM_BIN=${FSM_BIN:-$ROOT/src/consumer/jobmon-fsm}
SQL_DIR=${SQL_DIR:-$ROOT/schemas/sql}
GEN=$ROOT/bench/bind_gen
DEADLINE=${DEADLINE:-900}
PROFILE=${PROFILE:-}
RUN_DIR=$(mktemp -d /tmp/jobmon-bind-fsm.XXXXXX)
OUT=${OUT:-$RUN_DIR}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
SIZES=${*:-100000 1500000}

say() { printf 'bind_fsm: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}
[[ -x "$FSM_BIN" && -x "$GEN" ]] || die "build first: make -j2"
"$ROOT/scripts/stack" status >/dev/null || die "the stack is not (fully) up"
eval "$("$ROOT/scripts/stack" env)"
BASE=$JOBMON_POSTGRES_CONNINFO
PGPORT_BENCH=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$BASE")
psql_base() { psql "$BASE" -XAtq -v ON_ERROR_STOP=1 "$@"; }

if [[ "$PROFILE" == pqtime ]]; then
    cc -shared -fPIC -O2 $(pkg-config --cflags libpq) "$ROOT/bench/pqtime.c" \
        -o "$RUN_DIR/pqtime.so" -ldl -lpthread || die "cannot build bench/pqtime.c"
fi

FSM_PID=
SCHEMA=
TOPIC=
stop_fsm()
{
    [[ -n "$FSM_PID" ]] || return 0
    kill -TERM "$FSM_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do
        kill -0 "$FSM_PID" 2>/dev/null || break
        sleep 0.2
    done
    kill -0 "$FSM_PID" 2>/dev/null && kill -KILL "$FSM_PID" 2>/dev/null || true
    FSM_PID=
}
cleanup()
{
    stop_fsm
    if [[ -n "$SCHEMA" && -z "${KEEP:-}" ]]; then
        psql_base -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $SCHEMA CASCADE" ||
            true
    fi
    # the topic holds the whole bind (~670 MB at 1.5M tasks)
    if [[ -n "${TOPIC:-}" && -z "${KEEP:-}" ]]; then
        java -Xms64m -Xmx256m -XX:+UseSerialGC \
            -cp "${JOBMON_STACK_DIR:-$ROOT/.stack}/kafka/libs/*" org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$JOBMON_KAFKA_BROKERS" --delete --topic "$TOPIC" >/dev/null 2>&1 ||
            say "warning: could not delete topic $TOPIC"
    fi
    TOPIC=
}
trap cleanup EXIT

# make_schema NAME — a fresh schema with this checkout's migrations (002 on).
make_schema()
{
    local f
    psql_base -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $1 CASCADE;
                  CREATE SCHEMA $1"
    for f in "$SQL_DIR"/[0-9][0-9][0-9]_*.sql; do
        [[ "$(basename "$f")" == 001_* ]] && continue
        PGOPTIONS="-c search_path=$1 -c client_min_messages=warning" psql_base -f "$f" >/dev/null
    done
}

# wait_owned TOPIC PARTS — until the FSM owns every partition (consumer_offset.owner_epoch > 0).
wait_owned()
{
    local n
    for _ in $(seq 1 300); do
        n=$(PGOPTIONS="-c search_path=$SCHEMA" psql_base -c \
            "SELECT count(*) FROM consumer_offset WHERE topic = '$1' AND owner_epoch > 0")
        [[ "$n" == "$2" ]] && return 0
        kill -0 "$FSM_PID" 2>/dev/null || die "jobmon-fsm exited (log $RUN_DIR/fsm-*.log)"
        sleep 0.2 # poll interval; bounded by the loop count
    done
    die "jobmon-fsm did not own the $2 partitions of $1 in 60 s"
}

# cpu_s PID — user + system CPU seconds of a process so far (/proc/PID/stat, clock ticks).
cpu_s()
{
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null ||
        echo '?'
}

# backend_pids PID — the PostgreSQL backends serving process PID's connections (matched by the
# client port; the stack's PostgreSQL is local, so /proc of the backend is readable by root).
backend_pids()
{
    local ports
    ports=$(ss -tnpH state established "( dport = :${PGPORT_BENCH} )" 2>/dev/null |
        awk -v p="pid=$1," 'index($0, p) {n = split($3, a, ":"); print a[n]}' | paste -sd,)
    [[ -n "$ports" ]] || return 0
    psql_base -c "SELECT pid FROM pg_stat_activity WHERE client_port IN ($ports)"
}

# progress S — every S seconds: seconds since start, tasks applied (workflow_task_count, which
# the bind updates per chunk; cheap to read, unlike count(*) FROM task).
progress()
{
    local t0 now
    t0=$(date +%s.%N)
    while :; do
        sleep "$1" # sampling period, not a wait for state
        now=$(date +%s.%N)
        printf '%.0f %s\n' "$(echo "$now - $t0" | bc)" "$(PGOPTIONS="-c search_path=$SCHEMA" \
            psql_base -c "SELECT COALESCE(sum(n), 0) FROM workflow_task_count")"
    done
}

say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
say "build $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo +dirty)"
for n in $SIZES; do
    SCHEMA=bindfsm_${STAMP,,}_$n
    topic=jobmon.bench.bindfsm.$STAMP.$n
    TOPIC=$topic
    make_schema "$SCHEMA"
    "$ROOT/bench/fsm_throughput" --create-topic 4 --topic "$topic" >/dev/null
    conn="$BASE options=-csearch_path=$SCHEMA"
    wrap=(env)
    [[ "$PROFILE" == pqtime ]] &&
        wrap=(env LD_PRELOAD="$RUN_DIR/pqtime.so" PQTIME_OUT="$OUT/pqtime-$n.txt")
    JOBMON_POSTGRES_CONNINFO=$conn JOBMON_KAFKA_TOPIC=$topic JOBMON_FSM_GROUP_ID=bindfsm-$STAMP-$n \
        JOBMON_FSM_CONSUMERS=1 JOBMON_REAPER_POLL_INTERVAL=86400 \
        setsid "${wrap[@]}" "$FSM_BIN" --config "$JOBMON_CONFIG" </dev/null \
        >"$RUN_DIR/fsm-$n.log" 2>&1 &
    FSM_PID=$!
    wait_owned "$topic" 4
    fsm_cpu0=$(cpu_s "$FSM_PID")
    mapfile -t backends < <(backend_pids "$FSM_PID")
    pg_cpu0=0
    for b in "${backends[@]}"; do pg_cpu0=$(echo "$pg_cpu0 + $(cpu_s "$b")" | bc); done
    say "size $n: topic $topic, schema $SCHEMA, fsm pid $FSM_PID, load $(cut -d' ' -f1-3 /proc/loadavg)"
    perf_pid=
    if [[ "$PROFILE" == perf ]]; then
        perf record -q -e cpu-clock -F 999 ${PERF_CG:--g} -p "$FSM_PID" -o "$OUT/perf-fsm-$n.data" \
            2>/dev/null &
        perf_pid=$!
        if [[ ${#backends[@]} -gt 0 ]]; then
            perf record -q -e cpu-clock -F 999 ${PERF_CG:--g} -p "$(IFS=,; echo "${backends[*]}")" \
                -o "$OUT/perf-pg-$n.data" 2>/dev/null &
            perf_pid="$perf_pid $!"
        fi
    fi
    prog_pid=
    if [[ -n "${PROGRESS:-}" ]]; then
        progress "$PROGRESS" >"$OUT/progress-$n.txt" &
        prog_pid=$!
    fi
    src=("$n")
    if [[ -n "${LOAD:-}" ]]; then # the workflow file, written before the clock starts
        "$GEN" --file "$OUT/wf-$n.json" --tag "bindfsm-$STAMP-$n" "$n" ||
            { say "bind_gen --file failed"; exit 1; }
        src=(--load "$OUT/wf-$n.json")
    fi
    JOBMON_POSTGRES_READER_CONNINFO=$conn /usr/bin/time -v "$GEN" --send --wait "$DEADLINE" \
        --topic "$topic" --tag "bindfsm-$STAMP-$n" "${src[@]}" >"$OUT/gen-$n.txt" \
        2>"$OUT/time-$n.txt" || say "bind_gen failed (see $OUT/time-$n.txt)"
    [[ -n "${KEEP:-}" ]] || rm -f "$OUT/wf-$n.json"
    if [[ -n "$prog_pid" ]]; then
        kill "$prog_pid" 2>/dev/null || true
        wait "$prog_pid" 2>/dev/null || true
    fi
    if [[ -n "$perf_pid" ]]; then
        for p in $perf_pid; do kill -INT "$p" 2>/dev/null || true; done
        for p in $perf_pid; do wait "$p" 2>/dev/null || true; done
    fi
    pg_cpu1=0
    for b in "${backends[@]}"; do pg_cpu1=$(echo "$pg_cpu1 + $(cpu_s "$b")" | bc); done
    say "CPU s during the bind: jobmon-fsm $(echo "$(cpu_s "$FSM_PID") - $fsm_cpu0" | bc)," \
        "its PostgreSQL backends (${backends[*]:-none found}) $(echo "$pg_cpu1 - $pg_cpu0" | bc)"
    say "jobmon-fsm peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$FSM_PID/status" 2>/dev/null)"
    cat "$OUT/gen-$n.txt"
    grep -E 'Maximum resident|Elapsed' "$OUT/time-$n.txt" | sed 's/^\s*/  /'
    PGOPTIONS="-c search_path=$SCHEMA" psql_base -F ' ' -c \
        "SELECT 'tasks', count(*) FROM task; SELECT 'edges', count(*) FROM task_edge;
         SELECT 'events', count(*), pg_size_pretty(sum(pg_column_size(raw))) FROM event_log;
         SELECT 'pending>0', count(*) FROM task WHERE pending_upstreams > 0;
         SELECT 'event_log span s', extract(epoch FROM max(ts) - min(ts)) FROM event_log"
    stop_fsm
    [[ -f "$OUT/pqtime-$n.txt" ]] && head -15 "$OUT/pqtime-$n.txt"
    [[ -f "$OUT/progress-$n.txt" ]] && tr '\n' ' ' <"$OUT/progress-$n.txt" && echo
    say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    cleanup
    SCHEMA=
done
say "output in $OUT"
