/*
 * distributor.h — jobmon-distributor's run loop and its pure helpers (batching, the submission
 * journal), exposed for distributor_main.c and the unit tests.
 *
 * Never submitting an instance twice, also across a restart: every instance is recorded in a
 * per-run journal file (<state_dir>/journal) — "I <ti>" before ti.instantiated is published,
 * "S <ti> <distributor id>" after the plugin accepted it and before ti.launched is published —
 * with an fdatasync per batch.  A restarted distributor reads the journal first:
 *   Q or I with an S record  → it was submitted: ti.launched is published again with the
 *                              recorded id (the FSM dedups/ignores repeats), never resubmitted;
 *   I with only an I record, or no record (instantiated by a distributor whose journal is
 *   lost)                     → the submission may or may not have happened: ti.submit_failed
 *                              (W), so the FSM retries the task as a NEW instance.  At worst the
 *                              task's command runs twice, the same instance never does.
 * Within one process an in-memory map keeps instances it instantiated out of the Q list until
 * PostgreSQL shows them past Q.
 */
#ifndef JOBMON_DISTRIBUTORS_DISTRIBUTOR_H
#define JOBMON_DISTRIBUTORS_DISTRIBUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "distributors/plugin.h"
#include "jobmon/common.h"
#include "jobmon/config.h"

/* Split tis[0..n) (ordered by array_id, batch_num, step) into consecutive batches of equal
 * (array_id, batch_num, resources), at most `max` each.  starts[] (room for n + 1) receives the
 * first index of each batch followed by n; returns the number of batches. */
size_t jm_dist_batches(jm_dist_ti_t *const *tis, size_t n, size_t max, size_t *starts);

/* ---- journal ---- */
typedef struct jm_journal_s jm_journal_t;
enum { JM_JR_NONE = 0, JM_JR_INSTANTIATED = 1, JM_JR_SUBMITTED = 2 };

/* Open (create) the journal at path and load its records.  Caller destroys. */
jm_journal_t *jm_journal_open(const char *path, jm_err_t *err);
void jm_journal_destroy(jm_journal_t *j); /* accepts NULL */
/* Append a record (buffered until jm_journal_sync); did only for SUBMITTED. */
void jm_journal_add(jm_journal_t *j, int kind, int64_t ti_id, const char *did);
/* Write and fdatasync the buffered records. */
JM_WUR jm_rc_t jm_journal_sync(jm_journal_t *j, jm_err_t *err);
/* The state of ti_id; *did (may be NULL) is borrowed for SUBMITTED. */
int jm_journal_state(const jm_journal_t *j, int64_t ti_id, const char **did);

/* ---- the run loop ---- */
typedef struct jm_dist_opts_s {
    int64_t run_id, workflow_id;
    const char *cluster;     /* cluster name; its type picks the plugin */
    const char *plugin;      /* plugin type (NULL = cluster name) */
    const char *config_path; /* for workers */
    const char *worker_path; /* NULL = next to this program */
    const char *state_dir;   /* NULL = $JOBMON_STATE_DIR/run-<id> or ~/.local/state/jobmon/... */
    const char *events_file; /* test mode: events to a file instead of Kafka */
    int parallelism;
} jm_dist_opts_t;

/* Run the distributor until the run is terminal or *stop becomes non-zero (SIGTERM).  Prints
 * ALIVE on stderr once started.  Returns JM_OK on a clean end. */
JM_WUR jm_rc_t jm_dist_run(const jm_dist_opts_t *o, jm_config_t *cfg, jm_err_t *err);

#endif
