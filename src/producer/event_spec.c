/*
 * event_spec.c — THE table of event rules: the envelope and each type's payload, transcribed from
 * schemas/events/README.md.  Decoding, schema generation and the tests all read it; nothing
 * else may restate these limits.  Pure data: no code except a counter.
 */
#include <stdint.h>

#include "producer/event_int.h"

#define NAME_MAX_B   255   /* names: tool, template, cluster, user, host, distributor id */
#define CMD_MAX_B    32768 /* command, command template */
#define MSG_MAX_B    4096  /* messages, paths */
#define TAIL_MAX_B   16384 /* stdout/stderr tails */
#define BATCH_MAX    1000  /* items, tasks, templates */
#define ID_MAX       INT64_MAX
#define I32_MAX      INT32_MAX
#define RES_MAX_B    16384 /* compact JSON of a resources object */
#define MAP_MAX      1000  /* entries of attributes / resource_scales */
#define UPSTREAM_MAX 10000

/* clang-format off */
#define F_INT(n, lo, hi, d)   {.name = (n), .kind = JM_FK_INT, .min = (lo), .max = (hi), .doc = (d)}
#define F_ID(n, d)            F_INT(n, 1, ID_MAX, d)
#define F_ID_N(n, d)          {.name = (n), .kind = JM_FK_INT, .flags = JM_F_NULLABLE, .min = 1, .max = ID_MAX, .doc = (d)}
#define F_BOOL(n, d)          {.name = (n), .kind = JM_FK_BOOL, .doc = (d)}
#define F_STR(n, lo, hi, d)   {.name = (n), .kind = JM_FK_STR, .min = (lo), .max = (hi), .doc = (d)}
#define F_STR_N(n, lo, hi, d) {.name = (n), .kind = JM_FK_STR, .flags = JM_F_NULLABLE, .min = (lo), .max = (hi), .doc = (d)}
#define F_HEX(n, d)           {.name = (n), .kind = JM_FK_HEX32, .doc = (d)}
#define F_STATUS(n, s, d)     {.name = (n), .kind = JM_FK_STATUS, .set = (s), .doc = (d)}
#define F_ENUM(n, c, d)       {.name = (n), .kind = JM_FK_ENUM, .choices = (c), .doc = (d)}
#define F_KIND(n, k, hi, d)   {.name = (n), .kind = (k), .max = (hi), .doc = (d)}
#define F_ARR(n, lo, hi, e, d) {.name = (n), .kind = JM_FK_ARRAY, .min = (lo), .max = (hi), .elem = (e), .doc = (d)}
#define F_OBJ(n, f, d)        {.name = (n), .kind = JM_FK_OBJECT, .fields = (f), .doc = (d)}
#define F_OBJ_N(n, f, d)      {.name = (n), .kind = JM_FK_OBJECT, .flags = JM_F_NULLABLE, .fields = (f), .doc = (d)}
#define F_END                 {.name = NULL}
/* clang-format on */

/* Array elements. */
static const jm_field_spec_t e_arg = F_STR(NULL, 1, NAME_MAX_B, "argument name");
static const jm_field_spec_t e_queue = F_STR(NULL, 1, NAME_MAX_B, "queue name");
static const jm_field_spec_t e_task_id = F_ID(NULL, "task id");

static const char *const resume_modes[] = {"none", "cold", "hot", NULL};
static const char *const hand_over_modes[] = {"cold", "hot", NULL};

const char *const jm_producer_kind_names[JM_PRODUCER__CNT + 1] = {"client", "distributor", "worker",
                                                                  "reaper", "fsm",         NULL};

/* ---- envelope ---- */
static const jm_field_spec_t producer_fields[] = {
    F_ENUM("kind", jm_producer_kind_names, "who published the event"),
    F_STR("host", 0, NAME_MAX_B, "publisher host name"),
    F_INT("pid", 0, I32_MAX, "publisher process id"),
    F_END,
};

