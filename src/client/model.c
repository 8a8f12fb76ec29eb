/*
 * model.c — the in-memory workflow: string interning, defaults of each level, workflows, tasks
 * (single, plain-command and arrays as cross products) and edges.  Built to hold 1.5M tasks:
 * tasks in fixed chunks, strings interned, no per-task heap objects.
 *
 * Deliberately not here: checks that need the whole graph (dag.c), resource units and queues
 * (clusters.c), the file format (wffile.c), events (bind.c).
 */
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "client/client_int.h"

uint32_t jm_client_max_tasks = INT32_MAX;

/* ---- string table ---- */

static uint64_t str_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

void jm_strtab_init(jm_strtab_t *st)
{
    memset(st, 0, sizeof(*st));
}

void jm_strtab_free(jm_strtab_t *st)
{
    free(st->buf);
    free(st->off);
    free(st->slots);
    memset(st, 0, sizeof(*st));
}

static void strtab_resize(jm_strtab_t *st, size_t n)
{
    uint32_t *slots = jm_calloc(n, sizeof(*slots));
    for (uint32_t id = 0; id < st->n; id++) {
        const char *s = st->buf + st->off[id];
        size_t i = str_hash(s, strlen(s)) & (n - 1);
        while (slots[i])
            i = (i + 1) & (n - 1);
        slots[i] = id + 1;
    }
    free(st->slots);
    st->slots = slots;
    st->n_slots = n;
}

static void strtab_grow_slots(jm_strtab_t *st)
{
    strtab_resize(st, st->n_slots ? st->n_slots * 2 : 1024);
}

void jm_strtab_reserve(jm_strtab_t *st, size_t n)
{
    size_t slots = st->n_slots ? st->n_slots : 1024;
    while (n * 2 + 2 > slots)
        slots *= 2;
    if (slots > st->n_slots)
        strtab_resize(st, slots);
}

uint32_t jm_strtab_intern(jm_strtab_t *st, const char *s, size_t len)
{
    if ((size_t)st->n * 2 + 2 > st->n_slots)
        strtab_grow_slots(st);
    size_t i = str_hash(s, len) & (st->n_slots - 1);
    for (; st->slots[i]; i = (i + 1) & (st->n_slots - 1)) {
        const char *t = st->buf + st->off[st->slots[i] - 1];
        if (strncmp(t, s, len) == 0 && t[len] == '\0')
            return st->slots[i] - 1;
    }
    JM_ASSERT(st->n < JM_NONE - 1);
    if (st->len + len + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 4096;
        while (cap < st->len + len + 1)
            cap *= 2;
        st->buf = jm_realloc(st->buf, cap);
        st->cap = cap;
    }
    if (st->n == st->cap_n) {
        st->cap_n = st->cap_n ? st->cap_n * 2 : 256;
        st->off = jm_realloc(st->off, st->cap_n * sizeof(*st->off));
    }
    memcpy(st->buf + st->len, s, len);
    st->buf[st->len + len] = '\0';
    st->off[st->n] = st->len;
    st->len += len + 1;
    st->slots[i] = st->n + 1;
    return st->n++;
}

/* ---- defaults ---- */

void jm_defaults_init(jm_defaults_t *d)
{
    memset(d, 0, sizeof(*d));
}

void jm_defaults_clear(jm_defaults_t *d)
{
    free(d->cluster);
    json_decref(d->resources);
    json_decref(d->scales);
    json_decref(d->fallback_queues);
    jm_defaults_init(d);
}

void jm_defaults_set_cluster(jm_defaults_t *d, const char *cluster)
{
    free(d->cluster);
    d->cluster = cluster ? jm_strdup(cluster) : NULL;
}

static json_t *obj_or_new(json_t **o)
{
    if (!*o)
        *o = json_object();
    return *o;
}

void jm_defaults_set_resource(jm_defaults_t *d, const char *key, const char *value)
{
    json_object_set_new(obj_or_new(&d->resources), key, json_string(value));
}

void jm_defaults_set_resource_int(jm_defaults_t *d, const char *key, int64_t value)
{
    json_object_set_new(obj_or_new(&d->resources), key, json_integer(value));
}

