/*
 * wffile.c — the workflow file (schemas/workflow.schema.json) into the client model.  Strict:
 * unknown keys, wrong types, duplicate keys and bad values are errors whose message starts with
 * the JSON path of the culprit (`tasks[12].upstream[0]: no task named "prep_3"`).
 *
 * Order: templates, then `tasks`, then `arrays`; upstream names are resolved last, so a task may
 * name any task of the file (explicit or default name).  Deliberately not here: graph checks
 * (cycles, duplicates: jm_workflow_validate) and anything about running.
 *
 * Memory: a whole-file jansson tree costs about 2 kB per task (3 GB at 1.5M tasks), so the top
 * level is split by a small scanner and the `tasks` array is parsed one element at a time (each
 * element with jansson, freed after it is read; a large array is parsed ahead by a second thread,
 * see prefetch_t); only upstream names are kept until they are resolved (looked up in two halves
 * on two threads, then applied in order, so the first error is the same).  Any JSON syntax error
 * sends the whole buffer to jansson once more, so syntax errors read exactly as before ("line L
 * column C: ...").
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "jobmon/resources.h"

#define PATH_MAX_B 200

typedef struct {
    jm_workflow_t *wf;
    jm_err_t *err;
} ctx_t;

static jm_rc_t fail(ctx_t *c, const char *path, const char *fmt, ...) JM_PRINTF(3, 4);
static jm_rc_t fail(ctx_t *c, const char *path, const char *fmt, ...)
{
    char msg[JM_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return jm_err_set(c->err, JM_ERR_INVALID, "%s: %s", path, msg);
}

/* Build a JSON path into p (PATH_MAX_B bytes, truncated). */
static void pathf(char *p, const char *fmt, ...) JM_PRINTF(2, 3);
static void pathf(char *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, PATH_MAX_B, fmt, ap);
    va_end(ap);
}

/* The paths made for every task, without printf (a few per task add up at 1.5M tasks):
 * path_key = "%s.%.*s" (at most kmax bytes of key), path_index = "%s[%zu]", both truncated as
 * pathf truncates. */
static void path_put(char *p, size_t *at, const char *s, size_t n)
{
    if (n > PATH_MAX_B - 1 - *at)
        n = PATH_MAX_B - 1 - *at;
    memcpy(p + *at, s, n);
    *at += n;
    p[*at] = '\0';
}

static void path_key(char *p, const char *base, const char *key, size_t kmax)
{
    size_t at = 0, kl = strnlen(key, kmax);
    path_put(p, &at, base, strlen(base));
    path_put(p, &at, ".", 1);
    path_put(p, &at, key, kl);
}

static void path_index(char *p, const char *base, size_t i)
{
    char d[24];
    size_t n = sizeof(d), at = 0;
    d[--n] = ']';
    do
        d[--n] = (char)('0' + i % 10);
    while ((i /= 10) > 0);
    d[--n] = '[';
    path_put(p, &at, base, strlen(base));
    path_put(p, &at, d + n, sizeof(d) - n);
}

/* ---- small typed readers ---- */

static const char *type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Every key of `obj` must be in the NULL-terminated `allowed`. */
static jm_rc_t check_keys(ctx_t *c, const char *path, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(allowed[i], key) == 0;
        if (!ok)
            return fail(c, path, "unknown key \"%.64s\"", key);
    }
    return JM_OK;
}

static jm_rc_t get_str(ctx_t *c, const char *path, const json_t *v, size_t max, int nonempty,
                       const char **out)
{
    if (!json_is_string(v))
        return fail(c, path, "expected a string, got %s", type_name(v));
    size_t len = json_string_length(v);
    if (strlen(json_string_value(v)) != len)
        return fail(c, path, "contains a NUL character");
    if (nonempty && len == 0)
        return fail(c, path, "must not be empty");
    if (len > max)
        return fail(c, path, "%zu bytes, at most %zu", len, max);
    *out = json_string_value(v);
    return JM_OK;
}

