/*
 * jobmon/jobmon.h — the client model: tools, task templates, tasks, arrays and workflows, their
 * validation, identity and binding (the C face of the workflow file, schemas/workflow.schema.json).
 *
 * Typical use (see examples/api_diamond.c):
 *
 *   jm_tool_t *tool = jm_tool_new("demo");
 *   jm_template_t *tt = jm_template_new(tool, "step", "echo {x}", (const char *[]){"x"}, 1,
 *                                       NULL, 0, NULL, 0, &err);
 *   jm_workflow_t *wf = jm_workflow_new(tool, "my-args");
 *   jm_task_t *a = jm_workflow_add_task(wf, tt, (jm_kv_t[]){{"x", "1"}}, 1, &err);
 *   ...
 *   jm_task_add_upstream(b, a, &err);
 *   jm_workflow_validate(wf, &err);          // everything is checked before anything is sent
 *   jm_workflow_bind(wf, producer, &res, &err);
 *   jm_workflow_destroy(wf); jm_tool_destroy(tool);
 *
 * Ownership: a tool owns its templates; a workflow owns its tasks, arrays and defaults.  A
 * workflow borrows its tool: destroy the workflow first (a workflow loaded from a file owns its
 * tool).  Task, array and defaults handles are borrowed from the workflow and valid until it is
 * destroyed.  All strings passed in are copied.  Nothing here is thread-safe: one thread per
 * workflow.
 *
 * Precedence of defaults (cluster, compute resources overlaid key by key, resource scales
 * overlaid key by key, fallback queues, max_attempts): task > array > template > workflow > tool
 * > built-in (cluster "dummy", max_attempts 3, scales {memory 0.5, runtime 0.5}, concurrency
 * 10,000 for the workflow and each template's array).
 */
#ifndef JOBMON_JOBMON_H
#define JOBMON_JOBMON_H

#include <stddef.h>
#include <stdint.h>

#include "jobmon/common.h"
#include "jobmon/event.h"
#include "jobmon/hash.h"
#include "jobmon/producer.h"

#define JM_DEFAULT_MAX_ATTEMPTS  3
#define JM_DEFAULT_CONCURRENCY   10000
#define JM_DEFAULT_CLUSTER       "dummy"
#define JM_DEFAULT_SCALE         0.5
#define JM_ARG_VALUE_MAX         2048         /* bytes of one argument value */
#define JM_NAME_MAX              255          /* bytes of a tool/template/task/workflow name */
#define JM_TASK_NAME_DEFAULT_MAX 249          /* default task names are truncated to this */
#define JM_COMMAND_MAX           32768        /* bytes of a rendered command */
#define JM_UPSTREAM_MAX          10000        /* upstream tasks of one task (event contract) */
#define JM_TEMPLATES_MAX         1000         /* templates per workflow (event contract) */
#define JM_BIND_CHUNK_TASKS      500          /* tasks per workflow.bind_tasks event */
#define JM_BIND_CHUNK_BYTES      (800 * 1000) /* target encoded size of one event */

typedef struct jm_tool_s jm_tool_t;
typedef struct jm_template_s jm_template_t;
typedef struct jm_task_s jm_task_t;
typedef struct jm_array_s jm_array_t;
typedef struct jm_workflow_s jm_workflow_t;
typedef struct jm_defaults_s jm_defaults_t;

/* ---- defaults (one set per level: tool, workflow, template, array, task) ---------------------
 * Every setter copies its arguments.  Values are checked when the workflow is validated (units,
 * queue limits), except where said. */

/* Cluster name ("dummy", "sequential", "multiprocess", "slurm"). */
void jm_defaults_set_cluster(jm_defaults_t *d, const char *cluster);
/* One compute resource as text: "queue", "memory" ("64M", "8G", bare number = GiB), "runtime"
 * ("1h", "90m", "HH:MM:SS", bare number = seconds), "cores", or any plugin key.  Overlaid key by
 * key over lower levels. */
void jm_defaults_set_resource(jm_defaults_t *d, const char *key, const char *value);
void jm_defaults_set_resource_int(jm_defaults_t *d, const char *key, int64_t value);
/* Fractional increase on a resource kill (0.5 = +50 %).  JM_ERR_INVALID if scale < 0. */
jm_rc_t jm_defaults_set_scale(jm_defaults_t *d, const char *key, double scale, jm_err_t *err);
/* Append a fallback queue (the list of the highest level that has one wins). */
void jm_defaults_add_fallback_queue(jm_defaults_t *d, const char *queue);
/* Total attempts, 1 … 1000.  JM_ERR_INVALID otherwise. */
jm_rc_t jm_defaults_set_max_attempts(jm_defaults_t *d, int max_attempts, jm_err_t *err);

/* ---- tools and templates ------------------------------------------------------------------ */

/* A new tool (organisational grouping, get-or-create by name on the server side).  Returns a new
 * tool, caller destroys after every workflow using it.  NULL if the name is invalid (empty, over
 * 255 bytes). */
