#!/usr/bin/env bash
# bench/e2e_throughput.sh — end-to-end benchmarks through `jobmon run` (issue 6):
#
#   (a) no-op throughput: a DAG of TASKS tasks (bench/gen_e2e_dag.py: one root, a fan-out of
#       TASKS/10, a chain of 9 after each) with the dummy plugin, tasks/s from run start
#       (workflow_run.created_at, the run.start event) to D (workflow_run.status_at), once per
#       entry of FSMS (number of jobmon-fsm processes, fsm.consumers=1 each);
#   (b) MP_TASKS independent `true` tasks with the multiprocess plugin (one worker per core),
#       against `xargs -P $(nproc)` running the same commands (the physical floor).
#
# Each (a) run gets a fresh topic (4 partitions) and consumer group and its own jobmon-fsm
# processes (a copy of src/consumer/jobmon-fsm), so the stack's consumers and other users'
# traffic are not measured; so does (b) (one jobmon-fsm), unless MP_FSM=stack: then it uses the
# stack's topic and consumers.  Needs `scripts/stack up`.
# Prints one markdown table row per measurement; APPEND=1 appends them to bench/RESULTS.md.
#
#   TASKS=10000 FSMS="1 2" MP_TASKS=1000 bench/e2e_throughput.sh    (KEEP=1 keeps the temp dir: logs,
#                                                                    and BENCH_SCHEMA's schema)
#   BENCH_SCHEMA=e2e_x TASKS=100000 FSMS=1 MP_TASKS=0 bench/e2e_throughput.sh   (a fresh schema)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${JOBMON_BUILD_DIR:-$ROOT}
TASKS=${TASKS:-10000}
FSMS=${FSMS:-1 2}
MP_TASKS=${MP_TASKS:-1000}
PARTS=4
eval "$("$ROOT/scripts/stack" env)"
"$ROOT/scripts/stack" status >/dev/null || { echo "the stack is not up" >&2; exit 1; }
# BENCH_SCHEMA=name: every process of the run (jobmon, the distributor, our jobmon-fsm, the
# checks) uses a fresh PostgreSQL schema of that name (dropped, re-created and migrated from
# this checkout's schemas/sql, or JOBMON_MIGRATIONS_DIR) instead of the stack's public one, as
# in bench/run_fsm_bench.sh: a migration is measured without touching the shared schema, and
# both builds of an A/B comparison start from equally empty tables.  Reads use the writer role.
if [[ -n "${BENCH_SCHEMA:-}" ]]; then
    [[ "$BENCH_SCHEMA" =~ ^[a-z_][a-z0-9_]*$ && "$BENCH_SCHEMA" != public ]] ||
        { echo "BENCH_SCHEMA must be a plain lower-case name other than public" >&2; exit 1; }
    psql "$JOBMON_POSTGRES_CONNINFO" -XAtq -v ON_ERROR_STOP=1 \
        -c "DROP SCHEMA IF EXISTS $BENCH_SCHEMA CASCADE" -c "CREATE SCHEMA $BENCH_SCHEMA" >/dev/null
    JOBMON_POSTGRES_CONNINFO="$JOBMON_POSTGRES_CONNINFO options=-csearch_path=$BENCH_SCHEMA"
    JOBMON_POSTGRES_READER_CONNINFO=$JOBMON_POSTGRES_CONNINFO
    export JOBMON_POSTGRES_CONNINFO JOBMON_POSTGRES_READER_CONNINFO
    "$ROOT/scripts/migrate" "$JOBMON_POSTGRES_CONNINFO" >/dev/null
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/jobmon-bench-e2e.XXXXXX")
export XDG_STATE_HOME=$tmp/state
FSM_PIDS=()
cleanup()
{
    local p
    for p in "${FSM_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -n "${KEEP:-}" ]] && echo "e2e: kept $tmp" >&2 || rm -rf "$tmp"
    if [[ -n "${BENCH_SCHEMA:-}" && -z "${KEEP:-}" ]]; then # ~0.4 GB per 100k-task run
        psql "$JOBMON_POSTGRES_CONNINFO" -XAtq -c "SET client_min_messages = warning" \
            -c "DROP SCHEMA IF EXISTS $BENCH_SCHEMA CASCADE" || true
    fi
}
trap cleanup EXIT
# Private copies of the programs: a rebuild in the tree during a run must not break it (a
# half-linked jobmon-worker is "Permission denied" for the distributor).  jobmon finds the
# distributor, and the distributor the worker, next to itself.
cp "$B/src/consumer/jobmon-fsm" "$tmp/jobmon-fsm"
mkdir -p "$tmp/bin"
cp "$B/jobmon" "$B/jobmon-distributor" "$B/jobmon-worker" "$tmp/bin/"
# the worker's Kafka module (it looks next to itself), when this build has one
if [[ -f "$B/jobmon-kafka.so" ]]; then cp "$B/jobmon-kafka.so" "$tmp/bin/"; fi
unset JOBMON_DISTRIBUTOR
B=$tmp/bin
q() { psql "$JOBMON_POSTGRES_READER_CONNINFO" -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }
kafka_tool()
{
    java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" \
        -Dkafka.logs.dir="$tmp" -cp "${JOBMON_STACK_DIR:-$ROOT/.stack}/kafka/libs/*" "$@"
}
wait_until()
{
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2 # poll interval; the deadline bounds the wait
    done
}
all_assigned() { (($(cat "$tmp"/fsm-"$1"-*.log 2>/dev/null | grep -c 'assigned ') >= PARTS)); }
# every consumer's Redis cache rebuild, done at its start over all open workflows of the
# shared schema (seconds when other sessions left thousands; a long-lived FSM has none), is over
caches_built()
{
    local f
    for f in "$tmp"/fsm-"$1"-*.log; do grep -q 'cache rebuilt' "$f" || return 1; done
}
# PROFILE=pqtime: the private jobmon-fsm run with bench/pqtime.c preloaded (time per SQL
# statement, $tmp/pqtime-fsm-<k>-<i>.txt at exit; use with KEEP=1)
pqtime_so=
if [[ "${PROFILE:-}" == pqtime ]]; then
    pqtime_so=$tmp/pqtime.so
    cc -shared -fPIC -O2 $(pkg-config --cflags libpq) "$ROOT/bench/pqtime.c" -o "$pqtime_so" \
        -ldl -lpthread
fi
rows=()
machine="$(nproc) cores $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(free -g | awk '/Mem:/ {print $2}') GB"
when=$(date -u +%Y-%m-%dT%H:%MZ)

# ---- (a) dummy no-op throughput ----------------------------------------------------------------
# start_fsms K TAG — a fresh topic jobmon.bench.e2e.TAG (PARTS partitions) and K jobmon-fsm on
# it (own consumer group, fsm.consumers=1 each), all partitions assigned; sets TOPIC.
start_fsms()
{
    local k=$1 i
    TOPIC=jobmon.bench.e2e.$2
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$JOBMON_KAFKA_BROKERS" \
        --create --topic "$TOPIC" --partitions $PARTS --replication-factor 1 >"$tmp/topic.log" 2>&1 ||
        { echo "bench: cannot create $TOPIC:" >&2; tail -5 "$tmp/topic.log" >&2; exit 1; }
    FSM_PIDS=()
    rm -f "$tmp"/fsm-"$k"-*.log
    for ((i = 1; i <= k; i++)); do
        JOBMON_KAFKA_TOPIC=$TOPIC JOBMON_FSM_GROUP_ID=bench-e2e-$2 JOBMON_FSM_CONSUMERS=1 \
            LD_PRELOAD=${pqtime_so:-} PQTIME_OUT=$tmp/pqtime-fsm-$k-$i.txt \
            "$tmp/jobmon-fsm" --config "$JOBMON_CONFIG" >"$tmp/fsm-$k-$i.log" 2>&1 &
        FSM_PIDS+=($!)
    done
    # every partition assigned and the cache rebuilt before the clock starts
    wait_until 60 all_assigned "$k" ||
        { echo "bench: the consumers were not assigned" >&2; exit 1; }
    wait_until 60 caches_built "$k" || echo "bench: no 'cache rebuilt' from the consumers" >&2
}
stop_fsms()
{
    local p
    for p in "${FSM_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${FSM_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    FSM_PIDS=()
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$JOBMON_KAFKA_BROKERS" \
        --delete --topic "$TOPIC" >>"$tmp/topic.log" 2>&1 || true
}

for k in $FSMS; do
    tag=$(date +%s)-$$-$k
    start_fsms "$k" "$tag"
    python3 "$ROOT/bench/gen_e2e_dag.py" "$TASKS" "$tag" >"$tmp/dag.json"
    n=$(jq '.tasks | length' "$tmp/dag.json")
    t0=$(date +%s%N)
    JOBMON_KAFKA_TOPIC=$TOPIC "$B/jobmon" run --json --cluster dummy --timeout 3600 \
        "$tmp/dag.json" >"$tmp/run.json" 2>"$tmp/run.err" || { tail "$tmp/run.err"; exit 1; }
    wall=$((($(date +%s%N) - t0) / 1000000))
    run=$(grep -o '"workflow_run_id":[0-9]*' "$tmp/run.json" | cut -d: -f2)
    st=$(q "SELECT status || ' ' || round(extract(epoch FROM status_at - created_at)::numeric, 2)
            FROM workflow_run WHERE id = $run")
    secs=${st#* }
    rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
    # first queued -> D: from the first ti.instantiated (the distributor's clock, right after
    # it read the first queued instance: the bind is over) to D
    qsecs=$(q "SELECT round(extract(epoch FROM r.status_at - min(e.ts))::numeric, 2)
               FROM workflow_run r JOIN event_log e ON e.workflow_id = r.workflow_id
                AND e.type = 'ti.instantiated' WHERE r.id = $run GROUP BY r.status_at")
    qrate=$(awk -v n="$n" -v s="$qsecs" 'BEGIN { printf "%.0f", n / s }')
    bind_s=$(sed -n 's/.*bound: .*//p' "$tmp/run.err" | head -1)
    echo "dummy: $n tasks, $k jobmon-fsm: run ${st%% *} in $secs s (run start -> D), $rate tasks/s; first queued -> D $qsecs s, $qrate tasks/s; jobmon run wall $((wall / 1000)).$((wall % 1000 / 100)) s" >&2
    rows+=("| $when | (a) dummy no-op DAG | $n | $k jobmon-fsm | $secs s | **$rate tasks/s** | first queued → D $qsecs s = **$qrate tasks/s**; jobmon run wall $((wall / 1000)).$((wall % 1000 / 100)) s (bind included) |")
    stop_fsms
done

# ---- (b) multiprocess vs xargs -----------------------------------------------------------------
if ((MP_TASKS > 0)); then
    tag=$(date +%s)-$$-mp
    python3 - "$MP_TASKS" "$tag" >"$tmp/mp.json" <<'EOF'
import json, sys
n, tag = int(sys.argv[1]), sys.argv[2]
json.dump({"tool": "bench", "workflow_args": f"mp-{n}-{tag}", "name": f"bench {n} true",
           "max_concurrently_running": n + 10,
           "defaults": {"compute_resources": {"cores": 1, "memory": "64M", "runtime": "10m"},
                        "max_attempts": 1},
           "task_templates": [{"name": "t", "command_template": "true {i}", "node_args": ["i"],
                               "max_concurrently_running": n + 10}],
           "tasks": [{"name": f"t{i}", "template": "t", "args": {"i": i}} for i in range(n)]},
          sys.stdout)
EOF
    # CPU seconds (user+sys) of every process named $1, from /proc (processes that end during
    # the run are not counted: use it for the long-lived jobmon-fsm, postgres, java)
    cpu_of()
    {
        local tck
        tck=$(getconf CLK_TCK)
        for p in $(pgrep -x "$1"); do cat "/proc/$p/stat" 2>/dev/null; done |
            awk -v t="$tck" '{sub(/^.*\) /, ""); s += $12 + $13} END {printf "%.2f", s / t}'
    }
    declare -A c0
    for p in jobmon-fsm postgres java; do c0[$p]=$(cpu_of $p); done
    # MP_FSM=own (default): a fresh topic and one jobmon-fsm of this build, like (a);
    # MP_FSM=stack: the stack's topic and consumers (whatever build they run)
    if [[ ${MP_FSM:-own} == own ]]; then
        start_fsms 1 "$tag"
        export JOBMON_KAFKA_TOPIC=$TOPIC
        mp_fsm="1 jobmon-fsm (this build)"
    else
        mp_fsm="stack (2 jobmon-fsm)"
    fi
    t0=$(date +%s%N)
    # jobmon run, its distributor and the workers (all waited for): GNU time's user+sys
    # PERF=file: a system-wide `perf record` of the run (jobmon run's lifetime only)
    perf_cmd=()
    [[ -n "${PERF:-}" ]] && perf_cmd=(perf record -q -a -g -F 999 -o "$PERF" --)
    /usr/bin/time -o "$tmp/mp.time" -f '%U %S' "${perf_cmd[@]}" \
        "$B/jobmon" run --json --cluster multiprocess "$tmp/mp.json" >"$tmp/mp.out" 2>"$tmp/mp.err" ||
        { tail "$tmp/mp.err"; exit 1; }
    wall=$((($(date +%s%N) - t0) / 1000000))
    run=$(grep -o '"workflow_run_id":[0-9]*' "$tmp/mp.out" | cut -d: -f2)
    secs=$(q "SELECT round(extract(epoch FROM status_at - created_at)::numeric, 2) FROM workflow_run WHERE id = $run")
    cpu=""
    for p in jobmon-fsm postgres java; do
        cpu+="$p $(awk -v a="${c0[$p]}" -v b="$(cpu_of $p)" 'BEGIN { printf "%.1f", b - a }') s, "
    done
    cpu+="jobmon run+distributor+workers $(awk '{ printf "%.1f", $1 + $2 }' "$tmp/mp.time") s"
    echo "multiprocess CPU during the run: $cpu (jobmon-fsm, postgres, java: every such process on the host)" >&2
    # worker-bound vs FSM-bound: the event times (transition_log.at: the producer's clock) of
    # the first and last ti.running and ti.done, from run start; D comes once the FSM applied all
    phases=$(q "SELECT 'ti.running +' || round(extract(epoch FROM min(t.at) FILTER (WHERE to_status = 'R') - r.created_at)::numeric, 2)
                 || '..+' || round(extract(epoch FROM max(t.at) FILTER (WHERE to_status = 'R') - r.created_at)::numeric, 2)
                 || ' s, ti.done +' || round(extract(epoch FROM min(t.at) FILTER (WHERE to_status = 'D') - r.created_at)::numeric, 2)
                 || '..+' || round(extract(epoch FROM max(t.at) FILTER (WHERE to_status = 'D') - r.created_at)::numeric, 2) || ' s'
                FROM workflow_run r JOIN transition_log t ON t.workflow_id = r.workflow_id
                 AND t.entity = 'task_instance' WHERE r.id = $run GROUP BY r.created_at")
    echo "multiprocess event times (from run start): $phases; D at +$secs s" >&2
    # what the FSM got for the run: events by type (and outcome when not applied), and the
    # first event of each type in the start-up (event ts, the producer's clock, from run start)
    evs=$(q "SELECT string_agg(type || CASE WHEN outcome <> 'applied' THEN '/' || outcome ELSE '' END
                 || ' ' || n || ' (first +' || f || ' s)', ', ' ORDER BY f)
             FROM (SELECT e.type, e.outcome, count(*) AS n,
                          round(extract(epoch FROM min(e.ts) - r.created_at)::numeric, 2) AS f
                   FROM workflow_run r JOIN event_log e ON e.workflow_id = r.workflow_id
                   WHERE r.id = $run AND e.ts >= r.created_at - interval '1 s'
                   GROUP BY e.type, e.outcome, r.created_at) s")
    echo "multiprocess events: $evs" >&2
    if [[ ${MP_FSM:-own} == own ]]; then
        stop_fsms
        unset JOBMON_KAFKA_TOPIC
    fi
    cpu+="; events $phases; $evs"
    t0=$(date +%s%N)
    seq 0 $((MP_TASKS - 1)) | xargs -P "$(nproc)" -I{} /bin/sh -c 'true {}'
    xw=$((($(date +%s%N) - t0) / 1000000))
    xs=$(awk -v m="$xw" 'BEGIN { printf "%.2f", m / 1000 }')
    ratio=$(awk -v a="$secs" -v b="$xs" 'BEGIN { printf "%.2f", a / b }')
    echo "multiprocess: $MP_TASKS true in $secs s (run start -> D), jobmon run wall $((wall / 1000)).$((wall % 1000 / 100)) s; xargs -P $(nproc): $xs s; ratio ${ratio}x" >&2
    rows+=("| $when | (b) multiprocess, $MP_TASKS \`true\` | $MP_TASKS | $mp_fsm | $secs s | $(awk -v n="$MP_TASKS" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') tasks/s | xargs -P $(nproc): $xs s → **${ratio}× xargs**; jobmon run wall $((wall / 1000)).$((wall % 1000 / 100)) s; CPU: $cpu |")
fi

{
    echo
    echo "Machine: $machine; Debian 12; stack from scripts/stack on the same host."
    echo
    echo "| date (UTC) | case | tasks | consumers | run start → D | throughput | notes |"
    echo "|---|---|---:|---|---:|---:|---|"
    printf '%s\n' "${rows[@]}"
} | tee "$tmp/rows.md"
if [[ -n "${APPEND:-}" ]]; then
    cat "$tmp/rows.md" >>"$ROOT/bench/RESULTS.md"
fi
