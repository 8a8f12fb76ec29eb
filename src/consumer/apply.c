/*
 * apply.c — the handlers' frame: statement preparation, dispatch of one event to its handler,
 * the outcome of the event (applied / ignored / rejected with a reason), the touched workflow
 * and run sets for the cache, and jm_ap_transition — the one function through which every
 * status change of every entity passes (validate with jm_fsm_check, conditional UPDATE on the
 * expected status, transition_log, workflow_task_count).
 *
 * Per-transaction state (jm_apply_flush / jm_apply_rollback): the hot rows every event would
 * otherwise update — workflow_task_count per (workflow, status) and workflow.batches — are kept
 * as pending deltas and written once before COMMIT; readers inside the transaction add them
 * (jm_ap_count_delta, jm_ap_batches_pending).  Repeated updates of one row inside a transaction
 * each leave a row version that later statements walk, so a batch got slower as it grew.  The
 * statuses this transaction gave task instances are remembered, so that a ti.heartbeat of an
 * instance known to be R is applied in memory (its report_by written at the flush, or before any
 * statement that reads or writes report_by).  None of this changes what a handler decides: the
 * rows are the same whatever the batch boundaries.
 *
 * It does not open, commit or roll back transactions (the consume loop does), read any clock,
 * or use randomness: everything comes from the event.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consumer/apply_int.h"
#include "jobmon/log.h"

static const char *const outcome_names[] = {"applied", "ignored", "rejected"};
_Static_assert(JM_ARRAY_LEN(outcome_names) == JM_OUTCOME__CNT, "outcome names");

const char *jm_outcome_name(jm_outcome_t o)
{
    return (unsigned)o < JM_OUTCOME__CNT ? outcome_names[o] : "?";
}

/* ---- small helpers ------------------------------------------------------------------------- */

void jm_ap_i64(char *buf, size_t n, int64_t v)
{
    snprintf(buf, n, "%" PRId64, v);
}

