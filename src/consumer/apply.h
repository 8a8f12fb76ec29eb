/*
 * apply.h — the boundary between the consume loop (consumer.c: Kafka, transactions, offsets,
 * dedup, event_log, DLQ, retries, cache, reaper) and the event handlers (apply_*.c: what each
 * event type does to the model tables, including scheduling).
 *
 * The loop opens ONE transaction per polled batch and calls jm_apply_event() for each decoded,
 * not-yet-seen event in offset order, then jm_apply_flush() right before COMMIT, or
 * jm_apply_rollback() after a ROLLBACK.  Handlers keep some per-transaction writes in memory
 * (per-status task count deltas, workflow batch numbers, the newest report_by of coalesced
 * heartbeats) and write them at the flush, so that the hot rows are updated once per
 * transaction; what they read inside the transaction includes the pending writes, so outcomes do
 * not depend on where the batch boundaries fall.  Handlers read no wall clock and no randomness:
 * times come from ev->ts_ms, derived ids from jobmon/hash.h.  Handlers never commit or roll back.
 */
#ifndef JOBMON_CONSUMER_APPLY_H
#define JOBMON_CONSUMER_APPLY_H

#include <stdint.h>

#include "jobmon/common.h"
#include "jobmon/event.h"
#include "jobmon/pg.h"

typedef enum {
    JM_OUTCOME_APPLIED = 0, /* the event changed (or confirmed) state */
    JM_OUTCOME_IGNORED,     /* untimely: a known race, state unchanged */
    JM_OUTCOME_REJECTED,    /* illegal transition or unknown entity: recorded with the reason */
    JM_OUTCOME__CNT
} jm_outcome_t;

/* Static name: "applied", "ignored", "rejected" (the event_log.outcome values). */
const char *jm_outcome_name(jm_outcome_t o);

typedef struct {
    jm_outcome_t outcome;
    char reason[256]; /* empty when applied */
} jm_apply_result_t;

typedef struct jm_apply_s jm_apply_t;

/* Handler state bound to one PostgreSQL connection (prepared statements, scratch buffers).
 * Returns a new object, caller destroys; NULL with err set when preparing failed. */
jm_apply_t *jm_apply_new(jm_pg_t *pg, jm_err_t *err);
/* Call after the connection was re-established: statements are prepared again. */
jm_rc_t jm_apply_reset(jm_apply_t *ap, jm_pg_t *pg, jm_err_t *err);
void jm_apply_destroy(jm_apply_t *ap); /* accepts NULL */

/* Apply one event inside the caller's open transaction.
 * JM_OK: res says applied / ignored / rejected (a rejected event is NOT an error).
 * JM_ERR_RETRY / JM_ERR_UNAVAILABLE: the caller rolls back the whole batch and retries it.
 * Anything else: a bug or broken database; the caller rolls back and stops. */
jm_rc_t jm_apply_event(jm_apply_t *ap, const jm_event_t *ev, int64_t offset, jm_apply_result_t *res,
                       jm_err_t *err);

/* Optional: announce an event the transaction will apply (call for each, before the first
 * jm_apply_event); the task instances they name are then read in one statement instead of one
 * per event.  `ev` is only read during the call.  Hints are dropped by flush and rollback. */
void jm_apply_hint(jm_apply_t *ap, const jm_event_t *ev);

/* Write the transaction's pending in-memory state (task count deltas, batch numbers, coalesced
 * heartbeats): call after the last jm_apply_event() and before COMMIT.  Errors as for
 * jm_apply_event (the caller rolls back).  On success the rows of unfinished instances and
 * tasks stay known for the next transaction (its prefetch skips them): the caller must call
 * jm_apply_rollback() when the COMMIT fails or when it may no longer be the rows' only writer. */
jm_rc_t jm_apply_flush(jm_apply_t *ap, jm_err_t *err) JM_WUR;
/* The transaction was rolled back (or is abandoned), or another writer may have changed rows
 * (a rebalance): drop every pending per-transaction state and the rows kept from earlier
 * transactions.  Call after a ROLLBACK, before the batch is applied again, and on every
 * partition assignment or revocation.  The touched sets are kept. */
void jm_apply_rollback(jm_apply_t *ap);

/* Workflows whose status or task counts changed since the last jm_apply_clear_touched(), for the
 * Redis cache and notifications after commit.  Borrowed, valid until the next apply call. */
size_t jm_apply_touched(const jm_apply_t *ap, const int64_t **workflow_ids);
/* Runs that have new work for their distributor (newly queued or killed instances). */
size_t jm_apply_touched_runs(const jm_apply_t *ap, const int64_t **run_ids);
void jm_apply_clear_touched(jm_apply_t *ap);

#endif
