/*
 * apply_bind.c — workflow.bind, workflow.bind_tasks, workflow.bound: the content rows (tool,
 * template versions, arrays; ON CONFLICT DO NOTHING), the workflow (get-or-create in G), its
 * tasks (inserted in G) and edges.  A chunk none of whose tasks exists yet (a first bind) is
 * copied (chunk_copy); any other is one statement (jsonb_to_recordset of the chunk's task list,
 * chunk_upsert).  Which one is not looked up first: the COPY is tried, an existing id fails it
 * (unique violation: the batch is retried), and from then on that workflow's chunks are probed
 * for existing tasks (bind_probe) and take the statement when some exist.  Re-binding an existing
 * workflow is the resume path of reference §1.4: mutable fields are overwritten and existing tasks
 * not D are reset to G with attempts 0 — except active ones (Q I O R) while a run is alive, which
 * the resume hand-over at run.start deals with.  A new workflow whose tool and workflow_args are
 * already used by another workflow (different tasks or DAG, hence a different id) is rejected, as
 * the reference's client does (§1.4) — two clients may race past that check.  pending_upstreams is
 * computed once binding is complete (all tasks present and workflow.bound seen), because chunks may
 * name upstream tasks that arrive in a later chunk — unless no chunk could have stored a wrong
 * count (workflow.bind_recheck false: a first bind, every chunk copied, each upstream id a task
 * not in D when its chunk was applied, as with a client that sends tasks in topological order).
 * Not here: runs and scheduling.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/apply_int.h"

jm_rc_t jm_ap_workflow_bind(jm_apply_t *ap, jm_err_t *err)
{
    const json_t *p = ap->ev->payload;
    jm_rc_t rc;
    char *tmpl = json_dumps(jm_ev_get(p, "templates"), JSON_COMPACT);
    char *attrs = json_dumps(jm_ev_get(p, "attributes"), JSON_COMPACT);
    char limit[24], total[24];
    PGresult *r = NULL;
    jm_ap_i64(limit, sizeof(limit), jm_ev_int(p, "max_concurrently_running"));
    jm_ap_i64(total, sizeof(total), jm_ev_int(p, "total_tasks"));
    {
        const char *q[3] = {jm_ev_str(p, "tool"), jm_ev_str(p, "workflow_args_hash"), ap->wfid};
        if ((rc = jm_ap_exec(ap, AP_WF_ARGS_TAKEN, 3, q, &r, err)) != JM_OK)
            goto out;
        if (PQntuples(r) > 0) {
            jm_ap_rejected(ap, "workflow args already used by workflow %s with different tasks",
                           PQgetvalue(r, 0, 0));
            goto out;
        }
        PQclear(r);
        r = NULL;
    }
    {
        const char *q[2] = {jm_ev_str(p, "tool"), ap->ts};
        if ((rc = jm_ap_exec(ap, AP_TOOL_INS, 2, q, NULL, err)) != JM_OK)
            goto out;
    }
    {
        const char *q[2] = {tmpl, ap->ts};
        if ((rc = jm_ap_exec(ap, AP_TTV_INS, 2, q, NULL, err)) != JM_OK)
            goto out;
    }
    {
        const char *q[12] = {ap->wfid,
                             jm_ev_str(p, "tool"),
                             jm_ev_str(p, "workflow_args_hash"),
                             jm_ev_str(p, "task_hash"),
                             jm_ev_str(p, "dag_hash"),
                             jm_ev_str(p, "name"),
                             limit,
                             total,
                             jm_ev_str(p, "user"),
                             attrs,
                             ap->ts,
                             ap->evid};
        if ((rc = jm_ap_exec(ap, AP_WF_INS, 12, q, &r, err)) != JM_OK)
            goto out;
    }
    {
        const char *q[2] = {tmpl, ap->wfid};
        if ((rc = jm_ap_exec(ap, AP_ARRAY_UPSERT, 2, q, NULL, err)) != JM_OK)
            goto out;
    }
    jm_ap_applied(ap);
    jm_ap_touch_wf(ap, ap->ev->workflow_id);
out:
    PQclear(r);
    free(tmpl);
    free(attrs);
    return rc;
}

/* Binding is complete when workflow.bound was seen and every task is present: compute the
 * pending upstream counts and set bound_at. */
