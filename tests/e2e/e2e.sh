#!/usr/bin/env bash
# tests/e2e/e2e.sh [CLUSTER...] — end-to-end tests of the whole system through `jobmon run --json`:
# Kafka → jobmon-fsm → PostgreSQL/Redis → jobmon-distributor → plugin → jobmon-worker.  TAP.
#
# Default clusters: dummy sequential multiprocess slurm (E2E_CLUSTERS overrides).  Needs
# `scripts/stack up` (with jobmon-fsm) and, for slurm, `scripts/stack up --slurm`.  A service that
# is down is a failure ("not ok"), never a skip.  Workflow files are tests/e2e/wf/*.json, where
# @TAG@ (unique per run and cluster, so reruns never collide) and @TMP@ (a scratch dir) are
# substituted.  State is read from PostgreSQL with the reader role (task, task_instance,
# task_edge, transition_log) and from `jobmon run --json`.  Waits poll with deadlines.
#
#   make check-e2e                       (all clusters)
#   tests/e2e/e2e.sh sequential          (one cluster)
#   E2E_ONLY='memory|fatal' tests/e2e/e2e.sh multiprocess   (cases matching a regex)
#   E2E_WF_DIR=DIR (mutated workflow files: check that a case can fail), E2E_KEEP=1 (keep scratch)
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/e2e
B=${JOBMON_BUILD_DIR:-$ROOT}
JOBMON=${JOBMON:-$B/jobmon}
REAL_DIST=${JOBMON_DISTRIBUTOR:-$B/jobmon-distributor}
REAL_WORKER=${JOBMON_WORKER:-$B/jobmon-worker}
RUN_TIMEOUT=${E2E_RUN_TIMEOUT:-180}