jm_tool_t *jm_tool_new(const char *name);
/* Free the tool and its templates.  Accepts NULL. */
void jm_tool_destroy(jm_tool_t *tool);
/* Borrowed, valid until the tool is destroyed. */
const char *jm_tool_name(const jm_tool_t *tool);
jm_defaults_t *jm_tool_defaults(jm_tool_t *tool);

/* A task template owned by `tool`: `command_template` has {placeholders} ({{ and }} are literal
 * braces); every placeholder must be declared exactly once in node_args, task_args or op_args and
 * every declared name must appear; `name` is reserved.  Returns a borrowed template (freed with
 * the tool), or NULL with JM_ERR_INVALID in `err` (the message names the offending placeholder),
 * also when the tool already has a template of that name. */
jm_template_t *jm_template_new(jm_tool_t *tool, const char *name, const char *command_template,
                               const char *const *node_args, size_t n_node,
                               const char *const *task_args, size_t n_task,
                               const char *const *op_args, size_t n_op, jm_err_t *err);
/* The tool's template of that name, borrowed, or NULL. */
jm_template_t *jm_tool_template(jm_tool_t *tool, const char *name);
const char *jm_template_name(const jm_template_t *tt);
/* Template version hash (name, command template, the split of its arguments). */
jm_hash_t jm_template_hash(const jm_template_t *tt);
jm_defaults_t *jm_template_defaults(jm_template_t *tt);
/* Concurrency limit of the template's array in every workflow (0 = unlimited; default 10,000). */
void jm_template_set_max_concurrently_running(jm_template_t *tt, int64_t limit);

/* ---- workflows and tasks ------------------------------------------------------------------ */

/* A new, empty workflow of `tool` (borrowed: it must outlive the workflow).  `workflow_args`
 * is the resume identity; NULL means a random UUID (a fresh workflow every time).  Returns a new
 * workflow, caller destroys. */
jm_workflow_t *jm_workflow_new(jm_tool_t *tool, const char *workflow_args);
/* Free the workflow, its tasks and arrays (and its tool when it owns it).  Accepts NULL. */
void jm_workflow_destroy(jm_workflow_t *wf);
/* Setters copy.  Name: 0 … 255 bytes.  JM_ERR_INVALID otherwise. */
jm_rc_t jm_workflow_set_name(jm_workflow_t *wf, const char *name, jm_err_t *err);
/* 0 = unlimited; default 10,000. */
void jm_workflow_set_max_concurrently_running(jm_workflow_t *wf, int64_t limit);
/* Informational key → value (value ≤ 255 bytes); a key set twice keeps the last value. */
jm_rc_t jm_workflow_set_attribute(jm_workflow_t *wf, const char *key, const char *value,
                                  jm_err_t *err);
jm_defaults_t *jm_workflow_defaults(jm_workflow_t *wf);
/* Borrowed accessors. */
jm_tool_t *jm_workflow_tool(jm_workflow_t *wf);
const char *jm_workflow_args(const jm_workflow_t *wf);
size_t jm_workflow_task_count(const jm_workflow_t *wf);
/* The i-th task in insertion order, or the task of that name; borrowed; NULL if none. */
jm_task_t *jm_workflow_task(jm_workflow_t *wf, size_t i);
jm_task_t *jm_workflow_find_task(jm_workflow_t *wf, const char *name);

/* A task from a template: `args` supplies every placeholder (node, task and op args) exactly
 * once; values ≤ 2048 bytes.  The template's tool must be the workflow's tool.  Returns a
 * borrowed task or NULL with JM_ERR_INVALID (e.g. `template "t": missing arg "year"`). */
jm_task_t *jm_workflow_add_task(jm_workflow_t *wf, jm_template_t *tt, const jm_kv_t *args, size_t n,
                                jm_err_t *err);
/* A plain-command task (its own pseudo-template "command"). */
jm_task_t *jm_workflow_add_command(jm_workflow_t *wf, const char *command, jm_err_t *err);

/* Values of one argument for jm_workflow_add_array: a node arg with several values multiplies
 * the tasks; task and op args take exactly one value. */
typedef struct {
    const char *name;
    const char *const *values;
    size_t n_values;
} jm_arg_values_t;
/* Tasks for the cross product of node-arg value lists (Jobmon's create_tasks).  Tasks get
 * default names (`<template>_<arg>-<value>…`, or `<name_prefix>_…` when name_prefix is not
 * NULL).  Returns a borrowed array whose defaults apply to its tasks; NULL with JM_ERR_INVALID
 * on a missing/extra arg, an empty list, or more than 2^31 tasks. */
jm_array_t *jm_workflow_add_array(jm_workflow_t *wf, jm_template_t *tt, const jm_arg_values_t *args,
                                  size_t n, const char *name_prefix, jm_err_t *err);
jm_defaults_t *jm_array_defaults(jm_array_t *arr);
size_t jm_array_task_count(const jm_array_t *arr);
/* The i-th task of the array (cross-product order: the last node arg varies fastest). */
jm_task_t *jm_array_task(jm_array_t *arr, size_t i);
/* Make `up` an upstream of every task of the array. */
jm_rc_t jm_array_add_upstream(jm_array_t *arr, jm_task_t *up, jm_err_t *err);

