/*
 * apply_operator.c — operator events: workflow.resume (signal the alive run to hand over),
 * workflow.reset, workflow.concurrency (live limits, 0 pauses), task.set_status (D / G) and
 * workflow.prune (retention: a finished workflow deleted a chunk of rows per event).
 * The bulk changes here are the documented FSM bypasses of reference §2 and §3.11 (still
 * written through jm_ap_transition, so logged and counted).  Reset and task.set_status enforce
 * §3.11's ownership against the event's `user` (resume and concurrency: no auth, no check); a
 * reset also ends a resume hand-over (C/H) run whose heartbeat lapsed, as the reaper would.
 * Not here: the hand-over itself (apply_run.c) and queueing (sched.c).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/apply_int.h"

static int64_t i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Move every (id, status) row of `r` to `to` with attempt mode `att` (bypass). */
static jm_rc_t move_rows(jm_apply_t *ap, jm_entity_t entity, PGresult *r, char to, int att,
                         const char *skip, jm_err_t *err)
{
    size_t n = (size_t)PQntuples(r), m = 0;
    int64_t *ids = jm_malloc((n + 1) * sizeof(*ids));
    char *from = jm_malloc(n + 1), *tos = jm_malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        char s = PQgetvalue(r, (int)i, 1)[0];
        if (skip && strchr(skip, s))
            continue;
        ids[m] = i64(r, (int)i, 0);
        from[m] = s;
        tos[m] = to;
        m++;
    }
    jm_rc_t rc = JM_OK;
    if (m)
        rc = jm_ap_transition(ap, entity, m, ids, from, tos, 1, att, NULL, NULL, err);
    free(ids);
    free(from);
    free(tos);
    return rc;
}

jm_rc_t jm_ap_workflow_resume(jm_apply_t *ap, jm_err_t *err)
{
    int64_t wf = ap->ev->workflow_id, run;
    char st = 0;
    jm_rc_t rc = jm_ap_alive_run(ap, wf, &run, &st, NULL, err);
    if (rc != JM_OK)
        return rc;
    if (!run) {
        jm_ap_ignored(ap, "workflow %" PRId64 ": no alive run", wf);
        return JM_OK;
    }
    if (st == 'C' || st == 'H') {
        jm_ap_ignored(ap, "workflow_run %" PRId64 ": already %c", run, st);
        return JM_OK;
    }
    const char *mode = jm_ev_str(ap->ev->payload, "mode");
    if ((rc = jm_ap_run_handover(ap, wf, run, st, strcmp(mode, "cold") == 0, 0, err)) != JM_OK)
        return rc;
    return jm_ap_progress(ap, wf, err);
}

static jm_rc_t recompute_pending(jm_apply_t *ap, jm_err_t *err)
{
    const char *p[3] = {ap->wfid, NULL, NULL};
    return jm_ap_exec(ap, AP_PENDING_RECOMPUTE, 3, p, NULL, err);
}

/* Reference §3.11 ownership, against the event's `user`: a reset needs the user of the
 * workflow's most recent errored run (OWN_LAST_ERRORED), a task status update a user of any of
 * its runs (OWN_ANY_RUN).  *ok 0: the rejection is recorded. */
enum { OWN_LAST_ERRORED, OWN_ANY_RUN };

static jm_rc_t owner_check(jm_apply_t *ap, int what, int *ok, jm_err_t *err)
{
    const char *user = jm_ev_str(ap->ev->payload, "user");
    const char *p[2] = {ap->wfid, user};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_WF_OWNERSHIP, 2, p, &r, err);
    if (rc != JM_OK)
        return rc;
    int64_t wf = ap->ev->workflow_id, last = i64(r, 0, 0);
    const char *last_user = PQgetvalue(r, 0, 1);
    if (what == OWN_ANY_RUN)
        *ok = PQgetvalue(r, 0, 2)[0] == 't';
    else
        *ok = last && strcmp(last_user, user) == 0;
    if (!*ok && what == OWN_ANY_RUN)
        jm_ap_rejected(ap, "workflow %" PRId64 ": user %s started none of its runs", wf, user);
    else if (!*ok && !last)
        jm_ap_rejected(ap, "workflow %" PRId64 ": has no errored run (a reset needs its user)", wf);
    else if (!*ok)
        jm_ap_rejected(ap,
                       "workflow %" PRId64 ": user %s did not start its last errored run %" PRId64
                       " (user %s)",
                       wf, user, last, last_user);
    PQclear(r);
    return JM_OK;
}

