/*
 * apply_ti.c — task-instance events (ti.* from distributors and workers, reaper.overdue): move
 * the instances (validated by jm_fsm_check), apply the side effect on their task computed by
 * jm_fsm_ti_effect (incl. the orphan rule), scale the resources of tasks entering A, release
 * downstream tasks of tasks that became D, then let jm_ap_progress finish or schedule.
 *
 * An instance only drives its task when it is the task's newest instance (attempt == ti_seq):
 * instances left behind by a reset or resume move on their own.  ti.killed (K → F) changes the
 * task only if it is still active (the operator/resume paths already reset it to G).
 * A batch event whose items partly fail is "applied" (rejected items are logged).
 * Not here: queueing (sched.c), runs (apply_run.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/apply_int.h"
#include "jobmon/log.h"
#include "jobmon/resources.h"

#define NO_HEARTBEAT_MSG "task instance never reported a heartbeat after being launched; will retry"

typedef struct {
    int found;
    int64_t id, task_id, run_id;
    int attempt, overdue, tnum, tmax, tseq;
    char st, tst;
    char target;     /* requested target, 0 = none */
    const char *msg; /* borrowed from the payload */
    int applied;     /* the instance moved */
} ti_row_t;

static int64_t i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

void jm_ap_ti_known_row(jm_apply_t *ap, const PGresult *r, int k, int64_t wf)
{
    int64_t id = i64(r, k, 0), task_id = i64(r, k, 2);
    /* a task this transaction already knows keeps its (maybe changed in memory) state */
    jm_ap_taskstate_t *ks = jm_ap_task_state(ap, task_id, 1);
    if (!ks->status) {
        ks->status = PQgetvalue(r, k, 6)[0];
        ks->tnum = (int)i64(r, k, 7);
        ks->tmax = (int)i64(r, k, 8);
        ks->tseq = (int)i64(r, k, 9);
        ks->wf = wf;
    }
    /* an instance known without its row has no change pending: stored = current, but the
     * known status is the authority */
    jm_ap_tistate_t *ts = jm_ap_ti_state(ap, id, 1);
    if (!ts->row && !ts->db_status && !ts->status)
        ts->status = PQgetvalue(r, k, 1)[0];
    ts->row = 1;
    ts->task_id = task_id;
    ts->run_id = i64(r, k, 3);
    ts->attempt = (int)i64(r, k, 4);
    ts->wf = wf;
}

/* The rows of the instances and their tasks: known rows (apply_int.h) from memory, the others
 * in one statement, overlaid with what this transaction changed in memory and then known.
 * reaper.overdue and ti.triaged compare report_by: everything pending is written first and
 * the rows read from the database. */
static jm_rc_t load(jm_apply_t *ap, ti_row_t *rows, size_t n, jm_err_t *err)
{
    jm_rc_t rc;
    int64_t wf = ap->ev->workflow_id;
    if (ap->ev->type == JM_EV_REAPER_OVERDUE || ap->ev->type == JM_EV_TI_TRIAGED) {
        if ((rc = jm_ap_write_pending(ap, err)) != JM_OK)
            return rc;
        jm_ap_forget_rows(ap);
    }
    jm_pgarr_t *a = &ap->arr[0];
    jm_pgarr_reset(a);
    size_t miss = 0;
    for (size_t i = 0; i < n; i++) {
        const jm_ap_tistate_t *t = jm_ap_ti_state(ap, rows[i].id, 0);
        const jm_ap_taskstate_t *k = t && t->row ? jm_ap_task_state(ap, t->task_id, 0) : NULL;
        if (k && t->wf == wf) {
            rows[i].found = 1;
            rows[i].st = t->status;
            rows[i].task_id = t->task_id;
            rows[i].run_id = t->run_id;
            rows[i].attempt = t->attempt;
            rows[i].overdue = 0; /* only read by the two event types above */
            rows[i].tst = k->status;
            rows[i].tnum = k->tnum;
            rows[i].tmax = k->tmax;
            rows[i].tseq = k->tseq;
        } else {
            jm_pgarr_add_int(a, rows[i].id);
            miss++;
        }
    }
    if (miss) {
        const char *p[3] = {jm_pgarr_finish(a), ap->wfid, ap->ts};
        PGresult *r = NULL;
        if ((rc = jm_ap_exec(ap, AP_TI_LOAD, 3, p, &r, err)) != JM_OK)
            return rc;
        for (int k = 0; k < PQntuples(r); k++) {
            int64_t id = i64(r, k, 0);
            for (size_t i = 0; i < n; i++) {
                if (rows[i].id != id || rows[i].found)
                    continue;
                ti_row_t *row = &rows[i];
                row->found = 1;
                row->overdue = PQgetvalue(r, k, 5)[0] == 't';
                jm_ap_ti_known_row(ap, r, k, wf);
                const jm_ap_tistate_t *ts = jm_ap_ti_state(ap, id, 0);
                const jm_ap_taskstate_t *ks = jm_ap_task_state(ap, ts->task_id, 0);
                row->st = ts->status;
                row->task_id = ts->task_id;
                row->run_id = ts->run_id;
                row->attempt = ts->attempt;
                row->tst = ks->status;
                row->tnum = ks->tnum;
                row->tmax = ks->tmax;
                row->tseq = ks->tseq;
            }
        }
        PQclear(r);
    }
    for (size_t i = 0; i < n; i++)
        if (!rows[i].found && rows[i].target) {
            jm_ap_rejected(ap, "task_instance %" PRId64 ": unknown", rows[i].id);
            rows[i].target = 0;
        }
    return JM_OK;
}