jm_rc_t jm_defaults_set_scale(jm_defaults_t *d, const char *key, double scale, jm_err_t *err)
{
    if (!key || !*key || strlen(key) > 255)
        return jm_err_set(err, JM_ERR_INVALID, "resource scale: key must be 1 … 255 bytes");
    if (!(scale >= 0) || scale > 1000)
        return jm_err_set(err, JM_ERR_INVALID, "resource scale of \"%s\" must be 0 … 1000", key);
    json_object_set_new(obj_or_new(&d->scales), key, json_real(scale));
    return JM_OK;
}

void jm_defaults_add_fallback_queue(jm_defaults_t *d, const char *queue)
{
    if (!d->fallback_queues)
        d->fallback_queues = json_array();
    json_array_append_new(d->fallback_queues, json_string(queue));
}

jm_rc_t jm_defaults_set_max_attempts(jm_defaults_t *d, int max_attempts, jm_err_t *err)
{
    if (max_attempts < 1 || max_attempts > 1000)
        return jm_err_set(err, JM_ERR_INVALID, "max_attempts must be 1 … 1000, not %d",
                          max_attempts);
    d->max_attempts = max_attempts;
    return JM_OK;
}

/* ---- workflow ---- */

jm_workflow_t *jm_workflow_new(jm_tool_t *tool, const char *workflow_args)
{
    jm_workflow_t *wf = jm_calloc(1, sizeof(*wf));
    wf->tool = tool;
    if (workflow_args) {
        wf->args = jm_strdup(workflow_args);
    } else {
        uuid_t u;
        char s[37];
        uuid_generate_random(u);
        uuid_unparse_lower(u, s);
        wf->args = jm_strdup(s);
    }
    wf->name = jm_strdup("");
    wf->max_concurrently_running = JM_DEFAULT_CONCURRENCY;
    wf->attributes = json_object();
    jm_defaults_init(&wf->defaults);
    jm_strtab_init(&wf->strs);
    return wf;
}

void jm_workflow_invalidate(jm_workflow_t *wf)
{
    if (!wf->valid && !wf->up_off && !wf->settings)
        return;
    wf->valid = 0;
    free(wf->up_off);
    free(wf->up);
    free(wf->down_off);
    free(wf->down);
    free(wf->topo);
    free(wf->array_ids);
    wf->up_off = wf->up = wf->down_off = wf->down = wf->topo = NULL;
    wf->array_ids = NULL;
    for (uint32_t i = 0; i < wf->n_settings; i++)
        jm_settings_free(&wf->settings[i]);
    free(wf->settings);
    wf->settings = NULL;
    wf->n_settings = wf->cap_settings = 0;
}

void jm_workflow_destroy(jm_workflow_t *wf)
{
    if (!wf)
        return;
    jm_workflow_invalidate(wf);
    for (uint32_t i = 0; i < wf->n_chunks; i++)
        free(wf->chunks[i]);
    free(wf->chunks);
    free(wf->argv);
    free(wf->edges);
    for (uint32_t i = 0; i < wf->n_arrays; i++) {
        jm_defaults_clear(&wf->arrays[i]->defaults);
        free(wf->arrays[i]);
    }
    free(wf->arrays);
    for (uint32_t i = 0; i < wf->n_task_defaults; i++) {
        jm_defaults_clear(wf->task_defaults[i]);
        free(wf->task_defaults[i]);
    }
    free(wf->task_defaults);
    free(wf->name_slots);
    free(wf->tmpls);
    jm_strtab_free(&wf->strs);
    jm_defaults_clear(&wf->defaults);
    json_decref(wf->attributes);
    free(wf->name);
    free(wf->args);
    if (wf->owns_tool)
        jm_tool_destroy(wf->tool);
    free(wf);
}

jm_rc_t jm_workflow_set_name(jm_workflow_t *wf, const char *name, jm_err_t *err)
{
    if (!name || strlen(name) > JM_NAME_MAX)
        return jm_err_set(err, JM_ERR_INVALID, "workflow name: at most %d bytes", JM_NAME_MAX);
    free(wf->name);
    wf->name = jm_strdup(name);
    return JM_OK;
}

