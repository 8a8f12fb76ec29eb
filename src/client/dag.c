/*
 * dag.c — whole-workflow validation and identity: adjacency (CSR) from the edge list, cycle
 * detection with Kahn's algorithm (iterative; a cycle is then walked upstream to name its
 * tasks), per-task limits, node/task hashes, duplicate nodes and tasks, task-set and dag hashes,
 * workflow/task/array ids, and the effective settings of every task.
 *
 * Sized for 1.5M tasks and 10M edges: arrays of uint32 indices, one sort of (hash, index) pairs,
 * no recursion.  Deliberately not here: building the model (model.c), events (bind.c).
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

static const char *tname(const jm_workflow_t *wf, uint32_t i)
{
    return jm_wf_str(wf, jm_wf_task(wf, i)->name);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Name one cycle among the tasks Kahn's algorithm could not order (indeg > 0). */
static jm_rc_t report_cycle(jm_workflow_t *wf, const uint32_t *indeg, jm_err_t *err)
{
    uint32_t n = wf->n_tasks, start = 0;
    while (start < n && indeg[start] == 0)
        start++;
    JM_ASSERT(start < n);
    uint32_t *stamp = jm_malloc((size_t)n * sizeof(*stamp));
    uint32_t *seq = jm_malloc((size_t)n * sizeof(*seq));
    memset(stamp, 0xff, (size_t)n * sizeof(*stamp));
    uint32_t k = 0, cur = start;
    /* every unordered task has an unordered upstream: walking upstream must revisit a task */
    while (stamp[cur] == JM_NONE) {
        stamp[cur] = k;
        seq[k++] = cur;
        uint32_t next = JM_NONE;
        for (uint32_t e = wf->up_off[cur]; e < wf->up_off[cur + 1]; e++)
            if (indeg[wf->up[e]] > 0) {
                next = wf->up[e];
                break;
            }
        JM_ASSERT(next != JM_NONE);
        cur = next;
    }
    uint32_t j = stamp[cur];
    char path[JM_ERR_MSG_MAX];
    size_t o = 0;
    path[0] = '\0';
    uint32_t len = k - j; /* tasks on the cycle */
    for (uint32_t i = 1; i <= len && o < sizeof(path); i++) {
        uint32_t t = i == len ? seq[j] : seq[j + i];
        if (i > 6 && i < len) { /* keep the message short: first tasks, then the closing one */
            o += (size_t)snprintf(path + o, sizeof(path) - o, " -> … (%u more)", len - i);
            i = len - 1;
            continue;
        }
        o += (size_t)snprintf(path + o, sizeof(path) - o, "%s\"%.48s\"", i > 1 ? " -> " : "",
                              tname(wf, t));
    }
    jm_rc_t rc = jm_err_set(err, JM_ERR_INVALID, "task \"%.64s\": depends on itself through %s",
                            tname(wf, seq[j]), path);
    free(stamp);
    free(seq);
    return rc;
}