const jm_field_spec_t jm_envelope_spec[] = {
    F_INT("v", JM_EVENT_VERSION, JM_EVENT_VERSION, "schema version"),
    {.name = "id", .kind = JM_FK_UUID, .doc = "lower-case UUID; the dedup key"},
    F_STR("type", 1, 64, "event type"),
    F_OBJ("producer", producer_fields, "publisher identity"),
    {.name = "ts", .kind = JM_FK_TS, .doc = "UTC timestamp; the only clock the FSM uses"},
    F_ID("workflow_id", "workflow id; the partition key"),
    {.name = "payload", .kind = JM_FK_PAYLOAD, .doc = "per-type payload"},
    F_END,
};

/* ---- shared payload parts ---- */
#define RUN_ID         F_ID("run_id", "workflow run id")
#define TI_ID          F_ID("ti_id", "task instance id")
#define NEXT_REPORT    F_INT("next_report_s", 1, I32_MAX, "seconds until the next report is due")
#define MCR(d)         F_INT("max_concurrently_running", 0, I32_MAX, d)
#define TAIL(n)        F_STR(n, 0, TAIL_MAX_B, "last bytes of the stream")
#define ITEMS(e)       F_ARR("items", 1, BATCH_MAX, e, "task instances")
#define NAME(n, d)     F_STR(n, 1, NAME_MAX_B, d)
#define STR_LIST(n, e) F_ARR(n, 0, BATCH_MAX, e, "argument names")
#define OPERATOR       NAME("user", "operator's user name (checked against the workflow's runs)")

static const jm_field_spec_t usage_fields[] = {
    F_INT("wall_ms", 0, ID_MAX, "wall-clock time"),
    F_INT("cpu_ms", 0, ID_MAX, "user + system CPU time"),
    F_INT("maxrss_kb", 0, ID_MAX, "peak resident set size"),
    F_END,
};
#define USAGE F_OBJ("usage", usage_fields, "resource usage of the command")

static const jm_field_spec_t template_fields[] = {
    NAME("name", "task template name"),
    F_HEX("hash", "template version hash"),
    F_STR("command_template", 1, CMD_MAX_B, "command with {placeholders}"),
    STR_LIST("node_args", &e_arg),
    STR_LIST("task_args", &e_arg),
    STR_LIST("op_args", &e_arg),
    F_ID("array_id", "array of this template in the workflow"),
    MCR("array concurrency limit (0 = unlimited)"),
    F_END,
};
static const jm_field_spec_t e_template = F_OBJ(NULL, template_fields, "task template");

static const jm_field_spec_t task_fields[] = {
    F_ID("task_id", "task id"),
    NAME("name", "task name"),
    F_STR("command", 1, CMD_MAX_B, "command line"),
    F_STR_N("template", 1, NAME_MAX_B, "template name, null for a plain command"),
    F_ID_N("array_id", "array id, null for a plain command"),
    F_HEX("node_hash", "node hash"),
    F_INT("max_attempts", 1, 1000, "attempts before the task fails"),
    F_KIND("resources", JM_FK_RESOURCES, RES_MAX_B, "requested compute resources"),
    F_KIND("resource_scales", JM_FK_SCALES, MAP_MAX, "scaling on resource kills"),
    F_ARR("fallback_queues", 0, 100, &e_queue, "queues to try when resources outgrow one"),
    NAME("cluster", "cluster name"),
    F_ARR("upstream", 0, UPSTREAM_MAX, &e_task_id, "upstream task ids"),
    F_END,
};
static const jm_field_spec_t e_task = F_OBJ(NULL, task_fields, "task");

static const jm_field_spec_t ti_fields[] = {TI_ID, F_END};
static const jm_field_spec_t e_ti = F_OBJ(NULL, ti_fields, "task instance");

static const jm_field_spec_t launched_fields[] = {
    TI_ID,
    NAME("distributor_id", "cluster job id"),
    F_END,
};
static const jm_field_spec_t e_launched = F_OBJ(NULL, launched_fields, "launched instance");

