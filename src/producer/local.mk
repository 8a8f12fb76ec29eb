# src/producer: event codec (one rule table), JSON Schema generation, Kafka producer.
libjobmon_la_SOURCES += \
	src/producer/event.c \
	src/producer/event_int.h \
	src/producer/event_schema.c \
	src/producer/event_spec.c \
	src/producer/producer.c

# `make schemas` regenerates schemas/events/<type>.json from the rule table (commit the result).
noinst_PROGRAMS += src/producer/gen_schemas
src_producer_gen_schemas_SOURCES = src/producer/gen_schemas.c
src_producer_gen_schemas_LDADD = libjobmon.la $(JM_DEP_LIBS)
schemas: src/producer/gen_schemas$(EXEEXT)
	src/producer/gen_schemas$(EXEEXT) $(top_srcdir)/schemas/events
.PHONY: schemas

# jobmon-kafka.so: the producer alone, for jobmon-worker, which does not link librdkafka (its
# load is most of a short task's overhead) and dlopen()s this only when it publishes to Kafka
# itself (no local report channel: Slurm, or a channel that failed).  Its jm_* references
# resolve to the worker's own (linked with -export-dynamic).  See worker/report.c load_module.
# A plain rule, not libtool: the project's libtool is configured without shared libraries.
# Built next to jobmon-worker (where the worker looks first) and installed in pkglibdir.
jmmoduledir = $(pkglibdir)
jmmodule_DATA = jobmon-kafka.so
CLEANFILES += jobmon-kafka.so
JM_KAFKA_MODULE_DEPS = $(top_srcdir)/src/producer/producer.c \
	$(top_srcdir)/include/jobmon/producer.h $(top_srcdir)/include/jobmon/event.h \
	$(top_srcdir)/include/jobmon/common.h $(top_srcdir)/include/jobmon/log.h \
	$(top_srcdir)/include/jobmon/jmtime.h
jobmon-kafka.so: $(JM_KAFKA_MODULE_DEPS)
	$(AM_V_CCLD)$(CC) -shared -fPIC $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) $(CPPFLAGS) \
		$(AM_CFLAGS) $(CFLAGS) $(AM_LDFLAGS) $(LDFLAGS) -o $@ \
		$(top_srcdir)/src/producer/producer.c $(RDKAFKA_LIBS)