void jm_workflow_set_max_concurrently_running(jm_workflow_t *wf, int64_t limit)
{
    wf->max_concurrently_running = limit < 0 ? 0 : limit > INT32_MAX ? INT32_MAX : limit;
}

jm_rc_t jm_workflow_set_attribute(jm_workflow_t *wf, const char *key, const char *value,
                                  jm_err_t *err)
{
    if (!key || !*key || strlen(key) > 255)
        return jm_err_set(err, JM_ERR_INVALID, "attribute key: 1 … 255 bytes");
    if (!value || strlen(value) > 255)
        return jm_err_set(err, JM_ERR_INVALID, "attribute \"%s\": value over 255 bytes", key);
    if (json_object_size(wf->attributes) >= 1000 && !json_object_get(wf->attributes, key))
        return jm_err_set(err, JM_ERR_INVALID, "at most 1000 attributes");
    json_object_set_new(wf->attributes, key, json_string(value));
    return JM_OK;
}

jm_defaults_t *jm_workflow_defaults(jm_workflow_t *wf)
{
    return &wf->defaults;
}

jm_tool_t *jm_workflow_tool(jm_workflow_t *wf)
{
    return wf->tool;
}

const char *jm_workflow_args(const jm_workflow_t *wf)
{
    return wf->args;
}

size_t jm_workflow_task_count(const jm_workflow_t *wf)
{
    return wf->n_tasks;
}

jm_task_t *jm_workflow_task(jm_workflow_t *wf, size_t i)
{
    return i < wf->n_tasks ? jm_wf_task(wf, (uint32_t)i) : NULL;
}

/* ---- name map ---- */

static uint64_t id_hash(uint32_t id)
{
    uint64_t h = id * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 32);
}

#define AMBIGUOUS 0x80000000u

static void name_insert(jm_workflow_t *wf, uint32_t task)
{
    uint32_t name = jm_wf_task(wf, task)->name;
    size_t mask = wf->n_name_slots - 1;
    for (size_t i = id_hash(name) & mask;; i = (i + 1) & mask) {
        uint32_t v = wf->name_slots[i];
        if (!v) {
            wf->name_slots[i] = task + 1;
            return;
        }
        if (jm_wf_task(wf, (v & ~AMBIGUOUS) - 1)->name == name) {
            wf->name_slots[i] |= AMBIGUOUS;
            return;
        }
    }
}

static void names_rebuild(jm_workflow_t *wf)
{
    size_t n = 1024;
    while (n < (size_t)wf->n_tasks * 2 + 2)
        n *= 2;
    free(wf->name_slots);
    wf->name_slots = jm_calloc(n, sizeof(uint32_t));
    wf->n_name_slots = n;
    for (uint32_t i = 0; i < wf->n_tasks; i++)
        name_insert(wf, i);
    wf->names_dirty = 0;
}

uint32_t jm_workflow_lookup(jm_workflow_t *wf, const char *name, int *ambiguous)
{
    if (ambiguous)
        *ambiguous = 0;
    if (wf->names_dirty || !wf->name_slots)
        names_rebuild(wf);
    /* find the string id without interning it */
    jm_strtab_t *st = &wf->strs;
    if (!st->n_slots)
        return JM_NONE;
    size_t len = strlen(name);
    uint32_t sid = JM_NONE;
    for (size_t i = str_hash(name, len) & (st->n_slots - 1); st->slots[i];
         i = (i + 1) & (st->n_slots - 1))
        if (strcmp(st->buf + st->off[st->slots[i] - 1], name) == 0) {
            sid = st->slots[i] - 1;
            break;
        }
    if (sid == JM_NONE)
        return JM_NONE;
    size_t mask = wf->n_name_slots - 1;
    for (size_t i = id_hash(sid) & mask; wf->name_slots[i]; i = (i + 1) & mask) {
        uint32_t v = wf->name_slots[i];
        uint32_t t = (v & ~AMBIGUOUS) - 1;
        if (jm_wf_task(wf, t)->name == sid) {
            if (ambiguous)
                *ambiguous = (v & AMBIGUOUS) != 0;
            return t;
        }
    }
    return JM_NONE;
}

