/*
 * common/status_sql.h — the SQL spellings of the status sets that fsm/effect.c defines, for the
 * queries of the FSM, the reaper, the cache and the CLI.  tests/check_fsm.c checks each against
 * its C function, so a letter added to one is not forgotten in the other.
 */
#ifndef JOBMON_COMMON_STATUS_SQL_H
#define JOBMON_COMMON_STATUS_SQL_H

/* jm_run_is_alive: a run that blocks a new run */
#define JM_SQL_RUN_ALIVE "('L','B','I','O','R','C','H')"
/* jm_run_is_active: a run that is told to resume, and that times out */
#define JM_SQL_RUN_ACTIVE "('B','I','O','R')"
/* jm_wf_is_finished: a workflow whose last run ended (retention may prune it) */
#define JM_SQL_WF_FINISHED "('D','F','A','H')"

#endif
