/*
 * consumer_int.h — private interfaces between the modules of jobmon-fsm's consume loop:
 *   util.c     pure helpers (batch sizing, dead-letter ids, array literals, recent set)
 *   evlog.c    event_log: claim (dedup) a batch, record outcomes
 *   offsets.c  consumer_offset: take ownership of partitions (epoch), fenced advance
 *   dlq.c      dead letters: produce to jobmon.dlq with reason headers, wait for acks
 *   cache.c    Redis read model after commit (versioned), notifications, rebuild
 *   reaper.c   leader-only deadline scan that publishes reaper.* events
 *   consumer.c the loop: poll, batch transaction, retries, rebalance
 * Handlers (what an event does to the model) are behind apply.h, not here.
 */
#ifndef JOBMON_CONSUMER_INT_H
#define JOBMON_CONSUMER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "consumer/apply.h"
#include "jobmon/common.h"
#include "jobmon/event.h"
#include "jobmon/pg.h"
#include "jobmon/producer.h"

#define JM_UUID_STR_LEN 36

/* ---- util.c (pure) ------------------------------------------------------------------------ */

/* Size of the next poll: doubled when the last one filled up (lag), halved after a retry
 * (contention), clamped to [min, max]. */
size_t jm_batch_next_size(size_t cur, size_t got, int retried, size_t min, size_t max);

/* The event id recorded for a dead letter whose id could not be read: a version-8 UUID derived
 * from its position, so re-consuming the same message gives the same id (dedup holds). */
void jm_dead_letter_uuid(const char *topic, int32_t partition, int64_t offset,
                         char out[JM_UUID_STR_LEN + 1]);
/* 1 if s[0..len) is a lower-case 8-4-4-4-12 UUID. */
int jm_uuid_is_valid(const char *s, size_t len);

/* qsort/bsearch comparator of int64_t values. */
int jm_cmp_i64(const void *a, const void *b);
/* qsort_r comparator of size_t indexes into the int64_t array `ids`, by the value they name. */
int jm_cmp_idx_by_i64(const void *a, const void *b, void *ids);
/* Sort v[0..n) and drop repeats; returns the new count (v may be NULL when n is 0). */
size_t jm_i64_sort_unique(int64_t *v, size_t n);

/* A PostgreSQL array literal ("{1,2,NULL}") built for one unnest() parameter.  Zero-initialise,
 * jm_pgarr_reset, add items, jm_pgarr_finish (borrowed until the next reset), jm_pgarr_free. */
typedef struct {
    char *buf;
    size_t len, cap, n;
} jm_pgarr_t;
void jm_pgarr_reset(jm_pgarr_t *a);
void jm_pgarr_add_int(jm_pgarr_t *a, int64_t v);
void jm_pgarr_add_null(jm_pgarr_t *a);
/* s may be NULL (adds NULL).  s must hold no NUL byte in [0, n). */
void jm_pgarr_add_text(jm_pgarr_t *a, const char *s, size_t n);
void jm_pgarr_add_bytea(jm_pgarr_t *a, const void *p, size_t n);
const char *jm_pgarr_finish(jm_pgarr_t *a);
void jm_pgarr_free(jm_pgarr_t *a);

/* A binary COPY stream (COPY ... FROM STDIN (FORMAT binary)) built in memory and sent in one go:
 * many rows for one round trip and no text parsing on the server (the multi-row INSERT ... unnest
 * it replaces parsed an array literal per column).  Zero-initialise, jm_pgcopy_reset, then per
 * row jm_pgcopy_row(n fields) and exactly n field calls in the table's column order,
 * jm_pgcopy_send, jm_pgcopy_free.  Field types must match the columns exactly (int4/int8,
 * uuid, timestamptz; text, bpchar and bytea take bytes). */
typedef struct {
    char *buf;
    size_t len, cap, rows;
} jm_pgcopy_t;
void jm_pgcopy_reset(jm_pgcopy_t *c);
void jm_pgcopy_row(jm_pgcopy_t *c, int nfields);
void jm_pgcopy_null(jm_pgcopy_t *c);
void jm_pgcopy_int4(jm_pgcopy_t *c, int32_t v);
void jm_pgcopy_int8(jm_pgcopy_t *c, int64_t v);
void jm_pgcopy_bytes(jm_pgcopy_t *c, const void *p, size_t n);
/* jsonb from its JSON text s[0..n) (the server parses it as for a jsonb literal). */
void jm_pgcopy_jsonb(jm_pgcopy_t *c, const char *s, size_t n);
/* A one-dimensional array field of n elements of type elem_oid (25 = text): begin, then exactly
 * n element calls (jm_pgcopy_bytes / jm_pgcopy_int8 / ..., no NULLs), then end with the mark
 * begin returned. */