int jm_workflow_names_unique(jm_workflow_t *wf)
{
    if (wf->names_dirty || !wf->name_slots)
        names_rebuild(wf);
    for (size_t i = 0; i < wf->n_name_slots; i++)
        if (wf->name_slots[i] & AMBIGUOUS)
            return 0;
    return 1;
}

jm_task_t *jm_workflow_find_task(jm_workflow_t *wf, const char *name)
{
    uint32_t t = jm_workflow_lookup(wf, name, NULL);
    return t == JM_NONE ? NULL : jm_wf_task(wf, t);
}

/* ---- tasks ---- */

static jm_task_t *task_alloc(jm_workflow_t *wf)
{
    JM_ASSERT(wf->n_tasks < INT32_MAX);
    uint32_t i = wf->n_tasks;
    if ((i >> JM_TASK_CHUNK_BITS) == wf->n_chunks) {
        wf->chunks = jm_realloc(wf->chunks, (wf->n_chunks + 1) * sizeof(*wf->chunks));
        wf->chunks[wf->n_chunks++] = jm_malloc(JM_TASK_CHUNK * sizeof(jm_task_t));
    }
    jm_task_t *t = jm_wf_task(wf, i);
    memset(t, 0, sizeof(*t));
    t->wf = wf;
    t->idx = i;
    t->tmpl = t->arr = t->defaults = t->settings = JM_NONE;
    wf->n_tasks++;
    jm_workflow_invalidate(wf);
    if (wf->name_slots && !wf->names_dirty) {
        if ((size_t)wf->n_tasks * 2 + 2 > wf->n_name_slots)
            wf->names_dirty = 1;
    }
    return t;
}

static void task_named(jm_workflow_t *wf, jm_task_t *t)
{
    if (wf->name_slots && !wf->names_dirty)
        name_insert(wf, t->idx);
}

static uint32_t tmpl_index(jm_workflow_t *wf, jm_template_t *tt)
{
    for (uint32_t i = 0; i < wf->n_tmpls; i++)
        if (wf->tmpls[i] == tt)
            return i;
    if (wf->n_tmpls == wf->cap_tmpls) {
        wf->cap_tmpls = wf->cap_tmpls ? 2 * wf->cap_tmpls : 8;
        wf->tmpls = jm_realloc(wf->tmpls, wf->cap_tmpls * sizeof(*wf->tmpls));
    }
    wf->tmpls[wf->n_tmpls] = tt;
    return wf->n_tmpls++;
}

static uint64_t argv_push(jm_workflow_t *wf, const uint32_t *ids, size_t n)
{
    if (wf->n_argv + n > wf->cap_argv) {
        uint64_t cap = wf->cap_argv ? wf->cap_argv : 1024;
        while (cap < wf->n_argv + n)
            cap *= 2;
        wf->argv = jm_realloc(wf->argv, cap * sizeof(*wf->argv));
        wf->cap_argv = cap;
    }
    uint64_t off = wf->n_argv;
    if (n)
        memcpy(wf->argv + off, ids, n * sizeof(*ids));
    wf->n_argv += n;
    return off;
}

const jm_template_t *jm_task_template(const jm_task_t *t)
{
    return t->tmpl == JM_NONE ? NULL : t->wf->tmpls[t->tmpl];
}

void jm_task_values(const jm_task_t *t, const char **vals)
{
    const jm_template_t *tt = jm_task_template(t);
    for (size_t i = 0; i < tt->n_args; i++)
        vals[i] = jm_wf_str(t->wf, t->wf->argv[t->args + i]);
}

static jm_rc_t check_value(const jm_template_t *tt, const char *name, const char *v, jm_err_t *err)
{
    if (!v)
        return jm_err_set(err, JM_ERR_INVALID, "template \"%s\": arg \"%s\" has no value", tt->name,
                          name);
    size_t len = strlen(v);
    if (len > JM_ARG_VALUE_MAX)
        return jm_err_set(err, JM_ERR_INVALID,
                          "template \"%s\": value of arg \"%s\" is %zu bytes, at most %d", tt->name,
                          name, len, JM_ARG_VALUE_MAX);
    return JM_OK;
}

