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
