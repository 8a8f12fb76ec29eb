#!/usr/bin/env bash
# tests/e2e/worker_kafka.sh — jobmon-worker against the real Kafka of `scripts/stack up`:
# runs a command, then reads the topic with kcat and checks that ti.running and ti.done for
# that instance arrived and carry the command's output tail.  Also checks the spool: with an
# unreachable broker and worker.kafka_retry_timeout=1 the result lands in worker.spool_dir.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${JOBMON_BUILD_DIR:-$ROOT}
export JOBMON_CONFIG=${JOBMON_CONFIG:-$ROOT/.stack/jobmon.conf}
BROKERS=$(sed -n 's/.*brokers *= *"\(.*\)".*/\1/p' "$JOBMON_CONFIG" | head -1)
TI=$(( (RANDOM << 16 | RANDOM) + 1000000 ))
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$B/jobmon-worker" --ti-id "$TI" --workflow-id 900000001 --run-id 1 --task-id 1 \
    --no-kill-check --logs-dir "$TMP/logs" --command "echo e2e-$TI"
kcat -b "$BROKERS" -C -t jobmon.events -o -500 -e -q >"$TMP/events" 2>/dev/null
grep "\"ti_id\":$TI" "$TMP/events" | grep -q '"type":"ti.running"' || { echo "FAIL no ti.running"; exit 1; }
grep "\"ti_id\":$TI" "$TMP/events" | grep '"type":"ti.done"' | grep -q "e2e-$TI" ||
    { echo "FAIL no ti.done with the tail"; exit 1; }
echo "ok   worker events on Kafka"
"$B/jobmon-worker" --ti-id "$TI" --workflow-id 900000001 --run-id 1 --task-id 1 --no-kill-check \
    --logs-dir "$TMP/logs" --set kafka.brokers=127.0.0.1:1 --set worker.kafka_retry_timeout=1 \
    --set "worker.spool_dir=$TMP/spool" --command true 2>/dev/null
ls "$TMP/spool"/900000001-"$TI"-*.jmspool >/dev/null || { echo "FAIL not spooled"; exit 1; }
echo "ok   unreachable Kafka → spooled"