static const jm_field_spec_t triaged_fields[] = {
    TI_ID,
    F_STATUS("status", "ZUF", "Z resource kill, U unknown error, F fatal"),
    F_STR("message", 0, MSG_MAX_B, "triage explanation"),
    F_END,
};
static const jm_field_spec_t e_triaged = F_OBJ(NULL, triaged_fields, "triaged instance");

static const jm_field_spec_t overdue_fields[] = {
    TI_ID,
    F_STATUS("status", "TX", "T: R past report-by, X: O never started"),
    F_END,
};
static const jm_field_spec_t e_overdue = F_OBJ(NULL, overdue_fields, "overdue instance");

/* ti.running's fields after ti_id (also a ti.reports item's `running`) */
#define RUNNING_FIELDS                                                                             \
    NAME("host", "execution host"), F_INT("pid", 0, I32_MAX, "process id of the command"),         \
        NAME("distributor_id", "cluster job id"), NEXT_REPORT,                                     \
        F_STR("stdout_path", 0, MSG_MAX_B, "stdout file"),                                         \
        F_STR("stderr_path", 0, MSG_MAX_B, "stderr file")
/* what ti.done and ti.error report of the command's output and usage */
#define OUTPUT_FIELDS TAIL("stdout_tail"), TAIL("stderr_tail"), USAGE

/* ti.reports: one instance's reports, as the worker would publish them (ti.running's payload
 * without ti_id; ti.done/ti.error's as `result`, status D for done). */
static const jm_field_spec_t report_running_fields[] = {
    RUNNING_FIELDS,
    F_END,
};
static const jm_field_spec_t report_result_fields[] = {
    F_STATUS("status", "DEZUF", "D done (ti.done), else the ti.error status"),
    F_INT("exit_code", -255, 255, "exit code, negative = signal (ignored for D)"),
    F_STR("message", 0, MSG_MAX_B, "error message (ignored for D)"),
    OUTPUT_FIELDS,
    F_END,
};
static const jm_field_spec_t report_fields[] = {
    TI_ID,
    F_OBJ_N("running", report_running_fields, "as ti.running, applied first; null = none"),
    F_OBJ_N("result", report_result_fields, "as ti.done / ti.error, applied next; null = none"),
    F_END,
};
static const jm_field_spec_t e_report = F_OBJ(NULL, report_fields, "one instance's reports");