/* tt's index of the argument `name`, marked in `seen`; -1 with err when tt has no such argument
 * or it was seen before. */
static int arg_slot(const jm_template_t *tt, const char *name, unsigned char *seen, jm_err_t *err)
{
    int a = jm_template_arg_index(tt, name);
    if (a < 0) {
        jm_err_set(err, JM_ERR_INVALID, "template \"%s\": unknown arg \"%s\"", tt->name, name);
    } else if (seen[a]) {
        jm_err_set(err, JM_ERR_INVALID, "template \"%s\": arg \"%s\" given twice", tt->name, name);
        a = -1;
    } else {
        seen[a] = 1;
    }
    return a;
}

static jm_rc_t check_template(jm_workflow_t *wf, jm_template_t *tt, jm_err_t *err)
{
    if (tt->tool != wf->tool)
        return jm_err_set(err, JM_ERR_INVALID,
                          "template \"%s\" belongs to tool \"%s\", the workflow to \"%s\"",
                          tt->name, tt->tool->name, wf->tool->name);
    return JM_OK;
}

static void set_default_name(jm_workflow_t *wf, jm_task_t *t, const jm_template_t *tt,
                             const char *prefix, const char *const *vals)
{
    char name[JM_TASK_NAME_DEFAULT_MAX + 1];
    jm_template_default_name(tt, prefix, vals, name);
    t->name = jm_strtab_intern(&wf->strs, name, strlen(name));
}

jm_task_t *jm_workflow_add_task(jm_workflow_t *wf, jm_template_t *tt, const jm_kv_t *args, size_t n,
                                jm_err_t *err)
{
    return jm_workflow_add_task_named(wf, tt, args, n, NULL, err);
}

jm_task_t *jm_workflow_add_task_named(jm_workflow_t *wf, jm_template_t *tt, const jm_kv_t *args,
                                      size_t n, const char *name, jm_err_t *err)
{
    jm_rc_t rc = check_template(wf, tt, err);
    if (rc != JM_OK)
        return NULL;
    uint32_t ids[tt->n_args + 1];
    const char *vals[tt->n_args + 1];
    unsigned char seen[tt->n_args + 1];
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < n; i++) {
        int a = arg_slot(tt, args[i].name, seen, err);
        if (a < 0 || check_value(tt, args[i].name, args[i].value, err) != JM_OK)
            return NULL;
        vals[a] = args[i].value;
    }
    for (size_t i = 0; i < tt->n_args; i++)
        if (!seen[i]) {
            jm_err_set(err, JM_ERR_INVALID, "template \"%s\": missing arg \"%s\"", tt->name,
                       tt->args[i]);
            return NULL;
        }
    for (size_t i = 0; i < tt->n_args; i++)
        ids[i] = jm_strtab_intern(&wf->strs, vals[i], strlen(vals[i]));
    jm_task_t *t = task_alloc(wf);
    t->tmpl = tmpl_index(wf, tt);
    t->args = argv_push(wf, ids, tt->n_args);
    if (name)
        t->name = jm_strtab_intern(&wf->strs, name, strlen(name));
    else
        set_default_name(wf, t, tt, NULL, vals);
    task_named(wf, t);
    return t;
}

jm_task_t *jm_workflow_add_command(jm_workflow_t *wf, const char *command, jm_err_t *err)
{
    if (!command || !*command) {
        jm_err_set(err, JM_ERR_INVALID, "command: empty");
        return NULL;
    }
    size_t len = strlen(command);
    if (len > JM_COMMAND_MAX) {
        jm_err_set(err, JM_ERR_INVALID, "command: %zu bytes, at most %d", len, JM_COMMAND_MAX);
        return NULL;
    }
    jm_task_t *t = task_alloc(wf);
    t->args = jm_strtab_intern(&wf->strs, command, len);
    char name[64], hex[JM_HASH_HEX_LEN + 1];
    jm_hash_hex(jm_hash_command_task(command), hex);
    snprintf(name, sizeof(name), "command_%.12s", hex);
    t->name = jm_strtab_intern(&wf->strs, name, strlen(name));
    task_named(wf, t);
    return t;
}

