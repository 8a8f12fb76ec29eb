/*
 * effect.c — rules that couple the state machines, as pure functions returning data: what a task
 * instance's move does to its task, which workflow status a run drives, and the status classes
 * (active, alive, terminal, error, user-facing) the scheduler, reaper and CLI rely on.
 *
 * Not here: applying anything, counting attempts (the consumer increments num_attempts on every
 * task →Q), or the bulk FSM bypasses of resume/reset.
 */
#include "jobmon/fsm.h"

int jm_ti_is_error(jm_ti_status_t s)
{
    return s == JM_TI_W || s == JM_TI_E || s == JM_TI_U || s == JM_TI_Z;
}

int jm_ti_is_terminal(jm_ti_status_t s)
{
    return s == JM_TI_D || s == JM_TI_F || jm_ti_is_error(s);
}

int jm_task_status_is_active(jm_task_status_t s)
{
    return s == JM_TASK_Q || s == JM_TASK_I || s == JM_TASK_O || s == JM_TASK_R;
}

const char *jm_task_user_status(jm_task_status_t s)
{
    switch (s) {
    case JM_TASK_G:
    case JM_TASK_Q:
    case JM_TASK_I:
    case JM_TASK_A:
    case JM_TASK_E: return "PENDING";
    case JM_TASK_O: return "SCHEDULED";
    case JM_TASK_R: return "RUNNING";
    case JM_TASK_D: return "DONE";
    case JM_TASK_F: return "FATAL";
    case JM_TASK__CNT: break;
    }
    return "?";
}

/* Jobmon counts L B R C H as alive.  We add I and O: a run whose distributor is starting blocks a
 * new run just the same, and such runs are reaped (→E) when their heartbeat lapses. */
int jm_run_is_alive(jm_run_status_t s)
{
    switch (s) {
    case JM_RUN_L:
    case JM_RUN_B:
    case JM_RUN_I:
    case JM_RUN_O:
    case JM_RUN_R:
    case JM_RUN_C:
    case JM_RUN_H: return 1;
    default: return 0;
    }
}

/* Jobmon: B R.  We add I and O, which may also be told to resume (see transition.c). */
int jm_run_is_active(jm_run_status_t s)
{
    return s == JM_RUN_B || s == JM_RUN_I || s == JM_RUN_O || s == JM_RUN_R;
}

int jm_run_is_terminal(jm_run_status_t s)
{
    switch (s) {
    case JM_RUN_D:
    case JM_RUN_E:
    case JM_RUN_S:
    case JM_RUN_A:
    case JM_RUN_T: return 1;
    default: return 0;
    }
}

int jm_wf_status_for_run(jm_run_status_t run)
{
    switch (run) {
    case JM_RUN_L: return JM_WF_G;
    case JM_RUN_B: return JM_WF_Q;
    case JM_RUN_I: return JM_WF_I;
    case JM_RUN_O: return JM_WF_O;
    case JM_RUN_R: return JM_WF_R;
    case JM_RUN_D: return JM_WF_D;
    case JM_RUN_E:
    case JM_RUN_S: return JM_WF_F;
    case JM_RUN_A: return JM_WF_A;
    case JM_RUN_T: return JM_WF_H;
    default: return -1;
    }
}

int jm_wf_is_resumable(int binding_complete, int any_alive_run)
{
    return binding_complete && !any_alive_run;
}

int jm_wf_is_ready_to_link(int resumable, jm_wf_status_t s)
{
    if (!resumable)
        return 0;
    return s != JM_WF_Q && s != JM_WF_I && s != JM_WF_O && s != JM_WF_R && s != JM_WF_D;
}

int jm_wf_is_finished(jm_wf_status_t s)
{
    return s == JM_WF_D || s == JM_WF_F || s == JM_WF_A || s == JM_WF_H;
}

/* ---- task instance → task ---------------------------------------------------------------- */

static jm_transition_t worst(jm_transition_t a, jm_transition_t b)
{
    return a > b ? a : b;
}

/* Task status a non-error TI target drives directly, or -1 for none (T, X, K). */
static int task_follows(jm_ti_status_t target)
{
    switch (target) {
    case JM_TI_Q: return JM_TASK_Q;
    case JM_TI_I: return JM_TASK_I;
    case JM_TI_O: return JM_TASK_O;
    case JM_TI_R: return JM_TASK_R;
    case JM_TI_D: return JM_TASK_D;
    default: return -1;
    }
}

/* Where a task goes after E: retry (G), resource retry (A) or fatal (F). */
static jm_task_status_t after_error(jm_ti_status_t target, int num_attempts, int max_attempts)
{
    if (target == JM_TI_F || num_attempts >= max_attempts)
        return JM_TASK_F;
    return target == JM_TI_Z ? JM_TASK_A : JM_TASK_G;
}

jm_ti_effect_t jm_fsm_ti_effect(jm_ti_status_t ti_target, jm_task_status_t task, int num_attempts,
                                int max_attempts)
{
    jm_ti_effect_t fx = {.ti_status = ti_target, .task_status = task, .task_tr = JM_TR_LEGAL};
    int fails = jm_ti_is_error(ti_target) || ti_target == JM_TI_F;
    if (fails && (task == JM_TASK_D || task == JM_TASK_F)) {
        fx.ti_status = JM_TI_F;
        fx.orphaned = 1;
    } else if (fails) {
        fx.task_via_error = 1;
        fx.task_status = after_error(ti_target, num_attempts, max_attempts);
        fx.task_tr = worst(jm_fsm_check(JM_ENTITY_TASK, task, JM_TASK_E),
                           jm_fsm_check(JM_ENTITY_TASK, JM_TASK_E, fx.task_status));
    } else if (task_follows(ti_target) >= 0) {
        fx.task_status = (jm_task_status_t)task_follows(ti_target);
        fx.task_tr = jm_fsm_check(JM_ENTITY_TASK, task, fx.task_status);
    }
    fx.task_changed = fx.task_status != task;
    return fx;
}
