#!/usr/bin/env bash
# bench/slurm_worker_overhead.sh [N] [ROUNDS] [builddir] — jobmon-worker's overhead through the
# real Slurm (issue 6 goal: <= 5 ms added latency, <= 4 MB added RSS), TCP report channel vs
# the worker publishing to Kafka itself.
#
# Runs a workflow of N (default 40) `true` tasks with `jobmon run --cluster slurm` (one array
# job), ROUNDS times (default 2) in each mode, alternating:
#   tcp    the distributor's TCP report channel (the default)
#   kafka  JOBMON_DISTRIBUTOR_REPORT_LISTEN=off: the worker loads jobmon-kafka.so and publishes
# Each job runs a wrapper in place of the worker (jobmon-distributor --worker) that times
# `/usr/bin/time sh -c true` and then `/usr/bin/time jobmon-worker ...` in the same job, so the
# difference per job is the worker's overhead over its command *including* the report's round
# trip (through the distributor and its Kafka acknowledgement, or to Kafka directly) before the
# worker may exit.  Prints per round the medians and p90 of both and of the difference, and the
# max RSS of each (GNU time %M).  Needs `scripts/stack up --slurm`; JOBMON_STACK_DIR as for the
# e2e tests.  Slurm runs as many jobs at once as there are CPUs: p90 is noisy.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-40}
ROUNDS=${2:-2}
B=${3:-$ROOT}
export JOBMON_STACK_DIR=${JOBMON_STACK_DIR:-$ROOT/.stack}
stack_env=$("$ROOT/scripts/stack" env) # fails (set -e) when the stack is not up
eval "$stack_env"
export JOBMON_SLURM_STATE=${JOBMON_SLURM_STATE:-$JOBMON_STACK_DIR/slurm}
stack_env=$("$ROOT/scripts/slurm-stack" env)
eval "$stack_env"
[[ -x /usr/bin/time ]] || { echo "slurm_worker_overhead: needs GNU time" >&2; exit 2; }
TMP=$(mktemp -d /tmp/jm-slurm-bench.XXXXXX) # on a file system the Slurm jobs see
trap 'rm -rf "$TMP"' EXIT

cat >"$TMP/timed-worker.sh" <<'EOF'
#!/bin/bash
t0=$EPOCHREALTIME
/usr/bin/time -f %M -o "$TW_DIR/rss.$$" sh -c true
t1=$EPOCHREALTIME
echo "$((${t1/./} - ${t0/./})) $(tail -n 1 "$TW_DIR/rss.$$")" >>"$TW_DIR/sh.log"
t0=$EPOCHREALTIME
/usr/bin/time -f %M -o "$TW_DIR/rss.$$" "$TW_REAL" "$@"
rc=$?
t1=$EPOCHREALTIME
echo "$((${t1/./} - ${t0/./})) $(tail -n 1 "$TW_DIR/rss.$$")" >>"$TW_DIR/worker.log"
rm -f "$TW_DIR/rss.$$"
exit $rc
EOF
cat >"$TMP/dist.sh" <<'EOF'
#!/bin/sh
exec "$TW_DIST" "$@" --worker "$TW_WRAP"
EOF
chmod +x "$TMP/timed-worker.sh" "$TMP/dist.sh"
export TW_REAL=$B/jobmon-worker TW_DIST=$B/jobmon-distributor TW_WRAP=$TMP/timed-worker.sh
export JOBMON_DISTRIBUTOR=$TMP/dist.sh XDG_STATE_HOME=$TMP/state

# one MODE ROUND — run the workflow once, print its summary line
one()
{
    export TW_DIR=$TMP/$1-$2
    mkdir -p "$TW_DIR"
    local tag
    tag=$1-$2-$(date +%s%N)
    python3 -c 'import json, sys
n, tag = int(sys.argv[1]), sys.argv[2]
print(json.dumps({"tool": "bench", "workflow_args": "slurm-overhead-" + tag,
    "name": "slurm worker overhead",
    "defaults": {"compute_resources": {"cores": 1, "memory": "128M", "runtime": "5m"},
                 "max_attempts": 1},
    "tasks": [{"name": "t%d" % i, "command": "true %d" % i} for i in range(n)]}))' \
        "$N" "$tag" >"$TW_DIR/wf.json"
    if [[ $1 == kafka ]]; then
        JOBMON_DISTRIBUTOR_REPORT_LISTEN=off "$B/jobmon" run --json --cluster slurm \
            "$TW_DIR/wf.json" >"$TW_DIR/out.json" 2>"$TW_DIR/err" || true
    else
        "$B/jobmon" run --json --cluster slurm "$TW_DIR/wf.json" >"$TW_DIR/out.json" \
            2>"$TW_DIR/err" || true
    fi
    grep -q '"status":"D"' "$TW_DIR/out.json" ||
        { echo "slurm_worker_overhead: $1 round $2 did not finish D" >&2; tail "$TW_DIR/err" >&2; exit 1; }
    paste -d' ' "$TW_DIR/sh.log" "$TW_DIR/worker.log" | awk -v m="$1" -v r="$2" '
        function q(a, n, p,   i, j, t, b) {
            for (i = 1; i <= n; i++) b[i] = a[i]
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (b[j] < b[i]) {t = b[i]; b[i] = b[j]; b[j] = t}
            return b[int(p * n + 0.999999)]
        }
        {s[NR] = $1 / 1000; w[NR] = $3 / 1000; d[NR] = ($3 - $1) / 1000
         if ($2 > rs) rs = $2; if ($4 > rw) rw = $4}
        END {printf "| %s | %s | %d | %.2f / %.2f | %.2f / %.2f | %+.2f / %+.2f | %d / %d (%+d) |\n",
                    m, r, NR, q(s, NR, .5), q(s, NR, .9), q(w, NR, .5), q(w, NR, .9),
                    q(d, NR, .5), q(d, NR, .9), rs, rw, rw - rs}'
    grep -o 'report channel [^ ]*: [0-9]* connection.*' "$TW_DIR/err" | tail -n 1 | sed 's/^/#   /' >&2 || true
}

echo "## jobmon-worker overhead through Slurm, N=$N"
echo
echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPU(s), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| mode | round | jobs | sh -c true ms median / p90 | worker ms median / p90 | worker − sh ms median / p90 | max RSS kB sh / worker (diff) |"
echo "|---|---|---:|---:|---:|---:|---:|"
for ((r = 1; r <= ROUNDS; r++)); do
    one tcp "$r"
    one kafka "$r"
done
echo
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