static jm_rc_t get_int(ctx_t *c, const char *path, const json_t *v, int64_t lo, int64_t hi,
                       int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(c, path, "expected an integer %lld … %lld", (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return JM_OK;
}

/* An argument value: string, integer or number, stringified. */
static jm_rc_t get_value(ctx_t *c, const char *path, const json_t *v, char *buf, size_t len,
                         const char **out)
{
    if (json_is_string(v))
        return get_str(c, path, v, JM_ARG_VALUE_MAX, 0, out);
    if (json_is_integer(v)) {
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        snprintf(buf, len, "%.15g", d);
        if (strtod(buf, NULL) != d)
            snprintf(buf, len, "%.17g", d);
    } else {
        return fail(c, path, "expected a string or a number, got %s", type_name(v));
    }
    *out = buf;
    return JM_OK;
}

/* ---- defaults of one level ---- */

static jm_rc_t read_resources(ctx_t *c, const char *path, const json_t *v, jm_defaults_t *d)
{
    if (!json_is_object(v))
        return fail(c, path, "expected an object, got %s", type_name(v));
    const char *key;
    json_t *x;
    char p[PATH_MAX_B];
    json_object_foreach((json_t *)v, key, x)
    {
        pathf(p, "%s.%.64s", path, key);
        if (!*key || strlen(key) > 255)
            return fail(c, p, "a key must be 1 … 255 bytes");
        if (!json_is_string(x) && !json_is_number(x) && !json_is_boolean(x))
            return fail(c, p, "expected a string or a number, got %s", type_name(x));
    }
    json_t *norm = NULL;
    jm_err_t e;
    if (jm_res_normalise(v, &norm, &e) != JM_OK)
        return fail(c, path, "%s", e.msg);
    json_decref(norm);
    json_t *copy = json_deep_copy(v);
    if (d->resources) {
        json_object_update(d->resources, copy);
        json_decref(copy);
    } else {
        d->resources = copy;
    }
    return JM_OK;
}

static jm_rc_t read_scales(ctx_t *c, const char *path, const json_t *v, jm_defaults_t *d)
{
    if (!json_is_object(v))
        return fail(c, path, "expected an object, got %s", type_name(v));
    const char *key;
    json_t *x;
    char p[PATH_MAX_B];
    if (json_object_size(v) > 1000)
        return fail(c, path, "at most 1000 scales");
    json_object_foreach((json_t *)v, key, x)
    {
        pathf(p, "%s.%.64s", path, key);
        if (!*key || strlen(key) > 255)
            return fail(c, p, "a key must be 1 … 255 bytes");
        if (json_is_number(x)) {
            if (!(json_number_value(x) >= 0) || json_number_value(x) > 1000)
                return fail(c, p, "a scale must be 0 … 1000");
        } else if (json_is_array(x)) {
            size_t n = json_array_size(x);
            if (n < 1 || n > 100)
                return fail(c, p, "a list of absolute values needs 1 … 100 numbers");
            for (size_t i = 0; i < n; i++)
                if (!json_is_number(json_array_get(x, i)) ||
                    json_number_value(json_array_get(x, i)) < 0)
                    return fail(c, p, "item %zu: expected a number >= 0", i);
        } else {
            return fail(c, p, "expected a number or a list of numbers, got %s", type_name(x));
        }
    }
    if (!d->scales)
        d->scales = json_object();
    json_t *copy = json_deep_copy(v);
    json_object_update(d->scales, copy);
    json_decref(copy);
    return JM_OK;
}

static jm_rc_t read_fallback(ctx_t *c, const char *path, const json_t *v, jm_defaults_t *d)
{
    if (!json_is_array(v))
        return fail(c, path, "expected an array of queue names, got %s", type_name(v));
    if (json_array_size(v) > 100)
        return fail(c, path, "at most 100 queues");
    char p[PATH_MAX_B];
    json_decref(d->fallback_queues);
    d->fallback_queues = json_array();
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *q;
        pathf(p, "%s[%zu]", path, i);
        if (get_str(c, p, json_array_get(v, i), JM_NAME_MAX, 1, &q) != JM_OK)
            return JM_ERR_INVALID;
        json_array_append_new(d->fallback_queues, json_string(q));
    }
    return JM_OK;
}

/* Read the defaults keys present in `obj` (compute_resources, max_attempts, resource_scales,
 * fallback_queues, cluster) into d. */
static jm_rc_t read_defaults(ctx_t *c, const char *path, const json_t *obj, jm_defaults_t *d)
{
    char p[PATH_MAX_B];
    const char *sep = *path ? "." : "";
    json_t *v;
    if ((v = json_object_get(obj, "compute_resources"))) {
        pathf(p, "%s%scompute_resources", path, sep);
        if (read_resources(c, p, v, d) != JM_OK)
            return JM_ERR_INVALID;
    }
    if ((v = json_object_get(obj, "resource_scales"))) {
        pathf(p, "%s%sresource_scales", path, sep);
        if (read_scales(c, p, v, d) != JM_OK)
            return JM_ERR_INVALID;
    }
    if ((v = json_object_get(obj, "fallback_queues"))) {
        pathf(p, "%s%sfallback_queues", path, sep);
        if (read_fallback(c, p, v, d) != JM_OK)
            return JM_ERR_INVALID;
    }
    if ((v = json_object_get(obj, "max_attempts"))) {
        int64_t n;
        pathf(p, "%s%smax_attempts", path, sep);
        if (get_int(c, p, v, 1, 1000, &n) != JM_OK)
            return JM_ERR_INVALID;
        d->max_attempts = (int)n;
    }
    if ((v = json_object_get(obj, "cluster"))) {
        const char *s;
        jm_err_t e;
        pathf(p, "%s%scluster", path, sep);
        if (get_str(c, p, v, JM_NAME_MAX, 1, &s) != JM_OK)
            return JM_ERR_INVALID;
        if (jm_cluster_check(s, &e) != JM_OK)
            return fail(c, p, "%s", e.msg);
        jm_defaults_set_cluster(d, s);
    }
    return JM_OK;
}

static jm_rc_t get_array(ctx_t *c, const char *path, const json_t *v)
{
    if (!json_is_array(v))
        return fail(c, path, "expected an array, got %s", type_name(v));
    return JM_OK;
}

/* ---- templates ---- */

static jm_rc_t read_name_list(ctx_t *c, const char *path, const json_t *v, const char ***out,
                              size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!v)
        return JM_OK;
    if (get_array(c, path, v) != JM_OK)
        return JM_ERR_INVALID;
    *n = json_array_size(v);
    *out = jm_calloc(*n + 1, sizeof(char *));
    char p[PATH_MAX_B];
    for (size_t i = 0; i < *n; i++) {
        pathf(p, "%s[%zu]", path, i);
        if (get_str(c, p, json_array_get(v, i), JM_NAME_MAX, 1, &(*out)[i]) != JM_OK)
            return JM_ERR_INVALID;
    }
    return JM_OK;
}

static const char *const template_keys[] = {"name",
                                            "command_template",
                                            "node_args",
                                            "task_args",
                                            "op_args",
                                            "compute_resources",
                                            "max_attempts",
                                            "max_concurrently_running",
                                            "resource_scales",
                                            "fallback_queues",
                                            "cluster",
                                            NULL};