/* ---- resource scaling for tasks entering A ------------------------------------------------- */

typedef struct {
    char *name;
    jm_limit_t *lim;
    size_t n;
} qbuf_t;

static void queue_from_json(const char *name, const json_t *limits, qbuf_t *qb, jm_queue_t *q)
{
    qb->name = jm_strdup(name ? name : "");
    qb->n = 0;
    qb->lim = jm_calloc(json_object_size(limits) + 1, sizeof(*qb->lim));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)limits, key, v)
    {
        if (!json_is_array(v) || json_array_size(v) != 2)
            continue;
        qb->lim[qb->n].key = key; /* borrowed from limits */
        qb->lim[qb->n].min = json_number_value(json_array_get(v, 0));
        qb->lim[qb->n].max = json_number_value(json_array_get(v, 1));
        qb->n++;
    }
    q->name = qb->name;
    q->limits = qb->lim;
    q->n = qb->n;
}

jm_rc_t jm_ap_scale_tasks(jm_apply_t *ap, const int64_t *tids, size_t n, jm_err_t *err)
{
    jm_pgarr_t *a = &ap->arr[0];
    jm_pgarr_reset(a);
    for (size_t i = 0; i < n; i++)
        jm_pgarr_add_int(a, tids[i]);
    const char *p[1] = {jm_pgarr_finish(a)};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_TASK_SCALE_LOAD, 1, p, &r, err);
    if (rc != JM_OK)
        return rc;
    jm_pgarr_t *a_id = &ap->arr[1], *a_res = &ap->arr[2];
    jm_pgarr_reset(a_id);
    jm_pgarr_reset(a_res);
    size_t m = 0;
    for (int k = 0; k < PQntuples(r); k++) {
        json_t *res = json_loads(PQgetvalue(r, k, 1), 0, NULL);
        json_t *scales = json_loads(PQgetvalue(r, k, 2), 0, NULL);
        json_t *fb = json_loads(PQgetvalue(r, k, 3), JSON_DECODE_ANY, NULL);
        json_t *queues = json_loads(PQgetvalue(r, k, 5), 0, NULL);
        int attempt = (int)i64(r, k, 4);
        /* fallback_queues is text[] ("{a,b}"): parse the simple literal. */
        const char *lit = PQgetvalue(r, k, 3);
        char *names[32];
        size_t nfb = 0;
        char *copy = jm_strdup(lit[0] == '{' ? lit + 1 : lit), *save = NULL;
        size_t cl = strlen(copy);
        if (cl && copy[cl - 1] == '}')
            copy[cl - 1] = '\0';
        for (char *t = strtok_r(copy, ",", &save); t && nfb < 32; t = strtok_r(NULL, ",", &save))
            names[nfb++] = t;
        const char *qname = res ? json_string_value(json_object_get(res, "queue")) : NULL;
        qbuf_t qb[33];
        jm_queue_t qs[33];
        queue_from_json(qname, json_object_get(queues, qname ? qname : ""), &qb[0], &qs[0]);
        for (size_t f = 0; f < nfb; f++)
            queue_from_json(names[f], json_object_get(queues, names[f]), &qb[f + 1], &qs[f + 1]);
        json_t *out = NULL;
        jm_err_t e2;
        if (res && scales &&
            jm_res_scale(res, scales, attempt < 1 ? 1 : attempt, &qs[0], nfb ? &qs[1] : NULL, nfb,
                         &out, NULL, &e2) == JM_OK) {
            char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
            jm_pgarr_add_int(a_id, i64(r, k, 0));
            jm_pgarr_add_text(a_res, s, strlen(s));
            free(s);
            m++;
        } else {
            jm_log(JM_LOG_WARN, "fsm", "task %s: resources not scaled: %s", PQgetvalue(r, k, 0),
                   res && scales ? e2.msg : "bad stored resources");
        }
        json_decref(out);
        for (size_t f = 0; f <= nfb; f++) {
            free(qb[f].name);
            free(qb[f].lim);
        }
        free(copy);
        json_decref(res);
        json_decref(scales);
        json_decref(fb);
        json_decref(queues);
    }
    PQclear(r);
    if (m == 0)
        return JM_OK;
    const char *q[2] = {jm_pgarr_finish(a_id), jm_pgarr_finish(a_res)};
    return jm_ap_exec(ap, AP_TASK_SET_RESOURCES, 2, q, NULL, err);
}

