# src/consumer: jobmon-fsm.  Reusable parts of the consume loop live in libjobmon (so tests link
# them); the program is a thin main.
libjobmon_la_SOURCES += \
	src/consumer/util.c
libjobmon_la_SOURCES += \
	src/consumer/evlog.c \
	src/consumer/offsets.c \
	src/consumer/dlq.c \
	src/consumer/cache.c \
	src/consumer/reaper.c \
	src/consumer/consumer.c

# The service: a thin main over libjobmon (config, signals, threads, reaper tick).
bin_PROGRAMS += src/consumer/jobmon-fsm
src_consumer_jobmon_fsm_SOURCES = src/consumer/fsm_main.c
src_consumer_jobmon_fsm_LDADD = libjobmon.la $(JM_DEP_LIBS) -lpthread
# Event handlers behind apply.h (issue 4b): model changes and the scheduler.
libjobmon_la_SOURCES += \
	src/consumer/apply.c \
	src/consumer/apply_sql.c \
	src/consumer/apply_bind.c \
	src/consumer/apply_run.c \
	src/consumer/apply_ti.c \
	src/consumer/apply_operator.c \
	src/consumer/sched.c \
	src/consumer/replay.c