static jm_rc_t maybe_finish(jm_apply_t *ap, jm_err_t *err)
{
    const char *p[1] = {ap->wfid};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_WF_CHUNK, 1, p, &r, err);
    if (rc != JM_OK)
        return rc;
    int ready = PQntuples(r) > 0 && PQgetvalue(r, 0, 0)[0] == 't' &&
                PQgetvalue(r, 0, 1)[0] != 't' &&
                strtoll(PQgetvalue(r, 0, 3), NULL, 10) >= strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    int recheck = ready && PQgetvalue(r, 0, 4)[0] == 't';
    PQclear(r);
    if (!ready)
        return JM_OK;
    /* without bind_recheck every stored count is exact already: no task list = bound_at only */
    const char *q[3] = {ap->wfid, recheck ? NULL : "{}", ap->ts};
    return jm_ap_exec(ap, AP_PENDING_RECOMPUTE, 3, q, NULL, err);
}

/* The chunk's upstream ids (NULL: the chunk took the general statement) may make the final
 * recompute necessary: AP_BIND_RECHECK. */
static jm_rc_t bind_recheck(jm_apply_t *ap, const char *upstream_ids, jm_err_t *err)
{
    const char *q[2] = {ap->wfid, upstream_ids};
    return jm_ap_exec(ap, AP_BIND_RECHECK, 2, q, NULL, err);
}

/* The general chunk statement (any chunk; the only one of a re-bind): upsert, then the resume
 * reset of the tasks that existed (not D; active ones only when no run is alive). */
static jm_rc_t chunk_upsert(jm_apply_t *ap, jm_err_t *err)
{
    int64_t alive = 0;
    PGresult *r = NULL;
    jm_rc_t rc;
    int64_t *ids = NULL;
    char *from = NULL, *to = NULL;
    char *tasks = NULL;
    if ((rc = jm_ap_alive_run(ap, ap->ev->workflow_id, &alive, NULL, NULL, err)) != JM_OK)
        return rc;
    tasks = json_dumps(jm_ev_get(ap->ev->payload, "tasks"), JSON_COMPACT);
    {
        const char *q[4] = {tasks, ap->wfid, ap->ts, ap->evid};
        if ((rc = jm_ap_exec(ap, AP_TASKS_UPSERT, 4, q, &r, err)) != JM_OK)
            goto out;
    }
    size_t n = (size_t)PQntuples(r), m = 0;
    ids = jm_malloc((n ? n : 1) * sizeof(*ids));
    from = jm_malloc(n + 1);
    to = jm_malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        char s = PQgetvalue(r, (int)i, 1)[0];
        if (s == 'D' || (alive && strchr("QIOR", s)))
            continue;
        ids[m] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        from[m] = s;
        to[m] = 'G';
        m++;
    }
    PQclear(r);
    r = NULL;
    if (m)
        rc = jm_ap_transition(ap, JM_ENTITY_TASK, m, ids, from, to, 1, AP_ATT_RESET, NULL, NULL,
                              err);
    if (rc == JM_OK)
        rc = bind_recheck(ap, NULL, err);
out:
    PQclear(r);
    free(tasks);
    free(ids);
    free(from);
    free(to);
    return rc;
}

/* ---- a chunk none of whose tasks exists yet: COPY ----------------------------------------
 * What AP_TASKS_UPSERT does when it inserts every task of the chunk, without its jsonb round
 * trip, executor and ON CONFLICT: the task rows (pending_upstreams = distinct upstream ids,
 * bind_event_id = this event: their creation, no transition_log row) and the edges by binary
 * COPY, the G count by AP_FLUSH_COUNTS, and AP_BIND_RECHECK of the upstream ids outside the
 * chunk (each task's pending_upstreams is exact if they are all tasks not in D).  A task id that
 * exists (a re-bind, an id of another workflow, a race with another partition) fails the COPY with
 * a unique violation, a retriable error.  Edges need no conflict check: an edge is only ever
 * written with its downstream task (inserted, or found existing by AP_TASKS_UPSERT), tasks are
 * never deleted, and upstream ids are deduplicated here. */

typedef struct {
    int64_t id;
    const json_t *t;
} chunk_task_t;

static int chunk_task_cmp(const void *a, const void *b)
{
    int64_t x = ((const chunk_task_t *)a)->id, y = ((const chunk_task_t *)b)->id;
    return (x > y) - (x < y);
}

/* The chunk's tasks by id; NULL when an id repeats (the general statement's business). */
static chunk_task_t *chunk_sorted(const json_t *tasks, size_t *n)
{
    size_t m = json_array_size(tasks);
    chunk_task_t *v = jm_malloc((m ? m : 1) * sizeof(*v));
    for (size_t i = 0; i < m; i++) {
        v[i].t = json_array_get(tasks, i);
        v[i].id = jm_ev_int(v[i].t, "task_id");
    }
    qsort(v, m, sizeof(*v), chunk_task_cmp);
    for (size_t i = 1; i < m; i++)
        if (v[i].id == v[i - 1].id) {
            free(v);
            return NULL;
        }
    *n = m;
    return v;
}