jm_rc_t jm_workflow_check_structure(jm_workflow_t *wf, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    uint32_t n = wf->n_tasks;
    uint32_t *cnt = NULL;
    if (n == 0)
        return jm_err_set(err, JM_ERR_INVALID, "the workflow has no tasks");
    if (wf->n_tmpls > JM_TEMPLATES_MAX)
        return jm_err_set(err, JM_ERR_INVALID, "the workflow uses %u templates, at most %d",
                          wf->n_tmpls, JM_TEMPLATES_MAX);
    if (wf->n_edges >= UINT32_MAX)
        return jm_err_set(err, JM_ERR_INVALID, "too many edges (%llu)",
                          (unsigned long long)wf->n_edges);
    /* commands */
    for (uint32_t i = 0; i < n; i++) {
        const jm_task_t *t = jm_wf_task(wf, i);
        const jm_template_t *tt = jm_task_template(t);
        if (!tt)
            continue;
        const char *vals[tt->n_args + 1];
        jm_task_values(t, vals);
        size_t len = jm_template_render_len(tt, vals);
        if (len > JM_COMMAND_MAX)
            return jm_err_set(err, JM_ERR_INVALID,
                              "task \"%.64s\": command is %zu bytes, at most %d", tname(wf, i), len,
                              JM_COMMAND_MAX);
    }
    /* upstream CSR, sorted and de-duplicated per task */
    free(wf->up_off);
    free(wf->up);
    wf->up_off = jm_calloc((size_t)n + 1, sizeof(uint32_t));
    wf->up = jm_malloc((wf->n_edges + 1) * sizeof(uint32_t));
    cnt = jm_calloc((size_t)n + 1, sizeof(uint32_t));
    for (uint64_t e = 0; e < wf->n_edges; e++) {
        uint32_t down = wf->edges[2 * e], up = wf->edges[2 * e + 1];
        if (down == up) {
            rc = jm_err_set(err, JM_ERR_INVALID, "task \"%.64s\": depends on itself",
                            tname(wf, down));
            goto out;
        }
        wf->up_off[down + 1]++;
    }
    for (uint32_t i = 0; i < n; i++)
        wf->up_off[i + 1] += wf->up_off[i];
    for (uint64_t e = 0; e < wf->n_edges; e++) {
        uint32_t down = wf->edges[2 * e];
        wf->up[wf->up_off[down] + cnt[down]++] = wf->edges[2 * e + 1];
    }
    uint32_t w = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t b = wf->up_off[i], e = wf->up_off[i + 1];
        if (e - b > 1)
            qsort(wf->up + b, e - b, sizeof(uint32_t), cmp_u32);
        wf->up_off[i] = w;
        for (uint32_t k = b; k < e; k++)
            if (k == b || wf->up[k] != wf->up[k - 1])
                wf->up[w++] = wf->up[k];
        if (w - wf->up_off[i] > JM_UPSTREAM_MAX) {
            rc = jm_err_set(err, JM_ERR_INVALID, "task \"%.64s\": %u upstream tasks, at most %d",
                            tname(wf, i), w - wf->up_off[i], JM_UPSTREAM_MAX);
            goto out;
        }
    }
    wf->up_off[n] = w;
    /* downstream CSR (transpose); listed in ascending order of downstream index */
    free(wf->down_off);
    free(wf->down);
    wf->down_off = jm_calloc((size_t)n + 1, sizeof(uint32_t));
    wf->down = jm_malloc(((size_t)w + 1) * sizeof(uint32_t));
    for (uint32_t e = 0; e < w; e++)
        wf->down_off[wf->up[e] + 1]++;
    for (uint32_t i = 0; i < n; i++)
        wf->down_off[i + 1] += wf->down_off[i];
    memset(cnt, 0, ((size_t)n + 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t e = wf->up_off[i]; e < wf->up_off[i + 1]; e++) {
            uint32_t u = wf->up[e];
            wf->down[wf->down_off[u] + cnt[u]++] = i;
        }
    /* Kahn: cnt becomes the in-degree, topo the queue */
    free(wf->topo);
    wf->topo = jm_malloc((size_t)n * sizeof(uint32_t));
    uint32_t head = 0, tail = 0;
    for (uint32_t i = 0; i < n; i++) {
        cnt[i] = wf->up_off[i + 1] - wf->up_off[i];
        if (cnt[i] == 0)
            wf->topo[tail++] = i;
    }
    while (head < tail) {
        uint32_t t = wf->topo[head++];
        for (uint32_t e = wf->down_off[t]; e < wf->down_off[t + 1]; e++)
            if (--cnt[wf->down[e]] == 0)
                wf->topo[tail++] = wf->down[e];
    }
    if (tail < n)
        rc = report_cycle(wf, cnt, err);
out:
    free(cnt);
    return rc;
}

typedef struct {
    jm_hash_t h;
    uint32_t idx;
} hidx_t;

