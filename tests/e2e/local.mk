# End-to-end tests through `jobmon run` against the live stack with jobmon-fsm (scripts/stack up)
# and Slurm (scripts/stack up --slurm): `make check-e2e` (TAP).  Not in TESTS: they need the
# services.  A service that is down is a failure, never a skip.  E2E_CLUSTERS="dummy sequential
# multiprocess slurm" by default; tests/e2e/e2e.sh CLUSTER... runs a subset.
EXTRA_DIST += tests/e2e/e2e.sh tests/e2e/dist-wrap.sh tests/e2e/worker-wrap.sh \
	tests/e2e/run_examples.sh tests/e2e/worker_kafka.sh
EXTRA_DIST += tests/e2e/wf/concurrency.json \
	tests/e2e/wf/env.json \
	tests/e2e/wf/fatal.json \
	tests/e2e/wf/forkjoin.json \
	tests/e2e/wf/linear3.json \
	tests/e2e/wf/memory.json \
	tests/e2e/wf/one.json \
	tests/e2e/wf/retry.json \
	tests/e2e/wf/runtime.json \
	tests/e2e/wf/sigkill.json \
	tests/e2e/wf/spool.json \
	tests/e2e/wf/stderr.json \
	tests/e2e/wf/stop.json
check-e2e: jobmon$(EXEEXT) jobmon-distributor$(EXEEXT) jobmon-worker$(EXEEXT) jobmon-kafka.so
	JOBMON_BUILD_DIR=$(abs_top_builddir) $(top_srcdir)/tests/e2e/e2e.sh
.PHONY: check-e2e
