/*
 * common/prune_sql.h — which workflows retention may prune, shared by `jobmon prune`
 * (cli_prune.c) and the reaper's automatic retention (reaper.c); the FSM checks each
 * workflow.prune again when it applies it (apply_operator.c).  And when a workflow that is gone
 * was pruned, for `jobmon audit` and `jobmon status`.
 *
 * $1 cutoff (timestamptz), $2 workflow ids (bigint[]) or NULL for all.  Rows: id, status,
 * status_at as ISO 8601 UTC, total_tasks, name, being pruned; the prunes left unfinished first
 * (whatever their age), then finished workflows (D F A H, no alive run) whose last status change
 * is before the cutoff, oldest first.
 */
#ifndef JOBMON_COMMON_PRUNE_SQL_H
#define JOBMON_COMMON_PRUNE_SQL_H

#include "common/status_sql.h"

#define JM_SQL_PRUNE_CANDIDATES                                                                    \
    "SELECT w.id, w.status, to_char(w.status_at AT TIME ZONE 'UTC',"                               \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), w.total_tasks, w.name, w.pruning_at IS NOT NULL"          \
    " FROM workflow w"                                                                             \
    " WHERE ($2::bigint[] IS NULL OR w.id = ANY ($2::bigint[]))"                                   \
    " AND (w.pruning_at IS NOT NULL OR (w.status IN " JM_SQL_WF_FINISHED                           \
    "  AND w.status_at < $1::timestamptz AND NOT EXISTS (SELECT 1 FROM workflow_run r"             \
    "   WHERE r.workflow_id = w.id AND r.status IN " JM_SQL_RUN_ALIVE ")))"                        \
    " ORDER BY w.pruning_at IS NULL, w.status_at, w.id"

/* $1 workflow id: when its last applied workflow.prune was, as "at <ts> (event <id>)"; no row
 * when it was never pruned.  The prune events of a workflow's last transaction outlive it. */
#define JM_SQL_WF_PRUNED_AT                                                                        \
    "SELECT 'at ' || ts || ' (event ' || event_id || ')' FROM event_log"                           \
    " WHERE workflow_id = $1::bigint AND type = 'workflow.prune' AND outcome = 'applied'"          \
    " ORDER BY applied_seq DESC LIMIT 1"

#endif
