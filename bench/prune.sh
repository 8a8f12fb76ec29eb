#!/usr/bin/env bash
# bench/prune.sh — retention (`jobmon prune`): how fast a finished workflow and its logs are
# deleted, and how long one workflow.prune event holds its partition.
#
#   bench/prune.sh                      (TASKS=100000 ROWS=50000 CHUNKS="10000 50000 200000")
#
# Needs the local stack up (scripts/stack up): runs a DAG of TASKS no-op tasks
# (bench/gen_e2e_dag.py) with `jobmon run --cluster dummy` through the stack's jobmon-fsm, then
#   (1) counts the workflow's rows per table;
#   (2) times jm_prune_chunk(wf, N) for each N of CHUNKS inside a transaction that is rolled
#       back (what one workflow.prune event costs PostgreSQL: the time its consumer holds the
#       partition, other workflows of that partition wait that long);
#   (3) prunes it for real: `jobmon prune --workflow WF --older-than 0s --rows ROWS`, the whole
#       round trip (publish, FSM apply, the CLI's 200 ms poll for each event).
# Prints a markdown table for bench/RESULTS.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${B:-$ROOT}
TASKS=${TASKS:-100000}
ROWS=${ROWS:-50000}
CHUNKS=${CHUNKS:-10000 50000 200000}
eval "$("$ROOT/scripts/stack" env)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
q() { psql "$JOBMON_POSTGRES_CONNINFO" -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }
ms_now() { date +%s%3N; }

python3 "$ROOT/bench/gen_e2e_dag.py" "$TASKS" "prune-$$-$(date +%s)" >"$tmp/dag.json"
t0=$(ms_now)
"$B/jobmon" run --json --cluster dummy --timeout 3600 "$tmp/dag.json" >"$tmp/run.json" 2>"$tmp/run.err" ||
    { tail -5 "$tmp/run.err" >&2; exit 1; }
wf=$(grep -o '"workflow_id":[0-9]*' "$tmp/run.json" | head -1 | cut -d: -f2) # jq rounds int64
echo "# workflow $wf: $TASKS tasks run to $(jq -r .status "$tmp/run.json") in $(($(ms_now) - t0)) ms" >&2

declare -A n
total=0
for t in transition_log event_log task_instance task task_edge workflow_run workflow_task_count; do
    col=workflow_id
    n[$t]=$(q "SELECT count(*) FROM $t WHERE $col = $wf")
    total=$((total + n[$t]))
done
bytes=$(q "SELECT pg_size_pretty(sum(pg_column_size(e.*))) FROM event_log e WHERE workflow_id = $wf")

when=$(date -u +%Y-%m-%dT%H:%MZ)
echo "| $when | rows of the workflow | $total (transition_log ${n[transition_log]}, event_log ${n[event_log]} ($bytes), task_instance ${n[task_instance]}, task ${n[task]}, task_edge ${n[task_edge]}) |"
for c in $CHUNKS; do
    # one chunk, as the FSM runs it, timed by psql and rolled back
    out=$(psql "$JOBMON_POSTGRES_CONNINFO" -X -qAt -v ON_ERROR_STOP=1 <<SQL
BEGIN;
\timing on
SELECT deleted FROM jm_prune_chunk($wf, $c);
\timing off
ROLLBACK;
SQL
)
    del=$(sed -n 1p <<<"$out")
    ms=$(grep -o 'Time: [0-9.]*' <<<"$out" | cut -d' ' -f2)
    echo "| $when | one workflow.prune event of --rows $c (rolled back) | $del rows in $ms ms = $(awk -v r="$del" -v m="$ms" 'BEGIN{printf "%.0f", r / m * 1000}') rows/s |"
done

t0=$(ms_now)
"$B/jobmon" --json prune --workflow "$wf" --older-than 0s --rows "$ROWS" >"$tmp/prune.json" 2>"$tmp/prune.err" ||
    { cat "$tmp/prune.err" >&2; exit 1; }
ms=$(($(ms_now) - t0))
ev=$(jq -r '.[0].events' "$tmp/prune.json")
echo "| $when | jobmon prune --rows $ROWS (whole workflow) | $(jq -r '.[0].result' "$tmp/prune.json") in $ev events, $ms ms = $(awk -v r="$total" -v m="$ms" 'BEGIN{printf "%.0f", r / m * 1000}') rows/s; left: $(q "SELECT count(*) FROM task WHERE workflow_id = $wf") tasks |"
