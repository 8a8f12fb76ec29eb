# src/client: the `jobmon` CLI — a thin main with one command table; one cli_<group>.c per
# command group (add new ones to jobmon_SOURCES).
bin_PROGRAMS += jobmon
jobmon_SOURCES = \
	src/client/cli_main.c \
	src/client/cli_int.h \
	src/client/cli_config.c \
	src/client/cli_util.h src/client/cli_util.c \
	src/client/cli_run.h src/client/cli_run.c \
	src/client/cli_status.h src/client/cli_status.c \
	src/client/cli_ops.h src/client/cli_ops.c \
	src/client/cli_prune.c src/client/cli_lag.c \
	src/client/cli_db.c \
	src/client/cli_audit.c
jobmon_LDADD = libjobmon.la $(JM_DEP_LIBS)

# libjobmon's client model: templates, workflows, validation, the workflow file, bind.
libjobmon_la_SOURCES += \
	src/client/client_int.h \
	src/client/model.c \
	src/client/template.c \
	src/client/clusters.c \
	src/client/dag.c \
	src/client/wffile.c \
	src/client/bind.c \
	src/client/status.c

# examples/: documentation that has to compile.
noinst_PROGRAMS += examples/api_diamond
examples_api_diamond_SOURCES = examples/api_diamond.c
examples_api_diamond_LDADD = libjobmon.la $(JM_DEP_LIBS)
EXTRA_DIST += examples/one_task.json examples/diamond.json examples/fork_join_100.json \
	examples/array_1000.json examples/retry_once.json examples/memory_grow.json \
	schemas/workflow.schema.json