/* ---- the move ------------------------------------------------------------------------------ */

/* Move every row with a target.  *progress is set when a task left the active set or became
 * ready, so the caller runs completion/scheduling. */
static jm_rc_t move(jm_apply_t *ap, ti_row_t *rows, size_t n, int killed, int *progress,
                    jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    int64_t *ids = jm_malloc((n + 1) * sizeof(int64_t));
    int64_t *tids = jm_malloc((n + 1) * sizeof(int64_t));
    int64_t *t2ids = jm_malloc((n + 1) * sizeof(int64_t));
    int64_t *done = jm_malloc((n + 1) * sizeof(int64_t));
    int64_t *adj = jm_malloc((n + 1) * sizeof(int64_t));
    char *from = jm_malloc(n + 1), *to = jm_malloc(n + 1);
    char *tfrom = jm_malloc(n + 1), *tto = jm_malloc(n + 1);
    char *t2from = jm_malloc(n + 1), *t2to = jm_malloc(n + 1);
    int *item = jm_malloc((n + 1) * sizeof(int));
    size_t *idx = jm_malloc((n + 1) * sizeof(size_t));
    jm_ti_effect_t *eff = jm_calloc(n + 1, sizeof(*eff));
    int *has_eff = jm_calloc(n + 1, sizeof(int));

    for (int forced = 0; forced < 2; forced++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            ti_row_t *t = &rows[i];
            if (!t->target || t->applied)
                continue;
            int latest = t->attempt == t->tseq;
            int task_active = strchr("QIOR", t->tst) != NULL;
            /* A K instance was told to die by whoever already reset its task: it no longer
             * drives the task, whatever it reports (K -> D / F). */
            int use_eff = latest && t->st != 'K' && (!killed || task_active);
            char target = t->target;
            if (use_eff && forced == 0) {
                int tt = jm_status_from_letter(JM_ENTITY_TI, target);
                if (tt < 0) {
                    jm_ap_rejected(ap, "task_instance %" PRId64 ": bad status %c", t->id, target);
                    t->target = 0;
                    continue;
                }
                eff[i] = jm_fsm_ti_effect(
                    (jm_ti_status_t)tt,
                    (jm_task_status_t)jm_status_from_letter(JM_ENTITY_TASK, t->tst), t->tnum,
                    t->tmax);
                has_eff[i] = 1;
                if (eff[i].task_tr == JM_TR_ILLEGAL) {
                    /* Only reject when the instance move itself is legal: otherwise the TI
                     * check below names the real problem. */
                    int f = jm_status_from_letter(JM_ENTITY_TI, t->st);
                    if (f >= 0 && jm_fsm_check(JM_ENTITY_TI, f, tt) == JM_TR_LEGAL) {
                        jm_ap_rejected(
                            ap, "task %" PRId64 ": illegal %c -> %c (task_instance %" PRId64 ")",
                            t->task_id, t->tst,
                            jm_status_letter(JM_ENTITY_TASK, eff[i].task_status), t->id);
                        t->target = 0;
                        continue;
                    }
                    has_eff[i] = 0;
                }
            }
            int orphan = has_eff[i] && eff[i].orphaned;
            if (orphan != forced)
                continue;
            if (orphan)
                target = 'F';
            ids[m] = t->id;
            from[m] = t->st;
            to[m] = target;
            idx[m] = i;
            m++;
        }
        if (m == 0)
            continue;
        rc = jm_ap_transition(ap, JM_ENTITY_TI, m, ids, from, to, forced, AP_ATT_KEEP, item, NULL,
                              err);
        if (rc != JM_OK)
            goto out;
        for (size_t k = 0; k < m; k++)
            if (item[k] == AP_ITEM_APPLIED) {
                rows[idx[k]].applied = 1;
                rows[idx[k]].st = to[k];
                if (strchr("DEZUWF", to[k])) /* a draining (C/H) run may now end */
                    *progress = 1;
            }
    }

    /* Task side effects of the instances that moved. */
    size_t nt = 0, nt2 = 0, nd = 0, na = 0;
    for (size_t i = 0; i < n; i++) {
        ti_row_t *t = &rows[i];
        if (!t->applied || !has_eff[i] || !eff[i].task_changed || eff[i].orphaned)
            continue;
        char fin = jm_status_letter(JM_ENTITY_TASK, eff[i].task_status);
        /* the same task twice in one event: keep the first */
        int dup = 0;
        for (size_t k = 0; k < nt && !dup; k++)
            dup = tids[k] == t->task_id;
        if (dup)
            continue;
        tids[nt] = t->task_id;
        tfrom[nt] = t->tst;
        tto[nt] = eff[i].task_via_error ? 'E' : fin;
        nt++;
        if (eff[i].task_via_error && fin != 'E') {
            t2ids[nt2] = t->task_id;
            t2from[nt2] = 'E';
            t2to[nt2] = fin;
            nt2++;
        }
        if (fin == 'D')
            done[nd++] = t->task_id;
        if (fin == 'A')
            adj[na++] = t->task_id;
        if (!strchr("QIOR", fin))
            *progress = 1;
    }
    if (nt && (rc = jm_ap_transition(ap, JM_ENTITY_TASK, nt, tids, tfrom, tto, 0, AP_ATT_KEEP, NULL,
                                     NULL, err)) != JM_OK)
        goto out;
    if (nt2 && (rc = jm_ap_transition(ap, JM_ENTITY_TASK, nt2, t2ids, t2from, t2to, 0, AP_ATT_KEEP,
                                      NULL, NULL, err)) != JM_OK)
        goto out;
    if (na && (rc = jm_ap_scale_tasks(ap, adj, na, err)) != JM_OK)
        goto out;
    /* jm_ap_downstream_done_known decrements when it returns 1: call it again only after a
     * fetch, never after a success (that counted every done task's downstreams twice). */
    int known = nd && jm_ap_downstream_done_known(ap, done, nd);
    if (nd && !known) {
        if ((rc = jm_ap_edges_fetch_active(ap, err)) != JM_OK)
            goto out;
        known = jm_ap_downstream_done_known(ap, done, nd);
    }
    if (nd && !known) {
        jm_pgarr_t *a = &ap->arr[0];
        jm_pgarr_reset(a);
        for (size_t i = 0; i < nd; i++)
            jm_pgarr_add_int(a, done[i]);
        const char *p[1] = {jm_pgarr_finish(a)};
        PGresult *r = NULL;
        if ((rc = jm_ap_exec(ap, AP_DOWNSTREAM_DONE, 1, p, &r, err)) != JM_OK)
            goto out;
        jm_ap_ready_add(ap, r); /* those that became ready join the tracked ready sets */
        PQclear(r);
    }