static jm_rc_t read_template(ctx_t *c, size_t i, const json_t *o)
{
    jm_rc_t rc = JM_ERR_INVALID;
    char path[PATH_MAX_B], p[PATH_MAX_B];
    const char **lists[3] = {NULL, NULL, NULL};
    size_t n[3] = {0, 0, 0};
    static const char *const list_keys[3] = {"node_args", "task_args", "op_args"};
    const char *name, *cmd;
    jm_err_t e;
    pathf(path, "task_templates[%zu]", i);
    if (!json_is_object(o)) {
        fail(c, path, "expected an object, got %s", type_name(o));
        goto out;
    }
    if (check_keys(c, path, o, template_keys) != JM_OK)
        goto out;
    pathf(p, "%s.name", path);
    if (!json_object_get(o, "name")) {
        fail(c, path, "missing \"name\"");
        goto out;
    }
    if (get_str(c, p, json_object_get(o, "name"), JM_NAME_MAX, 1, &name) != JM_OK)
        goto out;
    if (jm_name_check(name, "template", &e) != JM_OK) {
        fail(c, p, "%s", e.msg);
        goto out;
    }
    if (jm_tool_template(c->wf->tool, name)) {
        fail(c, p, "template \"%.64s\" is already defined", name);
        goto out;
    }
    pathf(p, "%s.command_template", path);
    if (!json_object_get(o, "command_template")) {
        fail(c, path, "missing \"command_template\"");
        goto out;
    }
    if (get_str(c, p, json_object_get(o, "command_template"), JM_COMMAND_MAX, 1, &cmd) != JM_OK)
        goto out;
    for (int k = 0; k < 3; k++) {
        pathf(p, "%s.%s", path, list_keys[k]);
        if (read_name_list(c, p, json_object_get(o, list_keys[k]), &lists[k], &n[k]) != JM_OK)
            goto out;
    }
    jm_template_t *tt =
        jm_template_new(c->wf->tool, name, cmd, lists[0], n[0], lists[1], n[1], lists[2], n[2], &e);
    if (!tt) {
        jm_err_set(c->err, JM_ERR_INVALID, "%s.%s", path, e.msg);
        goto out;
    }
    json_t *v = json_object_get(o, "max_concurrently_running");
    if (v) {
        int64_t mcr;
        pathf(p, "%s.max_concurrently_running", path);
        if (get_int(c, p, v, 0, INT32_MAX, &mcr) != JM_OK)
            goto out;
        jm_template_set_max_concurrently_running(tt, mcr);
    }
    if (read_defaults(c, path, o, jm_template_defaults(tt)) != JM_OK)
        goto out;
    rc = JM_OK;
out:
    for (int k = 0; k < 3; k++)
        free(lists[k]);
    return rc;
}

static jm_template_t *find_template(ctx_t *c, const char *path, const json_t *o)
{
    const char *name;
    char p[PATH_MAX_B];
    path_key(p, path, "template", 64);
    if (get_str(c, p, json_object_get(o, "template"), JM_NAME_MAX, 1, &name) != JM_OK)
        return NULL;
    jm_template_t *tt = jm_tool_template(c->wf->tool, name);
    if (!tt)
        fail(c, p, "no task template named \"%.64s\"", name);
    return tt;
}

/* ---- tasks ---- */

static const char *const task_keys[] = {"name",
                                        "template",
                                        "args",
                                        "command",
                                        "upstream",
                                        "max_attempts",
                                        "compute_resources",
                                        "resource_scales",
                                        "fallback_queues",
                                        "cluster",
                                        NULL};

/* v when it is a valid task name (what read_task checks of "name", without the messages), else
 * NULL. */
static const char *good_name(const json_t *v)
{
    jm_err_t e;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > JM_NAME_MAX ||
        strlen(json_string_value(v)) != json_string_length(v) ||
        jm_name_check(json_string_value(v), "task", &e) != JM_OK)
        return NULL;
    return json_string_value(v);
}

static jm_rc_t read_task(ctx_t *c, size_t i, const json_t *o, uint32_t *idx)
{
    char path[PATH_MAX_B], p[PATH_MAX_B];
    jm_task_t *t = NULL;
    jm_err_t e;
    path_index(path, "tasks", i);
    if (!json_is_object(o))
        return fail(c, path, "expected an object, got %s", type_name(o));
    if (check_keys(c, path, o, task_keys) != JM_OK)
        return JM_ERR_INVALID;
    const json_t *tv = json_object_get(o, "template"), *cv = json_object_get(o, "command");
    const json_t *av = json_object_get(o, "args");
    if (tv && cv)
        return fail(c, path, "\"template\" and \"command\" are exclusive");
    if (!tv && !cv)
        return fail(c, path, "missing \"template\" (with \"args\") or \"command\"");
    if (cv) {
        const char *cmd;
        pathf(p, "%s.command", path);
        if (av)
            return fail(c, path, "\"args\" needs \"template\"");
        if (get_str(c, p, cv, JM_COMMAND_MAX, 1, &cmd) != JM_OK)
            return JM_ERR_INVALID;
        if (!(t = jm_workflow_add_command(c->wf, cmd, &e)))
            return fail(c, p, "%s", e.msg);
    } else {
        const char *name = good_name(json_object_get(o, "name"));
        jm_template_t *tt = find_template(c, path, o);
        if (!tt)
            return JM_ERR_INVALID;
        path_key(p, path, "args", 64);
        if (!av && tt->n_args > 0)
            return fail(c, path, "missing \"args\" (template \"%.64s\" has {%s})", tt->name,
                        tt->args[0]);
        if (av && !json_is_object(av))
            return fail(c, p, "expected an object, got %s", type_name(av));
        size_t n = json_object_size(av);
        jm_kv_t *kv = jm_calloc(n + 1, sizeof(*kv));
        char(*bufs)[64] = jm_calloc(n + 1, sizeof(*bufs));
        const char *key;
        json_t *x;
        size_t k = 0;
        jm_rc_t rc = JM_OK;
        json_object_foreach((json_t *)av, key, x)
        {
            char pk[PATH_MAX_B];
            path_key(pk, p, key, 64);
            if (jm_template_arg_index(tt, key) < 0) {
                rc = fail(c, pk, "template \"%.64s\" has no placeholder {%.64s}", tt->name, key);
                break;
            }
            kv[k].name = key;
            if ((rc = get_value(c, pk, x, bufs[k], sizeof(bufs[k]), &kv[k].value)) != JM_OK)
                break;
            k++;
        }
        for (size_t a = 0; rc == JM_OK && a < tt->n_args; a++)
            if (!json_object_get(av, tt->args[a]))
                rc = fail(c, p, "missing \"%s\" (a placeholder of template \"%.64s\")", tt->args[a],
                          tt->name);
        if (rc == JM_OK && !(t = jm_workflow_add_task_named(c->wf, tt, kv, k, name, &e)))
            rc = fail(c, p, "%s", e.msg);
        free(kv);
        free(bufs);
        if (rc != JM_OK)
            return rc;
    }
    json_t *nv = json_object_get(o, "name");
    if (nv && !(t->tmpl != JM_NONE && good_name(nv))) { /* else named by add_task_named */
        const char *name;
        pathf(p, "%s.name", path);
        if (get_str(c, p, nv, JM_NAME_MAX, 1, &name) != JM_OK)
            return JM_ERR_INVALID;
        if (jm_task_set_name(t, name, &e) != JM_OK)
            return fail(c, p, "%s", e.msg);
    }
    int has_defaults = 0;
    for (const char *const *k =
             (const char *const[]){"compute_resources", "resource_scales", "fallback_queues",
                                   "max_attempts", "cluster", NULL};
         *k; k++)
        has_defaults |= json_object_get(o, *k) != NULL;
    if (has_defaults && read_defaults(c, path, o, jm_task_defaults(t)) != JM_OK)
        return JM_ERR_INVALID;
    *idx = t->idx;
    return JM_OK;
}