/* A reset needs no alive run.  A C/H run whose heartbeat lapsed by the event's ts is ended here
 * as reaper.run_lost would end it (T, its leftover instances per §3.9); any other alive run, or a
 * C/H one still heartbeating, rejects the reset.  *ok 0: the rejection is recorded. */
static jm_rc_t end_lapsed_run(jm_apply_t *ap, int64_t wf, int *ok, jm_err_t *err)
{
    int64_t run;
    char st = 0;
    jm_rc_t rc = jm_ap_alive_run(ap, wf, &run, &st, NULL, err);
    *ok = rc == JM_OK && !run;
    if (rc != JM_OK || !run)
        return rc;
    if (st != 'C' && st != 'H') {
        jm_ap_rejected(ap, "workflow %" PRId64 ": run %" PRId64 " is alive (%c)", wf, run, st);
        return JM_OK;
    }
    char rid[24];
    jm_ap_i64(rid, sizeof(rid), run);
    const char *p[2] = {rid, ap->ts};
    PGresult *r = NULL;
    if ((rc = jm_ap_exec(ap, AP_RUN_GET, 2, p, &r, err)) != JM_OK)
        return rc;
    int lapsed = PQntuples(r) > 0 && PQgetvalue(r, 0, 4)[0] == 't';
    PQclear(r);
    if (!lapsed) {
        jm_ap_rejected(ap,
                       "workflow %" PRId64 ": run %" PRId64
                       " is handing over (%c) and its heartbeat has not lapsed",
                       wf, run, st);
        return JM_OK;
    }
    *ok = 1;
    return jm_ap_run_handover(ap, wf, run, st, st == 'C', 1, err);
}

jm_rc_t jm_ap_workflow_reset(jm_apply_t *ap, jm_err_t *err)
{
    int64_t wf = ap->ev->workflow_id;
    const char *p[1] = {ap->wfid};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_WF_GET, 1, p, &r, err);
    if (rc != JM_OK)
        return rc;
    int ok = PQntuples(r) > 0;
    PQclear(r);
    if (!ok) {
        jm_ap_rejected(ap, "workflow %" PRId64 ": unknown", wf);
        return JM_OK;
    }
    if ((rc = owner_check(ap, OWN_LAST_ERRORED, &ok, err)) != JM_OK || !ok)
        return rc;
    if ((rc = end_lapsed_run(ap, wf, &ok, err)) != JM_OK || !ok)
        return rc;
    if ((rc = jm_ap_wf_move(ap, wf, 'G', 1, err)) != JM_OK)
        return rc;
    int partial = jm_ev_bool(ap->ev->payload, "partial");
    const char *q[2] = {ap->wfid, partial ? "{G,Q,I,O,R,E,A,F}" : "{G,Q,I,O,R,D,E,A,F}"};
    if ((rc = jm_ap_exec(ap, AP_WF_TASKS_STATUS, 2, q, &r, err)) != JM_OK)
        return rc;
    rc = move_rows(ap, JM_ENTITY_TASK, r, 'G', AP_ATT_RESET, NULL, err);
    PQclear(r);
    if (rc == JM_OK)
        rc = recompute_pending(ap, err);
    jm_ap_applied(ap);
    jm_ap_touch_wf(ap, wf);
    return rc;
}

