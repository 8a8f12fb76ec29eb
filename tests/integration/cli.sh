#!/usr/bin/env bash
# The `jobmon` CLI against the live stack (scripts/stack up, with jobmon-fsm running) and the real
# jobmon-distributor (sequential plugin).  Prints TAP.  Usage, from the build directory:
#   tests/integration/cli.sh            (JOBMON=./jobmon, stack settings from scripts/stack env)
# Checks: bind twice = same ids; a changed task set under the same workflow_args is refused
# (exit 2); `status --json` via Redis equals via PostgreSQL; Redis FLUSHALL mid-run leaves the
# status correct; every --json output parses (jq -e); exit codes 0/1/2/3; reset and task-update by
# a user who does not own the workflow's runs are refused (exit 2), by the owner applied.
# `lag` is applied to the end, and behind on a topic nobody consumes (--max-lag exit 1).
# Needs jq, kcat and redis-cli.  Polls with deadlines, never sleeps a fixed time to wait for state.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
JOBMON=${JOBMON:-$ROOT/jobmon}
if ! "$ROOT/scripts/stack" status >/dev/null; then
    echo "Bail out! the local stack is not (fully) up: run scripts/stack up"
    exit 1
fi
eval "$("$ROOT/scripts/stack" env)"
# JOBMON_IT_KAFKA_TOPIC: publish to that topic instead, for jobmon-fsm consumers of your own
# (e.g. built from this checkout when the stack's are older than its event contract).
[ -z "${JOBMON_IT_KAFKA_TOPIC:-}" ] || export JOBMON_KAFKA_TOPIC=$JOBMON_IT_KAFKA_TOPIC
. "$ROOT/tests/integration/tap.sh"
tap_tmpdir jobmon-cli-it
export XDG_STATE_HOME=$tmp/state
tag=$$-$RANDOM

jm() { "$JOBMON" "$@"; }
jqq() { jq -e "$@" >/dev/null; }
# id KEY FILE — an integer field as text (jq 1.6 turns 64-bit ids into doubles).
id() { grep -o "\"$1\":[0-9]*" "$2" | head -1 | cut -d: -f2; }
# task_ids WF — "id name" lines, sorted.
task_ids() { "$JOBMON" tasks --json "$1" | grep -o '"task_id":[0-9]*,"name":"[^"]*"' | sort; }
rc_is() { # rc_is EXPECTED COMMAND...
    local want=$1
    shift
    "$@" >"$tmp/rc.out" 2>"$tmp/rc.err"
    local got=$?
    [ "$got" -eq "$want" ] || {
        echo "# expected exit $want, got $got: $*" >&2
        sed 's/^/#   /' "$tmp/rc.err" >&2
        return 1
    }
}

# wait_terminal WF SECONDS — poll `status --json` until the workflow is D, F or H.
wait_terminal() {
    local wf=$1 deadline=$((SECONDS + $2)) s
    while [ $SECONDS -lt $deadline ]; do
        s=$(jm status --json "$wf" 2>/dev/null | jq -r .status)
        case $s in D | F | H | A) return 0 ;; esac
        sleep 0.1 # poll interval (the deadline bounds the wait)
    done
    return 1
}

# same_status WF — status via Redis equals status via PostgreSQL (sorted keys).
same_status() {
    local r p
    r=$(jm status --json --source redis "$1" | jq -S .) || return 1
    p=$(jm status --json --source pg "$1" | jq -S .) || return 1
    [ -n "$r" ] && [ "$r" = "$p" ] || {
        echo "# redis: $r" >&2
        echo "# pg:    $p" >&2
        return 1
    }
}

# --- files ------------------------------------------------------------------------------------
cat >"$tmp/fail.json" <<EOF
{"tool": "cli-it", "workflow_args": "fail-$tag", "name": "cli-it failing", "cluster": "sequential",
 "defaults": {"compute_resources": {"queue": "null.q"}, "max_attempts": 1},
 "tasks": [{"name": "ok1", "command": "echo ok1"},
           {"name": "bad", "command": "echo broken >&2; exit 3", "upstream": ["ok1"]},
           {"name": "after", "command": "echo after", "upstream": ["bad"]}]}