static int cmp_hidx(const void *a, const void *b)
{
    const hidx_t *x = a, *y = b;
    int c = jm_hash_cmp(&x->h, &y->h);
    if (c)
        return c;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static void hash_task(jm_workflow_t *wf, jm_task_t *t)
{
    const jm_template_t *tt = jm_task_template(t);
    if (!tt) {
        const char *cmd = jm_wf_str(wf, (uint32_t)t->args);
        t->node = jm_hash_command_node(cmd);
        t->hash = jm_hash_task(t->node, NULL, 0);
        return;
    }
    jm_kv_t kv[tt->n_args + 1];
    for (size_t i = 0; i < tt->n_node + tt->n_task; i++)
        kv[i] = (jm_kv_t){tt->args[i], jm_wf_str(wf, wf->argv[t->args + i])};
    t->node = jm_hash_node(tt->hash, kv, tt->n_node);
    t->hash = jm_hash_task(t->node, kv + tt->n_node, tt->n_task);
}

jm_rc_t jm_workflow_compute_identity(jm_workflow_t *wf, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    uint32_t n = wf->n_tasks;
    hidx_t *by_node = jm_malloc((size_t)n * sizeof(*by_node));
    jm_hash_t *hs = NULL, *down = NULL, *down_nodes = NULL;
    jm_dag_hasher_t *dh = NULL;
    for (uint32_t i = 0; i < n; i++) {
        jm_task_t *t = jm_wf_task(wf, i);
        hash_task(wf, t);
        by_node[i] = (hidx_t){t->node, i};
    }
    qsort(by_node, n, sizeof(*by_node), cmp_hidx);
    for (uint32_t i = 1; i < n; i++) {
        if (!jm_hash_eq(by_node[i].h, by_node[i - 1].h))
            continue;
        const jm_task_t *a = jm_wf_task(wf, by_node[i - 1].idx);
        const jm_task_t *b = jm_wf_task(wf, by_node[i].idx);
        const jm_template_t *tt = jm_task_template(b);
        if (jm_hash_eq(a->hash, b->hash))
            rc = jm_err_set(err, JM_ERR_INVALID, "task \"%.64s\": duplicate of task \"%.64s\" (%s)",
                            tname(wf, b->idx), tname(wf, a->idx),
                            tt ? "same template, node args and task args" : "same command");
        else
            rc = jm_err_set(err, JM_ERR_INVALID,
                            "task \"%.64s\": same node args as task \"%.64s\" in template "
                            "\"%.64s\" (node args must be unique within a template)",
                            tname(wf, b->idx), tname(wf, a->idx), tt ? tt->name : "command");
        goto out;
    }
    /* task set */
    hs = jm_malloc((size_t)n * sizeof(*hs));
    for (uint32_t i = 0; i < n; i++)
        hs[i] = jm_wf_task(wf, i)->hash;
    wf->task_set_hash = jm_hash_task_set(hs, n);
    /* dag: nodes in sorted order, each with its sorted downstream nodes */
    uint32_t max_down = 0;
    for (uint32_t i = 0; i < n; i++)
        if (wf->down_off[i + 1] - wf->down_off[i] > max_down)
            max_down = wf->down_off[i + 1] - wf->down_off[i];
    down = jm_malloc(((size_t)max_down + 1) * sizeof(*down));
    /* the node of each edge's downstream task, in edge order first: the loads do not depend on
     * each other (sorted order below would chain three cache misses per node) */
    uint32_t n_down = wf->down_off[n];
    down_nodes = jm_malloc(((size_t)n_down + 1) * sizeof(*down_nodes));
    for (uint32_t e = 0; e < n_down; e++)
        down_nodes[e] = jm_wf_task(wf, wf->down[e])->node;
    dh = jm_dag_hasher_new();
    for (uint32_t k = 0; k < n; k++) {
        if (k + 16 < n)
            __builtin_prefetch(&wf->down_off[by_node[k + 16].idx]);
        uint32_t i = by_node[k].idx, m = wf->down_off[i + 1] - wf->down_off[i];
        memcpy(down, down_nodes + wf->down_off[i], (size_t)m * sizeof(*down));
        rc = jm_dag_hasher_add(dh, by_node[k].h, down, m);
        JM_ASSERT(rc == JM_OK); /* nodes are unique and sorted */
    }
    wf->dag_hash = jm_dag_hasher_digest(dh);
    wf->args_hash = jm_hash_workflow_args(wf->args);
    wf->id = jm_hash_workflow_id(wf->tool->name, wf->args_hash, wf->task_set_hash, wf->dag_hash);
    for (uint32_t i = 0; i < n; i++) {
        jm_task_t *t = jm_wf_task(wf, i);
        t->id = jm_hash_task_id(wf->id, t->hash);
    }
    free(wf->array_ids);
    wf->array_ids = jm_calloc(wf->n_tmpls + 1, sizeof(int64_t));
    for (uint32_t i = 0; i < wf->n_tmpls; i++)
        wf->array_ids[i] = jm_hash_array_id(wf->id, wf->tmpls[i]->hash);
out:
    jm_dag_hasher_destroy(dh);
    free(down_nodes);
    free(down);
    free(hs);
    free(by_node);
    return rc;
}

static uint32_t settings_push(jm_workflow_t *wf)
{
    if (wf->n_settings == wf->cap_settings) {
        wf->cap_settings = wf->cap_settings ? 2 * wf->cap_settings : 16;
        wf->settings = jm_realloc(wf->settings, wf->cap_settings * sizeof(*wf->settings));
    }
    memset(&wf->settings[wf->n_settings], 0, sizeof(jm_settings_t));
    return wf->n_settings++;
}

jm_rc_t jm_workflow_resolve_settings(jm_workflow_t *wf, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    for (uint32_t i = 0; i < wf->n_settings; i++)
        jm_settings_free(&wf->settings[i]);
    wf->n_settings = 0;
    uint32_t *tmpl_set = jm_malloc((wf->n_tmpls + 1) * sizeof(uint32_t));
    uint32_t *arr_set = jm_malloc((wf->n_arrays + 1) * sizeof(uint32_t));
    uint32_t cmd_set = JM_NONE;
    memset(tmpl_set, 0xff, (wf->n_tmpls + 1) * sizeof(uint32_t));
    memset(arr_set, 0xff, (wf->n_arrays + 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < wf->n_tasks; i++) {
        jm_task_t *t = jm_wf_task(wf, i);
        uint32_t *slot = NULL, fresh = JM_NONE;
        if (t->defaults != JM_NONE)
            slot = &fresh;
        else if (t->arr != JM_NONE)
            slot = &arr_set[t->arr];
        else if (t->tmpl != JM_NONE)
            slot = &tmpl_set[t->tmpl];
        else
            slot = &cmd_set;
        if (*slot == JM_NONE) {
            jm_template_t *tt = t->tmpl == JM_NONE ? NULL : wf->tmpls[t->tmpl];
            const jm_defaults_t *levels[5] = {
                &wf->tool->defaults,
                &wf->defaults,
                tt ? &tt->defaults : NULL,
                t->arr != JM_NONE ? &wf->arrays[t->arr]->defaults : NULL,
                t->defaults != JM_NONE ? wf->task_defaults[t->defaults] : NULL,
            };
            char who[96];
            snprintf(who, sizeof(who), "task \"%.64s\"", tname(wf, i));
            uint32_t s = settings_push(wf);
            if ((rc = jm_settings_resolve(&wf->settings[s], levels, 5, who, err)) != JM_OK) {
                wf->n_settings--;
                goto out;
            }
            *slot = s;
        }
        t->settings = *slot;
    }
out:
    free(tmpl_set);
    free(arr_set);
    return rc;
}

jm_rc_t jm_workflow_validate(jm_workflow_t *wf, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    if (!wf->valid) {
        if ((rc = jm_workflow_check_structure(wf, err)) != JM_OK)
            goto out;
        if ((rc = jm_workflow_compute_identity(wf, err)) != JM_OK)
            goto out;
    }
    wf->valid = 0;
    if ((rc = jm_workflow_resolve_settings(wf, err)) != JM_OK)
        goto out;
    wf->valid = 1;
out:
    if (rc != JM_OK)
        jm_workflow_invalidate(wf);
    return rc;
}

/* ---- identity accessors ---- */

int64_t jm_workflow_id(const jm_workflow_t *wf)
{
    JM_ASSERT(wf->valid);
    return wf->id;
}

jm_hash_t jm_workflow_task_hash(const jm_workflow_t *wf)
{
    JM_ASSERT(wf->valid);
    return wf->task_set_hash;
}

jm_hash_t jm_workflow_dag_hash(const jm_workflow_t *wf)
{
    JM_ASSERT(wf->valid);
    return wf->dag_hash;
}

jm_hash_t jm_workflow_args_hash(const jm_workflow_t *wf)
{
    JM_ASSERT(wf->valid);
    return wf->args_hash;
}

int64_t jm_task_id(const jm_task_t *task)
{
    JM_ASSERT(task->wf->valid);
    return task->id;
}

jm_hash_t jm_task_hash(const jm_task_t *task)
{
    JM_ASSERT(task->wf->valid);
    return task->hash;
}

jm_hash_t jm_task_node_hash(const jm_task_t *task)
{
    JM_ASSERT(task->wf->valid);
    return task->node;
}

int64_t jm_workflow_array_id(const jm_workflow_t *wf, const jm_template_t *tt)
{
    JM_ASSERT(wf->valid);
    for (uint32_t i = 0; i < wf->n_tmpls; i++)
        if (wf->tmpls[i] == tt)
            return wf->array_ids[i];
    return jm_hash_array_id(wf->id, tt->hash);
}

int jm_task_max_attempts(const jm_task_t *task)
{
    JM_ASSERT(task->wf->valid);
    return task->wf->settings[task->settings].max_attempts;
}

const char *jm_task_cluster(const jm_task_t *task)
{
    JM_ASSERT(task->wf->valid);
    return task->wf->settings[task->settings].cluster;
}

char *jm_task_resources_json(const jm_task_t *task)
{
    JM_ASSERT(task->wf->valid);
    return json_dumps(task->wf->settings[task->settings].resources, JSON_COMPACT | JSON_SORT_KEYS);
}