void jm_ap_ts(char *buf, size_t n, int64_t ts_ms)
{
    time_t s = (time_t)(ts_ms >= 0 ? ts_ms / 1000 : (ts_ms - 999) / 1000);
    int ms = (int)(ts_ms - (int64_t)s * 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(buf, n, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

void jm_ap_ids_add(jm_ap_ids_t *ids, int64_t v)
{
    for (size_t i = 0; i < ids->n; i++)
        if (ids->v[i] == v)
            return;
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? ids->cap * 2 : 16;
        ids->v = jm_realloc(ids->v, ids->cap * sizeof(*ids->v));
    }
    ids->v[ids->n++] = v;
}

void jm_ap_ids_free(jm_ap_ids_t *ids)
{
    free(ids->v);
    memset(ids, 0, sizeof(*ids));
}

void jm_ap_touch_wf(jm_apply_t *ap, int64_t wf)
{
    jm_ap_ids_add(&ap->touched_wf, wf);
}

void jm_ap_touch_run(jm_apply_t *ap, int64_t run)
{
    jm_ap_ids_add(&ap->touched_runs, run);
}

void jm_ap_applied(jm_apply_t *ap)
{
    ap->n_applied++;
}

void jm_ap_ignored(jm_apply_t *ap, const char *fmt, ...)
{
    if (ap->n_ignored++ == 0) {
        va_list va;
        va_start(va, fmt);
        vsnprintf(ap->ignore_reason, sizeof(ap->ignore_reason), fmt, va);
        va_end(va);
    }
}

void jm_ap_rejected(jm_apply_t *ap, const char *fmt, ...)
{
    if (ap->n_rejected++ == 0) {
        va_list va;
        va_start(va, fmt);
        vsnprintf(ap->reject_reason, sizeof(ap->reject_reason), fmt, va);
        va_end(va);
    }
}

/* ---- statements ---------------------------------------------------------------------------- */

static jm_rc_t classify(PGconn *conn, const PGresult *r, const char *what, jm_err_t *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    jm_rc_t rc = jm_pg_classify(r, conn);
    if (rc == JM_OK)
        rc = JM_ERR_INTERNAL;
    return jm_err_set(err, rc, "%s: %s%s%s", what, state ? state : "", state ? " " : "",
                      msg ? msg : "");
}

static jm_rc_t prepare_all(jm_apply_t *ap, jm_err_t *err)
{
    for (int i = 0; i < AP_SQL__CNT; i++) {
        char name[32];
        snprintf(name, sizeof(name), "jm_ap_%d", i);
        PGresult *r = PQprepare(ap->conn, name, jm_ap_sql[i], 0, NULL);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            char what[64];
            snprintf(what, sizeof(what), "prepare statement %d", i);
            jm_rc_t rc = classify(ap->conn, r, what, err);
            PQclear(r);
            return rc;
        }
        PQclear(r);
    }
    return JM_OK;
}

static jm_rc_t flush_report_by(jm_apply_t *ap, jm_err_t *err);

jm_rc_t jm_ap_exec(jm_apply_t *ap, jm_ap_sql_t s, int n, const char *const *params,
                   PGresult **res, jm_err_t *err)
{
    char name[32];
    /* Coalesced heartbeats are written before anything that reads or writes report_by. */
    if (ap->ti.n_pending &&
        (s == AP_TI_LOAD || s == AP_TI_SET_LAUNCHED || s == AP_TI_SET_RUNNING)) {
        jm_rc_t rc = flush_report_by(ap, err);
        if (rc != JM_OK)
            return rc;
    }
    snprintf(name, sizeof(name), "jm_ap_%d", (int)s);
    if (res)
        *res = NULL;
    PGresult *r = PQexecPrepared(ap->conn, name, n, params, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char what[64];
        snprintf(what, sizeof(what), "statement %d", (int)s);
        jm_rc_t rc = classify(ap->conn, r, what, err);
        jm_log(JM_LOG_DEBUG, "fsm", "%s failed: %s", what, err ? err->msg : "");
        PQclear(r);
        return rc;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return JM_OK;
}

/* ---- per-transaction state ----------------------------------------------------------------- */

int64_t jm_ap_count_delta(const jm_apply_t *ap, int64_t wf, char status)
{
    for (size_t i = 0; i < ap->n_cnt; i++)
        if (ap->cnt[i].wf == wf && ap->cnt[i].status == status)
            return ap->cnt[i].delta;
    return 0;
}

static void count_add(jm_apply_t *ap, int64_t wf, char status, int64_t d)
{
    for (size_t i = 0; i < ap->n_cnt; i++)
        if (ap->cnt[i].wf == wf && ap->cnt[i].status == status) {
            ap->cnt[i].delta += d;
            return;
        }
    if (ap->n_cnt == ap->cap_cnt) {
        ap->cap_cnt = ap->cap_cnt ? ap->cap_cnt * 2 : 16;
        ap->cnt = jm_realloc(ap->cnt, ap->cap_cnt * sizeof(*ap->cnt));
    }
    ap->cnt[ap->n_cnt++] = (jm_ap_count_t){.wf = wf, .status = status, .delta = d};
}

int64_t jm_ap_batches_pending(const jm_apply_t *ap, int64_t wf)
{
    for (size_t i = 0; i < ap->n_bat; i++)
        if (ap->bat[i].wf == wf)
            return ap->bat[i].batches;
    return 0;
}

void jm_ap_batches_note(jm_apply_t *ap, int64_t wf, int64_t batch_num)
{
    for (size_t i = 0; i < ap->n_bat; i++)
        if (ap->bat[i].wf == wf) {
            if (batch_num > ap->bat[i].batches)
                ap->bat[i].batches = batch_num;
            return;
        }
    if (ap->n_bat == ap->cap_bat) {
        ap->cap_bat = ap->cap_bat ? ap->cap_bat * 2 : 8;
        ap->bat = jm_realloc(ap->bat, ap->cap_bat * sizeof(*ap->bat));
    }
    ap->bat[ap->n_bat++] = (jm_ap_batch_t){.wf = wf, .batches = batch_num};
}

static size_t ti_slot(const jm_ap_timap_t *m, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 17) & (m->cap - 1);
    while (m->v[i].id != 0 && m->v[i].id != id)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static jm_ap_tistate_t *ti_get(jm_apply_t *ap, int64_t id, int create)
{
    jm_ap_timap_t *m = &ap->ti;
    if (id == 0)
        return NULL;
    if (!create && m->n == 0)
        return NULL;
    if (create && (m->n + 1) * 2 > m->cap) {
        jm_ap_timap_t old = *m;
        m->cap = old.cap ? old.cap * 2 : 256;
        m->v = jm_calloc(m->cap, sizeof(*m->v));
        for (size_t i = 0; i < old.cap; i++)
            if (old.v[i].id)
                m->v[ti_slot(m, old.v[i].id)] = old.v[i];
        free(old.v);
    }
    if (m->cap == 0)
        return NULL;
    size_t i = ti_slot(m, id);
    if (m->v[i].id == 0) {
        if (!create)
            return NULL;
        m->v[i].id = id;
        m->n++;
    }
    return &m->v[i];
}

char jm_ap_ti_known(const jm_apply_t *ap, int64_t id)
{
    const jm_ap_tistate_t *t = ti_get((jm_apply_t *)ap, id, 0);
    return t ? t->status : 0;
}

void jm_ap_ti_note(jm_apply_t *ap, int64_t id, char status)
{
    jm_ap_tistate_t *t = ti_get(ap, id, 1);
    if (t)
        t->status = status;
}

void jm_ap_ti_defer_report_by(jm_apply_t *ap, int64_t id, int64_t report_by_ms)
{
    jm_ap_tistate_t *t = ti_get(ap, id, 1);
    if (t->report_by_ms == 0)
        ap->ti.n_pending++;
    t->report_by_ms = report_by_ms;
}

static void ti_clear(jm_ap_timap_t *m)
{
    if (m->n)
        memset(m->v, 0, m->cap * sizeof(*m->v));
    m->n = m->n_pending = 0;
    if (m->cap > 65536) { /* a huge batch: do not keep its table */
        free(m->v);
        m->v = NULL;
        m->cap = 0;
    }
}

static jm_rc_t flush_report_by(jm_apply_t *ap, jm_err_t *err)
{
    jm_pgarr_t *a = &ap->arr[5], *b = &ap->arr[6];
    jm_pgarr_reset(a);
    jm_pgarr_reset(b);
    for (size_t i = 0; i < ap->ti.cap; i++) {
        jm_ap_tistate_t *t = &ap->ti.v[i];
        if (!t->id || !t->report_by_ms)
            continue;
        char ts[40];
        jm_ap_ts(ts, sizeof(ts), t->report_by_ms);
        jm_pgarr_add_int(a, t->id);
        jm_pgarr_add_text(b, ts, strlen(ts));
        t->report_by_ms = 0;
    }
    ap->ti.n_pending = 0;
    const char *p[2] = {jm_pgarr_finish(a), jm_pgarr_finish(b)};
    return jm_ap_exec(ap, AP_FLUSH_REPORT_BY, 2, p, NULL, err);
}

jm_rc_t jm_apply_flush(jm_apply_t *ap, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    if (ap->ti.n_pending && (rc = flush_report_by(ap, err)) != JM_OK)
        goto out;
    if (ap->n_cnt) {
        jm_pgarr_t *a = &ap->arr[5], *b = &ap->arr[6], *c = &ap->arr[7];
        jm_pgarr_reset(a);
        jm_pgarr_reset(b);
        jm_pgarr_reset(c);
        for (size_t i = 0; i < ap->n_cnt; i++) {
            jm_pgarr_add_int(a, ap->cnt[i].wf);
            jm_pgarr_add_text(b, &ap->cnt[i].status, 1);
            jm_pgarr_add_int(c, ap->cnt[i].delta);
        }
        const char *p[3] = {jm_pgarr_finish(a), jm_pgarr_finish(b), jm_pgarr_finish(c)};
        if ((rc = jm_ap_exec(ap, AP_FLUSH_COUNTS, 3, p, NULL, err)) != JM_OK)
            goto out;
    }
    if (ap->n_bat) {
        jm_pgarr_t *a = &ap->arr[5], *b = &ap->arr[6];
        jm_pgarr_reset(a);
        jm_pgarr_reset(b);
        for (size_t i = 0; i < ap->n_bat; i++) {
            jm_pgarr_add_int(a, ap->bat[i].wf);
            jm_pgarr_add_int(b, ap->bat[i].batches);
        }
        const char *p[2] = {jm_pgarr_finish(a), jm_pgarr_finish(b)};
        if ((rc = jm_ap_exec(ap, AP_FLUSH_BATCHES, 2, p, NULL, err)) != JM_OK)
            goto out;
    }
out:
    /* Written (or the transaction is lost and the caller rolls back): nothing is pending. */
    jm_apply_rollback(ap);
    return rc;
}

void jm_apply_rollback(jm_apply_t *ap)
{
    if (!ap)
        return;
    ap->n_cnt = 0;
    ap->n_bat = 0;
    ti_clear(&ap->ti);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

jm_apply_t *jm_apply_new(jm_pg_t *pg, jm_err_t *err)
{
    jm_apply_t *ap = jm_calloc(1, sizeof(*ap));
    if (jm_apply_reset(ap, pg, err) != JM_OK) {
        jm_apply_destroy(ap);
        return NULL;
    }
    return ap;
}

jm_rc_t jm_apply_reset(jm_apply_t *ap, jm_pg_t *pg, jm_err_t *err)
{
    ap->pg = pg;
    ap->conn = jm_pg_conn(pg);
    jm_apply_rollback(ap); /* a new connection: whatever was pending died with the old one */
    if (!ap->conn)
        return jm_err_set(err, JM_ERR_UNAVAILABLE, "apply: no PostgreSQL connection");
    return prepare_all(ap, err);
}

void jm_apply_destroy(jm_apply_t *ap)
{
    if (!ap)
        return;
    jm_ap_ids_free(&ap->touched_wf);
    jm_ap_ids_free(&ap->touched_runs);
    free(ap->cnt);
    free(ap->bat);
    free(ap->ti.v);
    for (size_t i = 0; i < JM_ARRAY_LEN(ap->arr); i++)
        jm_pgarr_free(&ap->arr[i]);
    free(ap);
}

size_t jm_apply_touched(const jm_apply_t *ap, const int64_t **workflow_ids)
{
    *workflow_ids = ap->touched_wf.v;
    return ap->touched_wf.n;
}

size_t jm_apply_touched_runs(const jm_apply_t *ap, const int64_t **run_ids)
{
    *run_ids = ap->touched_runs.v;
    return ap->touched_runs.n;
}

void jm_apply_clear_touched(jm_apply_t *ap)
{
    ap->touched_wf.n = 0;
    ap->touched_runs.n = 0;
}

/* ---- the one status-change function -------------------------------------------------------- */

static const jm_ap_sql_t tr_sql[JM_ENTITY__CNT] = {
    [JM_ENTITY_TI] = AP_TR_TI,
    [JM_ENTITY_TASK] = AP_TR_TASK,
    [JM_ENTITY_RUN] = AP_TR_RUN,
    [JM_ENTITY_WORKFLOW] = AP_TR_WF,
};
static const jm_ap_sql_t status_sql[JM_ENTITY__CNT] = {
    [JM_ENTITY_TI] = AP_STATUS_TI,
    [JM_ENTITY_TASK] = AP_STATUS_TASK,
    [JM_ENTITY_RUN] = AP_STATUS_RUN,
    [JM_ENTITY_WORKFLOW] = AP_STATUS_WF,
};

static int check_item(jm_apply_t *ap, jm_entity_t entity, int64_t id, char from, char to,
                      int bypass, int att)
{
    int f = jm_status_from_letter(entity, from);
    int t = jm_status_from_letter(entity, to);
    jm_transition_t tr;
    if (f < 0 || t < 0)
        tr = JM_TR_ILLEGAL;
    else if (bypass)
        tr = from == to && att != AP_ATT_RESET ? JM_TR_UNTIMELY : JM_TR_LEGAL;
    else
        tr = jm_fsm_check(entity, f, t);
    switch (tr) {
    case JM_TR_LEGAL:
        return AP_ITEM_APPLIED;
    case JM_TR_UNTIMELY:
        jm_ap_ignored(ap, "%s %" PRId64 ": untimely %c -> %c", jm_entity_name(entity), id, from,
                      to);
        return AP_ITEM_IGNORED;
    default:
        jm_ap_rejected(ap, "%s %" PRId64 ": illegal %c -> %c", jm_entity_name(entity), id, from,
                       to);
        jm_log(JM_LOG_WARN, "fsm", "%s %" PRId64 ": illegal %c -> %c (event %s)",
               jm_entity_name(entity), id, from, to, ap->evid);
        return AP_ITEM_REJECTED;
    }
}

jm_rc_t jm_ap_transition(jm_apply_t *ap, jm_entity_t entity, size_t n, const int64_t *ids,
                         const char *from, const char *to, int bypass, int att, int *item,
                         size_t *n_applied, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    PGresult *r = NULL;
    size_t applied = 0;
    int *st = jm_calloc(n ? n : 1, sizeof(int));
    char *cur = jm_malloc(n ? n : 1);
    memcpy(cur, from, n);
    JM_ASSERT((unsigned)entity < JM_ENTITY__CNT);

    for (size_t i = 0; i < n; i++)
        st[i] = check_item(ap, entity, ids[i], cur[i], to[i], bypass, att);

    for (int round = 0; round < 3; round++) {
        jm_pgarr_t *a_id = &ap->arr[5], *a_f = &ap->arr[6], *a_t = &ap->arr[7];
        jm_pgarr_reset(a_id);
        jm_pgarr_reset(a_f);
        jm_pgarr_reset(a_t);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (st[i] != AP_ITEM_APPLIED)
                continue;
            jm_pgarr_add_int(a_id, ids[i]);
            jm_pgarr_add_text(a_f, &cur[i], 1);
            jm_pgarr_add_text(a_t, &to[i], 1);
            m++;
        }
        if (m == 0)
            break;
        char attbuf[8];
        snprintf(attbuf, sizeof(attbuf), "%d", att);
        const char *p[6] = {jm_pgarr_finish(a_id), jm_pgarr_finish(a_f), jm_pgarr_finish(a_t),
                            ap->ts, ap->evid, attbuf};
        rc = jm_ap_exec(ap, tr_sql[entity], entity == JM_ENTITY_TASK ? 6 : 5, p, &r, err);
        if (rc != JM_OK)
            goto out;
        int rows = PQntuples(r);
        /* Mark the updated ones done (SKIPPED = settled), collect the conflicts. */
        size_t conflicts = 0;
        for (size_t i = 0; i < n; i++) {
            if (st[i] != AP_ITEM_APPLIED)
                continue;
            int found = 0; /* row index + 1 */
            for (int k = 0; k < rows && !found; k++)
                if (strtoll(PQgetvalue(r, k, 0), NULL, 10) == ids[i])
                    found = k + 1;
            if (found) {
                st[i] = -1; /* applied and settled */
                applied++;
                if (entity == JM_ENTITY_TASK) {
                    int64_t wf = strtoll(PQgetvalue(r, found - 1, 1), NULL, 10);
                    count_add(ap, wf, cur[i], -1);
                    count_add(ap, wf, to[i], 1);
                } else if (entity == JM_ENTITY_TI) {
                    ti_get(ap, ids[i], 1)->status = to[i];
                }
                jm_log(JM_LOG_DEBUG, "fsm", "%s %" PRId64 ": %c -> %c (event %s)",
                       jm_entity_name(entity), ids[i], cur[i], to[i], ap->evid);
            } else {
                conflicts++;
            }
        }
        PQclear(r);
        r = NULL;
        if (conflicts == 0)
            break;
        /* The state moved under us: re-read and re-check. */
        jm_pgarr_reset(a_id);
        for (size_t i = 0; i < n; i++)
            if (st[i] == AP_ITEM_APPLIED)
                jm_pgarr_add_int(a_id, ids[i]);
        const char *q[1] = {jm_pgarr_finish(a_id)};
        rc = jm_ap_exec(ap, status_sql[entity], 1, q, &r, err);
        if (rc != JM_OK)
            goto out;
        for (size_t i = 0; i < n; i++) {
            if (st[i] != AP_ITEM_APPLIED)
                continue;
            char now = 0;
            for (int k = 0; k < PQntuples(r); k++)
                if (strtoll(PQgetvalue(r, k, 0), NULL, 10) == ids[i])
                    now = PQgetvalue(r, k, 1)[0];
            if (!now) {
                jm_ap_rejected(ap, "%s %" PRId64 ": unknown", jm_entity_name(entity), ids[i]);
                st[i] = AP_ITEM_REJECTED;
                continue;
            }
            cur[i] = now;
            st[i] = check_item(ap, entity, ids[i], now, to[i], bypass, att);
        }
        PQclear(r);
        r = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (st[i] == -1)
            st[i] = AP_ITEM_APPLIED;
        else if (st[i] == AP_ITEM_APPLIED) /* still conflicting after 3 rounds */
            st[i] = AP_ITEM_IGNORED;
        if (item)
            item[i] = st[i];
    }
    if (applied) {
        jm_ap_applied(ap);
        jm_ap_touch_wf(ap, ap->ev->workflow_id);
    }
out:
    PQclear(r);
    if (n_applied)
        *n_applied = applied;
    free(st);
    free(cur);
    return rc;
}

jm_rc_t jm_ap_transition1(jm_apply_t *ap, jm_entity_t entity, int64_t id, char from, char to,
                          int bypass, int *item, jm_err_t *err)
{
    return jm_ap_transition(ap, entity, 1, &id, &from, &to, bypass, AP_ATT_KEEP, item, NULL,
                            err);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

typedef jm_rc_t (*handler_fn)(jm_apply_t *ap, jm_err_t *err);

static const handler_fn handlers[JM_EV__CNT] = {
    [JM_EV_WORKFLOW_BIND] = jm_ap_workflow_bind,
    [JM_EV_WORKFLOW_BIND_TASKS] = jm_ap_workflow_bind_tasks,
    [JM_EV_WORKFLOW_BOUND] = jm_ap_workflow_bound,
    [JM_EV_RUN_START] = jm_ap_run_start,
    [JM_EV_RUN_STOP] = jm_ap_run_stop,
    [JM_EV_WORKFLOW_RESUME] = jm_ap_workflow_resume,
    [JM_EV_WORKFLOW_RESET] = jm_ap_workflow_reset,
    [JM_EV_WORKFLOW_CONCURRENCY] = jm_ap_workflow_concurrency,
    [JM_EV_TASK_SET_STATUS] = jm_ap_task_set_status,
    [JM_EV_RUN_STATUS] = jm_ap_run_status,
    [JM_EV_RUN_HEARTBEAT] = jm_ap_run_heartbeat,
    [JM_EV_TI_INSTANTIATED] = jm_ap_ti_event,
    [JM_EV_TI_LAUNCHED] = jm_ap_ti_event,
    [JM_EV_TI_SUBMIT_FAILED] = jm_ap_ti_event,
    [JM_EV_TI_LAUNCH_HEARTBEAT] = jm_ap_ti_event,
    [JM_EV_TI_KILLED] = jm_ap_ti_event,
    [JM_EV_TI_TRIAGED] = jm_ap_ti_event,
    [JM_EV_TI_RUNNING] = jm_ap_ti_event,
    [JM_EV_TI_HEARTBEAT] = jm_ap_ti_event,
    [JM_EV_TI_DONE] = jm_ap_ti_event,
    [JM_EV_TI_ERROR] = jm_ap_ti_event,
    [JM_EV_REAPER_OVERDUE] = jm_ap_ti_event,
    [JM_EV_REAPER_RUN_LOST] = jm_ap_reaper_run_lost,
    [JM_EV_REAPER_RUN_TIMEOUT] = jm_ap_reaper_run_timeout,
};

jm_rc_t jm_apply_event(jm_apply_t *ap, const jm_event_t *ev, int64_t offset,
                       jm_apply_result_t *res, jm_err_t *err)
{
    (void)offset;
    memset(res, 0, sizeof(*res));
    ap->ev = ev;
    ap->n_applied = ap->n_ignored = ap->n_rejected = 0;
    ap->reject_reason[0] = ap->ignore_reason[0] = '\0';
    jm_ap_ts(ap->ts, sizeof(ap->ts), ev->ts_ms);
    snprintf(ap->evid, sizeof(ap->evid), "%s", ev->id);
    jm_ap_i64(ap->wfid, sizeof(ap->wfid), ev->workflow_id);

    if ((unsigned)ev->type >= JM_EV__CNT || !handlers[ev->type]) {
        res->outcome = JM_OUTCOME_REJECTED;
        snprintf(res->reason, sizeof(res->reason), "unknown event type %d", (int)ev->type);
        return JM_OK;
    }
    jm_rc_t rc = handlers[ev->type](ap, err);
    if (rc != JM_OK) {
        ap->ev = NULL;
        return rc;
    }
    if (ap->n_applied > 0) {
        res->outcome = JM_OUTCOME_APPLIED;
        if (ap->n_rejected)
            jm_log(JM_LOG_WARN, "fsm", "event %s (%s) partly rejected: %s", ev->id,
                   jm_event_type_name(ev->type), ap->reject_reason);
    } else if (ap->n_rejected > 0) {
        res->outcome = JM_OUTCOME_REJECTED;
        snprintf(res->reason, sizeof(res->reason), "%s", ap->reject_reason);
    } else if (ap->n_ignored > 0) {
        res->outcome = JM_OUTCOME_IGNORED;
        snprintf(res->reason, sizeof(res->reason), "%s", ap->ignore_reason);
    } else {
        res->outcome = JM_OUTCOME_APPLIED; /* confirmed state, nothing to change */
    }
    ap->ev = NULL;
    return JM_OK;
}