/* ---- arrays ---- */

static const char *const array_keys[] = {
    "template",     "args",    "name_prefix",     "upstream",        "compute_resources",
    "max_attempts", "cluster", "resource_scales", "fallback_queues", NULL};

static jm_rc_t read_array(ctx_t *c, size_t i, const json_t *o, uint32_t *first, uint32_t *count)
{
    char path[PATH_MAX_B], p[PATH_MAX_B];
    jm_rc_t rc = JM_ERR_INVALID;
    jm_arg_values_t *av = NULL;
    const char **vals = NULL;
    char(*bufs)[64] = NULL;
    pathf(path, "arrays[%zu]", i);
    if (!json_is_object(o))
        return fail(c, path, "expected an object, got %s", type_name(o));
    if (check_keys(c, path, o, array_keys) != JM_OK)
        return JM_ERR_INVALID;
    if (!json_object_get(o, "template"))
        return fail(c, path, "missing \"template\"");
    jm_template_t *tt = find_template(c, path, o);
    if (!tt)
        return JM_ERR_INVALID;
    const json_t *args = json_object_get(o, "args");
    pathf(p, "%s.args", path);
    if (!args && tt->n_args > 0)
        return fail(c, path, "missing \"args\" (template \"%.64s\" has {%s})", tt->name,
                    tt->args[0]);
    if (args && !json_is_object(args))
        return fail(c, p, "expected an object, got %s", type_name(args));
    const char *name_prefix = NULL;
    if (json_object_get(o, "name_prefix")) {
        char pp[PATH_MAX_B];
        pathf(pp, "%s.name_prefix", path);
        if (get_str(c, pp, json_object_get(o, "name_prefix"), JM_NAME_MAX, 1, &name_prefix) !=
            JM_OK)
            return JM_ERR_INVALID;
    }
    /* count values */
    size_t n = json_object_size(args), total_vals = 0;
    const char *key;
    json_t *x;
    json_object_foreach((json_t *)args, key, x) total_vals +=
        json_is_array(x) ? json_array_size(x) : 1;
    av = jm_calloc(n + 1, sizeof(*av));
    vals = jm_calloc(total_vals + 1, sizeof(*vals));
    bufs = jm_calloc(total_vals + 1, sizeof(*bufs));
    size_t k = 0, vi = 0;
    json_object_foreach((json_t *)args, key, x)
    {
        char pk[PATH_MAX_B];
        pathf(pk, "%s.%.64s", p, key);
        int a = jm_template_arg_index(tt, key);
        if (a < 0) {
            fail(c, pk, "template \"%.64s\" has no placeholder {%.64s}", tt->name, key);
            goto out;
        }
        int node = jm_template_arg_kind(tt, (size_t)a) == JM_ARG_NODE;
        av[k].name = key;
        av[k].values = vals + vi;
        if (json_is_array(x)) {
            if (!node) {
                fail(c, pk, "not a node arg of template \"%.64s\": give one value, not a list",
                     tt->name);
                goto out;
            }
            if (json_array_size(x) == 0) {
                fail(c, pk, "empty list of values");
                goto out;
            }
            for (size_t j = 0; j < json_array_size(x); j++) {
                char pj[PATH_MAX_B];
                pathf(pj, "%s[%zu]", pk, j);
                if (get_value(c, pj, json_array_get(x, j), bufs[vi], sizeof(bufs[vi]), &vals[vi]) !=
                    JM_OK)
                    goto out;
                vi++;
            }
            av[k].n_values = json_array_size(x);
        } else {
            if (get_value(c, pk, x, bufs[vi], sizeof(bufs[vi]), &vals[vi]) != JM_OK)
                goto out;
            vi++;
            av[k].n_values = 1;
        }
        k++;
    }
    for (size_t a = 0; a < tt->n_args; a++)
        if (!json_object_get(args, tt->args[a])) {
            fail(c, p, "missing \"%s\" (a placeholder of template \"%.64s\")", tt->args[a],
                 tt->name);
            goto out;
        }
    jm_err_t e;
    jm_array_t *arr = jm_workflow_add_array(c->wf, tt, av, k, name_prefix, &e);
    if (!arr) {
        fail(c, p, "%s", e.msg);
        goto out;
    }
    if (read_defaults(c, path, o, jm_array_defaults(arr)) != JM_OK)
        goto out;
    *first = arr->first;
    *count = arr->count;
    rc = JM_OK;
out:
    free(bufs);
    free(vals);
    free(av);
    return rc;
}

/* ---- upstream names ---- */

/* `up` (the value of an "upstream" key, or NULL) of the task(s) first … first+count-1 at path. */
static jm_rc_t read_upstream_json(ctx_t *c, const char *path, const json_t *up, uint32_t first,
                                  uint32_t count)
{
    if (!up)
        return JM_OK;
    char p[PATH_MAX_B];
    pathf(p, "%s.upstream", path);
    if (get_array(c, p, up) != JM_OK)
        return JM_ERR_INVALID;
    for (size_t j = 0; j < json_array_size(up); j++) {
        const char *name;
        char pj[PATH_MAX_B];
        int amb;
        pathf(pj, "%s[%zu]", p, j);
        if (get_str(c, pj, json_array_get(up, j), JM_NAME_MAX, 1, &name) != JM_OK)
            return JM_ERR_INVALID;
        uint32_t u = jm_workflow_lookup(c->wf, name, &amb);
        if (u == JM_NONE)
            return fail(c, pj, "no task named \"%.64s\"", name);
        if (amb)
            return fail(c, pj, "several tasks are named \"%.64s\"", name);
        if (u >= first && u < first + count)
            return fail(c, pj, "task \"%.64s\" cannot depend on itself", name);
        for (uint32_t t = first; t < first + count; t++)
            jm_workflow_edge(c->wf, t, u);
    }
    return JM_OK;
}