EOF
jq '.tasks += [{"name": "extra", "command": "echo extra"}]' "$tmp/fail.json" >"$tmp/changed.json"
cat >"$tmp/slow.json" <<EOF
{"tool": "cli-it", "workflow_args": "slow-$tag", "name": "cli-it slow", "cluster": "sequential",
 "defaults": {"compute_resources": {"queue": "null.q"}},
 "tasks": [{"name": "s1", "command": "sleep 0.4; echo s1"}, {"name": "s2", "command": "sleep 0.4; echo s2"},
           {"name": "s3", "command": "sleep 0.4; echo s3"}, {"name": "s4", "command": "sleep 0.4; echo s4"},
           {"name": "s5", "command": "sleep 0.4; echo s5", "upstream": ["s1", "s2"]},
           {"name": "s6", "command": "sleep 0.4; echo s6", "upstream": ["s5"]}]}
EOF
echo '{"tool": "cli-it", "tasks": [{"name": "a", "command": "true", "upstream": ["nope"]}]}' \
    >"$tmp/invalid.json"

# --- invalid input, unreachable infrastructure --------------------------------------------------
ok "invalid file: exit 2" rc_is 2 jm run "$tmp/invalid.json"
ok "invalid file: message names the JSON path" grep -q 'tasks\[0\].upstream\[0\]' "$tmp/rc.err"
ok "Redis unreachable: exit 3" rc_is 3 env JOBMON_REDIS_PORT=1 "$JOBMON" run "$tmp/fail.json"
ok "PostgreSQL unreachable: exit 3" rc_is 3 env JOBMON_POSTGRES_READER_CONNINFO="host=127.0.0.1 port=1 connect_timeout=2" \
    "$JOBMON" status --source pg 1
ok "usage error: exit 2" rc_is 2 jm tasks

# --- a failing workflow: run, exit 1, failed tasks printed ---------------------------------------
ok "run of a failing workflow: exit 1" rc_is 1 jm run --json "$tmp/fail.json"
cp "$tmp/rc.out" "$tmp/run1.json"
cp "$tmp/rc.err" "$tmp/run1.err"
ok "run --json prints one contract object" jqq '(keys == ["status","tasks","workflow_id","workflow_run_id"])
    and .status == "F" and .tasks.total == 3 and .tasks.DONE == 1 and .tasks.FATAL == 1
    and (.tasks | keys == ["DONE","FATAL","PENDING","RUNNING","SCHEDULED","total"])' "$tmp/run1.json"
ok "failed task printed with exit code and stderr tail" \
    sh -c "grep -q 'bad: exit code 3' '$tmp/run1.err' && grep -q '| broken' '$tmp/run1.err'"
WF=$(id workflow_id "$tmp/run1.json")
case $WF in '' | null) echo "Bail out! the first run printed no workflow id"; exit 1 ;; esac
task_ids "$WF" >"$tmp/tasks1.json"

# --- bind twice = same ids; refusals -----------------------------------------------------------
ok "plain run of an existing, failed workflow is refused (exit 2)" rc_is 2 jm run "$tmp/fail.json"
ok "... saying to use --resume" grep -q -- '--resume' "$tmp/rc.err"
ok "changed task set, same workflow_args: refused (exit 2)" rc_is 2 jm run "$tmp/changed.json"
ok "... with a message" grep -q 'workflow args already used by a workflow with different tasks' "$tmp/rc.err"
ok "run --resume binds again: exit 1 again" rc_is 1 jm run --resume --json "$tmp/fail.json"
ok "bind twice: same workflow id" test "$(id workflow_id "$tmp/rc.out")" = "$WF"
ok "bind twice: a new run id" test "$(id workflow_run_id "$tmp/rc.out")" != "$(id workflow_run_id "$tmp/run1.json")"
task_ids "$WF" >"$tmp/tasks2.json"
ok "bind twice: same task ids" sh -c "test -s '$tmp/tasks1.json' && cmp -s '$tmp/tasks1.json' '$tmp/tasks2.json'"

