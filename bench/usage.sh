#!/usr/bin/env bash
# bench/usage.sh — `jobmon usage WF`: how long the per-template usage report takes for a large
# workflow (one query over its task instances: counts, percentiles, requests).
#
#   bench/usage.sh                      (TASKS=100000 RUNS=5)
#
# Needs the local stack up (scripts/stack up): runs a DAG of TASKS no-op tasks
# (bench/gen_e2e_dag.py) with `jobmon run --cluster dummy`, then times RUNS calls of
# `jobmon usage WF --json` (the whole process: start, config, connect, query, print; the dummy
# plugin reports no usage, which does not change the work of the query).  Prints a markdown row
# for bench/RESULTS.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${B:-$ROOT}
TASKS=${TASKS:-100000}
RUNS=${RUNS:-5}
eval "$("$ROOT/scripts/stack" env)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ms_now() { date +%s%3N; }

python3 "$ROOT/bench/gen_e2e_dag.py" "$TASKS" "usage-$$-$(date +%s)" >"$tmp/dag.json"
"$B/jobmon" run --json --cluster dummy --timeout 3600 "$tmp/dag.json" >"$tmp/run.json" 2>"$tmp/run.err" ||
    { tail -5 "$tmp/run.err" >&2; exit 1; }
wf=$(grep -o '"workflow_id":[0-9]*' "$tmp/run.json" | head -1 | cut -d: -f2) # jq rounds int64
n_ti=$(psql "$JOBMON_POSTGRES_READER_CONNINFO" -X -qAt -c \
    "SELECT count(*) FROM task_instance WHERE workflow_id = $wf")
times=()
for _ in $(seq "$RUNS"); do
    t0=$(ms_now)
    "$B/jobmon" usage "$wf" --json >"$tmp/usage.json"
    times+=($(($(ms_now) - t0)))
done
templates=$(jq length "$tmp/usage.json")
when=$(date -u +%Y-%m-%dT%H:%MZ)
sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
echo "| $when | \`jobmon usage WF --json\`, $TASKS tasks, $n_ti instances, $templates template(s) | $RUNS runs: $sorted ms |"