jm_rc_t jm_ap_workflow_concurrency(jm_apply_t *ap, jm_err_t *err)
{
    const json_t *p = ap->ev->payload;
    const char *tmpl = jm_ev_str(p, "template");
    char lim[24];
    jm_ap_i64(lim, sizeof(lim), jm_ev_int(p, "max_concurrently_running"));
    PGresult *r = NULL;
    jm_rc_t rc;
    if (tmpl) {
        const char *q[3] = {ap->wfid, tmpl, lim};
        rc = jm_ap_exec(ap, AP_ARRAY_SET_LIMIT, 3, q, &r, err);
    } else {
        const char *q[2] = {ap->wfid, lim};
        rc = jm_ap_exec(ap, AP_WF_SET_LIMIT, 2, q, &r, err);
    }
    if (rc != JM_OK)
        return rc;
    int found = PQntuples(r) > 0;
    PQclear(r);
    if (!found) {
        jm_ap_rejected(ap, "workflow %" PRId64 ": unknown %s%s", ap->ev->workflow_id,
                       tmpl ? "template " : "workflow", tmpl ? tmpl : "");
        return JM_OK;
    }
    jm_ap_applied(ap);
    jm_ap_touch_wf(ap, ap->ev->workflow_id);
    return jm_ap_progress(ap, ap->ev->workflow_id, err);
}

jm_rc_t jm_ap_task_set_status(jm_apply_t *ap, jm_err_t *err)
{
    const json_t *p = ap->ev->payload;
    json_t *ja = jm_ev_get(p, "task_ids");
    char to = jm_ev_str(p, "status")[0];
    int64_t wf = ap->ev->workflow_id;
    int ok;
    jm_rc_t rc = owner_check(ap, OWN_ANY_RUN, &ok, err);
    if (rc != JM_OK || !ok)
        return rc;
    jm_pgarr_t *a = &ap->arr[1];
    jm_pgarr_reset(a);
    for (size_t i = 0; i < json_array_size(ja); i++)
        jm_pgarr_add_int(a, json_integer_value(json_array_get(ja, i)));
    /* G applies to the whole downstream sub-DAG (reference §3.11); D to the listed tasks. */
    const char *q[3] = {ap->wfid, jm_pgarr_finish(a), to == 'G' ? "true" : "false"};
    PGresult *r = NULL, *r2 = NULL;
    if ((rc = jm_ap_exec(ap, AP_TASK_DOWNSTREAM_CLOSURE, 3, q, &r, err)) != JM_OK)
        return rc;
    if (PQntuples(r) == 0) {
        jm_ap_rejected(ap, "workflow %" PRId64 ": no such tasks", wf);
        goto out;
    }
    if (to == 'G') {
        /* Their unfinished instances are told to die. */
        jm_pgarr_t *b = &ap->arr[2];
        jm_pgarr_reset(b);
        for (int i = 0; i < PQntuples(r); i++)
            jm_pgarr_add_int(b, i64(r, i, 0));
        const char *q2[1] = {jm_pgarr_finish(b)};
        if ((rc = jm_ap_exec(ap, AP_TASKS_ACTIVE_TIS, 1, q2, &r2, err)) != JM_OK)
            goto out;
        if ((rc = move_rows(ap, JM_ENTITY_TI, r2, 'K', AP_ATT_KEEP, NULL, err)) != JM_OK)
            goto out;
        if ((rc = move_rows(ap, JM_ENTITY_TASK, r, 'G', AP_ATT_RESET, NULL, err)) != JM_OK)
            goto out;
        char wst = 0;
        PQclear(r2);
        r2 = NULL;
        const char *q3[1] = {ap->wfid};
        if ((rc = jm_ap_exec(ap, AP_WF_GET, 1, q3, &r2, err)) != JM_OK)
            goto out;
        if (PQntuples(r2) > 0)
            wst = PQgetvalue(r2, 0, 0)[0];
        if (wst == 'D' && (rc = jm_ap_wf_move(ap, wf, 'F', 1, err)) != JM_OK)
            goto out;
        int64_t run;
        char rst = 0;
        if ((rc = jm_ap_alive_run(ap, wf, &run, &rst, NULL, err)) != JM_OK)
            goto out;
        if (run)
            jm_ap_touch_run(ap, run);
    } else {
        if ((rc = move_rows(ap, JM_ENTITY_TASK, r, 'D', AP_ATT_KEEP, "D", err)) != JM_OK)
            goto out;
    }
    if ((rc = recompute_pending(ap, err)) != JM_OK)
        goto out;
    jm_ap_applied(ap);
    jm_ap_touch_wf(ap, wf);
    if (to == 'D') {
        /* Every task D and no run alive: the workflow is D (with a run, progress finishes it). */
        int64_t run;
        if ((rc = jm_ap_alive_run(ap, wf, &run, NULL, NULL, err)) != JM_OK)
            goto out;
        if (!run) {
            PQclear(r2);
            const char *q4[2] = {ap->wfid, "{G,Q,I,O,R,E,A,F}"};
            if ((rc = jm_ap_exec(ap, AP_WF_TASKS_STATUS, 2, q4, &r2, err)) != JM_OK)
                goto out;
            if (PQntuples(r2) == 0)
                rc = jm_ap_wf_move(ap, wf, 'D', 1, err);
            goto out;
        }
    }
    rc = jm_ap_progress(ap, wf, err);
out:
    PQclear(r);
    PQclear(r2);
    return rc;
}

