/*
 * jobmon/fsm.h — the four state machines of jobmon (task instance, task, workflow run, workflow)
 * with Jobmon's status letters, their transition tables and the coupled rules between them.
 *
 * Everything here is pure: no I/O, no clock, no allocation.  Status values are plain ints in
 * the generic functions (the enum of the entity named by the jm_entity_t argument).  The
 * consumer applies changes; this module only says what is legal and what follows from what.
 */
#ifndef JOBMON_FSM_H
#define JOBMON_FSM_H

#include "jobmon/common.h"

typedef enum {
    JM_ENTITY_TI,       /* "task_instance" */
    JM_ENTITY_TASK,     /* "task" */
    JM_ENTITY_RUN,      /* "workflow_run" */
    JM_ENTITY_WORKFLOW, /* "workflow" */
    JM_ENTITY__CNT
} jm_entity_t;

/* Task instance: Q I O R T X K D E Z U W F (reference §2.1; legacy B is not a status here). */
typedef enum {
    JM_TI_Q, /* QUEUED */
    JM_TI_I, /* INSTANTIATED */
    JM_TI_O, /* LAUNCHED */
    JM_TI_R, /* RUNNING */
    JM_TI_T, /* TRIAGING */
    JM_TI_X, /* NO_HEARTBEAT */
    JM_TI_K, /* KILL_SELF */
    JM_TI_D, /* DONE */
    JM_TI_E, /* ERROR */
    JM_TI_Z, /* RESOURCE_ERROR */
    JM_TI_U, /* UNKNOWN_ERROR */
    JM_TI_W, /* NO_DISTRIBUTOR_ID */
    JM_TI_F, /* ERROR_FATAL */
    JM_TI__CNT
} jm_ti_status_t;

/* Task: G Q I O R D E A F (reference §2.2). */
typedef enum {
    JM_TASK_G, /* REGISTERING */
    JM_TASK_Q, /* QUEUED */
    JM_TASK_I, /* INSTANTIATING */
    JM_TASK_O, /* LAUNCHED */
    JM_TASK_R, /* RUNNING */
    JM_TASK_D, /* DONE */
    JM_TASK_E, /* ERROR_RECOVERABLE */
    JM_TASK_A, /* ADJUSTING_RESOURCES */
    JM_TASK_F, /* ERROR_FATAL */
    JM_TASK__CNT
} jm_task_status_t;

/* Workflow run: G L B I O R D E S A C H T (reference §2.3). */
typedef enum {
    JM_RUN_G, /* REGISTERED */
    JM_RUN_L, /* LINKING */
    JM_RUN_B, /* BOUND */
    JM_RUN_I, /* INSTANTIATED */
    JM_RUN_O, /* LAUNCHED */
    JM_RUN_R, /* RUNNING */
    JM_RUN_D, /* DONE */
    JM_RUN_E, /* ERROR */
    JM_RUN_S, /* STOPPED */
    JM_RUN_A, /* ABORTED */
    JM_RUN_C, /* COLD_RESUME */
    JM_RUN_H, /* HOT_RESUME */
    JM_RUN_T, /* TERMINATED */
    JM_RUN__CNT
} jm_run_status_t;

/* Workflow: G Q I O R D F A H (reference §2.4). */
typedef enum {
    JM_WF_G, /* REGISTERING */
    JM_WF_Q, /* QUEUED */
    JM_WF_I, /* INSTANTIATING */
    JM_WF_O, /* LAUNCHED */
    JM_WF_R, /* RUNNING */
    JM_WF_D, /* DONE */
    JM_WF_F, /* FAILED */
    JM_WF_A, /* ABORTED */
    JM_WF_H, /* HALTED */
    JM_WF__CNT
} jm_wf_status_t;

/* ---- names and letters (status.c) -------------------------------------------------------- */

/* "task_instance", "task", "workflow_run", "workflow"; "?" for an out-of-range entity.
 * Static string, never NULL. */
const char *jm_entity_name(jm_entity_t entity);
/* Inverse of jm_entity_name; -1 if unknown or NULL. */
int jm_entity_from_name(const char *name);
/* Number of statuses of `entity` (its __CNT); 0 for an out-of-range entity. */
int jm_status_count(jm_entity_t entity);
/* Jobmon's letter of a status, e.g. jm_status_letter(JM_ENTITY_TI, JM_TI_Z) == 'Z';
 * '?' when entity or status is out of range. */