static jm_rc_t read_upstream(ctx_t *c, const char *path, const json_t *o, uint32_t first,
                             uint32_t count)
{
    return read_upstream_json(c, path, json_object_get(o, "upstream"), first, count);
}

/* ---- the tasks array, streamed ---- */

/* The elements of `tasks`: either a jansson array (`arr`), or byte ranges of the file that are
 * parsed one at a time.  What pass 1 keeps of each task for the later passes: whether it has an
 * explicit name, and its upstream names (a clean list of non-empty strings goes to `names`; any
 * other "upstream" value is kept as JSON in bad_up[i] so that its error reads as before). */
/* Elements parsed ahead by a second thread (the parse is about half of reading a task): a ring of
 * the next parsed elements, filled in order by the thread, taken in order by tasks_get; NULL
 * entries are elements that are not valid JSON (the thread stops after one).  The thread also
 * frees each element when it reuses its slot (tasks_put), so that memory goes back to the thread
 * that allocated it instead of through glibc's arena locks. */
#define PREFETCH_RING  1024
#define PREFETCH_MIN   4096 /* fewer tasks: no thread */
#define PREFETCH_SLACK 64   /* a waiting side is woken when it can go on for this many elements */

typedef struct {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    json_t *ring[PREFETCH_RING];
    size_t head, tail, next; /* elements parsed / put back (all before the one taken) / taken */
    size_t wake_at;    /* head (reader waits) or tail (parser waits) that wakes the waiting side */
    int stop, waiting; /* waiting: 1 = the reader, 2 = the parser waits on cv */
} prefetch_t;

typedef struct {
    const json_t *arr;
    const char *buf;
    prefetch_t *pf;
    size_t *off, *len, n, cap;
    unsigned char *named;
    size_t *up_at;  /* offset in names of task i's first upstream name */
    uint32_t *up_n; /* number of upstream names of task i; UINT32_MAX = no "upstream" key */
    json_t **bad_up;
    char *names;
    size_t names_len, names_cap, n_names;
    uint32_t *found; /* jm_workflow_lookup of each name of `names`, AMB_BIT = ambiguous */
} tasks_src_t;

static void prefetch_stop(tasks_src_t *ts);

static void tasks_src_free(tasks_src_t *ts)
{
    prefetch_stop(ts);
    if (ts->bad_up)
        for (size_t i = 0; i < ts->n; i++)
            json_decref(ts->bad_up[i]);
    free(ts->bad_up);
    free(ts->off);
    free(ts->len);
    free(ts->named);
    free(ts->up_at);
    free(ts->up_n);
    free(ts->names);
    free(ts->found);
    memset(ts, 0, sizeof(*ts));
}

static size_t tasks_count(const tasks_src_t *ts)
{
    return ts->arr ? json_array_size(ts->arr) : ts->n;
}

static json_t *tasks_parse(const tasks_src_t *ts, size_t i)
{
    json_error_t je;
    return json_loadb(ts->buf + ts->off[i], ts->len[i], JSON_REJECT_DUPLICATES, &je);
}

static void *prefetch_run(void *arg)
{
    tasks_src_t *ts = arg;
    prefetch_t *pf = ts->pf;
    for (size_t i = 0; i < ts->n; i++) {
        pthread_mutex_lock(&pf->mu);
        while (!pf->stop && i - pf->tail >= PREFETCH_RING) {
            pf->waiting = 2;
            pf->wake_at = i - PREFETCH_RING + PREFETCH_SLACK;
            pthread_cond_wait(&pf->cv, &pf->mu);
        }
        int stop = pf->stop;
        pthread_mutex_unlock(&pf->mu);
        if (stop)
            break;
        json_decref(pf->ring[i % PREFETCH_RING]); /* element i - RING, taken and put back */
        json_t *o = tasks_parse(ts, i);
        pthread_mutex_lock(&pf->mu);
        pf->ring[i % PREFETCH_RING] = o;
        pf->head = i + 1;
        if (pf->waiting == 1 && (pf->head >= pf->wake_at || pf->head == ts->n || !o)) {
            pf->waiting = 0;
            pthread_cond_signal(&pf->cv);
        }
        pthread_mutex_unlock(&pf->mu);
        if (!o)
            break;
    }
    return NULL;
}

/* Start parsing the elements ahead (a large streamed array only; without a thread, tasks_get
 * parses each element itself). */
static void prefetch_start(tasks_src_t *ts)
{
    if (!ts->buf || ts->n < PREFETCH_MIN)
        return;
    prefetch_t *pf = jm_calloc(1, sizeof(*pf));
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->cv, NULL);
    ts->pf = pf;
    if (pthread_create(&pf->th, NULL, prefetch_run, ts) != 0) {
        pthread_cond_destroy(&pf->cv);
        pthread_mutex_destroy(&pf->mu);
        free(pf);
        ts->pf = NULL;
    }
}

/* Stop the parser thread and drop what it parsed ahead. */
static void prefetch_stop(tasks_src_t *ts)
{
    prefetch_t *pf = ts->pf;
    if (!pf)
        return;
    pthread_mutex_lock(&pf->mu);
    pf->stop = 1;
    pthread_cond_signal(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->th, NULL);
    for (size_t i = 0; i < PREFETCH_RING; i++)
        json_decref(pf->ring[i]);
    pthread_cond_destroy(&pf->cv);
    pthread_mutex_destroy(&pf->mu);
    free(pf);
    ts->pf = NULL;
}

/* Element i (taken in order when a thread parses ahead), or NULL when its text is not valid
 * JSON; give it back with tasks_put. */
static json_t *tasks_get(const tasks_src_t *ts, size_t i)
{
    if (ts->arr)
        return json_incref(json_array_get(ts->arr, i));
    prefetch_t *pf = ts->pf;
    if (!pf)
        return tasks_parse(ts, i);
    JM_ASSERT(i == pf->next);
    pf->next = i + 1;
    pthread_mutex_lock(&pf->mu);
    while (pf->head <= i) {
        pf->waiting = 1;
        pf->wake_at = i + PREFETCH_SLACK;
        pthread_cond_wait(&pf->cv, &pf->mu);
    }
    json_t *o = pf->ring[i % PREFETCH_RING];
    pf->tail = i;
    if (pf->waiting == 2 && pf->tail >= pf->wake_at) {
        pf->waiting = 0;
        pthread_cond_signal(&pf->cv);
    }
    pthread_mutex_unlock(&pf->mu);
    return o;
}

