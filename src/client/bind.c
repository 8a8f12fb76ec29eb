/*
 * bind.c — a validated workflow as events: `workflow.bind` (header and templates), then
 * `workflow.bind_tasks` chunks (≤ 500 tasks and ≤ ~800 kB encoded each, tasks in topological
 * order so every upstream id was bound in an earlier or the same chunk), then `workflow.bound`.
 *
 * The iterator is pure (no I/O) and builds one chunk at a time, so memory stays bounded for
 * 1.5M tasks; jm_workflow_bind sends its events and returns once the producer confirms every
 * delivery.  Deliberately not here: resuming rules (the FSM decides what an existing workflow
 * means), Kafka details (producer.c).
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_int.h"
#include "jobmon/log.h"
#include "jobmon/producer.h"

#define BIND_FLUSH_TIMEOUT_MS 120000
/* Upper bound of a task object's JSON apart from its strings, settings and upstream ids. */
#define TASK_FIXED_BYTES 260
#define ID_BYTES         21 /* 19 digits, a comma, slack */
#define EVENT_OVERHEAD   1024

enum { PH_HEADER, PH_CHUNKS, PH_BOUND, PH_DONE };

struct jm_bind_iter_s {
    jm_workflow_t *wf;
    char *user;
    int phase;
    uint32_t pos; /* next index into wf->topo */
    uint32_t chunk;
    char *cmd; /* render buffer */
    size_t cmd_cap;
};

static const char *default_user(void)
{
    const char *u = getenv("USER");
    if (u && *u)
        return u;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_name && *pw->pw_name ? pw->pw_name : "unknown";
}

jm_bind_iter_t *jm_bind_iter_new(jm_workflow_t *wf, const char *user)
{
    JM_ASSERT(wf->valid);
    jm_bind_iter_t *it = jm_calloc(1, sizeof(*it));
    it->wf = wf;
    it->user = jm_strndup(user ? user : default_user(), JM_NAME_MAX);
    it->phase = PH_HEADER;
    return it;
}

void jm_bind_iter_destroy(jm_bind_iter_t *it)
{
    if (!it)
        return;
    free(it->cmd);
    free(it->user);
    free(it);
}

static json_t *hex(jm_hash_t h)
{
    char s[JM_HASH_HEX_LEN + 1];
    jm_hash_hex(h, s);
    return json_string(s);
}

static json_t *str_list(char *const *names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

static json_t *header_payload(jm_bind_iter_t *it)
{
    jm_workflow_t *wf = it->wf;
    json_t *tmpls = json_array();
    for (uint32_t i = 0; i < wf->n_tmpls; i++) {
        const jm_template_t *tt = wf->tmpls[i];
        json_array_append_new(
            tmpls, json_pack("{s:s, s:o, s:s, s:o, s:o, s:o, s:I, s:I}", "name", tt->name, "hash",
                             hex(tt->hash), "command_template", tt->command_template, "node_args",
                             str_list(tt->args, tt->n_node), "task_args",
                             str_list(tt->args + tt->n_node, tt->n_task), "op_args",
                             str_list(tt->args + tt->n_node + tt->n_task, tt->n_op), "array_id",
                             (json_int_t)wf->array_ids[i], "max_concurrently_running",
                             (json_int_t)tt->max_concurrently_running));
    }
    json_t *p =
        json_pack("{s:s, s:o, s:o, s:o, s:s, s:I, s:I, s:s, s:O, s:o}", "tool", wf->tool->name,
                  "workflow_args_hash", hex(wf->args_hash), "task_hash", hex(wf->task_set_hash),
                  "dag_hash", hex(wf->dag_hash), "name", wf->name, "max_concurrently_running",
                  (json_int_t)wf->max_concurrently_running, "total_tasks", (json_int_t)wf->n_tasks,
                  "user", it->user, "attributes", wf->attributes, "templates", tmpls);
    JM_ASSERT(p);
    return p;
}

/* Upper bound of the JSON-escaped length of s (jansson escapes " \ and control characters). */
static size_t escaped_len(const char *s)
{
    size_t n = 2;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p == '"' || *p == '\\') ? 2 : *p < 0x20 ? 6 : 1;
    return n;
}

static const char *render(jm_bind_iter_t *it, const jm_task_t *t)
{
    const jm_template_t *tt = jm_task_template(t);
    if (!tt)
        return jm_wf_str(it->wf, (uint32_t)t->args);
    const char *vals[tt->n_args + 1];
    jm_task_values(t, vals);
    size_t len = jm_template_render_len(tt, vals);
    if (len + 1 > it->cmd_cap) {
        it->cmd_cap = len + 1 > 4096 ? len + 1 : 4096;
        it->cmd = jm_realloc(it->cmd, it->cmd_cap);
    }
    jm_template_render(tt, vals, it->cmd);
    return it->cmd;
}

