#!/bin/sh
# tests/e2e/dist-wrap.sh — JOBMON_DISTRIBUTOR for the e2e tests: execs the real distributor
# ($E2E_REAL_DISTRIBUTOR, same PID) adding $E2E_DIST_ARGS (e.g. --parallelism 4) and, when
# E2E_WORKER_WRAP is set, --worker tests/e2e/worker-wrap.sh; records its PID in $E2E_DIST_PIDS.
here=$(dirname "$0")
# the PID stays the distributor's (exec): e2e.sh kills those still running at its end
[ -z "${E2E_DIST_PIDS:-}" ] || echo $$ >>"$E2E_DIST_PIDS"
if [ -n "${E2E_WORKER_WRAP:-}" ]; then
    # shellcheck disable=SC2086
    exec "$E2E_REAL_DISTRIBUTOR" "$@" --worker "$here/worker-wrap.sh" ${E2E_DIST_ARGS:-}
fi
# shellcheck disable=SC2086
exec "$E2E_REAL_DISTRIBUTOR" "$@" ${E2E_DIST_ARGS:-}
