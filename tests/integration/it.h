/*
 * it.h — shared helpers of the integration tests (tests/integration/), which talk to the real
 * Kafka, PostgreSQL and Redis of `scripts/stack up`.  Settings come from the environment that
 * `scripts/stack env` prints; a missing variable or an unreachable service FAILS the test, it
 * never skips (CI must not go green without the services).
 */
#ifndef JOBMON_IT_H
#define JOBMON_IT_H

#include <check.h>

/* The value of environment variable `name`; fails the current test when unset or empty. */
const char *it_env(const char *name);
/* A string unique to this process and call, e.g. "12345-1764081167123-3" (static buffer). */
const char *it_unique(void);
/* Create Kafka topic `name` with `partitions` partitions (replication 1); fails the test on error.
 */
void it_create_topic(const char *name, int partitions);
/* Delete Kafka topic `name` (a test's own, at its end: they piled up by the thousand on a
 * developer's stack); fails the test on error. */
void it_delete_topic(const char *name);
/* The whole file at `path`, NUL-terminated; caller frees.  Fails the test when unreadable. */
char *it_slurp(const char *path);
/* Whether a line of the file at `path` contains `needle` (0 when the file cannot be read). */
int it_file_has(const char *path, const char *needle);
/* Every migration of schemas/sql after 001_plumbing, in order, as one SQL text (caller frees):
 * a test schema gets the same tables and indexes as a migrated database. */
char *it_schema_sql(void);

/* One suite per service; the list is in suites.def. */
#define JM_SUITE(name) Suite *it_##name##_suite(void);
#include "suites.def"
#undef JM_SUITE

#endif