static void tasks_put(const tasks_src_t *ts, json_t *o)
{
    if (!ts->pf)
        json_decref(o);
}

/* Keep what the later passes need of task element o (index i). */
static void tasks_keep(tasks_src_t *ts, size_t i, const json_t *o)
{
    size_t n = tasks_count(ts);
    if (!ts->up_n) {
        ts->named = jm_calloc(n + 1, 1);
        ts->up_at = jm_calloc(n + 1, sizeof(size_t));
        ts->up_n = jm_calloc(n + 1, sizeof(uint32_t));
        ts->bad_up = jm_calloc(n + 1, sizeof(json_t *));
    }
    ts->named[i] = json_object_get(o, "name") != NULL;
    json_t *up = json_object_get(o, "upstream");
    ts->up_n[i] = UINT32_MAX;
    if (!up)
        return;
    int clean = json_is_array(up);
    for (size_t j = 0; clean && j < json_array_size(up); j++) {
        const json_t *x = json_array_get(up, j);
        clean = json_is_string(x) && json_string_length(x) > 0 &&
                json_string_length(x) <= JM_NAME_MAX &&
                strlen(json_string_value(x)) == json_string_length(x);
    }
    if (!clean) {
        ts->bad_up[i] = json_incref(up);
        return;
    }
    ts->up_at[i] = ts->names_len;
    ts->up_n[i] = (uint32_t)json_array_size(up);
    for (size_t j = 0; j < json_array_size(up); j++) {
        size_t l = json_string_length(json_array_get(up, j)) + 1;
        if (ts->names_len + l > ts->names_cap) {
            ts->names_cap = ts->names_cap ? 2 * ts->names_cap : 65536;
            while (ts->names_len + l > ts->names_cap)
                ts->names_cap *= 2;
            ts->names = jm_realloc(ts->names, ts->names_cap);
        }
        memcpy(ts->names + ts->names_len, json_string_value(json_array_get(up, j)), l);
        ts->names_len += l;
        ts->n_names++;
    }
}

#define AMB_BIT 0x80000000u

typedef struct {
    jm_workflow_t *wf;
    const char *from, *to; /* names */
    uint32_t *found;
} find_range_t;

static void *find_range(void *arg)
{
    find_range_t *r = arg;
    uint32_t *f = r->found;
    for (const char *name = r->from; name < r->to; name += strlen(name) + 1) {
        int amb;
        uint32_t u = jm_workflow_lookup(r->wf, name, &amb);
        *f++ = u == JM_NONE ? JM_NONE : amb ? u | AMB_BIT : u;
    }
    return NULL;
}

#define FIND_THREAD_MIN 4096 /* fewer names: one thread */

/* Look up every upstream name of `names` (pass 3 then only reads ts->found): a long list in two
 * halves, the second on a thread of its own (jm_workflow_lookup only reads once its name map is
 * built, which jm_workflow_names_unique did). */
static void tasks_find_upstream(jm_workflow_t *wf, tasks_src_t *ts)
{
    ts->found = jm_malloc((ts->n_names + 1) * sizeof(uint32_t));
    if (ts->n_names == 0) /* no upstream names: ts->names may be NULL */
        return;
    const char *end = ts->names + ts->names_len;
    find_range_t lo = {wf, ts->names, end, ts->found}, hi = lo;
    pthread_t th;
    if (ts->n_names >= FIND_THREAD_MIN) {
        const char *mid = ts->names + ts->names_len / 2;
        mid += strlen(mid) + 1; /* the start of a name (names_len/2 may be inside one) */
        size_t k = 0;
        for (const char *x = ts->names; x < mid; x += strlen(x) + 1)
            k++;
        hi = (find_range_t){wf, mid, end, ts->found + k};
        lo.to = mid;
        if (pthread_create(&th, NULL, find_range, &hi) != 0)
            lo.to = end;
    }
    find_range(&lo);
    if (lo.to != end)
        pthread_join(th, NULL);
}

/* Upstream of task element i (pass 3), with the same checks and messages as read_upstream; *k
 * is the index in ts->found of its first name. */
static jm_rc_t tasks_upstream(ctx_t *c, const tasks_src_t *ts, size_t i, const char *path,
                              uint32_t first, size_t *k)
{
    if (ts->bad_up[i])
        return read_upstream_json(c, path, ts->bad_up[i], first, 1);
    if (ts->up_n[i] == UINT32_MAX)
        return JM_OK;
    const char *name = ts->names + ts->up_at[i];
    for (uint32_t j = 0; j < ts->up_n[i]; j++, name += strlen(name) + 1) {
        char pj[PATH_MAX_B];
        uint32_t u = ts->found[(*k)++];
        int amb = u != JM_NONE && (u & AMB_BIT);
        if (amb)
            u &= ~AMB_BIT;
        if (u == JM_NONE || amb || u == first)
            pathf(pj, "%s.upstream[%u]", path, j);
        if (u == JM_NONE)
            return fail(c, pj, "no task named \"%.64s\"", name);
        if (amb)
            return fail(c, pj, "several tasks are named \"%.64s\"", name);
        if (u == first)
            return fail(c, pj, "task \"%.64s\" cannot depend on itself", name);
        jm_workflow_edge(c->wf, first, u);
    }
    return JM_OK;
}

/* ---- top level ---- */

static const char *const top_keys[] = {"tool",
                                       "workflow_args",
                                       "name",
                                       "cluster",
                                       "max_concurrently_running",
                                       "attributes",
                                       "defaults",
                                       "task_templates",
                                       "tasks",
                                       "arrays",
                                       "description",
                                       NULL};
static const char *const defaults_keys[] = {"compute_resources", "max_attempts", "resource_scales",
                                            "fallback_queues",   "cluster",      NULL};

/* JM_ERR_RETRY (internal): a task element is not valid JSON (the caller re-parses the whole file
 * for the message). */