char jm_status_letter(jm_entity_t entity, int status);
/* The status with that letter, or -1 if the entity has no such letter. */
int jm_status_from_letter(jm_entity_t entity, char letter);
/* Upper-case name, e.g. "RESOURCE_ERROR"; "?" when out of range.  Static string, never NULL. */
const char *jm_status_name(jm_entity_t entity, int status);

/* ---- transitions (transition.c) ---------------------------------------------------------- */

typedef enum {
    JM_TR_LEGAL = 0, /* apply it */
    JM_TR_UNTIMELY,  /* a known race or a same-state repeat: ignore, state unchanged */
    JM_TR_ILLEGAL,   /* reject it */
} jm_transition_t;

/* "legal", "untimely", "illegal"; "?" when out of range.  Static string. */
const char *jm_transition_name(jm_transition_t tr);
/* Classify the transition from -> to of `entity` per reference §2 (plus the deviations documented
 * in transition.c).  Out-of-range entity or statuses are JM_TR_ILLEGAL. */
jm_transition_t jm_fsm_check(jm_entity_t entity, int from, int to);

/* ---- coupled rules (effect.c) ------------------------------------------------------------ */

/* What a task instance moving to a target status does to its task (reference §2.1, "Side effects
 * on the Task", and the orphan rule).  Pure data for the consumer to apply. */
typedef struct {
    jm_ti_status_t ti_status;     /* status the TI ends in: the target, or F if orphaned */
    jm_task_status_t task_status; /* status the task ends in (== the current one if unchanged) */
    int task_changed;             /* 1 if task_status differs from the current task status */
    int task_via_error;           /* 1 if the task passes through E (W/E/U/Z/F targets) */
    int orphaned;                 /* 1 if the orphan rule fired (TI forced to F) */
    jm_transition_t task_tr;      /* worst jm_fsm_check outcome of the task step(s); LEGAL when
                                     the task is not touched */
} jm_ti_effect_t;

/*
 * Side effect on the task of a task instance moving to `ti_target`, given the task's current
 * status and attempt counters.  Rules:
 *   - orphan rule: task D or F and target an error state (W E U Z) or F → TI forced to F, task
 *     unchanged.  The forced F is not checked against the TI table (it overrides it).
 *   - TI Q, I, O, R, D → task Q, I, O, R, D (same-state is an untimely no-op, task_changed 0);
 *   - TI W, E, U, Z → task E, then num_attempts >= max_attempts → F, else Z → A, else G;
 *   - TI F → task E → F;  TI T, X, K → no task change.
 * task_tr reports whether the task step(s) are legal; the consumer must reject ILLEGAL ones.
 */
jm_ti_effect_t jm_fsm_ti_effect(jm_ti_status_t ti_target, jm_task_status_t task, int num_attempts,
                                int max_attempts);

/* TI error states that feed the task retry logic: W, E, U, Z. */
int jm_ti_is_error(jm_ti_status_t s);
/* TI terminal states: D E Z U W F. */
int jm_ti_is_terminal(jm_ti_status_t s);
/* Task statuses that count against concurrency: Q, I, O, R. */
int jm_task_status_is_active(jm_task_status_t s);
/* User-facing task status: "PENDING" (G Q I A E), "SCHEDULED" (O), "RUNNING" (R), "DONE" (D),
 * "FATAL" (F); "?" out of range.  Static string. */
const char *jm_task_user_status(jm_task_status_t s);
/* A run that blocks a new run: L B I O R C H (reference: L B R C H; we add I and O). */
int jm_run_is_alive(jm_run_status_t s);
/* A run that is the target of a resume signal: B R (reference) plus I and O. */
int jm_run_is_active(jm_run_status_t s);
/* A run that can never change again: D E S A T. */
int jm_run_is_terminal(jm_run_status_t s);
/* Workflow status driven by a run entering `run` (L→G, B→Q, I→I, O→O, R→R, D→D, E→F, S→F,
 * A→A, T→H), or -1 when that run status does not change the workflow (G, C, H). */
int jm_wf_status_for_run(jm_run_status_t run);
/* A workflow is resumable when its binding is complete and no run is alive. */
int jm_wf_is_resumable(int binding_complete, int any_alive_run);
/* Ready to link a new run: resumable and status not Q, R or D (reference §2.3); we also refuse
 * I and O, which like Q mean a run is starting (unreachable when that run counts as alive). */
int jm_wf_is_ready_to_link(int resumable, jm_wf_status_t s);
/* A workflow whose last run ended: D F A H (retention may prune it once no run is alive). */
int jm_wf_is_finished(jm_wf_status_t s);

#endif
