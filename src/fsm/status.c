/*
 * status.c — names and letters of the four status enums (Jobmon's codes).  Pure lookups: no
 * I/O, no allocation.  The status classes (active, alive, ...) live in effect.c.
 */
#include <string.h>

#include "jobmon/fsm.h"

/* Letters in enum order; the trailing NUL is not a status. */
static const char ti_letters[] = "QIORTXKDEZUWF";
static const char task_letters[] = "GQIORDEAF";
static const char run_letters[] = "GLBIORDESACHT";
static const char wf_letters[] = "GQIORDFAH";

_Static_assert(sizeof(ti_letters) - 1 == JM_TI__CNT, "ti letters");
_Static_assert(sizeof(task_letters) - 1 == JM_TASK__CNT, "task letters");
_Static_assert(sizeof(run_letters) - 1 == JM_RUN__CNT, "run letters");
_Static_assert(sizeof(wf_letters) - 1 == JM_WF__CNT, "workflow letters");

static const char *const ti_names[] = {
    [JM_TI_Q] = "QUEUED",         [JM_TI_I] = "INSTANTIATED",  [JM_TI_O] = "LAUNCHED",
    [JM_TI_R] = "RUNNING",        [JM_TI_T] = "TRIAGING",      [JM_TI_X] = "NO_HEARTBEAT",
    [JM_TI_K] = "KILL_SELF",      [JM_TI_D] = "DONE",          [JM_TI_E] = "ERROR",
    [JM_TI_Z] = "RESOURCE_ERROR", [JM_TI_U] = "UNKNOWN_ERROR", [JM_TI_W] = "NO_DISTRIBUTOR_ID",
    [JM_TI_F] = "ERROR_FATAL",
};
static const char *const task_names[] = {
    [JM_TASK_G] = "REGISTERING",       [JM_TASK_Q] = "QUEUED",
    [JM_TASK_I] = "INSTANTIATING",     [JM_TASK_O] = "LAUNCHED",
    [JM_TASK_R] = "RUNNING",           [JM_TASK_D] = "DONE",
    [JM_TASK_E] = "ERROR_RECOVERABLE", [JM_TASK_A] = "ADJUSTING_RESOURCES",
    [JM_TASK_F] = "ERROR_FATAL",
};
static const char *const run_names[] = {
    [JM_RUN_G] = "REGISTERED",   [JM_RUN_L] = "LINKING",     [JM_RUN_B] = "BOUND",
    [JM_RUN_I] = "INSTANTIATED", [JM_RUN_O] = "LAUNCHED",    [JM_RUN_R] = "RUNNING",
    [JM_RUN_D] = "DONE",         [JM_RUN_E] = "ERROR",       [JM_RUN_S] = "STOPPED",
    [JM_RUN_A] = "ABORTED",      [JM_RUN_C] = "COLD_RESUME", [JM_RUN_H] = "HOT_RESUME",
    [JM_RUN_T] = "TERMINATED",
};
static const char *const wf_names[] = {
    [JM_WF_G] = "REGISTERING", [JM_WF_Q] = "QUEUED",  [JM_WF_I] = "INSTANTIATING",
    [JM_WF_O] = "LAUNCHED",    [JM_WF_R] = "RUNNING", [JM_WF_D] = "DONE",
    [JM_WF_F] = "FAILED",      [JM_WF_A] = "ABORTED", [JM_WF_H] = "HALTED",
};

_Static_assert(JM_ARRAY_LEN(ti_names) == JM_TI__CNT, "ti names");
_Static_assert(JM_ARRAY_LEN(task_names) == JM_TASK__CNT, "task names");
_Static_assert(JM_ARRAY_LEN(run_names) == JM_RUN__CNT, "run names");
_Static_assert(JM_ARRAY_LEN(wf_names) == JM_WF__CNT, "workflow names");

static const struct {
    const char *name;
    const char *letters;
    const char *const *status_names;
    int count;
} entities[] = {
    [JM_ENTITY_TI] = {"task_instance", ti_letters, ti_names, JM_TI__CNT},
    [JM_ENTITY_TASK] = {"task", task_letters, task_names, JM_TASK__CNT},
    [JM_ENTITY_RUN] = {"workflow_run", run_letters, run_names, JM_RUN__CNT},
    [JM_ENTITY_WORKFLOW] = {"workflow", wf_letters, wf_names, JM_WF__CNT},
};

_Static_assert(JM_ARRAY_LEN(entities) == JM_ENTITY__CNT, "entities");

static int entity_ok(jm_entity_t entity)
{
    return (int)entity >= 0 && entity < JM_ENTITY__CNT;
}

static int status_ok(jm_entity_t entity, int status)
{
    return entity_ok(entity) && status >= 0 && status < entities[entity].count;
}

const char *jm_entity_name(jm_entity_t entity)
{
    return entity_ok(entity) ? entities[entity].name : "?";
}

int jm_entity_from_name(const char *name)
{
    for (int e = 0; name && e < JM_ENTITY__CNT; e++)
        if (strcmp(entities[e].name, name) == 0)
            return e;
    return -1;
}

int jm_status_count(jm_entity_t entity)
{
    return entity_ok(entity) ? entities[entity].count : 0;
}

char jm_status_letter(jm_entity_t entity, int status)
{
    return status_ok(entity, status) ? entities[entity].letters[status] : '?';
}

int jm_status_from_letter(jm_entity_t entity, char letter)
{
    if (!entity_ok(entity) || letter == '\0')
        return -1;
    const char *p = strchr(entities[entity].letters, letter);
    return p ? (int)(p - entities[entity].letters) : -1;
}

const char *jm_status_name(jm_entity_t entity, int status)
{
    return status_ok(entity, status) ? entities[entity].status_names[status] : "?";
}