static jm_rc_t read_workflow(ctx_t *c, const json_t *root, tasks_src_t *ts)
{
    jm_rc_t rc = JM_ERR_INVALID;
    const char *s;
    json_t *v;
    uint32_t *first = NULL, *count = NULL;
    if (!json_is_object(root))
        return fail(c, "workflow file", "expected a JSON object, got %s", type_name(root));
    if (check_keys(c, "workflow file", root, top_keys) != JM_OK)
        return JM_ERR_INVALID;
    if (!(v = json_object_get(root, "tool")))
        return fail(c, "workflow file", "missing \"tool\"");
    if (get_str(c, "tool", v, JM_NAME_MAX, 1, &s) != JM_OK)
        return JM_ERR_INVALID;
    jm_tool_t *tool = jm_tool_new(s);
    const char *args = NULL;
    if ((v = json_object_get(root, "workflow_args")) &&
        get_str(c, "workflow_args", v, 4096, 0, &args) != JM_OK) {
        jm_tool_destroy(tool);
        return JM_ERR_INVALID;
    }
    c->wf = jm_workflow_new(tool, args);
    c->wf->owns_tool = 1;
    jm_workflow_t *wf = c->wf;
    if ((v = json_object_get(root, "name"))) {
        if (get_str(c, "name", v, JM_NAME_MAX, 0, &s) != JM_OK)
            return JM_ERR_INVALID;
        (void)jm_workflow_set_name(wf, s, NULL);
    }
    if ((v = json_object_get(root, "description")) &&
        get_str(c, "description", v, 4096, 0, &s) != JM_OK)
        return JM_ERR_INVALID;
    if ((v = json_object_get(root, "max_concurrently_running"))) {
        int64_t n;
        if (get_int(c, "max_concurrently_running", v, 0, INT32_MAX, &n) != JM_OK)
            return JM_ERR_INVALID;
        jm_workflow_set_max_concurrently_running(wf, n);
    }
    if ((v = json_object_get(root, "attributes"))) {
        if (!json_is_object(v))
            return fail(c, "attributes", "expected an object, got %s", type_name(v));
        const char *key;
        json_t *x;
        json_object_foreach(v, key, x)
        {
            char p[PATH_MAX_B];
            jm_err_t e;
            pathf(p, "attributes.%.64s", key);
            if (get_str(c, p, x, 255, 0, &s) != JM_OK)
                return JM_ERR_INVALID;
            if (jm_workflow_set_attribute(wf, key, s, &e) != JM_OK)
                return fail(c, p, "%s", e.msg);
        }
    }
    if ((v = json_object_get(root, "defaults"))) {
        if (!json_is_object(v))
            return fail(c, "defaults", "expected an object, got %s", type_name(v));
        if (check_keys(c, "defaults", v, defaults_keys) != JM_OK ||
            read_defaults(c, "defaults", v, &wf->defaults) != JM_OK)
            return JM_ERR_INVALID;
    }
    if ((v = json_object_get(root, "cluster"))) {
        jm_err_t e;
        if (get_str(c, "cluster", v, JM_NAME_MAX, 1, &s) != JM_OK)
            return JM_ERR_INVALID;
        if (jm_cluster_check(s, &e) != JM_OK)
            return fail(c, "cluster", "%s", e.msg);
        jm_defaults_set_cluster(&wf->defaults, s);
    }
    const json_t *tts = json_object_get(root, "task_templates");
    const json_t *tasks = json_object_get(root, "tasks");
    if (!ts->buf)
        ts->arr = json_is_array(tasks) ? tasks : NULL;
    const json_t *arrays = json_object_get(root, "arrays");
    if (tts && get_array(c, "task_templates", tts) != JM_OK)
        return JM_ERR_INVALID;
    if (tasks && get_array(c, "tasks", tasks) != JM_OK)
        return JM_ERR_INVALID;
    if (arrays && get_array(c, "arrays", arrays) != JM_OK)
        return JM_ERR_INVALID;
    if (json_array_size(tts) > JM_TEMPLATES_MAX)
        return fail(c, "task_templates", "at most %d templates", JM_TEMPLATES_MAX);
    for (size_t i = 0; i < json_array_size(tts); i++)
        if (read_template(c, i, json_array_get(tts, i)) != JM_OK)
            return JM_ERR_INVALID;
    size_t n_tasks = tasks_count(ts), n_arrays = json_array_size(arrays);
    first = jm_calloc(n_tasks + n_arrays + 1, sizeof(uint32_t));
    count = jm_calloc(n_tasks + n_arrays + 1, sizeof(uint32_t));
    jm_strtab_reserve(&wf->strs, wf->strs.n + n_tasks); /* a name per task, at least */
    prefetch_start(ts);
    for (size_t i = 0; i < n_tasks; i++) {
        json_t *o = tasks_get(ts, i);
        if (!o) {
            rc = JM_ERR_RETRY;
            goto out;
        }
        jm_rc_t r = read_task(c, i, o, &first[i]);
        if (r == JM_OK)
            tasks_keep(ts, i, o);
        tasks_put(ts, o);
        if (r != JM_OK)
            goto out;
        count[i] = 1;
    }
    prefetch_stop(ts);
    for (size_t i = 0; i < n_arrays; i++)
        if (read_array(c, i, json_array_get(arrays, i), &first[n_tasks + i], &count[n_tasks + i]) !=
            JM_OK)
            goto out;
    /* explicit names must be unique (the loop finds the first culprit) */
    size_t n_check = jm_workflow_names_unique(wf) ? 0 : n_tasks;
    for (size_t i = 0; i < n_check; i++) {
        int amb;
        if (!ts->named[i])
            continue;
        const char *name = jm_task_name(jm_wf_task(wf, first[i])); /* = its "name" */
        (void)jm_workflow_lookup(wf, name, &amb);
        if (amb) {
            char p[PATH_MAX_B];
            pathf(p, "tasks[%zu].name", i);
            fail(c, p, "another task is also named \"%.64s\"", name);
            goto out;
        }
    }
    size_t k = 0;
    if (n_tasks)
        tasks_find_upstream(wf, ts);
    for (size_t i = 0; i < n_tasks + n_arrays; i++) {
        char path[PATH_MAX_B];
        if (i < n_tasks)
            path_index(path, "tasks", i);
        else
            path_index(path, "arrays", i - n_tasks);
        if (i < n_tasks ? tasks_upstream(c, ts, i, path, first[i], &k) != JM_OK
                        : read_upstream(c, path, json_array_get(arrays, i - n_tasks), first[i],
                                        count[i]) != JM_OK)
            goto out;
    }
    rc = JM_OK;
out:
    free(first);
    free(count);
    return rc;
}

