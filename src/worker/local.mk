# src/worker: jobmon-worker (one per task instance).  The reusable parts live in libjobmon so
# the distributor (spool replay, batch files) and the unit tests link them.
libjobmon_la_SOURCES += \
	src/worker/tail.c src/worker/tail.h \
	src/worker/proctree.c src/worker/proctree.h \
	src/worker/batchfile.c src/worker/batchfile.h \
	src/worker/chan.c src/worker/chan.h \
	src/worker/report.c src/worker/report.h \
	src/worker/worker.c src/worker/worker.h

bin_PROGRAMS += jobmon-worker
jobmon_worker_SOURCES = src/worker/worker_main.c
# no librdkafka: reached through jobmon-kafka.so (src/producer/local.mk), which resolves the
# jm_* functions it uses from the worker
jobmon_worker_LDADD = libjobmon.la $(JANSSON_LIBS) $(CONFUSE_LIBS) $(XXHASH_LIBS) $(UUID_LIBS) -lm
jobmon_worker_LDFLAGS = -export-dynamic
EXTRA_jobmon_worker_DEPENDENCIES = jobmon-kafka.so
