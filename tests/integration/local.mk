# Integration tests against the live local stack (scripts/stack up): `make check-integration`.
# `make check` builds them (so every CI build compiles them) but does not run them: they are not
# in TESTS, because they need the services.  tests/integration/run checks the stack is up and
# exports its settings (scripts/stack env); a service that is down fails, it never skips.
check_PROGRAMS += tests/integration/check_integration
tests_integration_check_integration_SOURCES = tests/integration/it_main.c \
	tests/integration/it.h tests/integration/it_kafka.c tests/integration/it_postgres.c \
	tests/integration/it_redis.c
tests_integration_check_integration_SOURCES += tests/integration/it_apply.c
tests_integration_check_integration_SOURCES += tests/integration/it_consumer.c
tests_integration_check_integration_SOURCES += tests/integration/it_service.c
tests_integration_check_integration_SOURCES += tests/integration/it_util.c
# SLOT (config precedence): add tests/integration/it_config.c here and JM_SUITE(config) to suites.def.
tests_integration_check_integration_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -DJM_TOP_SRCDIR='"$(abs_top_srcdir)"'
tests_integration_check_integration_LDADD = libjobmon.la $(CHECK_LIBS) $(JM_DEP_LIBS)
EXTRA_DIST += tests/integration/run tests/integration/suites.def

check-integration: tests/integration/check_integration$(EXEEXT)
	$(top_srcdir)/tests/integration/run $(abs_top_builddir)/tests/integration/check_integration$(EXEEXT)
.PHONY: check-integration

# The jobmon CLI end to end (run/submit/resume, read and operator commands) against the stack
# with jobmon-fsm and jobmon-distributor, and configuration precedence through the binary:
# `make check-integration-cli` (TAP; scripts/test-all's integration stage runs it).
EXTRA_DIST += tests/integration/cli.sh tests/integration/tap.sh tests/integration/config_precedence.sh
check-integration-cli: jobmon$(EXEEXT) jobmon-distributor$(EXEEXT)
	JOBMON=$(abs_top_builddir)/jobmon$(EXEEXT) $(top_srcdir)/tests/integration/cli.sh
	JOBMON=$(abs_top_builddir)/jobmon$(EXEEXT) $(top_srcdir)/tests/integration/config_precedence.sh
.PHONY: check-integration-cli