# --- every --json parses -----------------------------------------------------------------------
TASK=$(grep '"name":"bad"' "$tmp/tasks2.json" | grep -o '[0-9][0-9]*' | head -1)
ok "status WF --json: one contract object" sh -c "'$JOBMON' status --json $WF | jq -e '.status == \"F\"' >/dev/null"
ok "status WF WF --json: a list" sh -c "'$JOBMON' status --json $WF $WF | jq -e 'type == \"array\" and length == 2' >/dev/null"
ok "status --json (recent workflows): a list" sh -c "'$JOBMON' status --json | jq -e 'type == \"array\"' >/dev/null"
ok "tasks --json" sh -c "'$JOBMON' tasks --json $WF | jq -e 'length == 3 and all(.[]; (keys == [\"attempts\",\"name\",\"status\",\"task_id\"]))' >/dev/null"
ok "tasks --status FATAL" sh -c "'$JOBMON' tasks --json --status FATAL $WF | jq -e 'length == 1 and .[0].status == \"F\"' >/dev/null"
ok "task --json" sh -c "'$JOBMON' task --json $TASK | jq -e '.status == \"F\" and (.instances | length >= 1) and .instances[-1].exit_code == 3' >/dev/null"
ok "deps --json" sh -c "'$JOBMON' deps --json $TASK | jq -e '(.upstream | length) == 1 and (.downstream | length) == 1' >/dev/null"
ok "logs --json" sh -c "'$JOBMON' logs --json $WF | jq -e 'type == \"array\" and length >= 2' >/dev/null"
ok "events --json: contract keys, apply order" sh -c "'$JOBMON' events --json $WF | jq -e 'length > 5 and .[0].type == \"workflow.bind\" and all(.[]; has(\"event_id\") and has(\"type\") and has(\"entity\") and has(\"entity_id\") and has(\"from\") and has(\"to\") and has(\"outcome\") and has(\"at\"))' >/dev/null"
ok "events --json: an event without transition has null from/to" sh -c "'$JOBMON' events --json $WF | jq -e 'any(.[]; .type == \"workflow.bound\" and .from == null and .to == null and .entity == null)' >/dev/null"
ok "events --task --json" sh -c "'$JOBMON' events --json --task $TASK | jq -e 'length > 0 and all(.[]; .entity == \"task\" or .entity == \"task_instance\")' >/dev/null"
ok "concurrency --wait --json: applied" sh -c "'$JOBMON' concurrency --wait --json $WF 3 | jq -e '.outcome == \"applied\"' >/dev/null"
ok "db migrate --dry-run --json" sh -c "'$JOBMON' db migrate --dry-run --json | jq -e '.pending | type == \"array\"' >/dev/null"

# --- Redis vs PostgreSQL -----------------------------------------------------------------------
ok "status via Redis equals status via PostgreSQL" same_status "$WF"
redis-cli -h "$JOBMON_REDIS_HOST" -p "$JOBMON_REDIS_PORT" DEL "jm:wf:$WF" >/dev/null
ok "hash deleted: --source redis fails" rc_is 2 jm status --json --source redis "$WF"
ok "hash deleted: status still answers (PostgreSQL)" sh -c "'$JOBMON' status --json $WF | jq -e '.status == \"F\"' >/dev/null"
ok "hash deleted: the reader re-filled it, equal to PostgreSQL" same_status "$WF"