out:
    free(ids);
    free(tids);
    free(t2ids);
    free(done);
    free(adj);
    free(from);
    free(to);
    free(tfrom);
    free(tto);
    free(t2from);
    free(t2to);
    free(item);
    free(idx);
    free(eff);
    free(has_eff);
    return rc;
}

/* ---- field updates ------------------------------------------------------------------------- */

static jm_rc_t set_messages(jm_apply_t *ap, ti_row_t *rows, size_t n, jm_err_t *err)
{
    jm_pgarr_t *a = &ap->arr[0], *b = &ap->arr[1];
    jm_pgarr_reset(a);
    jm_pgarr_reset(b);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].applied && rows[i].msg) {
            jm_pgarr_add_int(a, rows[i].id);
            jm_pgarr_add_text(b, rows[i].msg, strlen(rows[i].msg));
            m++;
        }
    if (!m)
        return JM_OK;
    const char *p[2] = {jm_pgarr_finish(a), jm_pgarr_finish(b)};
    return jm_ap_exec(ap, AP_TI_SET_MESSAGE, 2, p, NULL, err);
}

static jm_rc_t set_result(jm_apply_t *ap, int64_t id, const json_t *p, jm_err_t *err)
{
    char sid[24], code[16] = "", wall[24] = "", cpu[24] = "", rss[24] = "";
    jm_ap_i64(sid, sizeof(sid), id);
    json_t *usage = jm_ev_get(p, "usage");
    int has_code = json_object_get(p, "exit_code") != NULL;
    if (has_code)
        jm_ap_i64(code, sizeof(code), jm_ev_int(p, "exit_code"));
    else
        snprintf(code, sizeof(code), "0");
    if (usage) {
        jm_ap_i64(wall, sizeof(wall), jm_ev_int(usage, "wall_ms"));
        jm_ap_i64(cpu, sizeof(cpu), jm_ev_int(usage, "cpu_ms"));
        jm_ap_i64(rss, sizeof(rss), jm_ev_int(usage, "maxrss_kb"));
    }
    const json_t *msg = json_object_get(p, "message");
    const char *q[8] = {sid,
                        code,
                        msg ? json_string_value(msg) : NULL,
                        json_string_value(json_object_get(p, "stdout_tail")),
                        json_string_value(json_object_get(p, "stderr_tail")),
                        usage ? wall : NULL,
                        usage ? cpu : NULL,
                        usage ? rss : NULL};
    return jm_ap_defer_fields(ap, AP_DEFER_RESULT, id, q, err); /* written at the flush */
}