/* ---- payloads ---- */
static const jm_field_spec_t p_workflow_bind[] = {
    NAME("tool", "tool name"),
    F_HEX("workflow_args_hash", "hash of workflow_args"),
    F_HEX("task_hash", "task set hash"),
    F_HEX("dag_hash", "dag hash"),
    F_STR("name", 0, NAME_MAX_B, "workflow name"),
    MCR("workflow concurrency limit (0 = unlimited)"),
    F_INT("total_tasks", 1, I32_MAX, "number of tasks"),
    NAME("user", "user name"),
    F_KIND("attributes", JM_FK_STRMAP, MAP_MAX, "workflow attributes"),
    F_ARR("templates", 0, BATCH_MAX, &e_template, "task templates"),
    F_END,
};
static const jm_field_spec_t p_workflow_bind_tasks[] = {
    F_INT("chunk", 0, I32_MAX, "chunk number"),
    F_ARR("tasks", 1, BATCH_MAX, &e_task, "tasks of this chunk"),
    F_END,
};
static const jm_field_spec_t p_workflow_bound[] = {
    F_INT("total_tasks", 1, I32_MAX, "number of tasks"),
    F_INT("chunks", 1, I32_MAX, "number of bind_tasks chunks"),
    F_END,
};
static const jm_field_spec_t p_run_start[] = {
    RUN_ID,
    NAME("cluster", "cluster name"),
    NAME("user", "user name"),
    NAME("host", "host of the client"),
    F_BOOL("fail_fast", "stop at the first failed task"),
    F_INT("timeout_s", 0, I32_MAX, "run timeout, 0 = none"),
    F_ENUM("resume", resume_modes, "resume mode"),
    F_END,
};
static const jm_field_spec_t p_run_only[] = {RUN_ID, F_END};
static const jm_field_spec_t p_workflow_resume[] = {
    F_ENUM("mode", hand_over_modes, "cold or hot resume"),
    F_END,
};
static const jm_field_spec_t p_workflow_reset[] = {
    F_BOOL("partial", "keep DONE tasks"),
    OPERATOR,
    F_END,
};
static const jm_field_spec_t p_workflow_concurrency[] = {
    MCR("new limit (0 pauses)"),
    F_STR_N("template", 1, NAME_MAX_B, "template name, null = whole workflow"),
    F_END,
};
static const jm_field_spec_t p_task_set_status[] = {
    F_ARR("task_ids", 1, 10000, &e_task_id, "tasks to change"),
    F_STATUS("status", "DG", "new status"),
    F_BOOL("recursive", "also downstream tasks"),
    OPERATOR,
    F_END,
};
static const jm_field_spec_t p_workflow_prune[] = {
    {.name = "finished_before",
     .kind = JM_FK_TS,
     .doc = "the workflow must have finished (D F A H) before this time"},
    F_INT("rows", 1, 1000000, "rows this event deletes at most"),
    NAME("user", "operator's user name (recorded, not checked)"),
    F_END,
};
static const jm_field_spec_t p_run_status[] = {
    RUN_ID,
    F_STATUS("status", "IOR", "run status"),
    F_END,
};
static const jm_field_spec_t p_run_heartbeat[] = {RUN_ID, NEXT_REPORT, F_END};
static const jm_field_spec_t p_ti_batch[] = {RUN_ID, ITEMS(&e_ti), F_END};
static const jm_field_spec_t p_ti_launched[] = {RUN_ID, NEXT_REPORT, ITEMS(&e_launched), F_END};
static const jm_field_spec_t p_ti_submit_failed[] = {
    RUN_ID,
    F_STR("error", 0, MSG_MAX_B, "submission error"),
    ITEMS(&e_ti),
    F_END,
};
static const jm_field_spec_t p_ti_launch_heartbeat[] = {RUN_ID, NEXT_REPORT, ITEMS(&e_ti), F_END};
static const jm_field_spec_t p_ti_triaged[] = {RUN_ID, ITEMS(&e_triaged), F_END};
static const jm_field_spec_t p_ti_reports[] = {RUN_ID, ITEMS(&e_report), F_END};
static const jm_field_spec_t p_ti_running[] = {
    TI_ID,
    RUNNING_FIELDS,
    F_END,
};
static const jm_field_spec_t p_ti_heartbeat[] = {TI_ID, NEXT_REPORT, F_END};
static const jm_field_spec_t p_ti_done[] = {
    TI_ID,
    OUTPUT_FIELDS,
    F_END,
};
static const jm_field_spec_t p_ti_error[] = {
    TI_ID,
    F_STATUS("status", "EZUF", "E error, Z resource kill, U unknown, F fatal"),
    F_INT("exit_code", -255, 255, "exit code, negative = signal"),
    F_STR("message", 0, MSG_MAX_B, "error message"),
    OUTPUT_FIELDS,
    F_END,
};
static const jm_field_spec_t p_reaper_overdue[] = {ITEMS(&e_overdue), F_END};

#define EV(t, n, who, p, d)                                                                        \
    [t] = {.type = (t), .name = (n), .publisher = (who), .payload = (p), .doc = (d)}