/* ---- the top-level scanner ---- */

static size_t skip_ws(const char *b, size_t len, size_t i)
{
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        i++;
    return i;
}

/* End of the string starting at the quote b[i] (one past the closing quote), or len. */
static size_t skip_string(const char *b, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (b[i] == '\\')
            i++;
        else if (b[i] == '"')
            return i + 1;
    }
    return len;
}

/* End of the JSON value starting at b[i], assuming it is well formed (jansson checks it after). */
static size_t skip_value(const char *b, size_t len, size_t i)
{
    if (i >= len)
        return len;
    if (b[i] == '"')
        return skip_string(b, len, i);
    if (b[i] == '{' || b[i] == '[') {
        size_t depth = 0;
        while (i < len) {
            char ch = b[i];
            if (ch == '"') {
                i = skip_string(b, len, i);
                continue;
            }
            if (ch == '{' || ch == '[')
                depth++;
            else if ((ch == '}' || ch == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return len;
    }
    while (i < len && !strchr(",}] \t\r\n", b[i]) && b[i] != '\0')
        i++;
    return i;
}

static void tasks_add(tasks_src_t *ts, size_t off, size_t len)
{
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? 2 * ts->cap : 1024;
        ts->off = jm_realloc(ts->off, ts->cap * sizeof(size_t));
        ts->len = jm_realloc(ts->len, ts->cap * sizeof(size_t));
    }
    ts->off[ts->n] = off;
    ts->len[ts->n] = len;
    ts->n++;
}

/* Split the top-level object of b: every member but "tasks" parsed into a new object (returned),
 * the elements of "tasks" recorded as byte ranges in ts (and "tasks": [] put in the object).
 * NULL when the text is not one well-formed object (the caller lets jansson say why). */
static json_t *scan_top(const char *b, size_t len, tasks_src_t *ts)
{
    json_error_t je;
    json_t *root = json_object();
    size_t i = skip_ws(b, len, 0);
    if (i >= len || b[i] != '{')
        goto bad;
    i = skip_ws(b, len, i + 1);
    if (i < len && b[i] == '}') {
        i++;
        goto end;
    }
    for (;;) {
        if (i >= len || b[i] != '"')
            goto bad;
        size_t kend = skip_string(b, len, i);
        json_t *k = json_loadb(b + i, kend - i, JSON_DECODE_ANY, &je);
        if (!k || !json_is_string(k) || strlen(json_string_value(k)) != json_string_length(k) ||
            json_object_get(root, json_string_value(k))) { /* NUL in a key, duplicate key */
            json_decref(k);
            goto bad;
        }
        i = skip_ws(b, len, kend);
        if (i >= len || b[i] != ':') {
            json_decref(k);
            goto bad;
        }
        i = skip_ws(b, len, i + 1);
        if (strcmp(json_string_value(k), "tasks") == 0 && i < len && b[i] == '[') {
            i = skip_ws(b, len, i + 1);
            if (i < len && b[i] == ']') {
                i++;
            } else {
                for (;;) {
                    size_t vend = skip_value(b, len, i);
                    if (vend == i) {
                        json_decref(k);
                        goto bad;
                    }
                    tasks_add(ts, i, vend - i);
                    i = skip_ws(b, len, vend);
                    if (i < len && b[i] == ',') {
                        i = skip_ws(b, len, i + 1);
                        continue;
                    }
                    if (i < len && b[i] == ']') {
                        i++;
                        break;
                    }
                    json_decref(k);
                    goto bad;
                }
            }
            json_object_set_new(root, "tasks", json_array());
        } else {
            size_t vend = skip_value(b, len, i);
            json_t *v = json_loadb(b + i, vend - i, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
            if (!v) {
                json_decref(k);
                goto bad;
            }
            json_object_set_new(root, json_string_value(k), v);
            i = vend;
        }
        json_decref(k);
        i = skip_ws(b, len, i);
        if (i < len && b[i] == ',') {
            i = skip_ws(b, len, i + 1);
            continue;
        }
        if (i < len && b[i] == '}') {
            i++;
            break;
        }
        goto bad;
    }
end:
    if (skip_ws(b, len, i) != len)
        goto bad;
    ts->buf = b;
    return root;
bad:
    json_decref(root);
    tasks_src_free(ts);
    return NULL;
}

/* The whole text with jansson (the tree path): syntax errors, or a non-object root. */
static jm_workflow_t *load_tree(const void *buf, size_t len, jm_err_t *err)
{
    json_error_t je;
    ctx_t c = {.wf = NULL, .err = err};
    tasks_src_t ts = {0};
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        jm_err_set(err, JM_ERR_INVALID, "line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    jm_rc_t rc = read_workflow(&c, root, &ts);
    json_decref(root);
    tasks_src_free(&ts);
    if (rc != JM_OK) {
        jm_workflow_destroy(c.wf);
        return NULL;
    }
    return c.wf;
}

jm_workflow_t *jm_workflow_load_buffer(const void *buf, size_t len, jm_err_t *err)
{
    ctx_t c = {.wf = NULL, .err = err};
    tasks_src_t ts = {0};
    json_t *root = scan_top(buf, len, &ts);
    if (!root)
        return load_tree(buf, len, err);
    jm_rc_t rc = read_workflow(&c, root, &ts);
    json_decref(root);
    tasks_src_free(&ts);
    if (rc != JM_OK) {
        jm_workflow_destroy(c.wf);
        return rc == JM_ERR_RETRY ? load_tree(buf, len, err) : NULL;
    }
    return c.wf;
}

jm_workflow_t *jm_workflow_load_file(const char *path, jm_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        jm_err_set(err, JM_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *buf = jm_malloc(cap);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            cap *= 2;
            buf = jm_realloc(buf, cap);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        jm_err_set(err, JM_ERR_IO, "%s: read error", path);
        return NULL;
    }
    jm_workflow_t *wf = jm_workflow_load_buffer(buf, len, err);
    free(buf);
    return wf;
}