static jm_rc_t extend(jm_apply_t *ap, ti_row_t *rows, size_t n, char status, int64_t secs,
                      jm_err_t *err)
{
    jm_pgarr_t *a = &ap->arr[0];
    jm_pgarr_reset(a);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].found && rows[i].st == status) {
            jm_pgarr_add_int(a, rows[i].id);
            m++;
        }
    if (!m) {
        jm_ap_ignored(ap, "no instance still in %c", status);
        return JM_OK;
    }
    char s[24], st[2] = {status, 0};
    jm_ap_i64(s, sizeof(s), secs);
    const char *p[4] = {jm_pgarr_finish(a), ap->ts, s, st};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_TI_SET_REPORT_BY, 4, p, &r, err);
    if (rc == JM_OK && PQntuples(r) > 0)
        jm_ap_applied(ap);
    PQclear(r);
    return rc;
}

/* ---- the handler --------------------------------------------------------------------------- */

jm_rc_t jm_ap_ti_event(jm_apply_t *ap, jm_err_t *err)
{
    const jm_event_t *ev = ap->ev;
    const json_t *p = ev->payload;
    json_t *items = json_object_get(p, "items");
    size_t n = items ? json_array_size(items) : 1;
    ti_row_t *rows = jm_calloc(n, sizeof(*rows));
    jm_rc_t rc = JM_OK;
    int progress = 0;

    /* Items (deduplicated: a repeated id keeps its first entry). */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *it = items ? json_array_get(items, i) : p;
        int64_t id = jm_ev_int(it, "ti_id");
        int dup = 0;
        for (size_t k = 0; k < m && !dup; k++)
            dup = rows[k].id == id;
        if (dup)
            continue;
        rows[m].id = id;
        const json_t *st = json_object_get(it, "status");
        rows[m].target = st ? json_string_value(st)[0] : 0;
        rows[m].msg = json_string_value(json_object_get(it, "message"));
        m++;
    }
    n = m;
    switch (ev->type) {
    case JM_EV_TI_INSTANTIATED:
        for (size_t i = 0; i < n; i++)
            rows[i].target = 'I';
        break;
    case JM_EV_TI_LAUNCHED:
        for (size_t i = 0; i < n; i++)
            rows[i].target = 'O';
        break;
    case JM_EV_TI_SUBMIT_FAILED:
        for (size_t i = 0; i < n; i++) {
            rows[i].target = 'W';
            rows[i].msg = jm_ev_str(p, "error");
        }
        break;
    case JM_EV_TI_KILLED:
        for (size_t i = 0; i < n; i++)
            rows[i].target = 'F';
        break;
    case JM_EV_TI_RUNNING: rows[0].target = 'R'; break;
    case JM_EV_TI_DONE: rows[0].target = 'D'; break;
    case JM_EV_TI_ERROR: rows[0].msg = jm_ev_str(p, "message"); break;
    case JM_EV_TI_LAUNCH_HEARTBEAT:
    case JM_EV_TI_HEARTBEAT:
        for (size_t i = 0; i < n; i++)
            rows[i].target = 0;
        break;
    default: /* triaged, overdue: per-item status */ break;
    }
    if (ev->type == JM_EV_TI_HEARTBEAT && !jm_ap_ti_known(ap, rows[0].id) &&
        (rc = load(ap, rows, n, err)) != JM_OK)
        goto out;
    if (ev->type == JM_EV_TI_HEARTBEAT && jm_ap_ti_known(ap, rows[0].id) == 'R') {
        /* this transaction moved it to R and nothing moved it since: the same outcome as the
         * statement below, written once at the flush (the newest report_by wins, as it would) */
        jm_ap_ti_defer_report_by(ap, rows[0].id, ev->ts_ms + jm_ev_int(p, "next_report_s") * 1000);
        jm_ap_applied(ap);
        goto out;
    }
    for (size_t i = 0; i < n; i++) /* a heartbeat's row may be loaded already: load again */
        rows[i].found = 0;
    if ((rc = load(ap, rows, n, err)) != JM_OK)
        goto out;
    if (ev->type == JM_EV_TI_LAUNCH_HEARTBEAT || ev->type == JM_EV_TI_HEARTBEAT) {
        int64_t secs = jm_ev_int(p, "next_report_s");
        for (size_t i = 0; i < n; i++) {
            if (!rows[i].found) {
                jm_ap_rejected(ap, "task_instance %" PRId64 ": unknown", rows[i].id);
                continue;
            }
            if (ev->type == JM_EV_TI_HEARTBEAT && rows[i].st == 'T')
                rows[i].target = 'R'; /* a late heartbeat brings a triaged instance back */
        }
        if (ev->type == JM_EV_TI_HEARTBEAT && rows[0].target) {
            if ((rc = move(ap, rows, n, 0, &progress, err)) != JM_OK)
                goto out;
            if (rows[0].applied)
                rows[0].st = 'R';
        }
        rc = extend(ap, rows, n, ev->type == JM_EV_TI_HEARTBEAT ? 'R' : 'O', secs, err);
        goto out;
    }
    /* Claims checked against the instance's current state. */
    for (size_t i = 0; i < n; i++) {
        ti_row_t *t = &rows[i];
        if (!t->found || !t->target)
            continue;
        if (ev->type == JM_EV_REAPER_OVERDUE) {
            char need = t->target == 'T' ? 'R' : 'O';
            if (t->st != need || !t->overdue) {
                jm_ap_ignored(ap, "task_instance %" PRId64 ": %c, not overdue", t->id, t->st);
                t->target = 0;
            }
        } else if (ev->type == JM_EV_TI_TRIAGED && t->st != 'T') {
            /* a verdict on an instance no longer triaging (a heartbeat brought it back) */
            jm_ap_ignored(ap, "task_instance %" PRId64 ": %c, not triaging", t->id, t->st);
            t->target = 0;
        } else if (ev->type == JM_EV_TI_TRIAGED && t->target == 'U' && !t->overdue) {
            jm_ap_ignored(ap, "task_instance %" PRId64 ": heartbeat arrived", t->id);
            t->target = 0;
        } else if (ev->type == JM_EV_TI_RUNNING && t->st == 'K') {
            t->target = 'F'; /* the worker learns K from the state it reads back */
        }
    }
    if ((rc = move(ap, rows, n, ev->type == JM_EV_TI_KILLED, &progress, err)) != JM_OK)
        goto out;

    switch (ev->type) {
    case JM_EV_TI_LAUNCHED: { /* distributor id and report_by, written at the flush */
        int64_t report_by_ms = ev->ts_ms + jm_ev_int(p, "next_report_s") * 1000;
        for (size_t i = 0; i < json_array_size(items) && rc == JM_OK; i++) {
            const json_t *it = json_array_get(items, i);
            int64_t id = jm_ev_int(it, "ti_id");
            for (size_t j = 0; j < n && rc == JM_OK; j++)
                if (rows[j].id == id && rows[j].applied) {
                    rc = jm_ap_defer_launched(ap, id, jm_ev_str(it, "distributor_id"), report_by_ms,
                                              err);
                    rows[j].applied = 0; /* once */
                }
        }
        break;
    }
    case JM_EV_TI_RUNNING:
        if (rows[0].applied && rows[0].st == 'R') {
            char sid[24], pid[16], secs[24];
            jm_ap_i64(sid, sizeof(sid), rows[0].id);
            jm_ap_i64(pid, sizeof(pid), jm_ev_int(p, "pid"));
            jm_ap_i64(secs, sizeof(secs), jm_ev_int(p, "next_report_s"));
            const char *q[8] = {sid,
                                jm_ev_str(p, "host"),
                                pid,
                                jm_ev_str(p, "distributor_id"),
                                ap->ts,
                                secs,
                                jm_ev_str(p, "stdout_path"),
                                jm_ev_str(p, "stderr_path")};
            rc = jm_ap_defer_fields(ap, AP_DEFER_RUNNING, rows[0].id, q, err); /* at the flush */
        }
        break;
    case JM_EV_TI_DONE:
    case JM_EV_TI_ERROR:
        if (rows[0].applied)
            rc = set_result(ap, rows[0].id, p, err);
        break;
    case JM_EV_REAPER_OVERDUE: {
        /* X goes straight on to E (the distributor's no-heartbeat error), which retries. */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            rows[i].target = rows[i].applied && rows[i].st == 'X' ? 'E' : 0;
            rows[i].applied = 0;
            rows[i].msg = NO_HEARTBEAT_MSG;
            k += rows[i].target != 0;
        }
        if (k && (rc = move(ap, rows, n, 0, &progress, err)) == JM_OK)
            rc = set_messages(ap, rows, n, err);
        break;
    }
    default: /* submit_failed, triaged, killed */ rc = set_messages(ap, rows, n, err); break;
    }
    if (rc == JM_OK && progress)
        rc = jm_ap_progress(ap, ev->workflow_id, err);