clusters=("$@")
if ((${#clusters[@]} == 0)); then
    read -r -a clusters <<<"${E2E_CLUSTERS:-dummy sequential multiprocess slurm}"
fi

n=0
fails=0
failed_names=()
T0=$SECONDS
say() { echo "# $*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jobmon-e2e.XXXXXX") || exit 1
cleanup()
{
    local p
    for p in $(jobs -p); do kill "$p" 2>/dev/null; done
    # a distributor of a case that timed out runs on in its own process group (its `jobmon run`
    # was killed): left alone it would heartbeat into a later stack on the same ports, with a
    # producer id the new broker hands out again
    for p in $(cat "$tmp/dist.pids" 2>/dev/null); do
        if grep -q jobmon-distributor "/proc/$p/cmdline" 2>/dev/null; then
            say "killing leftover distributor $p"
            kill -KILL "$p" 2>/dev/null
        fi
    done
    [[ -n "${E2E_KEEP:-}" ]] || rm -rf "$tmp"
}
trap cleanup EXIT
export XDG_STATE_HOME=$tmp/state
TAG=${E2E_TAG:-$(date +%s)-$$-$RANDOM}

# ---- the stack ---------------------------------------------------------------------------------
stack_ok=1
if ! "$ROOT/scripts/stack" status >"$tmp/stack.status" 2>&1; then
    stack_ok=0
fi
if ! eval "$("$ROOT/scripts/stack" env 2>/dev/null)"; then
    stack_ok=0
fi
slurm_ok=0
export JOBMON_SLURM_STATE=${JOBMON_SLURM_STATE:-${JOBMON_STACK_DIR:-$ROOT/.stack}/slurm}
if [[ " ${clusters[*]} " == *" slurm "* ]]; then
    if "$ROOT/scripts/slurm-stack" status >"$tmp/slurm.status" 2>&1; then
        eval "$("$ROOT/scripts/slurm-stack" env)"
        slurm_ok=1
    fi
fi
# The distributor goes through a wrapper so a test can add options (--parallelism) and slip a
# worker wrapper in (the spool case); without E2E_* variables both are transparent.
export E2E_REAL_DISTRIBUTOR=$REAL_DIST E2E_REAL_WORKER=$REAL_WORKER E2E_DIST_PIDS=$tmp/dist.pids
export JOBMON_DISTRIBUTOR=$HERE/dist-wrap.sh

q() { psql "$JOBMON_POSTGRES_READER_CONNINFO" -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }
# id KEY FILE — a 64-bit integer field as text (jq 1.6 rounds them).
id() { grep -o "\"$1\":[0-9]*" "$2" | head -1 | cut -d: -f2; }

# ---- TAP ---------------------------------------------------------------------------------------
# t NAME FUNCTION ARGS... — one test; the function prints diagnostics as "# ..." on stderr.
t()
{
    local name=$1 t1=$SECONDS rc
    shift
    if [[ -n "${E2E_ONLY:-}" && ! "$name" =~ ${E2E_ONLY} ]]; then
        return
    fi
    n=$((n + 1))
    if ((!stack_ok)); then
        say "the local stack is not (fully) up: run scripts/stack up"
        sed 's/^/#   /' "$tmp/stack.status" >&2
        rc=1
    elif [[ "$name" == slurm* ]] && ((!slurm_ok)); then
        say "Slurm is not up: run scripts/stack up --slurm"
        sed 's/^/#   /' "$tmp/slurm.status" >&2
        rc=1
    else
        "$@"
        rc=$?
    fi
    if ((rc == 0)); then
        echo "ok $n - $name ($((SECONDS - t1)) s)"
    else
        echo "not ok $n - $name ($((SECONDS - t1)) s)"
        fails=$((fails + 1))
        failed_names+=("$name")
    fi
}

# fail MESSAGE — a failed check: print it and return 1 (use as `check || fail msg`).
fail()
{
    say "$*"
    if [[ -n "${LAST:-}" && -f "$LAST.err" ]]; then
        say "--- last 15 lines of jobmon's stderr ($LAST.err):"
        tail -n 15 "$LAST.err" | sed 's/^/#   /' >&2
    fi
    return 1
}

# eq WHAT GOT WANT
eq() { [[ "$2" == "$3" ]] || fail "$1: got '$2', want '$3'"; }

# ---- running workflows -------------------------------------------------------------------------
# render CASE CLUSTER — the workflow file of CASE for CLUSTER, with @TAG@/@TMP@ substituted.
render()
{
    local d=$tmp/$2
    mkdir -p "$d"
    sed -e "s|@TAG@|$TAG-$2|g" -e "s|@TMP@|$d|g" "${E2E_WF_DIR:-$HERE/wf}/$1.json" >"$d/$1.wf.json"
    echo "$d/$1.wf.json"
}

# jrun CASE CLUSTER [jobmon run options] — run CASE to the end; sets RC, WF, RUN, LAST (file
# prefix: $LAST.json = stdout, $LAST.err = stderr).
jrun()
{
    local c=$1 cl=$2 f
    shift 2
    f=$(render "$c" "$cl")
    LAST=$tmp/$cl/$c
    timeout -k 5 "$RUN_TIMEOUT" "$JOBMON" run --json --cluster "$cl" "$@" "$f" \
        >"$LAST.json" 2>"$LAST.err"
    RC=$?
    WF=$(id workflow_id "$LAST.json")
    RUN=$(id workflow_run_id "$LAST.json")
    if [[ -z "$WF" ]]; then
        WF=$(sed -n 's/.*workflow \([0-9]*\) bound.*/\1/p' "$LAST.err" | head -1)
    fi
    ((RC != 124)) || say "jobmon run timed out after $RUN_TIMEOUT s"
}

# task_col WF NAME COL — a column of a task by name.
task_col() { q "SELECT $3 FROM task WHERE workflow_id = $1 AND name = '$2'"; }
# ti_of WF NAME COLS — one line per instance of the task, in attempt order.
ti_of()
{
    q "SELECT $3 FROM task_instance ti WHERE ti.task_id =
        (SELECT id FROM task WHERE workflow_id = $1 AND name = '$2') ORDER BY ti.attempt"
}
n_ti() { q "SELECT count(*) FROM task_instance ti JOIN task t ON t.id = ti.task_id
             WHERE t.workflow_id = $1 AND t.name = '$2'"; }

# expect_done [NTASKS] — the last run exited 0, the workflow is D with NTASKS tasks, all D.
expect_done()
{
    local want=${1:-}
    [[ $RC == 0 ]] || { fail "jobmon run exited $RC, want 0"; return 1; }
    [[ -n "$WF" ]] || { fail "no workflow_id in the --json output"; return 1; }
    eq "run --json status" "$(jq -r .status "$LAST.json")" D || return 1
    eq "workflow status in PostgreSQL" "$(q "SELECT status FROM workflow WHERE id = $WF")" D || return 1
    eq "run status in PostgreSQL" "$(q "SELECT status FROM workflow_run WHERE id = $RUN")" D || return 1
    local total done
    total=$(q "SELECT count(*) FROM task WHERE workflow_id = $WF")
    done=$(q "SELECT count(*) FROM task WHERE workflow_id = $WF AND status = 'D'")
    eq "tasks DONE" "$done" "$total" || return 1
    eq "run --json tasks.DONE" "$(jq -r .tasks.DONE "$LAST.json")" "$total" || return 1
    if [[ -n "$want" ]]; then
        eq "number of tasks" "$total" "$want" || return 1
    fi
}

# resume_done PREFIX NTASKS — `jobmon resume` $WF (output in PREFIX.json/.err), expect_done NTASKS,
# and the task named first did not run again.
resume_done()
{
    LAST=$1
    timeout -k 5 "$RUN_TIMEOUT" "$JOBMON" resume --json "$WF" >"$LAST.json" 2>"$LAST.err"
    RC=$?
    RUN=$(id workflow_run_id "$LAST.json")
    expect_done "$2" || return 1
    eq "first: instances (not rerun)" "$(n_ti "$WF" first)" 1
}

# edges_respected WF — every task was queued only after all its upstreams were DONE (apply order).
edges_respected()
{
    local bad
    bad=$(q "SELECT string_agg(u.name || '->' || d.name, ' ') FROM task_edge e
        JOIN task u ON u.id = e.upstream_id JOIN task d ON d.id = e.downstream_id
        WHERE e.workflow_id = $1 AND NOT coalesce(
          (SELECT min(seq) FROM transition_log WHERE entity = 'task' AND entity_id = e.downstream_id
              AND to_status = 'Q') >
          (SELECT min(seq) FROM transition_log WHERE entity = 'task' AND entity_id = e.upstream_id
              AND to_status = 'D'), false)")
    [[ -z "$bad" ]] || fail "edges whose downstream was queued before its upstream was DONE: $bad"
}

# one_ti_each WF — every task ran exactly once and its instance is D.
one_ti_each()
{
    local bad
    bad=$(q "SELECT string_agg(t.name || ':' || coalesce(x.n, 0) || ':' || coalesce(x.s, '-'), ' ')
        FROM task t LEFT JOIN (SELECT task_id, count(*) n, string_agg(status, '') s
          FROM task_instance GROUP BY task_id) x ON x.task_id = t.id
        WHERE t.workflow_id = $1 AND (x.n IS DISTINCT FROM 1 OR x.s <> 'D')")
    [[ -z "$bad" ]] || fail "tasks without exactly one D instance (name:count:statuses): $bad"
}

# ---- cases -------------------------------------------------------------------------------------

# over_channel CLUSTER N — slurm: the last run's N workers reported through the distributor's
# TCP report channel (its closing log line: N connections, 2 N events relayed, none refused);
# other clusters: nothing to check.
over_channel()
{
    [[ $1 == slurm ]] || return 0
    local line conns events
    line=$(grep -o 'report channel [^ ]*: [0-9]* connection(s), [0-9]* event(s) relayed, [0-9]* refused' \
        "$LAST.err" | tail -n 1)
    say "${line:-no report channel line}"
    conns=$(sed -n 's/.*: \([0-9]*\) connection(s).*/\1/p' <<<"$line")
    events=$(sed -n 's/.* \([0-9]*\) event(s) relayed.*/\1/p' <<<"$line")
    eq "workers connected to the report channel" "${conns:-none}" "$2" || return 1
    eq "events relayed (ti.running + result each)" "${events:-none}" "$((2 * $2))" || return 1
    [[ $line == *", 0 refused" ]] || fail "connections refused: $line"
}

case_one()
{
    jrun one "$1"
    expect_done 1 && one_ti_each "$WF" || return 1
    if [[ $1 != dummy ]]; then
        eq "stdout tail" "$(ti_of "$WF" only "stdout_tail" | tr -d '\n')" "one-$TAG-$1" || return 1
    fi
    over_channel "$1" 1
}

case_linear3()
{
    jrun linear3 "$1"
    expect_done 3 && one_ti_each "$WF" && edges_respected "$WF" || return 1
    eq "edges" "$(q "SELECT count(*) FROM task_edge WHERE workflow_id = $WF")" 2
}

case_forkjoin()
{
    jrun forkjoin "$1"
    expect_done 8 && one_ti_each "$WF" && edges_respected "$WF" || return 1
    eq "edges" "$(q "SELECT count(*) FROM task_edge WHERE workflow_id = $WF")" 9 || return 1
    over_channel "$1" 8
}

# examples/diamond.json as shipped (a fresh workflow_args so reruns do not collide; $2 names a
# second one of the same cluster).
case_diamond()
{
    local d=$tmp/$1 w=${2:-diamond}
    mkdir -p "$d"
    jq --arg a "$w-$TAG-$1" '. + {workflow_args: $a}' "$ROOT/examples/diamond.json" \
        >"$d/$w.wf.json"
    LAST=$d/$w
    timeout -k 5 "$RUN_TIMEOUT" "$JOBMON" run --json --cluster "$1" "$d/$w.wf.json" \
        >"$LAST.json" 2>"$LAST.err"
    RC=$?
    WF=$(id workflow_id "$LAST.json")
    RUN=$(id workflow_run_id "$LAST.json")
    expect_done 4 && one_ti_each "$WF" && edges_respected "$WF" || return 1
    # usage per template: the four tasks are of template "step"; another name finds none
    eq "usage --template step: done" \
        "$("$JOBMON" usage "$WF" --template step --json | jq -r '.[] | "\(.template) \(.done)"')" \
        "step 4" || return 1
    eq "usage --template other" "$("$JOBMON" usage "$WF" --template other --json)" "[]"
}

# Retention: the diamond, finished, is listed by a dry run only once older than the cutoff, then
# pruned a few rows per event: its rows, its cache entry and its logs go (but the event_log rows
# of the last prune events); audit says when; a second prune finds nothing.
case_prune()
{
    local out rc
    case_diamond "$1" prune-diamond || return 1
    LAST=$tmp/$1/prune
    out=$("$JOBMON" prune --workflow "$WF" --older-than 1h --dry-run 2>"$LAST.err")
    [[ $out == *"0 workflow(s) would be pruned"* ]] || { fail "dry run, 1h: $out"; return 1; }
    out=$("$JOBMON" --json prune --workflow "$WF" --older-than 0s --dry-run 2>"$LAST.err")
    eq "dry run, 0s" "$(jq -r '.[0].result' <<<"$out")" "would prune" || return 1
    eq "dry run leaves the rows" "$(q "SELECT count(*) FROM task WHERE workflow_id = $WF")" 4 || return 1
    "$JOBMON" --json prune --workflow "$WF" --older-than 0s --rows 10 >"$LAST.json" 2>>"$LAST.err"
    rc=$?
    eq "prune exit code" "$rc" 0 || return 1
    eq "prune result" "$(jq -r '.[0].result' "$LAST.json")" pruned || return 1
    (($(jq -r '.[0].events' "$LAST.json") > 3)) || { fail "not chunked: $(cat "$LAST.json")"; return 1; }
    eq "rows left" "$(q "SELECT (SELECT count(*) FROM workflow WHERE id = $WF)
        + (SELECT count(*) FROM task WHERE workflow_id = $WF)
        + (SELECT count(*) FROM task_instance WHERE workflow_id = $WF)
        + (SELECT count(*) FROM workflow_run WHERE workflow_id = $WF)
        + (SELECT count(*) FROM transition_log WHERE workflow_id = $WF)")" 0 || return 1
    # what remains of its log: the prune events that shared the last transaction (the CLI keeps
    # up to 4 in flight), the rest were deleted
    eq "event_log left" "$(q "SELECT count(*) BETWEEN 1 AND 4 AND bool_and(type = 'workflow.prune')
        FROM event_log WHERE workflow_id = $WF")" t || return 1
    "$JOBMON" status "$WF" >"$LAST.status" 2>&1 && { fail "status still finds it: $(cat "$LAST.status")"; return 1; }
    grep -q "workflow $WF was pruned at" "$LAST.status" ||
        { fail "status does not say it was pruned: $(cat "$LAST.status")"; return 1; }
    out=$("$JOBMON" audit "$WF" 2>&1)
    [[ $out == *"was pruned at"* ]] || { fail "audit: $out"; return 1; }
    out=$("$JOBMON" prune --workflow "$WF" --older-than 0s 2>&1) || { fail "second prune: $out"; return 1; }
    [[ $out == *"0 workflow(s) pruned"* ]] || fail "second prune: $out"
}

# A fatal task: descendants never run, siblings finish, run E, exit 1, the task is printed.
case_fatal()
{
    jrun fatal "$1"
    eq "jobmon run exit code" "$RC" 1 || return 1
    eq "run --json status" "$(jq -r .status "$LAST.json")" F || return 1
    eq "run status" "$(q "SELECT status FROM workflow_run WHERE id = $RUN")" E || return 1
    eq "workflow status" "$(q "SELECT status FROM workflow WHERE id = $WF")" F || return 1
    eq "bad: status" "$(task_col "$WF" bad status)" F || return 1
    eq "bad: instances" "$(ti_of "$WF" bad "status || ':' || exit_code")" "E:3" || return 1
    local s
    for s in root sib1 sib2; do
        eq "$s: status" "$(task_col "$WF" "$s" status)" D || return 1
    done
    for s in child grandchild; do
        eq "$s: task_instance rows" "$(n_ti "$WF" "$s")" 0 || return 1
        eq "$s: status" "$(task_col "$WF" "$s" status)" G || return 1
    done
    eq "run --json tasks.FATAL" "$(jq -r .tasks.FATAL "$LAST.json")" 1 || return 1
    grep -q "bad: exit code 3" "$LAST.err" || fail "jobmon run did not print the failed task" || return 1
    grep -q "e2e-fatal-marker-$TAG-$1" "$LAST.err" ||
        fail "jobmon run did not print the failed task's stderr" || return 1
    # jobmon errors: the one failed task, its exit code and stderr
    eq "errors --json" "$("$JOBMON" errors "$WF" --json |
        jq -r '.[] | "\(.name) \(.status) \(.exit_code) \(.task_status)"')" "bad E 3 F" || return 1
    "$JOBMON" errors "$WF" >"$LAST.errors" 2>&1 || fail "jobmon errors failed" || return 1
    grep -q "exit code 3" "$LAST.errors" && grep -q "| e2e-fatal-marker-$TAG-$1" "$LAST.errors" ||
        fail "jobmon errors text: $(cat "$LAST.errors")"
}

case_retry()
{
    jrun retry "$1"
    expect_done 1 || return 1
    eq "flaky: instances" "$(ti_of "$WF" flaky "status" | tr -d '\n')" ED || return 1
    eq "flaky: attempts" "$(task_col "$WF" flaky num_attempts)" 2 || return 1
    # jobmon errors: nothing failing now; --all shows the retried first attempt
    eq "errors (latest instances)" "$("$JOBMON" errors "$WF" --json)" "[]" || return 1
    eq "errors --all" "$("$JOBMON" errors "$WF" --all --json |
        jq -r '.[] | "\(.name) \(.attempt) \(.status) \(.stderr_tail)"')" "flaky 1 E first attempt fails"
}

# Z for memory, resources scaled (64M, scale 1.0 → 128M), D on the next attempt.
case_memory()
{
    jrun memory "$1"
    expect_done 1 || return 1
    eq "hungry: instances" "$(ti_of "$WF" hungry "status" | tr -d '\n')" ZD || return 1
    local m1 m2
    m1=$(ti_of "$WF" hungry "(resources->>'memory')::numeric" | sed -n 1p)
    m2=$(ti_of "$WF" hungry "(resources->>'memory')::numeric" | sed -n 2p)
    say "requested memory: attempt 1 $m1, attempt 2 $m2"
    [[ -n "$m1" && -n "$m2" ]] && awk -v a="$m1" -v b="$m2" 'BEGIN { exit !(b > a) }' ||
        fail "the second instance's memory ($m2) is not larger than the first's ($m1)" || return 1
    if [[ $1 != slurm ]]; then
        ti_of "$WF" hungry "message" | sed -n 1p | grep -qi memory ||
            fail "first instance's message does not name the memory limit:" \
                "$(ti_of "$WF" hungry message | sed -n 1p)" || return 1
    fi
    usage_of_hungry "$m2"
}

# usage_of_hungry REQUESTED_MIB — `jobmon usage` of the memory case: one done instance that used
# its 100 MiB, one killed for resources, the larger request, a suggestion above the use.
usage_of_hungry()
{
    local u
    u=$("$JOBMON" usage "$WF" --json) || fail "jobmon usage $WF failed" || return 1
    say "usage: $u"
    eq "usage: templates" "$(jq length <<<"$u")" 1 || return 1
    eq "usage: done, killed, requested" \
        "$(jq -r '.[0] | "\(.done) \(.resource_killed) \(.requested.memory)"' <<<"$u")" \
        "1 1 ${1%.*}" || return 1
    jq -e '.[0].memory_kb.max >= 100 * 1024 and .[0].runtime_ms.max > 0' <<<"$u" >/dev/null ||
        fail "usage: the done instance's memory (>= 100 MiB) or runtime was not recorded" ||
        return 1
    local want
    want=$(jq -r '.[0].memory_kb.max * 1.2 / 1024 | ceil | "\(.)M"' <<<"$u")
    eq "usage: suggested memory (max + 20 %)" "$(jq -r '.[0].suggested.memory' <<<"$u")" "$want"
}

# Z for memory with no attempt left: F, run exit 1; `jobmon resume` asks for more (64M → 128M,
# scale 1.0) and the task is D.
case_memory_resume()
{
    jrun memory_once "$1"
    eq "jobmon run exit code" "$RC" 1 || return 1
    eq "hungry: status" "$(task_col "$WF" hungry status)" F || return 1
    LAST=$tmp/$1/memory_once-resume
    timeout -k 5 "$RUN_TIMEOUT" "$JOBMON" resume --json "$WF" >"$LAST.json" 2>"$LAST.err"
    RC=$?
    RUN=$(id workflow_run_id "$LAST.json")
    expect_done 1 || return 1
    eq "hungry: instances" "$(ti_of "$WF" hungry "status || ':' || (resources->>'memory')" |
        tr '\n' ' ')" "Z:64 D:128 " || return 1
}

# Version pinning: the distributor expects another jobmon version (JOBMON_EXPECT_VERSION set
# before it starts) than its workers are: each worker fails its instance as F with exit 198,
# without running the command and without retries; the run fails.
case_version()
{
    JOBMON_EXPECT_VERSION=0.0-e2e-other jrun version "$1"
    eq "jobmon run exit code" "$RC" 1 || return 1
    eq "only: instances" "$(ti_of "$WF" only "status || ':' || exit_code")" "F:198" || return 1
    eq "only: status" "$(task_col "$WF" only status)" F || return 1
    ti_of "$WF" only message | grep -q "environment mismatch: jobmon-worker .*, the distributor expects 0.0-e2e-other" ||
        fail "message: $(ti_of "$WF" only message)" || return 1
    eq "only: stdout (the command never ran)" "$(ti_of "$WF" only "coalesce(stdout_tail, '')")" ""
}

# Z for runtime (2 s, sleep 3), runtime scaled (→ 4 s), D on the next attempt.
case_runtime()
{
    jrun runtime "$1"
    expect_done 1 || return 1
    eq "slow: instances" "$(ti_of "$WF" slow "status" | tr -d '\n')" ZD || return 1
    ti_of "$WF" slow "message" | sed -n 1p | grep -qi runtime ||
        fail "first instance's message does not name the runtime limit" || return 1
    local r1 r2
    r1=$(ti_of "$WF" slow "(resources->>'runtime')::numeric" | sed -n 1p)
    r2=$(ti_of "$WF" slow "(resources->>'runtime')::numeric" | sed -n 2p)
    say "requested runtime: attempt 1 $r1 s, attempt 2 $r2 s"
    awk -v a="$r1" -v b="$r2" 'BEGIN { exit !(a == 2 && b > a) }' ||
        fail "runtime not scaled: $r1 -> $r2"
}

# max_concurrently_running 2, 8 tasks, 4 local worker slots: never more than 2 tasks in
# Q/I/O/R after any applied event, and never more than 2 instances between their worker-reported
# R and their end (event timestamps); the limit is reached (2).
case_concurrency()
{
    E2E_DIST_ARGS="--parallelism 4" jrun concurrency "$1"
    expect_done 8 || return 1
    local fsm_max run_max
    fsm_max=$(q "WITH t AS (
          SELECT seq, event_id, (to_status IN ('Q','I','O','R'))::int
                 - (coalesce(from_status, 'G') IN ('Q','I','O','R'))::int AS d
            FROM transition_log WHERE workflow_id = $WF AND entity = 'task'),
        e AS (SELECT min(seq) s, sum(d) d FROM t GROUP BY event_id)
        SELECT max(c) FROM (SELECT sum(d) OVER (ORDER BY s) c FROM e) x")
    run_max=$(q "WITH iv AS (
          SELECT entity_id, min(at) FILTER (WHERE to_status = 'R') r,
                 min(at) FILTER (WHERE to_status IN ('D','E','Z','F','U','K')) e
            FROM transition_log WHERE workflow_id = $WF AND entity = 'task_instance'
           GROUP BY entity_id),
        pts AS (SELECT r t, 1 d FROM iv WHERE r IS NOT NULL
                UNION ALL SELECT e, -1 FROM iv WHERE r IS NOT NULL)
        SELECT max(c) FROM (SELECT sum(d) OVER (ORDER BY t, d ROWS UNBOUNDED PRECEDING) c FROM pts) x")
    say "max tasks active (FSM, per event): $fsm_max; max instances running (worker times): $run_max"
    eq "max tasks queued or running" "$fsm_max" 2 || return 1
    if [[ $1 != dummy ]]; then
        [[ -n "$run_max" ]] && ((run_max <= 2)) ||
            fail "more than 2 instances running at once: $run_max"
    fi
}

# wait_until SECONDS CMD... — poll until CMD succeeds.
wait_until()
{
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1 # poll interval; the deadline bounds the wait
    done
}
# gate_running ERRFILE — the run's workflow (from jobmon's log) has its "gate" instance in R.
gate_running()
{
    local wf
    wf=$(sed -n 's/.*workflow \([0-9]*\) bound.*/\1/p' "$1" | head -1)
    [[ -n "$wf" ]] && [[ "$(ti_of "$wf" gate status | tr -d '\n')" == R ]]
}
proc_gone() { ! kill -0 "$1" 2>/dev/null; }

# Stop a run while its middle task runs (MODE sigint: Ctrl-C on `jobmon run`; MODE cli:
# `jobmon stop WF`), then `jobmon resume`: finishes, and the task DONE before the stop is not rerun.
case_stop()
{
    local cl=$1 mode=$2 f pid rc2
    f=$(render stop "$cl")
    LAST=$tmp/$cl/stop
    "$JOBMON" run --json --cluster "$cl" "$f" >"$LAST.json" 2>"$LAST.err" &
    pid=$!
    wait_until 60 gate_running "$LAST.err" || { fail "gate never ran"; kill "$pid"; return 1; }
    WF=$(sed -n 's/.*workflow \([0-9]*\) bound.*/\1/p' "$LAST.err" | head -1)
    # an operator's view: the running workflow is among everybody's active ones
    "$JOBMON" status --active --all-users --limit 1000 --json | grep -q "\"workflow_id\":$WF," ||
        { fail "status --active --all-users does not list running workflow $WF"; kill "$pid"; return 1; }
    if [[ $mode == sigint ]]; then
        kill -INT "$pid"
    else
        "$JOBMON" stop --wait "$WF" >"$LAST.stop" 2>&1 || { fail "jobmon stop failed: $(cat "$LAST.stop")"; return 1; }
    fi
    wait_until 60 proc_gone "$pid" || { fail "jobmon run did not end after the stop"; kill "$pid"; return 1; }
    wait "$pid"
    rc2=$?
    eq "jobmon run exit code after the stop" "$rc2" 1 || return 1
    local run1
    run1=$(q "SELECT id FROM workflow_run WHERE workflow_id = $WF ORDER BY created_at DESC LIMIT 1")
    eq "stopped run status" "$(q "SELECT status FROM workflow_run WHERE id = $run1")" S || return 1
    "$JOBMON" status --active --all-users --limit 1000 --json | grep -q "\"workflow_id\":$WF," &&
        { fail "status --active still lists stopped workflow $WF"; return 1; }
    eq "last: task_instance rows before resume" "$(n_ti "$WF" last)" 0 || return 1
    touch "$tmp/$cl/stop-release"
    resume_done "$tmp/$cl/stop-resume" 3 || return 1
    eq "last: instances" "$(n_ti "$WF" last)" 1 || return 1
    eq "commands started (first gate... last)" "$(tr '\n' ' ' <"$tmp/$cl/stop-runs")" \
        "first gate gate last " || return 1
}

# start_gated CASE CLUSTER MARKER — `jobmon run` CASE in the background until its gate task has
# created $tmp/CLUSTER/MARKER; sets LAST, RUN_PID (jobmon run), DIST_PID (its distributor), WF.
start_gated()
{
    LAST=$tmp/$2/$1
    "$JOBMON" run --json --cluster "$2" "$(render "$1" "$2")" >"$LAST.json" 2>"$LAST.err" &
    RUN_PID=$!
    wait_until 60 test -e "$tmp/$2/$3" || { fail "gate never started"; kill "$RUN_PID"; return 1; }
    WF=$(sed -n 's/.*workflow \([0-9]*\) bound.*/\1/p' "$LAST.err" | head -1)
    DIST_PID=$(pgrep -P "$RUN_PID" | head -1)
    [[ -n "$DIST_PID" ]] && grep -q jobmon-distributor "/proc/$DIST_PID/cmdline" ||
        { fail "no distributor child of jobmon run ($RUN_PID)"; kill "$RUN_PID"; return 1; }
}

# The run's row disappears under its running distributor (a database restored or wiped, a
# prune elsewhere): the distributor stops instead of heartbeating into the void for ever.
case_gone()
{
    local cl=$1 run
    start_gated gone "$cl" gone-runs || return 1
    run=$(q "SELECT id FROM workflow_run WHERE workflow_id = $WF")
    [[ -n "$run" ]] || { fail "no run"; kill "$RUN_PID"; return 1; }
    psql "$JOBMON_POSTGRES_CONNINFO" -X -qAt -v ON_ERROR_STOP=1 \
        -c "DELETE FROM workflow_run WHERE id = $run" >/dev/null ||
        { fail "cannot delete run $run"; kill "$RUN_PID"; return 1; }
    wait_until 60 proc_gone "$DIST_PID" || { fail "distributor $DIST_PID still runs"; kill "$RUN_PID"; return 1; }
    touch "$tmp/$cl/gone-release"
    wait_until 60 proc_gone "$RUN_PID" || { fail "jobmon run did not end"; kill "$RUN_PID"; return 1; }
    grep -q "is gone from PostgreSQL" "$LAST.err" || fail "the distributor did not say why it stopped"
}

# SIGKILL the distributor mid-run; `jobmon run` notices; `jobmon resume` completes the workflow.
case_sigkill()
{
    local cl=$1 pid dpid
    start_gated sigkill "$cl" sigkill-started || return 1
    pid=$RUN_PID dpid=$DIST_PID
    kill -KILL "$dpid"
    say "killed distributor $dpid"
    wait_until 60 proc_gone "$pid" || { fail "jobmon run did not notice its distributor died"; kill "$pid"; return 1; }
    wait "$pid"
    say "jobmon run exited $? after the SIGKILL"
    touch "$tmp/$cl/sigkill-release"
    resume_done "$tmp/$cl/sigkill-resume" 4 || return 1
    edges_respected "$WF"
}

# One worker cannot reach Kafka (its brokers point at a closed loopback port): it retries for
# 20 s, spools its report; the distributor re-publishes the spool file; the result is recorded.
# One-shot workers (no pool): the wrapper picks the worker by its command line.  A pooled
# worker's fallback to Kafka and the spool is tested in check_distributor (test_pool_*).
case_spool()
{
    local t1=$SECONDS
    mkdir -p "$tmp/$1/spool"
    JOBMON_DISTRIBUTOR_WORKER_POOL=false JOBMON_WORKER_SPOOL_DIR=$tmp/$1/spool E2E_WORKER_WRAP=1 \
        jrun spool "$1"
    expect_done 2 || return 1
    eq "cut-off: instances" "$(ti_of "$WF" cut-off status | tr -d '\n')" D || return 1
    eq "cut-off: stdout tail" "$(ti_of "$WF" cut-off stdout_tail | tr -d '\n')" "e2e-spool-$TAG-$1" || return 1
    # a Slurm job's worker logs to the job's own stderr file, in the run's state dir
    local logs=$LAST.err state
    state=$(sed -n 's/.* plugin, state \(.*\)$/\1/p' "$LAST.err" | head -n 1)
    [[ $1 != slurm ]] || logs=$(ls "$state"/slurm-*.err 2>/dev/null)
    # shellcheck disable=SC2086
    grep -q "report spooled" $logs /dev/null || fail "the worker did not spool" || return 1
    grep -q "re-published" "$LAST.err" || fail "the distributor did not re-publish" || return 1
    ((SECONDS - t1 >= 20)) || fail "finished in $((SECONDS - t1)) s: the worker was not cut off for 20 s" || return 1
    [[ -z "$(ls "$tmp/$1/spool"/*.jmspool 2>/dev/null)" ]] || fail "spool file left behind"
}

case_env()
{
    jrun env "$1"
    expect_done 1 || return 1
    local want got
    want=$(q "SELECT 'wf=' || ti.workflow_id || ' run=' || ti.run_id || ' task=' || ti.task_id
               || ' ti=' || ti.id FROM task_instance ti JOIN task t ON t.id = ti.task_id
               WHERE t.workflow_id = $WF")
    got=$(ti_of "$WF" env stdout_tail | tr -d '\n')
    eq "JOBMON_* seen by the command" "$got" "$want"
}

case_stderr()
{
    jrun stderr "$1"
    expect_done 1 || return 1
    local len tail
    len=$(ti_of "$WF" noisy "octet_length(stderr_tail)")
    tail=$(ti_of "$WF" noisy "right(stderr_tail, 15)" | tr -d '\n')
    say "stderr tail: $len bytes (of 50016 written)"
    ((len > 9000 && len <= 10000)) || fail "stderr tail is $len bytes, want (9000, 10000]" || return 1
    eq "stderr tail end" "$tail" "e2e-stderr-end" || return 1
    q "SELECT stderr_path FROM task_instance ti JOIN task t ON t.id = ti.task_id WHERE t.workflow_id = $WF" \
        >"$tmp/stderr.path"
    local p
    p=$(cat "$tmp/stderr.path")
    [[ -z "$p" || ! -f "$p" ]] || (($(stat -c %s "$p") >= 50000)) ||
        fail "the stderr log file $p does not hold the whole stream"
}

# ---- plan --------------------------------------------------------------------------------------
echo "# jobmon e2e: clusters ${clusters[*]}, tag $TAG"
for cl in "${clusters[@]}"; do
    case $cl in
    dummy)
        t "dummy one task" case_one dummy
        t "dummy three linear tasks" case_linear3 dummy
        t "dummy fork-join 1-3-3-1" case_forkjoin dummy
        t "dummy examples/diamond.json" case_diamond dummy
        t "dummy concurrency limit 2" case_concurrency dummy
        t "dummy prune: a finished workflow deleted in chunks with its logs and cache" case_prune dummy
        ;;
    sequential | multiprocess)
        t "$cl one task" case_one "$cl"
        t "$cl three linear tasks" case_linear3 "$cl"
        t "$cl fork-join 1-3-3-1" case_forkjoin "$cl"
        t "$cl examples/diamond.json" case_diamond "$cl"
        t "$cl fatal task: descendants never run, siblings finish, run E, exit 1" case_fatal "$cl"
        t "$cl fails once then succeeds" case_retry "$cl"
        t "$cl memory kill: Z, memory scaled, D" case_memory "$cl"
        t "$cl runtime kill: Z, runtime scaled, D" case_runtime "$cl"
        [[ $cl == sequential ]] &&
            t "$cl memory kill with no attempt left: F; resume scales it, D" case_memory_resume "$cl"
        t "$cl worker of another jobmon version: F, exit 198, command not run" case_version "$cl"
        t "$cl concurrency limit 2 never exceeded" case_concurrency "$cl"
        if [[ $cl == sequential ]]; then
            t "$cl Ctrl-C stop, then resume reruns only unfinished tasks" case_stop "$cl" sigint
        else
            t "$cl jobmon stop, then resume reruns only unfinished tasks" case_stop "$cl" cli
        fi
        t "$cl distributor SIGKILL, then resume completes" case_sigkill "$cl"
        t "$cl run deleted under its distributor: the distributor stops" case_gone "$cl"
        t "$cl worker cut off from Kafka 20 s: spooled, re-published, recorded" case_spool "$cl"
        t "$cl JOBMON_* environment visible to the command" case_env "$cl"
        t "$cl stderr tail limited to 10,000 bytes" case_stderr "$cl"
        ;;
    slurm)
        t "slurm one task" case_one slurm
        t "slurm fork-join 1-3-3-1" case_forkjoin slurm
        t "slurm examples/diamond.json" case_diamond slurm
        t "slurm memory kill: Z, memory scaled, D" case_memory slurm
        t "slurm worker of another jobmon version: F, exit 198, command not run" case_version slurm
        t "slurm JOBMON_* environment visible to the command" case_env slurm
        t "slurm worker cut off from Kafka and its distributor 20 s: spooled, re-published, recorded" \
            case_spool slurm
        ;;
    *)
        t "unknown cluster $cl" false
        ;;
    esac
done
echo "1..$n"
echo "# e2e: $((n - fails)) passed, $fails failed in $((SECONDS - T0)) s"
for f in "${failed_names[@]}"; do echo "#   failed: $f"; done
((fails == 0 && n > 0))