# --- Redis FLUSHALL mid-run ---------------------------------------------------------------------
"$JOBMON" run --json "$tmp/slow.json" >"$tmp/slow.out" 2>"$tmp/slow.err" &
runner=$!
deadline=$((SECONDS + 60))
SLOW=""
while [ -z "$SLOW" ] && [ $SECONDS -lt $deadline ] && kill -0 $runner 2>/dev/null; do
    SLOW=$(grep -o 'workflow [0-9]*: run [0-9]* started' "$tmp/slow.err" | head -1 | awk '{print $2}' | tr -d :)
    [ -n "$SLOW" ] || sleep 0.1
done
# wait until at least one task is done, then flush
while [ $SECONDS -lt $deadline ] && [ -n "$SLOW" ]; do
    d=$(jm status --json "$SLOW" 2>/dev/null | jq -r '.tasks.DONE // 0')
    [ "${d:-0}" -ge 1 ] && break
    sleep 0.1
done
redis-cli -h "$JOBMON_REDIS_HOST" -p "$JOBMON_REDIS_PORT" FLUSHALL >/dev/null
ok "FLUSHALL mid-run: status answers at once" sh -c "'$JOBMON' status --json $SLOW | jq -e '.tasks.total == 6' >/dev/null"
wait $runner
rc=$?
ok "FLUSHALL mid-run: the run still ends D (exit 0)" test $rc -eq 0
ok "FLUSHALL mid-run: final JSON is complete" jqq '.status == "D" and .tasks.DONE == 6 and .tasks.total == 6' "$tmp/slow.out"
ok "after the run: status via Redis equals via PostgreSQL" same_status "$SLOW"
ok "a complete workflow is refused as already complete (exit 2)" rc_is 2 jm run "$tmp/slow.json"
ok "... with a message" grep -q 'already complete' "$tmp/rc.err"

# --- submit (detached) ---------------------------------------------------------------------------
jq --arg a "submit-$tag" '.workflow_args = $a' "$tmp/slow.json" >"$tmp/submit.json"
ok "submit --json returns at once with the ids" sh -c "'$JOBMON' submit --json '$tmp/submit.json' >'$tmp/sub.out' 2>/dev/null && jq -e '.workflow_run_id > 0' '$tmp/sub.out' >/dev/null"
SUB=$(id workflow_id "$tmp/sub.out")
ok "submitted run completes without the client" wait_terminal "$SUB" 120
ok "submitted run: D" sh -c "'$JOBMON' status --json $SUB | jq -e '.status == \"D\"' >/dev/null"
ok "the daemon's log exists" sh -c "ls '$XDG_STATE_HOME'/jobmon/distributor-*.log >/dev/null"

# --- audit: replaying the event log reproduces the rows ------------------------------------------
# (the scratch schema is migrated from the checkout's schemas/sql, also for a VPATH build)
export JOBMON_MIGRATIONS_DIR=${JOBMON_MIGRATIONS_DIR:-$ROOT/schemas/sql}
cat >"$tmp/audit.json" <<EOF
{"tool": "cli-it", "workflow_args": "audit-$tag", "name": "cli-it audit", "cluster": "dummy",
 "defaults": {"compute_resources": {"queue": "null.q"}},
 "tasks": [{"name": "a", "command": "echo a"}, {"name": "b", "command": "echo b", "upstream": ["a"]},
           {"name": "c", "command": "echo c", "upstream": ["a"]}, {"name": "d", "command": "echo d", "upstream": ["b", "c"]}]}
EOF
ok "audit: a dummy-cluster workflow runs to D (exit 0)" rc_is 0 jm run --json "$tmp/audit.json"
AUD=$(id workflow_id "$tmp/rc.out")
ok "audit WF: identical (exit 0)" rc_is 0 jm audit "$AUD"
ok "... prints identical" grep -qx identical "$tmp/rc.out"
ok "audit --json: exit 0" rc_is 0 jm audit --json "$AUD"
ok "audit --json: identical, every event replayed" jqq '.identical == true and .events > 10 and .outcome_mismatches == 0 and .differences == []' "$tmp/rc.out"
ok "audit of the failed workflow (rejected/ignored events included): identical" rc_is 0 jm audit "$WF"
ok "audit: no scratch schema left behind" sh -c "! psql '$JOBMON_POSTGRES_READER_CONNINFO' -Atc \"SELECT nspname FROM pg_namespace WHERE nspname LIKE 'jm_audit_${AUD}_%'\" | grep -q ."
ok "audit of an unknown workflow: exit 2" rc_is 2 jm audit 12345