out:
    free(rows);
    return rc;
}

/* ---- ti.reports: workers' reports relayed in one event ------------------------------------- */

/* Apply one report of a ti.reports item as the event `type` with `payload` (ti_id added): the
 * same handler, envelope (id, ts, workflow) and transaction as the individual event would get. */
static jm_rc_t apply_report(jm_apply_t *ap, jm_event_type_t type, const json_t *item,
                            json_t *payload, jm_err_t *err)
{
    const jm_event_t *ev = ap->ev;
    jm_event_t sub = *ev;
    sub.type = type;
    sub.payload = payload;
    json_object_set(payload, "ti_id", json_object_get(item, "ti_id"));
    ap->ev = &sub;
    jm_rc_t rc = jm_ap_ti_event(ap, err);
    ap->ev = ev;
    json_decref(payload);
    return rc;
}

/* ti.done's payload from a result of status D (exit_code and message are not part of it). */
static json_t *done_payload(const json_t *res)
{
    json_t *p = json_copy((json_t *)res); /* shallow: members are only read */
    json_object_del(p, "status");
    json_object_del(p, "exit_code");
    json_object_del(p, "message");
    return p;
}

jm_rc_t jm_ap_ti_reports(jm_apply_t *ap, jm_err_t *err)
{
    const json_t *items = json_object_get(ap->ev->payload, "items");
    jm_rc_t rc = JM_OK;
    for (size_t i = 0; i < json_array_size(items) && rc == JM_OK; i++) {
        const json_t *it = json_array_get(items, i);
        const json_t *run = json_object_get(it, "running"), *res = json_object_get(it, "result");
        if (!json_is_object(run) && !json_is_object(res))
            jm_ap_ignored(ap, "task_instance %" PRId64 ": empty report", jm_ev_int(it, "ti_id"));
        if (json_is_object(run))
            rc = apply_report(ap, JM_EV_TI_RUNNING, it, json_copy((json_t *)run), err);
        if (rc != JM_OK || !json_is_object(res))
            continue;
        if (jm_ev_str(res, "status")[0] == 'D')
            rc = apply_report(ap, JM_EV_TI_DONE, it, done_payload(res), err);
        else
            rc = apply_report(ap, JM_EV_TI_ERROR, it, json_copy((json_t *)res), err);
    }
    return rc;
}