static void copy_str(jm_pgcopy_t *c, const json_t *t, const char *key)
{
    const json_t *v = json_object_get(t, key);
    if (json_is_string(v))
        jm_pgcopy_bytes(c, json_string_value(v), json_string_length(v));
    else
        jm_pgcopy_null(c);
}

static void copy_json(jm_pgcopy_t *c, const json_t *v)
{
    char buf[1024];
    size_t n = json_dumpb(v, buf, sizeof(buf), JSON_COMPACT);
    if (n > 0 && n <= sizeof(buf)) {
        jm_pgcopy_jsonb(c, buf, n);
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT);
    JM_ASSERT(s != NULL);
    jm_pgcopy_jsonb(c, s, strlen(s));
    free(s);
}

/* Task t's distinct upstream ids into *up (sorted); returns their number. */
static size_t upstream_ids(const json_t *t, int64_t **up, size_t *cap)
{
    const json_t *a = json_object_get(t, "upstream");
    size_t n = json_array_size(a);
    if (n > *cap) {
        *cap = n;
        *up = jm_realloc(*up, n * sizeof(**up));
    }
    for (size_t i = 0; i < n; i++)
        (*up)[i] = json_integer_value(json_array_get(a, i));
    return jm_i64_sort_unique(*up, n);
}

/* Task e's row and edges; its distinct upstream ids are left in (*up)[0..returned). */
static size_t copy_task(jm_apply_t *ap, jm_pgcopy_t *tc, jm_pgcopy_t *ec, const chunk_task_t *e,
                        int64_t **up, size_t *cap)
{
    int64_t wf = ap->ev->workflow_id;
    const json_t *t = e->t, *arr = json_object_get(t, "array_id");
    const json_t *fq = json_object_get(t, "fallback_queues");
    size_t nu = upstream_ids(t, up, cap);
    jm_pgcopy_row(tc, 16);
    jm_pgcopy_int8(tc, e->id);
    jm_pgcopy_int8(tc, wf);
    copy_str(tc, t, "name");
    copy_str(tc, t, "command");
    copy_str(tc, t, "template");
    if (json_is_integer(arr))
        jm_pgcopy_int8(tc, json_integer_value(arr));
    else
        jm_pgcopy_null(tc);
    copy_str(tc, t, "node_hash");
    jm_pgcopy_bytes(tc, "G", 1);
    jm_pgcopy_int4(tc, (int32_t)jm_ev_int(t, "max_attempts"));
    jm_pgcopy_int4(tc, (int32_t)nu);
    copy_json(tc, json_object_get(t, "resources"));
    copy_json(tc, json_object_get(t, "resource_scales"));
    size_t mark = jm_pgcopy_array_begin(tc, json_array_size(fq), 25 /* text */);
    for (size_t i = 0; i < json_array_size(fq); i++) {
        const json_t *q = json_array_get(fq, i);
        jm_pgcopy_bytes(tc, json_string_value(q), json_string_length(q));
    }
    jm_pgcopy_array_end(tc, mark);
    copy_str(tc, t, "cluster");
    jm_pgcopy_ts_ms(tc, ap->ev->ts_ms);
    jm_pgcopy_uuid(tc, ap->evid);
    for (size_t i = 0; i < nu; i++) {
        jm_pgcopy_row(ec, 3);
        jm_pgcopy_int8(ec, wf);
        jm_pgcopy_int8(ec, (*up)[i]);
        jm_pgcopy_int8(ec, e->id);
    }
    return nu;
}

static jm_rc_t chunk_copy(jm_apply_t *ap, const chunk_task_t *v, size_t n, jm_err_t *err)
{
    static const char task_sql[] =
        "COPY task (id, workflow_id, name, command, template, array_id, node_hash, status,"
        " max_attempts, pending_upstreams, resources, resource_scales, fallback_queues, cluster,"
        " status_at, bind_event_id) FROM STDIN (FORMAT binary)";
    static const char edge_sql[] =
        "COPY task_edge (workflow_id, upstream_id, downstream_id) FROM STDIN (FORMAT binary)";
    jm_pgcopy_t tc = {0}, ec = {0};
    jm_pgarr_t *outside = &ap->arr[1]; /* upstream ids that are not tasks of this chunk */
    int64_t *up = NULL;
    size_t cap = 0, n_outside = 0;
    jm_pgcopy_reset(&tc);
    jm_pgcopy_reset(&ec);
    jm_pgarr_reset(outside);
    for (size_t i = 0; i < n; i++) {
        size_t nu = copy_task(ap, &tc, &ec, &v[i], &up, &cap);
        for (size_t k = 0; k < nu; k++) {
            chunk_task_t key = {.id = up[k]};
            if (!bsearch(&key, v, n, sizeof(*v), chunk_task_cmp)) {
                jm_pgarr_add_int(outside, up[k]);
                n_outside++;
            }
        }
    }
    jm_rc_t rc = jm_pgcopy_send(&tc, ap->conn, task_sql, err);
    if (rc == JM_OK && ec.rows)
        rc = jm_pgcopy_send(&ec, ap->conn, edge_sql, err);
    if (rc == JM_OK && n_outside) /* the chunk's own tasks are there, in G */
        rc = bind_recheck(ap, jm_pgarr_finish(outside), err);
    if (rc == JM_OK) {
        char wfs[32], cnt[32];
        snprintf(wfs, sizeof(wfs), "{%s}", ap->wfid);
        snprintf(cnt, sizeof(cnt), "{%zu}", n);
        const char *q[3] = {wfs, "{G}", cnt};
        rc = jm_ap_exec(ap, AP_FLUSH_COUNTS, 3, q, NULL, err);
    }
    jm_pgcopy_free(&tc);
    jm_pgcopy_free(&ec);
    free(up);
    return rc;
}

