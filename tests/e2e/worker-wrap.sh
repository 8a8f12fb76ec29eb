#!/bin/sh
# tests/e2e/worker-wrap.sh — jobmon-worker for the e2e spool case: a worker whose command
# contains "e2e-spool-" (on its command line, or in its --array-batch file: Slurm) gets a dead
# broker (a closed loopback port), a 20 s Kafka retry time and no report channel
# (worker.local_report off: the distributor would otherwise publish for it), so it spools its
# report to $JOBMON_WORKER_SPOOL_DIR for the distributor to re-publish.
# Every other worker is the real one, unchanged.
cut_off() {
    export JOBMON_KAFKA_BROKERS=127.0.0.1:1 JOBMON_WORKER_KAFKA_RETRY_TIMEOUT=20 \
        JOBMON_WORKER_LOCAL_REPORT=false
}
for a in "$@"; do
    case $a in
    *e2e-spool-*) cut_off ;;
    *.json) if [ -f "$a" ] && grep -q e2e-spool- "$a"; then cut_off; fi ;;
    esac
done
exec "$E2E_REAL_WORKER" "$@"
