/*
 * common/ownership_sql.h — the query behind reference §3.11's ownership rule, shared by the FSM
 * (the authority: apply_operator.c checks every workflow.reset and task.set_status) and the CLI
 * (cli_ops.c checks first, through the reader role, so that the user hears at once).
 *
 * $1 workflow id, $2 user name.  One row: the workflow's most recent errored run (id and user,
 * both NULL when it has none) and whether $2 started any run of the workflow.
 */
#ifndef JOBMON_COMMON_OWNERSHIP_SQL_H
#define JOBMON_COMMON_OWNERSHIP_SQL_H

#define JM_SQL_WF_OWNERSHIP                                                                        \
    "SELECT e.id, e.user_name,"                                                                    \
    " EXISTS (SELECT 1 FROM workflow_run o WHERE o.workflow_id = $1::bigint"                       \
    "         AND o.user_name = $2) AS owns_a_run"                                                 \
    " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT id, user_name FROM workflow_run"               \
    "  WHERE workflow_id = $1::bigint AND status = 'E'"                                            \
    "  ORDER BY created_at DESC, id DESC LIMIT 1) e ON true"

#endif
