/*
 * bind.c — a validated workflow as events: `workflow.bind` (header and templates), then
 * `workflow.bind_tasks` chunks (≤ 500 tasks and ≤ ~800 kB encoded each, tasks in topological
 * order so every upstream id was bound in an earlier or the same chunk), then `workflow.bound`.
 *
 * The iterator is pure (no I/O) and builds one chunk at a time, so memory stays bounded for
 * 1.5M tasks; jm_workflow_bind sends its events and returns once the producer confirms every
 * delivery.
 *
 * Two encoders of the same events: jm_bind_next_event builds jansson objects (the reference, used
 * by tests and benchmarks); jm_bind_next_encoded, which jm_workflow_bind sends, writes the
 * bind_tasks chunks straight to bytes (4-5x less CPU at 1.5M tasks than build + validate + dump).
 * It validates as much as jm_producer_send would: the header and `bound` events go through
 * jm_event_validate; in chunks, the first task with each distinct settings set (resources, scales,
 * fallback queues, cluster) is checked by jm_event_validate as a one-task chunk, and every task's
 * own fields (ids, names, command, upstream count, UTF-8) are checked against the catalogue's
 * bounds here.  tests/check_client.c proves both encoders give equal JSON.
 *
 * Deliberately not here: resuming rules (the FSM decides what an existing workflow means), Kafka
 * details (producer.c).
 */
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
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
    char **settings_json; /* fast encoder: per settings index, its fields as JSON, or NULL */
    char *buf;            /* fast encoder: the chunk being written */
    size_t len, cap;
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
    if (it->settings_json)
        for (uint32_t i = 0; i < it->wf->n_settings; i++)
            free(it->settings_json[i]);
    free(it->settings_json);
    free(it->buf);
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

/* ---- the fast encoder -------------------------------------------------------------------- */

static void buf_reserve(jm_bind_iter_t *it, size_t more)
{
    if (it->len + more <= it->cap)
        return;
    size_t cap = it->cap ? it->cap : 1 << 20;
    while (cap < it->len + more)
        cap *= 2;
    it->buf = jm_realloc(it->buf, cap);
    it->cap = cap;
}

static void buf_put(jm_bind_iter_t *it, const char *s, size_t n)
{
    buf_reserve(it, n);
    memcpy(it->buf + it->len, s, n);
    it->len += n;
}

#define BUF_LIT(it, lit) buf_put((it), (lit), sizeof(lit) - 1)

static void buf_int(jm_bind_iter_t *it, int64_t v)
{
    buf_reserve(it, 24);
    it->len += (size_t)snprintf(it->buf + it->len, 24, "%" PRId64, v);
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 (overlong, surrogate, > U+10FFFF, cut). */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* s as a JSON string, escaped as jansson does.  -1 when s is not valid UTF-8. */
static int buf_str(jm_bind_iter_t *it, const char *s)
{
    static const char hexd[] = "0123456789ABCDEF"; /* as jansson */
    size_t n = strlen(s);
    buf_reserve(it, 6 * n + 2);
    char *o = it->buf + it->len;
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned c = *p;
        if (c >= 0x80) {
            size_t k = utf8_seq(p);
            if (!k)
                return -1;
            memcpy(o, p, k);
            o += k;
            p += k;
            continue;
        }
        p++;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c >= 0x20) {
            *o++ = (char)c;
        } else {
            *o++ = '\\';
            switch (c) {
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hexd[c >> 4];
                *o++ = hexd[c & 15];
            }
        }
    }
    *o++ = '"';
    it->len = (size_t)(o - it->buf);
    return 0;
}

/* The envelope of a new event of `type` with payload {}, split before the payload: the caller
 * appends the payload and "}".  Returns the prefix (new string) and its length. */
static char *envelope_prefix(jm_workflow_t *wf, jm_event_type_t type, size_t *len)
{
    static const char tail[] = "\"payload\":{}}";
    jm_event_t *ev = jm_event_new(type, wf->id, NULL);
    size_t n;
    char *s = jm_event_encode(ev, &n);
    jm_event_destroy(ev);
    /* jansson keeps insertion order and event_to_json packs the payload last */
    JM_ASSERT(n > sizeof(tail) && strcmp(s + n - (sizeof(tail) - 1), tail) == 0);
    *len = n - 3; /* keep "payload": */
    return s;
}