/* workflow.prune: the first event checks that the workflow finished before `finished_before`
 * with no alive run and marks it pruning_at; each event then deletes at most `rows` of its rows
 * (jm_prune_chunk), the last one the workflow row itself.  Its count deltas pending in this
 * transaction are dropped, as the rows they would update are going. */
jm_rc_t jm_ap_workflow_prune(jm_apply_t *ap, jm_err_t *err)
{
    const json_t *p = ap->ev->payload;
    int64_t wf = ap->ev->workflow_id;
    const char *q[2] = {ap->wfid, jm_ev_str(p, "finished_before")};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_WF_PRUNE_GET, 2, q, &r, err);
    if (rc != JM_OK)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        jm_ap_ignored(ap, "workflow %" PRId64 ": not found (pruned already?)", wf);
        return JM_OK;
    }
    char st = PQgetvalue(r, 0, 0)[0];
    int pruning = PQgetvalue(r, 0, 1)[0] == 't', before = PQgetvalue(r, 0, 2)[0] == 't',
        alive = PQgetvalue(r, 0, 3)[0] == 't';
    PQclear(r);
    int finished = jm_wf_is_finished(jm_status_from_letter(JM_ENTITY_WORKFLOW, st));
    if (!pruning && (!finished || alive || !before)) {
        if (alive)
            jm_ap_rejected(ap, "workflow %" PRId64 ": has an alive run", wf);
        else if (!finished)
            jm_ap_rejected(ap, "workflow %" PRId64 ": is %c, not finished (D F A H)", wf, st);
        else
            jm_ap_rejected(ap, "workflow %" PRId64 ": finished (%c) at or after %s", wf, st, q[1]);
        return JM_OK;
    }
    const char *m[2] = {ap->wfid, ap->ts};
    if (!pruning && (rc = jm_ap_exec(ap, AP_WF_PRUNE_MARK, 2, m, NULL, err)) != JM_OK)
        return rc;
    jm_ap_pending_drop_wf(ap, wf);
    char rows[24];
    jm_ap_i64(rows, sizeof(rows), jm_ev_int(p, "rows"));
    const char *c[2] = {ap->wfid, rows};
    if ((rc = jm_ap_exec(ap, AP_WF_PRUNE_CHUNK, 2, c, NULL, err)) != JM_OK)
        return rc;
    jm_ap_applied(ap);
    jm_ap_touch_wf(ap, wf);
    return JM_OK;
}