# --- operator ownership (reference §3.11): checked before publishing, exit 2; the FSM re-checks -----
# The failed workflow's errored runs were started by this user (run.start's user = $USER).
ok "reset by another user: refused (exit 2)" rc_is 2 env USER=intruder "$JOBMON" reset "$WF"
ok "... naming the owner of the last errored run" grep -q "was started by ${USER:-$(whoami)}, not intruder; only that user may reset it" "$tmp/rc.err"
ok "task-update by another user: refused (exit 2)" rc_is 2 env USER=intruder "$JOBMON" task-update "$TASK" --status G
ok "... with a message" grep -q 'user intruder started no run of workflow' "$tmp/rc.err"
ok "reset of a workflow without an errored run: refused (exit 2)" rc_is 2 jm reset "$SUB"
ok "... with a message" grep -q 'has no errored run' "$tmp/rc.err"
ok "task-update --wait --json by the owner: applied" rc_is 0 jm task-update --wait --json "$TASK" --status G
ok "... the task is G again" sh -c "'$JOBMON' tasks --json --status G $WF | grep -q '\"task_id\":$TASK,'"
ok "reset --partial --wait --json by the owner: applied" rc_is 0 jm reset --partial --wait --json "$WF"
ok "... outcome applied" jqq '.outcome == "applied" and .type == "workflow.reset"' "$tmp/rc.out"
ok "... the workflow is G" sh -c "'$JOBMON' status --json --source pg $WF | jq -e '.status == \"G\"' >/dev/null"
ok "audit after task-update and reset: identical" rc_is 0 jm audit "$WF"

# --- lag: what jobmon-fsm applied against what Kafka holds --------------------------------------
# lag_zero — poll `lag --json` until every partition is applied (the events above are).
lag_zero() {
    local deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ]; do
        "$JOBMON" lag --json >"$tmp/lag.json" 2>"$tmp/lag.err" &&
            jq -e '.lag == 0 and ([.partitions[] | select(.applied != .end)] | length) == 0' \
                "$tmp/lag.json" >/dev/null && return 0
        sleep 0.2 # poll interval (the deadline bounds the wait)
    done
    echo "# last lag: $(cat "$tmp/lag.json" "$tmp/lag.err")" >&2
    return 1
}
ok "lag --json: every partition applied to its end" lag_zero
ok "... one row per partition of the topic, each that has events owned" jqq '(.partitions | length) > 0 and any(.partitions[]; .end > 0) and all(.partitions[]; .end == 0 or .owner_epoch > 0)' "$tmp/lag.json"
ok "lag --max-lag 0 while caught up: exit 0" rc_is 0 jm lag --max-lag 0
# a topic no jobmon-fsm consumes: everything in it is behind
printf 'ping\n' | kcat -P -b "$JOBMON_KAFKA_BROKERS" -t jobmon.healthcheck 2>/dev/null
ok "lag of a topic nobody applies, --max-lag 0: exit 1" rc_is 1 jm --set kafka.topic=jobmon.healthcheck lag --max-lag 0 --json
ok "... its lag is its messages, nothing applied" jqq '.lag >= 1 and .partitions[0].applied == 0 and .partitions[0].owner_epoch == null' "$tmp/rc.out"
ok "lag of a topic that does not exist: exit 2" rc_is 2 jm --set kafka.topic=no.such.topic.$tag lag

tap_end