/* Whether the chunks of workflow wf are probed (bind_probe). */
static int probe_wanted(const jm_apply_t *ap, int64_t wf)
{
    for (size_t i = 0; i < JM_ARRAY_LEN(ap->bind_probe); i++)
        if (ap->bind_probe[i] == wf)
            return 1;
    return 0;
}

static void probe_add(jm_apply_t *ap, int64_t wf)
{
    if (probe_wanted(ap, wf))
        return;
    ap->bind_probe[ap->bind_probe_next++ % JM_ARRAY_LEN(ap->bind_probe)] = wf;
}

/* The workflow's status (0 = unknown) and whether the chunk must take the general statement:
 * v is NULL, or `probe` and some task exists already (a re-bind, or an id of another workflow).
 * Without `probe` the COPY path is tried and a duplicate id fails it (chunk_copy). */
static jm_rc_t chunk_get(jm_apply_t *ap, const chunk_task_t *v, size_t n, int probe, char *wst,
                         int *general, jm_err_t *err)
{
    jm_pgarr_t *a = &ap->arr[0];
    jm_pgarr_reset(a);
    for (size_t i = 0; v && probe && i < n; i++)
        jm_pgarr_add_int(a, v[i].id);
    const char *q[2] = {ap->wfid, v && probe ? jm_pgarr_finish(a) : NULL};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_BIND_CHUNK_GET, 2, q, &r, err);
    if (rc != JM_OK)
        return rc;
    *wst = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0)[0] : 0;
    *general = !v || (probe && PQntuples(r) > 0 && PQgetvalue(r, 0, 1)[0] == 't');
    PQclear(r);
    return JM_OK;
}

jm_rc_t jm_ap_workflow_bind_tasks(jm_apply_t *ap, jm_err_t *err)
{
    size_t n = 0;
    chunk_task_t *v =
        ap->bind_general ? NULL : chunk_sorted(jm_ev_get(ap->ev->payload, "tasks"), &n);
    char wst = 0;
    int general = 1, probe = probe_wanted(ap, ap->ev->workflow_id);
    jm_rc_t rc = chunk_get(ap, v, n, probe, &wst, &general, err);
    if (rc == JM_OK && !wst)
        jm_ap_rejected(ap, "workflow %" PRId64 ": unknown (bind_tasks before bind)",
                       ap->ev->workflow_id);
    else if (rc == JM_OK) {
        rc = general ? chunk_upsert(ap, err) : chunk_copy(ap, v, n, err);
        if (rc == JM_ERR_RETRY && !general) /* an existing id, most likely: probe on the retry */
            probe_add(ap, ap->ev->workflow_id);
        if (rc == JM_OK) {
            jm_ap_applied(ap);
            jm_ap_touch_wf(ap, ap->ev->workflow_id);
            rc = maybe_finish(ap, err);
        }
    }
    free(v);
    return rc;
}

jm_rc_t jm_ap_workflow_bound(jm_apply_t *ap, jm_err_t *err)
{
    char chunks[24];
    jm_ap_i64(chunks, sizeof(chunks), jm_ev_int(ap->ev->payload, "chunks"));
    const char *q[2] = {ap->wfid, chunks};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_WF_BOUND, 2, q, &r, err);
    if (rc != JM_OK)
        return rc;
    int found = PQntuples(r) > 0;
    PQclear(r);
    if (!found) {
        jm_ap_rejected(ap, "workflow %" PRId64 ": unknown", ap->ev->workflow_id);
        return JM_OK;
    }
    jm_ap_applied(ap);
    jm_ap_touch_wf(ap, ap->ev->workflow_id);
    return maybe_finish(ap, err);
}
