# Unit tests: one check runner (TAP), optionally under valgrind.
check_PROGRAMS += tests/check_jobmon
tests_check_jobmon_SOURCES = tests/check_main.c tests/check_common.c
tests_check_jobmon_SOURCES += tests/check_config.c tests/check_pg.c tests/check_redis.c
tests_check_jobmon_SOURCES += tests/check_event.c
tests_check_jobmon_SOURCES += tests/check_producer.c
tests_check_jobmon_SOURCES += tests/check_hash.c tests/check_fsm.c tests/check_resources.c
tests_check_jobmon_SOURCES += tests/check_consumer.c
tests_check_jobmon_SOURCES += tests/check_apply.c
tests_check_jobmon_SOURCES += tests/check_worker.c tests/check_distributor.c
tests_check_jobmon_SOURCES += tests/check_client.c
# the CLI's pure parts (option parsers) live in the jobmon program's files: compile them in
tests_check_jobmon_SOURCES += tests/check_cli.c src/client/cli_util.c src/client/cli_run.c \
	src/client/cli_status.c src/client/cli_ops.c src/client/cli_db.c \
	src/client/cli_prune.c src/client/cli_lag.c
tests_check_jobmon_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -DJM_TEST_DATADIR='"$(abs_top_srcdir)/tests/data"' \
	-DJM_TEST_BUILDDIR='"$(abs_top_builddir)"'
tests_check_jobmon_LDADD = libjobmon.la $(CHECK_LIBS) $(JM_DEP_LIBS)
EXTRA_DIST += tests/suites.def tests/check_runner.h
TESTS += tests/check_jobmon

LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
if ENABLE_VALGRIND
LOG_COMPILER = env CK_FORK=no $(VALGRIND) --quiet --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --track-origins=yes
endif