size_t jm_pgcopy_array_begin(jm_pgcopy_t *c, size_t n, uint32_t elem_oid);
void jm_pgcopy_array_end(jm_pgcopy_t *c, size_t mark);
/* s: a valid 8-4-4-4-12 UUID (jm_uuid_is_valid). */
void jm_pgcopy_uuid(jm_pgcopy_t *c, const char *s);
/* milliseconds since the Unix epoch, as timestamptz */
void jm_pgcopy_ts_ms(jm_pgcopy_t *c, int64_t ms);
/* Run `sql` (a COPY ... FROM STDIN (FORMAT binary)) with the rows added since the reset; the
 * number of rows copied must equal the number added (else JM_ERR_INTERNAL).  A unique violation
 * is JM_ERR_RETRY (see evlog.c).  Inside the caller's transaction. */
JM_WUR jm_rc_t jm_pgcopy_send(jm_pgcopy_t *c, PGconn *conn, const char *sql, jm_err_t *err);
void jm_pgcopy_free(jm_pgcopy_t *c);

/* A set of non-zero int64 keys that each expire ttl after they were added (the reaper's memory
 * of claims still in flight).  Returns a new set, caller destroys. */
typedef struct jm_recent_s jm_recent_t;
jm_recent_t *jm_recent_new(void);
void jm_recent_destroy(jm_recent_t *r); /* accepts NULL */
/* 1 if key is present and not expired; else adds it (expiring at now + ttl) and returns 0. */
int jm_recent_check_add(jm_recent_t *r, int64_t key, int64_t now_ms, int64_t ttl_ms);
/* Number of keys not expired at now. */
size_t jm_recent_count(const jm_recent_t *r, int64_t now_ms);

/* ---- one polled message ------------------------------------------------------------------- */

/* A message of the batch in flight, decoded.  The loop owns `msg` (an rd_kafka_message_t) and
 * `ev`; raw and key are borrowed from msg. */
typedef struct {
    void *msg;
    int32_t partition;
    int64_t offset;
    const void *raw, *key;
    size_t raw_len, key_len;
    jm_event_t *ev;               /* NULL: a dead letter */
    char id[JM_UUID_STR_LEN + 1]; /* event id (for a dead letter: its own, or derived) */
    int64_t workflow_id;          /* 0 = unknown */
    int64_t ts_ms;                /* valid when ev */
    char type[40];                /* "" = unknown */
    char *reason;                 /* why not applied (owned; NULL = none): the dead-letter or
                                   * apply-failure reason, or the handler's ignored/rejected
                                   * one; on the heap, as items are many and rarely need it */
    int dead;                     /* goes to the DLQ and event_log as dead_letter */
    int is_new;                   /* set by jm_evlog_claim: not seen before */
    jm_outcome_t outcome;         /* set by the handler for new valid events */
} jm_item_t;

/* ---- evlog.c -------------------------------------------------------------------------------- */

typedef struct jm_evlog_s jm_evlog_t;
jm_evlog_t *jm_evlog_new(void);        /* caller destroys */
void jm_evlog_destroy(jm_evlog_t *el); /* accepts NULL */
/* Dedup: sets items[i].is_new = the id is neither in event_log nor earlier in the batch.  Writes
 * nothing.  Inside the caller's transaction. */
JM_WUR jm_rc_t jm_evlog_claim(jm_evlog_t *el, jm_pg_t *pg, const char *topic, jm_item_t *items,
                              size_t n, jm_err_t *err);
/* Insert every new item into event_log, in batch order (applied_seq = replay order): valid ones
 * with the handler's outcome (and reason unless applied), dead letters as "dead_letter" with
 * their reason.  Once per batch, after the handlers; inside the caller's transaction. */
JM_WUR jm_rc_t jm_evlog_record(jm_evlog_t *el, jm_pg_t *pg, const char *topic,
                               const jm_item_t *items, size_t n, jm_err_t *err);
/* Best effort for a message that failed to decode: its id (if it has a valid one), workflow_id
 * and type (if present and well-typed); otherwise the id derived from its position. */
void jm_evlog_inspect_dead(jm_item_t *it, const char *topic);

/* ---- offsets.c ------------------------------------------------------------------------------ */

/* One partition this consumer owns: the epoch it claimed and how far it has applied. */
typedef struct {
    int32_t partition;
    int64_t epoch;
    int64_t next_offset;
    int fenced; /* set by jm_offsets_advance when another owner took it */
} jm_owned_t;

/* In one statement (autocommit): create the row of each partition if missing (next_offset 0),
 * bump owner_epoch, and fill parts[i].epoch / next_offset. */
JM_WUR jm_rc_t jm_offsets_claim(jm_pg_t *pg, const char *topic, jm_owned_t *parts, size_t n,
                                jm_err_t *err);
/* Inside the batch transaction: set next_offset = next[i] for each partition where the row still
 * has our epoch and the expected next_offset.  Partitions where it did not are marked fenced and
 * JM_ERR_CONFLICT is returned (the caller rolls back). */
JM_WUR jm_rc_t jm_offsets_advance(jm_pg_t *pg, const char *topic, jm_owned_t *parts,
                                  const int64_t *next, size_t n, jm_err_t *err);