const jm_event_spec_t jm_event_specs[JM_EV__CNT] = {
    EV(JM_EV_WORKFLOW_BIND, "workflow.bind", JM_PRODUCER_CLIENT, p_workflow_bind,
       "create or find the workflow and its templates"),
    EV(JM_EV_WORKFLOW_BIND_TASKS, "workflow.bind_tasks", JM_PRODUCER_CLIENT, p_workflow_bind_tasks,
       "one chunk of tasks"),
    EV(JM_EV_WORKFLOW_BOUND, "workflow.bound", JM_PRODUCER_CLIENT, p_workflow_bound,
       "binding is complete once the FSM has every chunk"),
    EV(JM_EV_RUN_START, "run.start", JM_PRODUCER_CLIENT, p_run_start, "start a workflow run"),
    EV(JM_EV_RUN_STOP, "run.stop", JM_PRODUCER_CLIENT, p_run_only,
       "user confirmed Ctrl-C: run -> S"),
    EV(JM_EV_WORKFLOW_RESUME, "workflow.resume", JM_PRODUCER_CLIENT, p_workflow_resume,
       "signal the alive run to hand over (C/H)"),
    EV(JM_EV_WORKFLOW_RESET, "workflow.reset", JM_PRODUCER_CLIENT, p_workflow_reset,
       "reset the workflow's tasks"),
    EV(JM_EV_WORKFLOW_CONCURRENCY, "workflow.concurrency", JM_PRODUCER_CLIENT,
       p_workflow_concurrency, "change a concurrency limit"),
    EV(JM_EV_TASK_SET_STATUS, "task.set_status", JM_PRODUCER_CLIENT, p_task_set_status,
       "operator sets task status"),
    EV(JM_EV_WORKFLOW_PRUNE, "workflow.prune", JM_PRODUCER_CLIENT, p_workflow_prune,
       "delete a finished workflow with its logs, a chunk of rows at a time"),
    EV(JM_EV_RUN_STATUS, "run.status", JM_PRODUCER_DISTRIBUTOR, p_run_status, "start-up handshake"),
    EV(JM_EV_RUN_HEARTBEAT, "run.heartbeat", JM_PRODUCER_DISTRIBUTOR, p_run_heartbeat,
       "the run is alive"),
    EV(JM_EV_TI_INSTANTIATED, "ti.instantiated", JM_PRODUCER_DISTRIBUTOR, p_ti_batch, "Q -> I"),
    EV(JM_EV_TI_LAUNCHED, "ti.launched", JM_PRODUCER_DISTRIBUTOR, p_ti_launched, "I -> O"),
    EV(JM_EV_TI_SUBMIT_FAILED, "ti.submit_failed", JM_PRODUCER_DISTRIBUTOR, p_ti_submit_failed,
       "I -> W"),
    EV(JM_EV_TI_LAUNCH_HEARTBEAT, "ti.launch_heartbeat", JM_PRODUCER_DISTRIBUTOR,
       p_ti_launch_heartbeat, "O stays O, report_by extended"),
    EV(JM_EV_TI_KILLED, "ti.killed", JM_PRODUCER_DISTRIBUTOR, p_ti_batch, "K -> F"),
    EV(JM_EV_TI_TRIAGED, "ti.triaged", JM_PRODUCER_DISTRIBUTOR, p_ti_triaged, "T -> Z/U/F"),
    EV(JM_EV_TI_REPORTS, "ti.reports", JM_PRODUCER_DISTRIBUTOR, p_ti_reports,
       "workers' reports relayed in one event (ti.running, then ti.done / ti.error)"),
    EV(JM_EV_TI_RUNNING, "ti.running", JM_PRODUCER_WORKER, p_ti_running, "the command started"),
    EV(JM_EV_TI_HEARTBEAT, "ti.heartbeat", JM_PRODUCER_WORKER, p_ti_heartbeat,
       "the instance is alive"),
    EV(JM_EV_TI_DONE, "ti.done", JM_PRODUCER_WORKER, p_ti_done, "the command succeeded"),
    EV(JM_EV_TI_ERROR, "ti.error", JM_PRODUCER_WORKER, p_ti_error, "the command failed"),
    EV(JM_EV_REAPER_OVERDUE, "reaper.overdue", JM_PRODUCER_REAPER, p_reaper_overdue,
       "instances past their report-by"),
    EV(JM_EV_REAPER_RUN_LOST, "reaper.run_lost", JM_PRODUCER_REAPER, p_run_only,
       "the run's heartbeat lapsed"),
    EV(JM_EV_REAPER_RUN_TIMEOUT, "reaper.run_timeout", JM_PRODUCER_REAPER, p_run_only,
       "the run's timeout_s passed"),
};

size_t jm_field_count(const jm_field_spec_t *fields)
{
    size_t n = 0;
    while (fields && fields[n].name)
        n++;
    return n;
}
