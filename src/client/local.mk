# src/client: the `jobmon` CLI — a thin main with one command table; one cli_<group>.c per
# command group (add new ones to jobmon_SOURCES).
bin_PROGRAMS += jobmon
jobmon_SOURCES = \
	src/client/cli_main.c \
	src/client/cli_int.h \
	src/client/cli_config.c
jobmon_LDADD = libjobmon.la $(JM_DEP_LIBS)

# libjobmon's client model: templates, workflows, validation, the workflow file, bind.
libjobmon_la_SOURCES += \
	src/client/client_int.h \
	src/client/model.c \
	src/client/template.c \
	src/client/clusters.c \
	src/client/dag.c \
	src/client/wffile.c \
	src/client/bind.c