/* ---- dlq.c ---------------------------------------------------------------------------------- */

/* Produce a dead letter: the raw message (same key) to dlq_topic with headers reason,
 * source_topic, source_partition, source_offset and event_id.  Acknowledgement is awaited by
 * jm_producer_flush before the batch commits. */
JM_WUR jm_rc_t jm_dlq_send(jm_producer_t *p, const char *dlq_topic, const char *src_topic,
                           const jm_item_t *it, jm_err_t *err);

/* ---- cache.c -------------------------------------------------------------------------------- */

typedef struct jm_cache_s jm_cache_t;
/* A cache writer on host:port (port 0: disabled).  Never NULL; Redis being down is a state. */
jm_cache_t *jm_cache_new(const char *host, int port);
void jm_cache_destroy(jm_cache_t *c); /* accepts NULL */
/* After a commit: refresh jm:wf:<id> of each workflow (and of each run's workflow) from `pg`,
 * publish notifications.  Never fails the caller: Redis trouble marks the cache dirty, and a
 * later call rebuilds every non-terminal workflow once Redis answers again.  JM_ERR_* only for
 * PostgreSQL failures (the caller may ignore them: the data is committed). */
jm_rc_t jm_cache_update(jm_cache_t *c, jm_pg_t *pg, const int64_t *wf_ids, size_t n_wf,
                        const int64_t *run_ids, size_t n_runs, jm_err_t *err);
/* 1 while writes are pending a rebuild. */
int jm_cache_dirty(const jm_cache_t *c);

/* ---- reaper.c ------------------------------------------------------------------------------- */

typedef struct jm_reaper_s jm_reaper_t;
/* A reaper with its own PostgreSQL connection (for the leader lock) and producer (borrowed).
 * Returns a new reaper, caller destroys. */
jm_reaper_t *jm_reaper_new(const char *conninfo, jm_producer_t *producer, int poll_interval_s);
void jm_reaper_destroy(jm_reaper_t *r); /* accepts NULL */
/* Automatic retention (reaper.retention_days, .retention_rows): each scan also publishes
 * workflow.prune events for the workflows finished more than `days` ago.  0 days = off. */
void jm_reaper_set_retention(jm_reaper_t *r, int days, int rows);
/* Run one scan if its interval has passed and this process holds (or gets) the leader lock.
 * Returns the number of claims published (>= 0), or a negative jm_rc_t. */
int jm_reaper_tick(jm_reaper_t *r, int64_t now_mono_ms, int64_t now_wall_ms, jm_err_t *err);

/* ---- consumer.c ----------------------------------------------------------------------------- */

#define JM_FSM_BATCH_BYTES_DEFAULT (1024 * 1024)
/* A bind chunk (workflow.bind_tasks, ~176 kB) counts twice against batch_max_bytes: decoded it
 * takes ~5x its size, ~2x other events' ratio, and bind batches set the FSM's peak RSS
 * (bench/RESULTS.md "jobmon-fsm peak RSS").  Recognised by its "type" member within the first
 * JM_FSM_TYPE_PEEK bytes (where jm_event_encode puts it); one that is not counts once. */
#define JM_FSM_TYPE_PEEK 128

typedef struct {
    const char *brokers, *topic, *dlq_topic, *group_id, *conninfo;
    const char *const *kafka_props; /* NULL-terminated key, value pairs, may be NULL */
    const char *redis_host;
    int redis_port;
    size_t batch_max;
    size_t batch_max_bytes;    /* payload bytes per transaction (0 = JM_FSM_BATCH_BYTES_DEFAULT) */
    int batch_linger_ms;       /* after a batch's first message, wait up to this for more */
    int64_t start_deadline_ms; /* absolute, jm_time_mono_ms clock: PostgreSQL at start */
    unsigned inject_40001;     /* testing: make the Nth batch transaction fail with 40001 */
    int decode_ahead;          /* decode the next batch on a second thread during a transaction */
    const char *name;          /* for logs, e.g. "fsm.0" */
} jm_fsm_opts_t;

typedef struct jm_fsm_consumer_s jm_fsm_consumer_t;
/* Connect to PostgreSQL (retrying until the deadline), prepare the handlers, create the Kafka
 * consumer and subscribe.  Returns a new consumer (caller destroys), or NULL with err
 * (JM_ERR_UNAVAILABLE when PostgreSQL stayed unreachable). */
jm_fsm_consumer_t *jm_fsm_consumer_new(const jm_fsm_opts_t *o, volatile int *stop, jm_err_t *err);
/* Consume and apply until *stop becomes non-zero.  Returns JM_OK then, or the error that made
 * applying impossible (a bug or a broken database; logged here). */
JM_WUR jm_rc_t jm_fsm_consumer_run(jm_fsm_consumer_t *c, jm_err_t *err);
/* Close the Kafka consumer (leaves the group), flush the DLQ producer, free.  Accepts NULL. */
void jm_fsm_consumer_destroy(jm_fsm_consumer_t *c);

#endif