jm_array_t *jm_workflow_add_array(jm_workflow_t *wf, jm_template_t *tt, const jm_arg_values_t *args,
                                  size_t n, const char *name_prefix, jm_err_t *err)
{
    if (check_template(wf, tt, err) != JM_OK)
        return NULL;
    if (name_prefix && jm_name_check(name_prefix, "name_prefix", err) != JM_OK)
        return NULL;
    const jm_arg_values_t *by_arg[tt->n_args + 1];
    unsigned char seen[tt->n_args + 1];
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < n; i++) {
        int a = arg_slot(tt, args[i].name, seen, err);
        if (a < 0)
            return NULL;
        if (args[i].n_values == 0) {
            jm_err_set(err, JM_ERR_INVALID, "template \"%s\": arg \"%s\" has no values", tt->name,
                       args[i].name);
            return NULL;
        }
        if (jm_template_arg_kind(tt, (size_t)a) != JM_ARG_NODE && args[i].n_values != 1) {
            jm_err_set(err, JM_ERR_INVALID,
                       "template \"%s\": arg \"%s\" is not a node arg and takes one value",
                       tt->name, args[i].name);
            return NULL;
        }
        for (size_t v = 0; v < args[i].n_values; v++)
            if (check_value(tt, args[i].name, args[i].values[v], err) != JM_OK)
                return NULL;
        by_arg[a] = &args[i];
    }
    uint64_t total = 1;
    for (size_t i = 0; i < tt->n_args; i++) {
        if (!seen[i]) {
            jm_err_set(err, JM_ERR_INVALID, "template \"%s\": missing arg \"%s\"", tt->name,
                       tt->args[i]);
            return NULL;
        }
        total *= by_arg[i]->n_values;
        if (total + wf->n_tasks > jm_client_max_tasks) {
            jm_err_set(err, JM_ERR_INVALID, "template \"%s\": the array has too many tasks",
                       tt->name);
            return NULL;
        }
    }
    /* intern each value once */
    size_t n_ids = 0;
    for (size_t i = 0; i < tt->n_args; i++)
        n_ids += by_arg[i]->n_values;
    uint32_t *ids = jm_malloc((n_ids + 1) * sizeof(*ids));
    size_t *base = jm_malloc((tt->n_args + 1) * sizeof(*base));
    for (size_t i = 0, k = 0; i < tt->n_args; i++) {
        base[i] = k;
        for (size_t v = 0; v < by_arg[i]->n_values; v++, k++)
            ids[k] =
                jm_strtab_intern(&wf->strs, by_arg[i]->values[v], strlen(by_arg[i]->values[v]));
    }
    jm_array_t *arr = jm_calloc(1, sizeof(*arr));
    arr->wf = wf;
    arr->tmpl = tmpl_index(wf, tt);
    arr->first = wf->n_tasks;
    arr->count = (uint32_t)total;
    jm_defaults_init(&arr->defaults);
    if (wf->n_arrays == wf->cap_arrays) {
        wf->cap_arrays = wf->cap_arrays ? 2 * wf->cap_arrays : 8;
        wf->arrays = jm_realloc(wf->arrays, wf->cap_arrays * sizeof(*wf->arrays));
    }
    arr->idx = wf->n_arrays;
    wf->arrays[wf->n_arrays++] = arr;

    size_t *pos = jm_calloc(tt->n_args + 1, sizeof(*pos)); /* odometer, last varies fastest */
    uint32_t row[tt->n_args + 1];
    const char *vals[tt->n_args + 1];
    for (uint64_t k = 0; k < total; k++) {
        for (size_t i = 0; i < tt->n_args; i++) {
            row[i] = ids[base[i] + pos[i]];
            vals[i] = jm_wf_str(wf, row[i]);
        }
        jm_task_t *t = task_alloc(wf);
        t->tmpl = arr->tmpl;
        t->arr = arr->idx;
        t->args = argv_push(wf, row, tt->n_args);
        set_default_name(wf, t, tt, name_prefix, vals);
        task_named(wf, t);
        for (size_t i = tt->n_args; i-- > 0;) {
            if (++pos[i] < by_arg[i]->n_values)
                break;
            pos[i] = 0;
        }
    }
    free(pos);
    free(base);
    free(ids);
    return arr;
}

