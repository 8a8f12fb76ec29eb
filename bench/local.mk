# bench/: reproducible benchmarks (not installed, not run by `make check`).
# fsm_throughput: issue 4's FSM consumer benchmark; bench/run_fsm_bench.sh drives it.
noinst_PROGRAMS += bench/fsm_throughput
bench_fsm_throughput_SOURCES = bench/fsm_throughput.c
bench_fsm_throughput_LDADD = libjobmon.la $(JM_DEP_LIBS)
EXTRA_DIST += bench/run_fsm_bench.sh bench/RESULTS.md bench/pqtime.c

# bind_gen: client-side bind without Kafka (issue 5): bench/bind_gen N.
noinst_PROGRAMS += bench/bind_gen
bench_bind_gen_SOURCES = bench/bind_gen.c
bench_bind_gen_LDADD = libjobmon.la $(JM_DEP_LIBS)
