# src/distributors: jobmon-distributor (one per workflow run) and its cluster plugins.
libjobmon_la_SOURCES += \
	src/distributors/plugin.c src/distributors/plugin.h \
	src/distributors/localproc.c src/distributors/localproc.h \
	src/distributors/relay.c src/distributors/relay.h \
	src/distributors/reportsrv.c src/distributors/reportsrv.h \
	src/distributors/plugin_local.c src/distributors/plugin_local_int.h \
	src/distributors/plugin_dummy.c \
	src/distributors/plugin_sequential.c \
	src/distributors/plugin_multiprocess.c \
	src/distributors/slurm_parse.c src/distributors/slurm.h \
	src/distributors/plugin_slurm.c \
	src/distributors/journal.c \
	src/distributors/distributor.c src/distributors/distributor.h

bin_PROGRAMS += jobmon-distributor
jobmon_distributor_SOURCES = src/distributors/distributor_main.c
jobmon_distributor_LDADD = libjobmon.la $(JM_DEP_LIBS)