/* The settings part of a task object, from "max_attempts" to "cluster", checked once through
 * the full validator as a one-task chunk with task t.  NULL with JM_ERR_INVALID in err. */
static const char *settings_json(jm_bind_iter_t *it, const jm_task_t *t, const char *cmd,
                                 jm_err_t *err)
{
    jm_workflow_t *wf = it->wf;
    if (!it->settings_json)
        it->settings_json = jm_calloc(wf->n_settings ? wf->n_settings : 1, sizeof(char *));
    if (it->settings_json[t->settings])
        return it->settings_json[t->settings];
    const jm_settings_t *st = &wf->settings[t->settings];
    json_t *one = json_pack("{s:i, s:[o]}", "chunk", 0, "tasks", task_json(it, t, cmd));
    JM_ASSERT(one);
    jm_event_t *ev = jm_event_new(JM_EV_WORKFLOW_BIND_TASKS, wf->id, one);
    jm_rc_t rc = jm_event_validate(ev, NULL, err);
    jm_event_destroy(ev);
    if (rc != JM_OK)
        return NULL;
    json_t *cluster = json_string(st->cluster);
    JM_ASSERT(cluster);
    char *r = json_dumps(st->resources, JSON_COMPACT), *sc = json_dumps(st->scales, JSON_COMPACT),
         *fq = json_dumps(st->fallback_queues, JSON_COMPACT),
         *cl = json_dumps(cluster, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(cluster);
    JM_ASSERT(r && sc && fq && cl);
    it->settings_json[t->settings] =
        jm_asprintf("\"max_attempts\":%d,\"resources\":%s,\"resource_scales\":%s,"
                    "\"fallback_queues\":%s,\"cluster\":%s,",
                    st->max_attempts, r, sc, fq, cl);
    free(r);
    free(sc);
    free(fq);
    free(cl);
    return it->settings_json[t->settings];
}

static jm_rc_t bad_task(jm_bind_iter_t *it, const jm_task_t *t, const char *what, jm_err_t *err)
{
    return jm_err_set(err, JM_ERR_INVALID, "task \"%s\": %s", jm_wf_str(it->wf, t->name), what);
}

/* One task object appended to it->buf, with the catalogue's checks of the task's own fields. */
static jm_rc_t put_task(jm_bind_iter_t *it, const jm_task_t *t, const char *cmd, jm_err_t *err)
{
    jm_workflow_t *wf = it->wf;
    const jm_template_t *tt = jm_task_template(t);
    const char *name = jm_wf_str(wf, t->name), *sj;
    size_t name_len = strlen(name), cmd_len = strlen(cmd);
    uint32_t n_up = wf->up_off[t->idx + 1] - wf->up_off[t->idx];
    char hx[JM_HASH_HEX_LEN + 1];
    if (t->id <= 0)
        return bad_task(it, t, "task id not positive", err);
    if (name_len < 1 || name_len > JM_NAME_MAX)
        return bad_task(it, t, "name must have 1 to 255 bytes", err);
    if (cmd_len < 1 || cmd_len > JM_COMMAND_MAX)
        return bad_task(it, t, "command must have 1 to 32768 bytes", err);
    if (n_up > JM_UPSTREAM_MAX)
        return bad_task(it, t, "more than 10000 upstream tasks", err);
    if (!(sj = settings_json(it, t, cmd, err)))
        return err ? err->rc : JM_ERR_INVALID;
    BUF_LIT(it, "{\"task_id\":");
    buf_int(it, t->id);
    BUF_LIT(it, ",\"name\":");
    if (buf_str(it, name) != 0)
        return bad_task(it, t, "name is not valid UTF-8", err);
    BUF_LIT(it, ",\"command\":");
    if (buf_str(it, cmd) != 0)
        return bad_task(it, t, "command is not valid UTF-8", err);
    if (tt) {
        BUF_LIT(it, ",\"template\":");
        if (buf_str(it, tt->name) != 0)
            return bad_task(it, t, "template name is not valid UTF-8", err);
        BUF_LIT(it, ",\"array_id\":");
        buf_int(it, wf->array_ids[t->tmpl]);
    } else {
        BUF_LIT(it, ",\"template\":null,\"array_id\":null");
    }
    BUF_LIT(it, ",\"node_hash\":\"");
    jm_hash_hex(t->node, hx);
    buf_put(it, hx, JM_HASH_HEX_LEN);
    BUF_LIT(it, "\",");
    buf_put(it, sj, strlen(sj));
    BUF_LIT(it, "\"upstream\":[");
    for (uint32_t e = wf->up_off[t->idx]; e < wf->up_off[t->idx + 1]; e++) {
        if (e > wf->up_off[t->idx])
            BUF_LIT(it, ",");
        buf_int(it, jm_wf_task(wf, wf->up[e])->id);
    }
    BUF_LIT(it, "]}");
    return JM_OK;
}

jm_rc_t jm_bind_next_encoded(jm_bind_iter_t *it, char **out, size_t *len, jm_event_type_t *type,
                             jm_err_t *err)
{
    jm_workflow_t *wf = it->wf;
    jm_rc_t rc = JM_OK;
    JM_ASSERT(wf->valid);
    *out = NULL;
    *len = 0;
    if (it->phase != PH_CHUNKS) { /* header, bound: small, through the reference path */
        jm_event_t *ev = NULL;
        if ((rc = jm_bind_next_event(it, &ev, err)) != JM_OK || !ev)
            return rc;
        *type = ev->type;
        if ((rc = jm_event_validate(ev, NULL, err)) == JM_OK)
            *out = jm_event_encode(ev, len);
        jm_event_destroy(ev);
        return rc;
    }
    size_t pre_len, n = 0;
    char *pre = envelope_prefix(wf, JM_EV_WORKFLOW_BIND_TASKS, &pre_len);
    it->len = 0;
    buf_put(it, pre, pre_len);
    free(pre);
    BUF_LIT(it, "{\"chunk\":");
    buf_int(it, (int64_t)it->chunk);
    BUF_LIT(it, ",\"tasks\":[");
    size_t bytes = EVENT_OVERHEAD;
    while (it->pos < wf->n_tasks && n < JM_BIND_CHUNK_TASKS) {
        const jm_task_t *t = jm_wf_task(wf, wf->topo[it->pos]);
        const char *cmd = render(it, t);
        size_t sz = task_size(it, t, cmd);
        if (n > 0 && bytes + sz > JM_BIND_CHUNK_BYTES)
            break;
        bytes += sz;
        if (n > 0)
            BUF_LIT(it, ",");
        if ((rc = put_task(it, t, cmd, err)) != JM_OK)
            return rc;
        n++;
        it->pos++;
    }
    BUF_LIT(it, "]}}");
    it->chunk++;
    if (it->pos >= wf->n_tasks)
        it->phase = PH_BOUND;
    *type = JM_EV_WORKFLOW_BIND_TASKS;
    *out = jm_malloc(it->len + 1);
    memcpy(*out, it->buf, it->len);
    (*out)[it->len] = '\0';
    *len = it->len;
    return JM_OK;
}

jm_rc_t jm_workflow_bind(jm_workflow_t *wf, jm_producer_t *p, jm_bind_result_t *out, jm_err_t *err)
{
    jm_rc_t rc;
    jm_bind_iter_t *it = NULL;
    char *buf = NULL, key[24];
    size_t len;
    jm_event_type_t type;
    jm_bind_result_t res = {0};
    if ((rc = jm_workflow_validate(wf, err)) != JM_OK)
        goto out;
    it = jm_bind_iter_new(wf, NULL);
    res.workflow_id = wf->id;
    res.total_tasks = wf->n_tasks;
    snprintf(key, sizeof(key), "%" PRId64, wf->id);
    for (;;) {
        if ((rc = jm_bind_next_encoded(it, &buf, &len, &type, err)) != JM_OK || !buf)
            break;
        /* the same topic and key as jm_producer_send; validated above (see the file comment) */
        if ((rc = jm_producer_send_raw(p, jm_producer_topic(p), key, buf, len, NULL, err)) != JM_OK)
            goto out;
        if (type == JM_EV_WORKFLOW_BIND_TASKS)
            res.chunks++;
        res.events++;
        free(buf);
        buf = NULL;
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
    free(buf);
    jm_bind_iter_destroy(it);
    if (out)
        *out = res;
    return rc;
}