/* Task name (1 … 255 bytes, no / \ ' " or space, not starting with a digit). */
jm_rc_t jm_task_set_name(jm_task_t *task, const char *name, jm_err_t *err);
/* Borrowed, valid until the workflow changes. */
const char *jm_task_name(const jm_task_t *task);
jm_defaults_t *jm_task_defaults(jm_task_t *task);
/* `up` must run before `task`.  Both must belong to the same workflow (JM_ERR_INVALID
 * otherwise); a repeated edge is ignored; cycles are found by jm_workflow_validate. */
jm_rc_t jm_task_add_upstream(jm_task_t *task, jm_task_t *up, jm_err_t *err);
jm_rc_t jm_task_add_downstream(jm_task_t *task, jm_task_t *down, jm_err_t *err);
/* The rendered command, new string, caller frees. */
char *jm_task_command(const jm_task_t *task);

/* Check everything before anything is sent: non-empty workflow, unique task names, no cycle
 * (iterative, names a task on the cycle), no duplicate node args within a template, no duplicate
 * task, ≤ 10,000 upstreams per task, commands ≤ 32 kB, known cluster and queue for every task
 * (resources over the queue limits are coerced with a warning), valid units.  Then computes the
 * identity (hashes and ids).  JM_ERR_INVALID with a message naming the task otherwise.
 * Idempotent; any change to the workflow invalidates it. */
jm_rc_t jm_workflow_validate(jm_workflow_t *wf, jm_err_t *err) JM_WUR;

/* Identity, valid after a successful jm_workflow_validate (JM_ASSERT otherwise). */
int64_t jm_workflow_id(const jm_workflow_t *wf);
jm_hash_t jm_workflow_task_hash(const jm_workflow_t *wf); /* task set hash */
jm_hash_t jm_workflow_dag_hash(const jm_workflow_t *wf);
jm_hash_t jm_workflow_args_hash(const jm_workflow_t *wf);
int64_t jm_task_id(const jm_task_t *task);
jm_hash_t jm_task_hash(const jm_task_t *task);
jm_hash_t jm_task_node_hash(const jm_task_t *task);
/* The array id of a template in this workflow (one per template version per workflow). */
int64_t jm_workflow_array_id(const jm_workflow_t *wf, const jm_template_t *tt);
/* Effective settings of a validated task: borrowed strings valid until the workflow changes;
 * resources as compact JSON with sorted keys (new string, caller frees). */
int jm_task_max_attempts(const jm_task_t *task);
const char *jm_task_cluster(const jm_task_t *task);
char *jm_task_resources_json(const jm_task_t *task);

/* ---- the workflow file (schemas/workflow.schema.json) ------------------------------------- */

/* Load and check a workflow file (not yet validated as a DAG: call jm_workflow_validate).
 * Returns a new workflow that owns its tool, caller destroys; NULL with JM_ERR_INVALID and a
 * message naming the JSON path (e.g. `tasks[12].upstream[0]: no task named "prep_3"`), or
 * JM_ERR_IO when the file cannot be read. */
jm_workflow_t *jm_workflow_load_file(const char *path, jm_err_t *err);
jm_workflow_t *jm_workflow_load_buffer(const void *buf, size_t len, jm_err_t *err);

/* ---- bind ----------------------------------------------------------------------------------- */

typedef struct {
    int64_t workflow_id;
    size_t total_tasks;
    size_t chunks; /* workflow.bind_tasks events */
    size_t events; /* all events published */
} jm_bind_result_t;

/* The pure part of binding: an iterator producing the events in order (workflow.bind, the
 * workflow.bind_tasks chunks in topological order, workflow.bound), one chunk built at a time.
 * `wf` must be validated and unchanged while the iterator lives.  `user` (NULL = $USER) is
 * copied.  Returns a new iterator, caller destroys. */
typedef struct jm_bind_iter_s jm_bind_iter_t;
jm_bind_iter_t *jm_bind_iter_new(jm_workflow_t *wf, const char *user);
/* Next event: JM_OK with *out a new event (caller destroys), or JM_OK with *out NULL after the
 * last one. */
jm_rc_t jm_bind_next_event(jm_bind_iter_t *it, jm_event_t **out, jm_err_t *err) JM_WUR;
void jm_bind_iter_destroy(jm_bind_iter_t *it); /* accepts NULL */

/* Validate (if needed) and publish every bind event with `p` (borrowed), then flush.  Returns
 * JM_OK only when every message was acknowledged; JM_ERR_INVALID if the workflow is not valid,
 * JM_ERR_UNAVAILABLE when the producer could not deliver.  `out` (may be NULL) gets the
 * summary. */
jm_rc_t jm_workflow_bind(jm_workflow_t *wf, jm_producer_t *p, jm_bind_result_t *out,
                         jm_err_t *err) JM_WUR;

#endif
