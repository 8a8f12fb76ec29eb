/*
 * clusters.c — THE table of clusters the client knows and their queues' limits, and the
 * resolution of a task's effective settings: precedence of the defaults levels, unit
 * normalisation (resources.h), queue checks and coercion with a warning.
 *
 * Deliberately not here: scaling after resource kills (the FSM, resources.h), talking to a
 * cluster (the distributor plugins).
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "jobmon/log.h"
#include "jobmon/resources.h"

#define GIB                   1024.0
#define TIB                   (1024.0 * GIB)
#define DAY                   (24.0 * 3600.0)
#define JM_RESOURCES_JSON_MAX 16384 /* event contract: compact JSON of a resources object */

static const jm_limit_t null_q_limits[] = {
    {"cores", 1, 20},
    {"memory", 0, TIB},
    {"runtime", 0, 7 * DAY},
};
static const jm_queue_t local_queues[] = {{"null.q", null_q_limits, JM_ARRAY_LEN(null_q_limits)}};

/* The local Slurm test partition (scripts start one node); limits are generous on purpose. */
static const jm_limit_t slurm_debug_limits[] = {
    {"cores", 1, 64},
    {"memory", 0, TIB},
    {"runtime", 60, 7 * DAY},
};
static const jm_queue_t slurm_queues[] = {
    {"debug", slurm_debug_limits, JM_ARRAY_LEN(slurm_debug_limits)}};

typedef struct {
    const char *name;
    const jm_queue_t *queues; /* the first is the default queue */
    size_t n_queues;
} cluster_t;

static const cluster_t clusters[] = {
    {"dummy", local_queues, JM_ARRAY_LEN(local_queues)},
    {"sequential", local_queues, JM_ARRAY_LEN(local_queues)},
    {"multiprocess", local_queues, JM_ARRAY_LEN(local_queues)},
    {"slurm", slurm_queues, JM_ARRAY_LEN(slurm_queues)},
};

static const cluster_t *cluster_find(const char *name)
{
    for (size_t i = 0; i < JM_ARRAY_LEN(clusters); i++)
        if (strcmp(clusters[i].name, name) == 0)
            return &clusters[i];
    return NULL;
}

static const jm_queue_t *queue_find(const cluster_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_queues; i++)
        if (strcmp(c->queues[i].name, name) == 0)
            return &c->queues[i];
    return NULL;
}

static void list_queues(const cluster_t *c, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->n_queues && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", c->queues[i].name);
}

jm_rc_t jm_cluster_check(const char *cluster, jm_err_t *err)
{
    if (cluster_find(cluster))
        return JM_OK;
    return jm_err_set(err, JM_ERR_INVALID,
                      "unknown cluster \"%.64s\" (known: dummy, sequential, multiprocess, slurm)",
                      cluster);
}

void jm_settings_free(jm_settings_t *s)
{
    free(s->cluster);
    json_decref(s->resources);
    json_decref(s->scales);
    json_decref(s->fallback_queues);
    memset(s, 0, sizeof(*s));
}

static size_t json_len(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    size_t n = s ? strlen(s) : 0;
    free(s);
    return n;
}

jm_rc_t jm_settings_resolve(jm_settings_t *out, const jm_defaults_t *const *levels, size_t n,
                            const char *who, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    json_t *raw = json_object(), *norm = NULL;
    jm_err_t e;
    memset(out, 0, sizeof(*out));
    const char *cluster = JM_DEFAULT_CLUSTER;
    out->max_attempts = JM_DEFAULT_MAX_ATTEMPTS;
    out->scales = jm_res_default_scales();
    const json_t *fallback = NULL;
    for (size_t i = 0; i < n; i++) {
        const jm_defaults_t *d = levels[i];
        if (!d)
            continue;
        if (d->cluster)
            cluster = d->cluster;
        if (d->resources)
            json_object_update(raw, d->resources);
        if (d->scales)
            json_object_update(out->scales, d->scales);
        if (d->fallback_queues)
            fallback = d->fallback_queues;
        if (d->max_attempts)
            out->max_attempts = d->max_attempts;
    }
    out->cluster = jm_strdup(cluster);
    const cluster_t *c = cluster_find(cluster);
    if (!c) {
        rc = jm_cluster_check(cluster, &e);
        jm_err_set(err, rc, "%s: %s", who, e.msg);
        goto out;
    }
    if ((rc = jm_res_normalise(raw, &norm, &e)) != JM_OK) {
        jm_err_set(err, rc, "%s: %s", who, e.msg);
        goto out;
    }
    const json_t *qv = json_object_get(norm, "queue");
    const char *qname = qv ? json_string_value(qv) : c->queues[0].name;
    const jm_queue_t *q = qname ? queue_find(c, qname) : NULL;
    char known[256];
    list_queues(c, known, sizeof(known));
    if (!q) {
        rc = jm_err_set(err, JM_ERR_INVALID,
                        "%s: unknown queue \"%.64s\" for cluster \"%s\" (queues: %s)", who,
                        qname ? qname : "?", cluster, known);
        goto out;
    }
    if (jm_res_validate(norm, q, &e) != JM_OK)
        jm_log(JM_LOG_WARN, "client", "%s: %s; coerced to the queue's limit", who, e.msg);
    out->resources = jm_res_coerce(norm, q);
    out->fallback_queues = json_array();
    for (size_t i = 0; fallback && i < json_array_size(fallback); i++) {
        const char *fq = json_string_value(json_array_get(fallback, i));
        if (!fq || !queue_find(c, fq)) {
            rc = jm_err_set(err, JM_ERR_INVALID,
                            "%s: unknown fallback queue \"%.64s\" for cluster \"%s\" (queues: %s)",
                            who, fq ? fq : "?", cluster, known);
            goto out;
        }
        json_array_append_new(out->fallback_queues, json_string(fq));
    }
    if (json_len(out->resources) > JM_RESOURCES_JSON_MAX) {
        rc = jm_err_set(err, JM_ERR_INVALID, "%s: compute resources over %d bytes as JSON", who,
                        JM_RESOURCES_JSON_MAX);
        goto out;
    }
    out->json_len = json_len(out->resources) + json_len(out->scales) +
                    json_len(out->fallback_queues) + strlen(out->cluster);
out:
    json_decref(raw);
    json_decref(norm);
    if (rc != JM_OK)
        jm_settings_free(out);
    return rc;
}
