# bench/: reproducible benchmarks (not installed, not run by `make check`).
# fsm_throughput: issue 4's FSM consumer benchmark; bench/run_fsm_bench.sh drives it.
noinst_PROGRAMS += bench/fsm_throughput
bench_fsm_throughput_SOURCES = bench/fsm_throughput.c
bench_fsm_throughput_LDADD = libjobmon.la $(JM_DEP_LIBS)
EXTRA_DIST += bench/run_fsm_bench.sh bench/RESULTS.md bench/pqtime.c
EXTRA_DIST += bench/e2e_throughput.sh bench/gen_e2e_dag.py

# bind_gen: bind benchmark (issue 5): bench/bind_gen N (no Kafka), --send [--wait S] (real Kafka,
# then FSM apply), --file/--load (workflow files); bench/bind_throughput.sh drives it.
EXTRA_DIST += bench/bind_throughput.sh bench/bind_fsm.sh
noinst_PROGRAMS += bench/bind_gen
bench_bind_gen_SOURCES = bench/bind_gen.c
bench_bind_gen_LDADD = libjobmon.la $(JM_DEP_LIBS)

# status_latency: `jobmon status` latency in-library (jm_status_get) and as a process (issue 5).
noinst_PROGRAMS += bench/status_latency
bench_status_latency_SOURCES = bench/status_latency.c
bench_status_latency_LDADD = libjobmon.la $(JM_DEP_LIBS)

# apply_micro: the FSM handlers alone (jm_apply_event, no Kafka), events/s by type (issue 4b).
noinst_PROGRAMS += bench/apply_micro
bench_apply_micro_SOURCES = bench/apply_micro.c
bench_apply_micro_CFLAGS = $(AM_CFLAGS) -DJM_TOP_SRCDIR='"$(abs_top_srcdir)"'
bench_apply_micro_LDADD = libjobmon.la $(JM_DEP_LIBS)

# chan_ack: runs a command with a local report channel and acknowledges each event at once, for
# bench/worker_overhead.sh's "worker sink=channel" case.
noinst_PROGRAMS += bench/chan_ack
bench_chan_ack_SOURCES = bench/chan_ack.c
bench_chan_ack_LDADD =
