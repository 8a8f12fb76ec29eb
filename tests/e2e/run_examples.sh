#!/usr/bin/env bash
# tests/e2e/run_examples.sh [cluster...] — end-to-end: `jobmon run` of the examples through the
# whole stack (Kafka → jobmon-fsm → PostgreSQL/Redis → jobmon-distributor → jobmon-worker) for
# each cluster (default: dummy sequential multiprocess, plus slurm when SLURM_CONF is set).
# Needs `scripts/stack up` (and `scripts/slurm-stack up` for slurm) and a built tree.
# A missing service is a failure, never a skip.  Exit 0 when every case passed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${JOBMON_BUILD_DIR:-$ROOT}
export JOBMON_CONFIG=${JOBMON_CONFIG:-$ROOT/.stack/jobmon.conf}
export JOBMON_DISTRIBUTOR=${JOBMON_DISTRIBUTOR:-$B/jobmon-distributor}
JOBMON="$B/jobmon"
clusters=("$@")
if ((${#clusters[@]} == 0)); then
    clusters=(dummy sequential multiprocess)
    [[ -n "${SLURM_CONF:-}" ]] && clusters+=(slurm)
fi
fail=0
pass=0
check() { # name expected_exit cmd...
    local name=$1 want=$2; shift 2
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [[ $rc == "$want" ]]; then
        echo "ok   $name"; pass=$((pass + 1))
    else
        echo "FAIL $name (exit $rc, want $want)"; echo "$out" | tail -20 | sed 's/^/     /'
        fail=$((fail + 1))
    fi
}
"$ROOT/scripts/stack" status >/dev/null || { echo "FAIL stack is not up"; exit 1; }
for c in "${clusters[@]}"; do
    for ex in one_task diamond fork_join_100 retry_once; do
        [[ -f "$ROOT/examples/$ex.json" ]] || continue
        check "$c $ex" 0 "$JOBMON" run --set "client.cluster=$c" "$ROOT/examples/$ex.json"
    done
    # a task over its memory limit is Z, gets more memory and then succeeds (dummy runs nothing)
    if [[ $c != dummy && -f "$ROOT/examples/memory_grow.json" ]]; then
        check "$c memory_grow" 0 "$JOBMON" run --set "client.cluster=$c" \
            "$ROOT/examples/memory_grow.json"
    fi
done
echo "# $pass passed, $fail failed"
((fail == 0))
