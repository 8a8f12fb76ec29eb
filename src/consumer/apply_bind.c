/*
 * apply_bind.c — workflow.bind, workflow.bind_tasks, workflow.bound: the content rows (tool,
 * template versions, arrays; ON CONFLICT DO NOTHING), the workflow (get-or-create in G), its
 * tasks (inserted in G) and edges.  Each chunk is one statement (jsonb_to_recordset of the
 * chunk's task list).  Re-binding an existing workflow is the resume path of reference §1.4:
 * mutable fields are overwritten and existing tasks not D are reset to G with attempts 0 —
 * except active ones (Q I O R) while a run is alive, which the resume hand-over at run.start
 * deals with.  A new workflow whose tool and workflow_args are already used by another workflow
 * (different tasks or DAG, hence a different id) is rejected, as the reference's client does
 * (§1.4) — two clients may race past that check.  pending_upstreams is computed once binding is
 * complete (all tasks present and workflow.bound seen), because chunks may name upstream tasks that
 * arrive in a later chunk. Not here: runs and scheduling.
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
    PQclear(r);
    if (!ready)
        return JM_OK;
    const char *q[3] = {ap->wfid, NULL, ap->ts};
    return jm_ap_exec(ap, AP_PENDING_RECOMPUTE, 3, q, NULL, err);
}

jm_rc_t jm_ap_workflow_bind_tasks(jm_apply_t *ap, jm_err_t *err)
{
    const json_t *p = ap->ev->payload;
    char wst = 0;
    int64_t alive = 0;
    PGresult *r = NULL;
    jm_rc_t rc;
    int64_t *ids = NULL;
    char *from = NULL, *to = NULL;
    char *tasks = NULL;
    {
        const char *q[1] = {ap->wfid};
        if ((rc = jm_ap_exec(ap, AP_WF_GET, 1, q, &r, err)) != JM_OK)
            return rc;
        if (PQntuples(r) > 0)
            wst = PQgetvalue(r, 0, 0)[0];
        PQclear(r);
        r = NULL;
    }
    if (!wst) {
        jm_ap_rejected(ap, "workflow %" PRId64 ": unknown (bind_tasks before bind)",
                       ap->ev->workflow_id);
        return JM_OK;
    }
    if ((rc = jm_ap_alive_run(ap, ap->ev->workflow_id, &alive, NULL, NULL, err)) != JM_OK)
        return rc;
    tasks = json_dumps(jm_ev_get(p, "tasks"), JSON_COMPACT);
    {
        const char *q[4] = {tasks, ap->wfid, ap->ts, ap->evid};
        if ((rc = jm_ap_exec(ap, AP_TASKS_UPSERT, 4, q, &r, err)) != JM_OK)
            goto out;
    }
    jm_ap_applied(ap);
    jm_ap_touch_wf(ap, ap->ev->workflow_id);
    /* Existing tasks: the resume reset (not D; active ones only when no run is alive). */
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
    if (m && (rc = jm_ap_transition(ap, JM_ENTITY_TASK, m, ids, from, to, 1, AP_ATT_RESET, NULL,
                                    NULL, err)) != JM_OK)
        goto out;
    rc = maybe_finish(ap, err);
out:
    PQclear(r);
    free(tasks);
    free(ids);
    free(from);
    free(to);
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