static json_t *task_json(jm_bind_iter_t *it, const jm_task_t *t, const char *cmd)
{
    jm_workflow_t *wf = it->wf;
    const jm_settings_t *s = &wf->settings[t->settings];
    const jm_template_t *tt = jm_task_template(t);
    json_t *up = json_array();
    for (uint32_t e = wf->up_off[t->idx]; e < wf->up_off[t->idx + 1]; e++)
        json_array_append_new(up, json_integer(jm_wf_task(wf, wf->up[e])->id));
    json_t *o = json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:i, s:O, s:O, s:O, s:s, s:o}", "task_id",
                          (json_int_t)t->id, "name", jm_wf_str(wf, t->name), "command", cmd,
                          "template", tt ? json_string(tt->name) : json_null(), "array_id",
                          tt ? json_integer(wf->array_ids[t->tmpl]) : json_null(), "node_hash",
                          hex(t->node), "max_attempts", s->max_attempts, "resources", s->resources,
                          "resource_scales", s->scales, "fallback_queues", s->fallback_queues,
                          "cluster", s->cluster, "upstream", up);
    JM_ASSERT(o);
    return o;
}

static size_t task_size(jm_bind_iter_t *it, const jm_task_t *t, const char *cmd)
{
    jm_workflow_t *wf = it->wf;
    const jm_template_t *tt = jm_task_template(t);
    return TASK_FIXED_BYTES + escaped_len(cmd) + escaped_len(jm_wf_str(wf, t->name)) +
           (tt ? escaped_len(tt->name) : 0) + wf->settings[t->settings].json_len +
           (size_t)(wf->up_off[t->idx + 1] - wf->up_off[t->idx]) * ID_BYTES;
}

static json_t *chunk_payload(jm_bind_iter_t *it)
{
    jm_workflow_t *wf = it->wf;
    json_t *tasks = json_array();
    size_t bytes = EVENT_OVERHEAD;
    while (it->pos < wf->n_tasks && json_array_size(tasks) < JM_BIND_CHUNK_TASKS) {
        const jm_task_t *t = jm_wf_task(wf, wf->topo[it->pos]);
        const char *cmd = render(it, t);
        size_t sz = task_size(it, t, cmd);
        if (json_array_size(tasks) > 0 && bytes + sz > JM_BIND_CHUNK_BYTES)
            break;
        bytes += sz;
        json_array_append_new(tasks, task_json(it, t, cmd));
        it->pos++;
    }
    json_t *p = json_pack("{s:i, s:o}", "chunk", (int)it->chunk, "tasks", tasks);
    JM_ASSERT(p);
    it->chunk++;
    return p;
}

jm_rc_t jm_bind_next_event(jm_bind_iter_t *it, jm_event_t **out, jm_err_t *err)
{
    (void)err;
    jm_workflow_t *wf = it->wf;
    JM_ASSERT(wf->valid);
    *out = NULL;
    switch (it->phase) {
    case PH_HEADER:
        *out = jm_event_new(JM_EV_WORKFLOW_BIND, wf->id, header_payload(it));
        it->phase = PH_CHUNKS;
        break;
    case PH_CHUNKS:
        *out = jm_event_new(JM_EV_WORKFLOW_BIND_TASKS, wf->id, chunk_payload(it));
        if (it->pos >= wf->n_tasks)
            it->phase = PH_BOUND;
        break;
    case PH_BOUND:
        *out = jm_event_new(JM_EV_WORKFLOW_BOUND, wf->id,
                            json_pack("{s:I, s:I}", "total_tasks", (json_int_t)wf->n_tasks,
                                      "chunks", (json_int_t)it->chunk));
        it->phase = PH_DONE;
        break;
    default: break;
    }
    return JM_OK;
}

jm_rc_t jm_workflow_bind(jm_workflow_t *wf, jm_producer_t *p, jm_bind_result_t *out, jm_err_t *err)
{
    jm_rc_t rc;
    jm_bind_iter_t *it = NULL;
    jm_event_t *ev = NULL;
    jm_bind_result_t res = {0};
    if ((rc = jm_workflow_validate(wf, err)) != JM_OK)
        goto out;
    it = jm_bind_iter_new(wf, NULL);
    res.workflow_id = wf->id;
    res.total_tasks = wf->n_tasks;
    for (;;) {
        if ((rc = jm_bind_next_event(it, &ev, err)) != JM_OK || !ev)
            break;
        if ((rc = jm_producer_send(p, ev, err)) != JM_OK)
            goto out;
        if (ev->type == JM_EV_WORKFLOW_BIND_TASKS)
            res.chunks++;
        res.events++;
        jm_event_destroy(ev);
        ev = NULL;
    }
    if (rc != JM_OK)
        goto out;
    if ((rc = jm_producer_flush(p, BIND_FLUSH_TIMEOUT_MS, err)) != JM_OK) {
        rc = JM_ERR_UNAVAILABLE;
        goto out;
    }
    jm_log(JM_LOG_INFO, "client", "workflow %lld bound: %zu tasks in %zu chunks",
           (long long)res.workflow_id, res.total_tasks, res.chunks);
out:
    if (rc == JM_ERR_RETRY) { /* the queue stayed full: Kafka is not taking our messages */
        rc = JM_ERR_UNAVAILABLE;
        if (err)
            err->rc = rc;
    }
    jm_event_destroy(ev);
    jm_bind_iter_destroy(it);
    if (out)
        *out = res;
    return rc;
}
