/*
 * replay.h — replaying a workflow's event_log through the event handlers into another schema,
 * and comparing the result with the original rows: the check behind `jobmon audit WF`
 * (ARCHITECTURE principle 4: applying reads no clock and no randomness, so the same events give
 * the same rows).
 */
#ifndef JOBMON_CONSUMER_REPLAY_H
#define JOBMON_CONSUMER_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "jobmon/common.h"
#include "jobmon/pg.h"

typedef struct {
    size_t events; /* events replayed */
    size_t applied, ignored, rejected;
    size_t outcome_mismatch;  /* replayed outcome differs from the one event_log recorded */
    char first_mismatch[256]; /* "event <id> (<type>): applied, log says ignored", or "" */
} jm_replay_stats_t;

/*
 * Read the event_log rows of `workflow_id` from `src` (in its search_path), in apply order
 * (applied_seq; dead letters skipped; from after its last applied workflow.prune, which deleted
 * what came before), decode each raw message and apply it with jm_apply_event
 * on `dst`, 1000 events per transaction.  `dst` must be a different connection whose
 * search_path names a migrated schema holding none of this workflow's rows (e.g. a fresh one),
 * and on which no jm_apply_t is prepared (the replay prepares its own and releases it).
 * `stats` (may be NULL) receives the counts.  Undecodable rows are JM_ERR_INVALID.
 */
JM_WUR jm_rc_t jm_replay_workflow(jm_pg_t *src, jm_pg_t *dst, int64_t workflow_id,
                                  jm_replay_stats_t *stats, jm_err_t *err);

/*
 * Compare the rows of `workflow_id` in schemas `schema_a` and `schema_b` (one database, one
 * connection): every column of workflow, workflow_run, task, task_instance, task_array,
 * task_edge and workflow_task_count (as multisets), and transition_log without its serial (as
 * a sequence in seq order).  *n_diff receives the number of tables that differ; `diff` (may be
 * NULL) their names, comma-separated.
 */
JM_WUR jm_rc_t jm_replay_diff(jm_pg_t *pg, const char *schema_a, const char *schema_b,
                              int64_t workflow_id, int *n_diff, char *diff, size_t diff_len,
                              jm_err_t *err);

#endif