jm_defaults_t *jm_array_defaults(jm_array_t *arr)
{
    jm_workflow_invalidate(arr->wf);
    return &arr->defaults;
}

size_t jm_array_task_count(const jm_array_t *arr)
{
    return arr->count;
}

jm_task_t *jm_array_task(jm_array_t *arr, size_t i)
{
    return i < arr->count ? jm_wf_task(arr->wf, arr->first + (uint32_t)i) : NULL;
}

jm_rc_t jm_array_add_upstream(jm_array_t *arr, jm_task_t *up, jm_err_t *err)
{
    if (up->wf != arr->wf)
        return jm_err_set(err, JM_ERR_INVALID,
                          "task \"%s\": upstream of an array of another workflow",
                          jm_task_name(up));
    for (uint32_t i = 0; i < arr->count; i++)
        jm_workflow_edge(arr->wf, arr->first + i, up->idx);
    return JM_OK;
}

jm_rc_t jm_task_set_name(jm_task_t *task, const char *name, jm_err_t *err)
{
    jm_rc_t rc = jm_name_check(name ? name : "", "task", err);
    if (rc != JM_OK)
        return rc;
    task->name = jm_strtab_intern(&task->wf->strs, name, strlen(name));
    task->wf->names_dirty = 1;
    return JM_OK;
}

const char *jm_task_name(const jm_task_t *task)
{
    return jm_wf_str(task->wf, task->name);
}

jm_defaults_t *jm_task_defaults(jm_task_t *task)
{
    jm_workflow_t *wf = task->wf;
    jm_workflow_invalidate(wf);
    if (task->defaults == JM_NONE) {
        if (wf->n_task_defaults == wf->cap_task_defaults) {
            wf->cap_task_defaults = wf->cap_task_defaults ? 2 * wf->cap_task_defaults : 16;
            wf->task_defaults =
                jm_realloc(wf->task_defaults, wf->cap_task_defaults * sizeof(*wf->task_defaults));
        }
        jm_defaults_t *d = jm_malloc(sizeof(*d));
        jm_defaults_init(d);
        task->defaults = wf->n_task_defaults;
        wf->task_defaults[wf->n_task_defaults++] = d;
    }
    return wf->task_defaults[task->defaults];
}

void jm_workflow_edge(jm_workflow_t *wf, uint32_t down, uint32_t up)
{
    if (wf->n_edges == wf->cap_edges) {
        wf->cap_edges = wf->cap_edges ? 2 * wf->cap_edges : 1024;
        wf->edges = jm_realloc(wf->edges, wf->cap_edges * 2 * sizeof(uint32_t));
    }
    wf->edges[2 * wf->n_edges] = down;
    wf->edges[2 * wf->n_edges + 1] = up;
    wf->n_edges++;
    jm_workflow_invalidate(wf);
}

jm_rc_t jm_task_add_upstream(jm_task_t *task, jm_task_t *up, jm_err_t *err)
{
    if (!up || up->wf != task->wf)
        return jm_err_set(err, JM_ERR_INVALID,
                          "task \"%s\": upstream task belongs to another workflow",
                          jm_task_name(task));
    jm_workflow_edge(task->wf, task->idx, up->idx);
    return JM_OK;
}

jm_rc_t jm_task_add_downstream(jm_task_t *task, jm_task_t *down, jm_err_t *err)
{
    if (!down || down->wf != task->wf)
        return jm_err_set(err, JM_ERR_INVALID,
                          "task \"%s\": downstream task belongs to another workflow",
                          jm_task_name(task));
    jm_workflow_edge(task->wf, down->idx, task->idx);
    return JM_OK;
}

char *jm_task_command(const jm_task_t *task)
{
    const jm_template_t *tt = jm_task_template(task);
    if (!tt)
        return jm_strdup(jm_wf_str(task->wf, (uint32_t)task->args));
    const char *vals[tt->n_args + 1];
    jm_task_values(task, vals);
    char *out = jm_malloc(jm_template_render_len(tt, vals) + 1);
    jm_template_render(tt, vals, out);
    return out;
}
