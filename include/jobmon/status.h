/*
 * jobmon/status.h — reading a workflow's status the way every client does: the Redis read model
 * first (`jm:wf:<id>` hashes, docs/redis.md), PostgreSQL through the reader role as the truth
 * when the hash is missing or Redis is down; plus Jobmon's user-facing status buckets
 * (PENDING/SCHEDULED/RUNNING/DONE/FATAL), the `--json` shape of `jobmon run/status`, the progress
 * line, and a Redis subscription for "something changed" notifications.
 *
 * A context keeps its connections between calls (a benchmark or a watch loop calls
 * jm_status_get() many times); it reconnects lazily and never writes anything.
 */
#ifndef JOBMON_STATUS_H
#define JOBMON_STATUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jobmon/common.h"
#include "jobmon/config.h"
#include "jobmon/fsm.h"
#include "jobmon/pg.h"

/* Jobmon's user-facing task buckets (reference §6.1): G Q I A E → PENDING, O → SCHEDULED,
 * R → RUNNING, D → DONE, F → FATAL. */
typedef enum {
    JM_USER_PENDING = 0,
    JM_USER_SCHEDULED,
    JM_USER_RUNNING,
    JM_USER_DONE,
    JM_USER_FATAL,
    JM_USER__CNT
} jm_user_status_t;

/* Where a status was read from. */
typedef enum {
    JM_STATUS_SRC_AUTO = 0, /* Redis, falling back to PostgreSQL (the default) */
    JM_STATUS_SRC_REDIS,    /* Redis only */
    JM_STATUS_SRC_PG,       /* PostgreSQL only */
    JM_STATUS_SRC__CNT
} jm_status_source_t;

/* One workflow's status.  Plain data, copyable. */
typedef struct {
    int64_t workflow_id;
    char workflow_status;      /* letter G Q I O R D F A H */
    int64_t run_id;            /* the alive run, else the newest; 0 = none */
    char run_status;           /* its letter; 0 = no run */
    int64_t total;             /* tasks of the workflow */
    int64_t n[JM_TASK__CNT];   /* tasks per task status (jm_task_status_t order) */
    int64_t version;           /* cache version (Kafka offset); 0 when read from PostgreSQL */
    jm_status_source_t source; /* REDIS or PG: where this one came from */
} jm_status_t;

typedef struct jm_status_ctx_s jm_status_ctx_t;

/* A new context for Redis at host:port (port 0 = no Redis) and PostgreSQL with `conninfo`
 * (the reader role).  Connects lazily.  Strings are copied.  Caller destroys. */
jm_status_ctx_t *jm_status_ctx_new(const char *redis_host, int redis_port, const char *conninfo);
/* The same from a configuration: redis.host/port and postgres.reader_conninfo (or
 * postgres.conninfo when the reader's is empty). */
jm_status_ctx_t *jm_status_ctx_new_config(const jm_config_t *cfg);
/* Close and free.  Accepts NULL. */
void jm_status_ctx_destroy(jm_status_ctx_t *ctx);
/* Restrict reads to one source (default AUTO). */
void jm_status_ctx_set_source(jm_status_ctx_t *ctx, jm_status_source_t src);

/* The reader connection, connecting on first use (one attempt, 5 s).  Borrowed: valid until the
 * context is destroyed.  NULL with JM_ERR_UNAVAILABLE in err. */
jm_pg_t *jm_status_ctx_pg(jm_status_ctx_t *ctx, jm_err_t *err);
/* Check that Redis answers (connecting if needed): JM_OK or JM_ERR_UNAVAILABLE. */
JM_WUR jm_rc_t jm_status_ctx_ping_redis(jm_status_ctx_t *ctx, jm_err_t *err);

/* Read the status of workflow `wf_id` into *out: the Redis hash when present (and the source
 * allows it), else PostgreSQL.  JM_ERR_NOT_FOUND when the workflow does not exist (yet);
 * JM_ERR_UNAVAILABLE when neither store answers. */
JM_WUR jm_rc_t jm_status_get(jm_status_ctx_t *ctx, int64_t wf_id, jm_status_t *out, jm_err_t *err);

/* ---- pure helpers ------------------------------------------------------------------------ */

/* Fill *out from the fields of a jm:wf:<id> hash (HGETALL pairs: fields[i] → values[i]).
 * JM_ERR_NOT_FOUND when the hash is empty or has no workflow_status; JM_ERR_INVALID when a
 * field has a malformed value. */
JM_WUR jm_rc_t jm_status_from_hash(int64_t wf_id, const char *const *fields,
                                   const char *const *values, size_t n, jm_status_t *out);
/* "PENDING", "SCHEDULED", ...; "?" out of range.  Static. */
const char *jm_user_status_name(jm_user_status_t s);
/* Bucket of a task status letter; -1 for an unknown letter. */
int jm_user_status_of_letter(char task_letter);
/* Bucket by name (case-insensitive); -1 when unknown. */
int jm_user_status_parse(const char *name);
/* Tasks per user bucket. */
void jm_status_user_counts(const jm_status_t *st, int64_t out[JM_USER__CNT]);
/* Percentage of n in total, rounded to one decimal; 0 when total <= 0. */
double jm_status_pct(int64_t n, int64_t total);
/* "12 (40.0%)" into buf. */
void jm_status_format_count(char *buf, size_t len, int64_t n, int64_t total);
/* The contract object {"workflow_id","workflow_run_id","status","tasks":{"total","PENDING",
 * "SCHEDULED","RUNNING","DONE","FATAL"}}; workflow_run_id is null when there is no run.
 * Returns a new reference. */
json_t *jm_status_json(const jm_status_t *st);
/* One progress line, at most `width` columns (>= 40) and len-1 bytes:
 *   [#######.....]  57.0%  P 3  S 1  R 2  D 57  F 0 / 100  2.5 t/s  00:01:23  R
 * `bar` = 0 gives the plain form without the bar.  Returns the length written. */
size_t jm_status_format_progress(char *buf, size_t len, const jm_status_t *st, double elapsed_s,
                                 double rate, int width, int bar);

/* ---- notifications --------------------------------------------------------------------- */

/* A Redis subscription (its own connection) to notification channels. */
typedef struct jm_notify_s jm_notify_t;
/* Subscribe to `channel` on host:port.  Returns a new subscription, caller destroys; NULL with
 * JM_ERR_UNAVAILABLE. */
jm_notify_t *jm_notify_new(const char *host, int port, const char *channel, jm_err_t *err);
void jm_notify_destroy(jm_notify_t *n); /* accepts NULL */
/* The socket to poll() for input. */
int jm_notify_fd(const jm_notify_t *n);
/* Consume whatever arrived (non-blocking after poll said readable): returns the number of
 * messages read (>= 0), or JM_ERR_UNAVAILABLE when the connection broke. */
int jm_notify_drain(jm_notify_t *n, jm_err_t *err);
/* Wait up to timeout_ms for a message: 1 = notified, 0 = timeout, JM_ERR_UNAVAILABLE. */
int jm_notify_wait(jm_notify_t *n, int timeout_ms, jm_err_t *err);

#endif
