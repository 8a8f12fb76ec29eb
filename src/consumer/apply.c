/*
 * apply.c — the handlers' frame: statement preparation, dispatch of one event to its handler,
 * the outcome of the event (applied / ignored / rejected with a reason), the touched workflow
 * and run sets for the cache, and jm_ap_transition — the one function through which every
 * status change of every entity passes (validate with jm_fsm_check, conditional UPDATE on the
 * expected status, transition_log, workflow_task_count).
 *
 * Per-transaction state (jm_apply_flush / jm_apply_rollback; types in apply_int.h): inside one
 * transaction the FSM is the only writer of the rows it touches, so what it applied is known
 * exactly.  Hot rows (workflow_task_count, workflow.batches) get pending deltas; task instances
 * and tasks read in the transaction (one AP_TI_PREFETCH / AP_EDGES_PREFETCH for the batch via
 * jm_apply_hint, else AP_TI_LOAD) are "known", and status changes of known rows, their
 * transition_log rows (kept in statement order), field updates, coalesced heartbeats, new task
 * instances and pending_upstreams decrements are applied in memory and written as one
 * multi-row statement each: at the flush, or before any statement that could see the
 * difference (jm_ap_exec's guard).  Handlers other than the hot task-instance events write
 * everything and forget the known rows.  A handler's decisions are the same as with per-event
 * writes, so the rows do not depend on where batch boundaries fall (replay tests, jobmon audit).
 * After a successful flush the known rows of unfinished instances and tasks are kept for the
 * next transaction (keep_rows) until a rollback or rebalance (jm_apply_rollback).
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

/* Planner settings of the FSM's session.  The FSM's rows are read by primary key from a working
 * set that is in shared_buffers; with the default random_page_cost (4) the planner joined a
 * flush's unnest() of ~1,500 ids to task / task_instance by hashing a sequential scan of the whole
 * table (O(table) per flush: 8 ms at 20k rows, growing with every workflow ever run) instead of
 * 1,500 primary-key probes (4 ms, independent of the table size).  No parallel workers: every
 * statement of the FSM touches a batch of rows, workers only add CPU (the edge prefetch got a
 * parallel scan of all of task_edge).  No JIT: its compile time (~7 ms) is paid by every
 * statement whose estimate is high, and estimates made from statistics taken during a bind are. */
static const char session_sql[] =
    "SET random_page_cost = 1.1; SET max_parallel_workers_per_gather = 0; SET jit = off";

static jm_rc_t prepare_all(jm_apply_t *ap, jm_err_t *err)
{
    PGresult *s = PQexec(ap->conn, session_sql);
    if (!s || PQresultStatus(s) != PGRES_COMMAND_OK) {
        jm_rc_t rc = classify(ap->conn, s, "session settings", err);
        PQclear(s);
        return rc;
    }
    PQclear(s);
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

static int has_pending(const jm_apply_t *ap);

jm_rc_t jm_ap_exec_id(jm_apply_t *ap, jm_ap_sql_t s, int64_t id, PGresult **res, jm_err_t *err)
{
    char v[24];
    jm_ap_i64(v, sizeof(v), id);
    const char *p[1] = {v};
    return jm_ap_exec(ap, s, 1, p, res, err);
}

/* Statements whose best plan depends on the values (a 5-task workflow next to a 1.5M-task one,
 * a tool shared by most workflows): a prepared statement soon settles on a generic plan made
 * for the average, which here meant parallel sequential scans of task, task_edge,
 * task_instance or workflow for every small workflow.  They run once per bind, chunk or run
 * start, so planning them each time costs little.  AP_EDGES_PREFETCH is not among them any more:
 * its plan is fixed by jm_task_downstream's own settings (010_edge_probe.sql); custom plans of it
 * as a join followed whatever statistics task_edge had (83-156 ms per call at 100k tasks). */
static int custom_plan(jm_ap_sql_t s)
{
    return s == AP_PENDING_RECOMPUTE || s == AP_WF_OLD_TIS || s == AP_WF_CHUNK ||
           s == AP_WF_ARGS_TAKEN || s == AP_BIND_CHUNK_GET;
}

jm_rc_t jm_ap_exec(jm_apply_t *ap, jm_ap_sql_t s, int n, const char *const *params, PGresult **res,
                   jm_err_t *err)
{
    char name[32];
    /* What is applied in memory is written before any statement that could see the difference
     * (these statements neither read task/instance statuses, report_by or transition_log, nor
     * write them; AP_TI_LOAD's rows are overlaid with the known state by its caller). */
    if (has_pending(ap) && s != AP_TI_LOAD && s != AP_TI_SET_RUNNING && s != AP_TI_SET_RESULT &&
        s != AP_WF_COUNTS && s != AP_TI_SET_MESSAGE && s != AP_SCHED_INSERT &&
        s != AP_FLUSH_REPORT_BY && s != AP_FLUSH_TI_STATUS && s != AP_FLUSH_TASK_STATUS &&
        s != AP_FLUSH_TLOG && s != AP_FLUSH_COUNTS && s != AP_FLUSH_BATCHES &&
        s != AP_FLUSH_RUNNING && s != AP_FLUSH_RESULT && s != AP_FLUSH_TI_INSERT &&
        s != AP_RUN_HEARTBEAT && s != AP_TI_PREFETCH && s != AP_EDGES_PREFETCH &&
        s != AP_FLUSH_PENDING && s != AP_FLUSH_TI_ROWS) {
        jm_rc_t rc;
        if (s == AP_SCHED_PICK_FAST || s == AP_SCHED_READY) { /* reads the ready set only */
            rc = ap->ga_dirty ? jm_ap_write_task_status(ap, err) : JM_OK;
            if (rc == JM_OK)
                rc = jm_ap_write_pend(ap, err);
        } else if (s == AP_DOWNSTREAM_DONE) { /* reads pending_upstreams */
            rc = jm_ap_write_pend(ap, err);
        } else
            rc = jm_ap_write_pending(ap, err);
        if (rc != JM_OK)
            return rc;
    }
    snprintf(name, sizeof(name), "jm_ap_%d", (int)s);
    if (res)
        *res = NULL;
    PGresult *r = custom_plan(s)
                      ? PQexecParams(ap->conn, jm_ap_sql[s], n, NULL, params, NULL, NULL, 0)
                      : PQexecPrepared(ap->conn, name, n, params, NULL, NULL, 0);
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

void jm_ap_pending_drop_wf(jm_apply_t *ap, int64_t wf)
{
    size_t m = 0;
    for (size_t i = 0; i < ap->n_cnt; i++)
        if (ap->cnt[i].wf != wf)
            ap->cnt[m++] = ap->cnt[i];
    ap->n_cnt = m;
    m = 0;
    for (size_t i = 0; i < ap->n_bat; i++)
        if (ap->bat[i].wf != wf)
            ap->bat[m++] = ap->bat[i];
    ap->n_bat = m;
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

static size_t map_slot(const jm_ap_map_t *m, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 17) & (m->cap - 1);
    for (;;) {
        int64_t k = *(const int64_t *)((const char *)m->v + i * m->elem);
        if (k == 0 || k == id)
            return i;
        i = (i + 1) & (m->cap - 1);
    }
}

/* Whether a table of cap slots is too small for n rows: load <= 3/4 (memory: 88-byte slots). */
static int map_over(size_t n, size_t cap)
{
    return n * 4 > cap * 3;
}

static void *map_get(jm_ap_map_t *m, int64_t id, int create)
{
    if (id == 0 || (!create && m->n == 0))
        return NULL;
    if (create && map_over(m->n + 1, m->cap)) {
        jm_ap_map_t old = *m;
        m->cap = old.cap ? old.cap * 2 : 256;
        m->v = jm_calloc(m->cap, m->elem);
        for (size_t i = 0; i < old.cap; i++) {
            char *e = (char *)old.v + i * old.elem;
            if (*(int64_t *)e)
                memcpy((char *)m->v + map_slot(m, *(int64_t *)e) * m->elem, e, m->elem);
        }
        free(old.v);
    }
    if (m->cap == 0)
        return NULL;
    char *e = (char *)m->v + map_slot(m, id) * m->elem;
    if (*(int64_t *)e == 0) {
        if (!create)
            return NULL;
        *(int64_t *)e = id;
        m->n++;
    }
    return e;
}

/* An empty map sized for n rows without growing (m->v must be unallocated). */
static void map_reserve(jm_ap_map_t *m, size_t n)
{
    size_t cap = 256;
    while (map_over(n, cap))
        cap *= 2;
    m->v = jm_calloc(cap, m->elem);
    m->cap = cap;
}

static void map_clear(jm_ap_map_t *m)
{
    if (m->n)
        memset(m->v, 0, m->cap * m->elem);
    m->n = m->n_pending = 0;
    if (m->cap > 65536) { /* a huge batch: do not keep its table */
        free(m->v);
        m->v = NULL;
        m->cap = 0;
    }
}

jm_ap_tistate_t *jm_ap_ti_state(jm_apply_t *ap, int64_t id, int create)
{
    return map_get(&ap->ti, id, create);
}

jm_ap_taskstate_t *jm_ap_task_state(jm_apply_t *ap, int64_t id, int create)
{
    return map_get(&ap->task, id, create);
}

char jm_ap_ti_known(const jm_apply_t *ap, int64_t id)
{
    const jm_ap_tistate_t *t = map_get((jm_ap_map_t *)&ap->ti, id, 0);
    return t ? t->status : 0;
}

void jm_ap_ti_note(jm_apply_t *ap, int64_t id, char status)
{
    jm_ap_tistate_t *t = map_get(&ap->ti, id, 1);
    t->status = status;
}

void jm_ap_ti_defer_report_by(jm_apply_t *ap, int64_t id, int64_t report_by_ms)
{
    jm_ap_tistate_t *t = map_get(&ap->ti, id, 1);
    if (t->report_by_ms == 0)
        ap->ti.n_pending++;
    t->report_by_ms = report_by_ms;
}

/* One status UPDATE for the pending task rows; every row must match its stored status.  A
 * pending_upstreams change of the same row goes with it (one row version, not two). */
static jm_rc_t flush_task_status(jm_apply_t *ap, jm_err_t *err)
{
    jm_ap_map_t *m = &ap->task;
    jm_pgarr_t *a = &ap->farr[2], *f = &ap->farr[3], *t = &ap->farr[4], *at = &ap->farr[5],
               *na = &ap->farr[6], *sq = &ap->farr[7], *pu = &ap->farr[8];
    jm_pgarr_reset(a);
    jm_pgarr_reset(f);
    jm_pgarr_reset(t);
    jm_pgarr_reset(at);
    jm_pgarr_reset(na);
    jm_pgarr_reset(sq);
    jm_pgarr_reset(pu);
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++) {
        jm_ap_taskstate_t *e = &((jm_ap_taskstate_t *)m->v)[i];
        if (!e->id || !e->db_status)
            continue;
        char ts[40];
        jm_ap_ts(ts, sizeof(ts), e->status_at_ms);
        jm_pgarr_add_int(a, e->id);
        jm_pgarr_add_text(f, &e->db_status, 1);
        jm_pgarr_add_text(t, &e->status, 1);
        jm_pgarr_add_text(at, ts, strlen(ts));
        jm_pgarr_add_int(na, e->tnum);
        jm_pgarr_add_int(sq, e->tseq);
        if (e->pend_dirty) {
            jm_pgarr_add_int(pu, e->pend);
            e->pend_dirty = 0;
            ap->n_pend_dirty--;
        } else {
            jm_pgarr_add_null(pu);
        }
        e->db_status = 0;
        n++;
    }
    if (n == 0)
        return JM_OK;
    const char *p[7] = {jm_pgarr_finish(a),  jm_pgarr_finish(f),  jm_pgarr_finish(t),
                        jm_pgarr_finish(at), jm_pgarr_finish(na), jm_pgarr_finish(sq),
                        jm_pgarr_finish(pu)};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_FLUSH_TASK_STATUS, 7, p, &r, err);
    if (rc == JM_OK && strtoull(PQcmdTuples(r), NULL, 10) != n)
        rc = jm_err_set(err, JM_ERR_RETRY,
                        "task: %zu status change(s) applied in memory, %s matched the stored rows",
                        n, PQcmdTuples(r));
    PQclear(r);
    return rc;
}

/* The pending transition_log rows, in their order (seq follows it), by one binary COPY. */
static jm_rc_t flush_tlog(jm_apply_t *ap, jm_err_t *err)
{
    static const char sql[] = "COPY transition_log (entity, entity_id, workflow_id, from_status,"
                              " to_status, event_id, at) FROM STDIN (FORMAT binary)";
    jm_pgcopy_t *c = &ap->tlog_copy;
    jm_pgcopy_reset(c);
    for (size_t i = 0; i < ap->n_tlog; i++) {
        const jm_ap_tlog_t *l = &ap->tlog[i];
        const char *e = jm_entity_name((jm_entity_t)l->entity);
        jm_pgcopy_row(c, 7);
        jm_pgcopy_bytes(c, e, strlen(e));
        jm_pgcopy_int8(c, l->id);
        jm_pgcopy_int8(c, l->wf);
        if (l->from)
            jm_pgcopy_bytes(c, &l->from, 1);
        else
            jm_pgcopy_null(c);
        jm_pgcopy_bytes(c, &l->to, 1);
        jm_pgcopy_uuid(c, l->evid);
        jm_pgcopy_ts_ms(c, l->ts_ms);
    }
    ap->n_tlog = 0;
    return jm_pgcopy_send(c, ap->conn, sql, err);
}

jm_rc_t jm_ap_write_task_status(jm_apply_t *ap, jm_err_t *err)
{
    ap->ga_dirty = 0;
    if (!ap->task.n_pending)
        return JM_OK;
    ap->task.n_pending = 0;
    return flush_task_status(ap, err);
}

void jm_ap_tlog_push(jm_apply_t *ap, jm_entity_t entity, int64_t id, int64_t wf, char from, char to)
{
    if (ap->n_tlog == ap->cap_tlog) {
        ap->cap_tlog = ap->cap_tlog ? ap->cap_tlog * 2 : 256;
        ap->tlog = jm_realloc(ap->tlog, ap->cap_tlog * sizeof(*ap->tlog));
    }
    jm_ap_tlog_t *l = &ap->tlog[ap->n_tlog++];
    l->entity = (char)entity;
    l->id = id;
    l->wf = wf;
    l->from = from;
    l->to = to;
    snprintf(l->evid, sizeof(l->evid), "%s", ap->evid);
    l->ts_ms = ap->ev->ts_ms;
}

static int has_pending(const jm_apply_t *ap)
{
    return ap->n_status_pending || ap->task.n_pending || ap->n_tlog || ap->ti.n_pending ||
           ap->dfr[0].n || ap->dfr[1].n || ap->n_newti || ap->n_pend_dirty;
}

static jm_rc_t flush_newti(jm_apply_t *ap, jm_err_t *err)
{
    jm_pgarr_t *a = ap->farr;
    for (int c = 0; c < 8; c++)
        jm_pgarr_reset(&a[c]);
    for (size_t i = 0; i < ap->n_newti; i++) {
        const jm_ap_newti_t *t = &ap->newti[i];
        char ts[40];
        jm_ap_ts(ts, sizeof(ts), t->ts_ms);
        jm_pgarr_add_int(&a[0], t->id);
        jm_pgarr_add_int(&a[1], t->task_id);
        jm_pgarr_add_int(&a[2], t->attempt);
        jm_pgarr_add_int(&a[3], t->batch);
        jm_pgarr_add_int(&a[4], t->step);
        jm_pgarr_add_int(&a[5], t->wf);
        jm_pgarr_add_int(&a[6], t->run_id);
        jm_pgarr_add_text(&a[7], ts, strlen(ts));
    }
    size_t n = ap->n_newti;
    ap->n_newti = 0;
    const char *p[8];
    for (int c = 0; c < 8; c++)
        p[c] = jm_pgarr_finish(&a[c]);
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_FLUSH_TI_INSERT, 8, p, &r, err);
    if (rc == JM_OK && strtoull(PQcmdTuples(r), NULL, 10) != n)
        rc = jm_err_set(err, JM_ERR_INTERNAL, "task_instance: %zu queued, %s inserted", n,
                        PQcmdTuples(r));
    PQclear(r);
    return rc;
}

void jm_ap_newti_add(jm_apply_t *ap, const jm_ap_newti_t *t)
{
    if (ap->n_newti == ap->cap_newti) {
        ap->cap_newti = ap->cap_newti ? ap->cap_newti * 2 : 64;
        ap->newti = jm_realloc(ap->newti, ap->cap_newti * sizeof(*ap->newti));
    }
    ap->newti[ap->n_newti++] = *t;
}

static void defer_clear(jm_ap_defer_t *d)
{
    for (size_t i = 0; i < d->n * AP_DEFER_COLS; i++)
        free(d->v[i]);
    d->n = 0;
}

/* Everything pending for task instances, one row per instance in one UPDATE (AP_FLUSH_TI_ROWS):
 * the status change (checked against the stored status: a mismatch is a conflict), the
 * coalesced heartbeats' report_by and the ti.running / ti.done fields.  One row version per
 * instance and flush instead of one per kind of change: each version of a task_instance row
 * costs an insertion into each of its indexes (a status change is never a HOT update). */
static jm_rc_t flush_ti_rows(jm_apply_t *ap, jm_err_t *err)
{
    jm_pgarr_t *a = ap->tiarr;
    const char *p[AP_TI_ROW_COLS];
    for (int c = 0; c < AP_TI_ROW_COLS; c++)
        jm_pgarr_reset(&a[c]);
    size_t n = 0, n_status = 0;
    jm_ap_tistate_t *v = ap->ti.v;
    for (size_t i = 0; i < ap->ti.cap; i++) {
        jm_ap_tistate_t *t = &v[i];
        char ts[40];
        if (!t->id || !(t->db_status || t->report_by_ms || t->fields))
            continue;
        jm_pgarr_add_int(&a[0], t->id);
        if (t->db_status) {
            jm_ap_ts(ts, sizeof(ts), t->status_at_ms);
            jm_pgarr_add_text(&a[1], &t->db_status, 1);
            jm_pgarr_add_text(&a[2], &t->status, 1);
            jm_pgarr_add_text(&a[3], ts, strlen(ts));
            t->db_status = 0;
            n_status++;
        } else {
            jm_pgarr_add_null(&a[1]);
            jm_pgarr_add_null(&a[2]);
            jm_pgarr_add_null(&a[3]);
        }
        jm_ap_ts(ts, sizeof(ts), t->report_by_ms);
        jm_pgarr_add_text(&a[4], t->report_by_ms ? ts : NULL, strlen(ts));
        t->report_by_ms = 0;
        for (int k = 0; k < AP_DEFER__CNT; k++) { /* a flag, then the statement's columns 1.. */
            int has = (t->fields >> k) & 1u;
            jm_pgarr_t *col = &a[5 + k * AP_DEFER_COLS];
            jm_pgarr_add_text(col, has ? "t" : "f", 1);
            for (int c = 1; c < (k == AP_DEFER_LAUNCHED ? 2 : AP_DEFER_COLS); c++) {
                const char *s = has ? ap->dfr[k].v[t->drow[k] * AP_DEFER_COLS + c] : NULL;
                jm_pgarr_add_text(&col[c], s, s ? strlen(s) : 0);
            }
        }
        t->fields = 0;
        n++;
    }
    ap->ti.n_pending = 0;
    ap->n_status_pending = 0;
    for (int k = 0; k < AP_DEFER__CNT; k++)
        defer_clear(&ap->dfr[k]);
    if (n == 0)
        return JM_OK;
    for (int c = 0; c < AP_TI_ROW_COLS; c++)
        p[c] = jm_pgarr_finish(&a[c]);
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_FLUSH_TI_ROWS, AP_TI_ROW_COLS, p, &r, err);
    if (rc != JM_OK)
        return rc;
    size_t matched = 0;
    for (int k = 0; k < PQntuples(r); k++)
        matched += PQgetvalue(r, k, 0)[0] == 't';
    if (matched != n_status)
        rc = jm_err_set(err, JM_ERR_RETRY,
                        "task_instance: %zu status change(s) applied in memory, %zu matched the"
                        " stored rows",
                        n_status, matched);
    PQclear(r);
    return rc;
}

jm_rc_t jm_ap_defer_fields(jm_apply_t *ap, int kind, int64_t id, const char *const *params,
                           jm_err_t *err)
{
    jm_ap_tistate_t *t = jm_ap_ti_state(ap, id, 1);
    if (t->fields & (1u << kind)) { /* one row per instance and statement */
        jm_rc_t rc = jm_ap_write_pending(ap, err);
        if (rc != JM_OK)
            return rc;
        t = jm_ap_ti_state(ap, id, 1);
    }
    jm_ap_defer_t *d = &ap->dfr[kind];
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->v = jm_realloc(d->v, d->cap * AP_DEFER_COLS * sizeof(*d->v));
    }
    for (int c = 0; c < AP_DEFER_COLS; c++)
        d->v[d->n * AP_DEFER_COLS + c] = params[c] ? jm_strdup(params[c]) : NULL;
    t->drow[kind] = d->n++;
    t->fields |= 1u << kind;
    if (kind == AP_DEFER_RUNNING && t->report_by_ms) { /* running's report_by is the newer */
        t->report_by_ms = 0;
        ap->ti.n_pending--;
    }
    return JM_OK;
}

jm_rc_t jm_ap_defer_launched(jm_apply_t *ap, int64_t id, const char *distributor_id,
                             int64_t report_by_ms, jm_err_t *err)
{
    char sid[24];
    jm_ap_i64(sid, sizeof(sid), id);
    const char *q[AP_DEFER_COLS] = {sid, distributor_id};
    const jm_ap_tistate_t *t = jm_ap_ti_state(ap, id, 0);
    jm_rc_t rc = JM_OK;
    /* AP_FLUSH_TI_ROWS lets a pending ti.running's distributor id win over ti.launched's: that
     * holds when launched came first, so anything pending for the row is written before */
    if (t && (t->fields || t->report_by_ms))
        rc = jm_ap_write_pending(ap, err);
    if (rc == JM_OK)
        rc = jm_ap_defer_fields(ap, AP_DEFER_LAUNCHED, id, q, err);
    if (rc == JM_OK)
        jm_ap_ti_defer_report_by(ap, id, report_by_ms);
    return rc;
}

jm_rc_t jm_ap_write_pending(jm_apply_t *ap, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    /* new instances first: the status and field updates below may be theirs */
    if (ap->n_newti && (rc = flush_newti(ap, err)) != JM_OK)
        return rc;
    if ((ap->dfr[0].n || ap->dfr[1].n || ap->dfr[2].n || ap->ti.n_pending ||
         ap->n_status_pending) &&
        (rc = flush_ti_rows(ap, err)) != JM_OK)
        return rc;
    /* status first: it takes the pending counts of the rows it updates along */
    if ((rc = jm_ap_write_task_status(ap, err)) != JM_OK)
        return rc;
    if ((rc = jm_ap_write_pend(ap, err)) != JM_OK)
        return rc;
    if (ap->n_tlog)
        rc = flush_tlog(ap, err);
    return rc;
}

jm_ap_wfc_t *jm_ap_wfc(jm_apply_t *ap, int64_t wf, int create)
{
    for (size_t i = 0; i < ap->n_wfc; i++)
        if (ap->wfc[i].wf == wf)
            return &ap->wfc[i];
    if (!create)
        return NULL;
    if (ap->n_wfc == ap->cap_wfc) {
        ap->cap_wfc = ap->cap_wfc ? ap->cap_wfc * 2 : 8;
        size_t old = ap->n_wfc;
        ap->wfc = jm_realloc(ap->wfc, ap->cap_wfc * sizeof(*ap->wfc));
        memset(ap->wfc + old, 0, (ap->cap_wfc - old) * sizeof(*ap->wfc));
    }
    jm_ap_wfc_t *c = &ap->wfc[ap->n_wfc++];
    jm_ap_ready_t *keep = c->ready; /* reuse the array of a forgotten entry */
    size_t keep_cap = c->cap_ready;
    memset(c, 0, sizeof(*c));
    c->wf = wf;
    c->ready = keep;
    c->cap_ready = keep_cap;
    return c;
}

static void ready_clear(jm_ap_wfc_t *c)
{
    for (size_t i = 0; i < c->n_ready; i++)
        free(c->ready[i].resources);
    c->n_ready = 0;
}

void jm_ap_ready_changed(jm_apply_t *ap)
{
    for (size_t i = 0; i < ap->n_wfc; i++) {
        ap->wfc[i].no_ready = 0;
        ready_clear(&ap->wfc[i]);
    }
}

static void ready_push(jm_ap_wfc_t *c, int64_t id, char st, int64_t array_id, const char *res,
                       int tseq, int tnum, int tmax)
{
    if (c->n_ready == c->cap_ready) {
        c->cap_ready = c->cap_ready ? c->cap_ready * 2 : 16;
        c->ready = jm_realloc(c->ready, c->cap_ready * sizeof(*c->ready));
    }
    jm_ap_ready_t *e = &c->ready[c->n_ready++];
    e->id = id;
    e->status = st;
    e->array_id = array_id;
    e->resources = jm_strdup(res);
    e->tseq = tseq;
    e->tnum = tnum;
    e->tmax = tmax;
}

/* A known task whose pending count reached 0 in memory. */
static void ready_add_one(jm_apply_t *ap, const jm_ap_taskstate_t *d)
{
    jm_ap_wfc_t *c = jm_ap_wfc(ap, d->wf, 0);
    if (c && c->no_ready)
        ready_push(c, d->id, d->status, d->array_id, ap->strs[d->res], d->tseq, d->tnum, d->tmax);
}

void jm_ap_ready_add(jm_apply_t *ap, const PGresult *r)
{
    for (int k = 0; k < PQntuples(r); k++) {
        int64_t id = strtoll(PQgetvalue(r, k, 0), NULL, 10);
        jm_ap_taskstate_t *d = jm_ap_task_state(ap, id, 0);
        if (d && d->pend_known) /* the statement decremented it: keep the known count true */
            d->pend = atoi(PQgetvalue(r, k, 1));
        if (strtoll(PQgetvalue(r, k, 1), NULL, 10) != 0)
            continue; /* still waiting for an upstream */
        jm_ap_wfc_t *c = jm_ap_wfc(ap, strtoll(PQgetvalue(r, k, 3), NULL, 10), 0);
        if (!c || !c->no_ready)
            continue; /* not tracked: the next pick reads the database */
        const jm_ap_taskstate_t *t = jm_ap_task_state(ap, id, 0);
        char st = t ? t->status : PQgetvalue(r, k, 2)[0];
        if (st != 'G' && st != 'A')
            continue;
        ready_push(c, id, st, PQgetisnull(r, k, 4) ? 0 : strtoll(PQgetvalue(r, k, 4), NULL, 10),
                   PQgetvalue(r, k, 5), t ? t->tseq : atoi(PQgetvalue(r, k, 6)),
                   t ? t->tnum : atoi(PQgetvalue(r, k, 7)),
                   t ? t->tmax : atoi(PQgetvalue(r, k, 8)));
    }
}

void jm_apply_hint(jm_apply_t *ap, const jm_event_t *ev)
{
    if (ev->type != JM_EV_TI_INSTANTIATED && ev->type != JM_EV_TI_LAUNCHED &&
        ev->type != JM_EV_TI_LAUNCH_HEARTBEAT && ev->type != JM_EV_TI_RUNNING &&
        ev->type != JM_EV_TI_HEARTBEAT && ev->type != JM_EV_TI_DONE && ev->type != JM_EV_TI_ERROR &&
        ev->type != JM_EV_TI_REPORTS)
        return;
    const json_t *items = json_object_get(ev->payload, "items");
    if (!items) {
        json_t *v = json_object_get(ev->payload, "ti_id");
        if (json_is_integer(v)) {
            if (ap->hints.n == ap->hints.cap) {
                ap->hints.cap = ap->hints.cap ? ap->hints.cap * 2 : 256;
                ap->hints.v = jm_realloc(ap->hints.v, ap->hints.cap * sizeof(int64_t));
            }
            ap->hints.v[ap->hints.n++] = json_integer_value(v);
        }
        return;
    }
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *v = json_object_get(json_array_get(items, i), "ti_id");
        if (!json_is_integer(v))
            continue;
        if (ap->hints.n == ap->hints.cap) {
            ap->hints.cap = ap->hints.cap ? ap->hints.cap * 2 : 256;
            ap->hints.v = jm_realloc(ap->hints.v, ap->hints.cap * sizeof(int64_t));
        }
        ap->hints.v[ap->hints.n++] = json_integer_value(v);
    }
}

static jm_rc_t edges_fetch(jm_apply_t *ap, jm_pgarr_t *b, jm_err_t *err);

/* Read the hinted instances not known yet, in one statement. */
static jm_rc_t prefetch(jm_apply_t *ap, jm_err_t *err)
{
    jm_pgarr_t *a = &ap->farr[0];
    jm_pgarr_reset(a);
    size_t m = 0;
    for (size_t i = 0; i < ap->hints.n; i++)
        if (!jm_ap_ti_state(ap, ap->hints.v[i], 0)) {
            jm_pgarr_add_int(a, ap->hints.v[i]);
            m++;
        }
    if (m > 0) {
        const char *p[1] = {jm_pgarr_finish(a)};
        PGresult *r = NULL;
        jm_rc_t rc = jm_ap_exec(ap, AP_TI_PREFETCH, 1, p, &r, err);
        if (rc != JM_OK) {
            ap->hints.n = 0;
            return rc;
        }
        for (int k = 0; k < PQntuples(r); k++)
            jm_ap_ti_known_row(ap, r, k, strtoll(PQgetvalue(r, k, 10), NULL, 10));
        PQclear(r);
    }
    /* the downstream tasks of their tasks (read now or kept from an earlier transaction):
     * ti.done then needs no statement (jm_ap_downstream_done_known) */
    jm_pgarr_t *b = &ap->farr[1];
    jm_pgarr_reset(b);
    size_t nt = 0;
    for (size_t i = 0; i < ap->hints.n; i++) {
        const jm_ap_tistate_t *ts = jm_ap_ti_state(ap, ap->hints.v[i], 0);
        jm_ap_taskstate_t *t = ts && ts->row ? jm_ap_task_state(ap, ts->task_id, 0) : NULL;
        if (t && !t->edges_known) {
            t->edges_known = 2; /* asked for */
            jm_pgarr_add_int(b, t->id);
            nt++;
        }
    }
    ap->hints.n = 0;
    return nt ? edges_fetch(ap, b, err) : JM_OK;
}

/* Append a downstream task id to the edge list. */
static void edge_push(jm_apply_t *ap, int64_t id)
{
    if (ap->n_edges == ap->cap_edges) {
        ap->cap_edges = ap->cap_edges ? ap->cap_edges * 2 : 256;
        ap->edges = jm_realloc(ap->edges, ap->cap_edges * sizeof(*ap->edges));
    }
    ap->edges[ap->n_edges++] = id;
}

/* Store an owned string (a task's resources) in the string list; returns its index. */
static size_t str_push(jm_apply_t *ap, char *str)
{
    if (ap->n_strs == ap->cap_strs) {
        ap->cap_strs = ap->cap_strs ? ap->cap_strs * 2 : 256;
        ap->strs = jm_realloc(ap->strs, ap->cap_strs * sizeof(*ap->strs));
    }
    ap->strs[ap->n_strs] = str;
    return ap->n_strs++;
}

/* Read the downstream tasks (with what a decrement and the ready set need) of the tasks in the
 * array `b`, each already marked edges_known = 2 (asked for); they become edges_known = 1. */
static jm_rc_t edges_fetch(jm_apply_t *ap, jm_pgarr_t *b, jm_err_t *err)
{
    PGresult *r = NULL;
    jm_rc_t rc;
    const char *q[1] = {jm_pgarr_finish(b)};
    if ((rc = jm_ap_exec(ap, AP_EDGES_PREFETCH, 1, q, &r, err)) != JM_OK)
        return rc;
    int rows = PQntuples(r);
    for (int k = 0; k < rows;) {
        int64_t up = strtoll(PQgetvalue(r, k, 0), NULL, 10);
        jm_ap_taskstate_t *u = jm_ap_task_state(ap, up, 0);
        size_t e0 = ap->n_edges;
        for (; k < rows && strtoll(PQgetvalue(r, k, 0), NULL, 10) == up; k++) {
            int64_t id = strtoll(PQgetvalue(r, k, 1), NULL, 10);
            jm_ap_taskstate_t *d = jm_ap_task_state(ap, id, 1);
            if (!d->status) {
                d->status = PQgetvalue(r, k, 3)[0];
                d->wf = strtoll(PQgetvalue(r, k, 4), NULL, 10);
                d->tseq = atoi(PQgetvalue(r, k, 7));
                d->tnum = atoi(PQgetvalue(r, k, 8));
                d->tmax = atoi(PQgetvalue(r, k, 9));
            }
            if (!d->pend_known) {
                d->pend_known = 1;
                d->pend = atoi(PQgetvalue(r, k, 2));
                d->array_id = PQgetisnull(r, k, 5) ? 0 : strtoll(PQgetvalue(r, k, 5), NULL, 10);
                d->res = str_push(ap, jm_strdup(PQgetvalue(r, k, 6)));
            }
            edge_push(ap, id);
        }
        u = jm_ap_task_state(ap, up, 0); /* the map may have grown */
        if (u && u->edges_known == 2) {
            u->edges_known = 1;
            u->edge0 = e0;
            u->n_edges = ap->n_edges - e0;
        }
    }
    PQclear(r);
    /* asked for and without downstream tasks */
    jm_ap_taskstate_t *v = ap->task.v;
    for (size_t i = 0; i < ap->task.cap; i++)
        if (v[i].id && v[i].edges_known == 2) {
            v[i].edges_known = 1;
            v[i].n_edges = 0;
        }
    return JM_OK;
}

int jm_ap_downstream_done_known(jm_apply_t *ap, const int64_t *done, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const jm_ap_taskstate_t *u = jm_ap_task_state(ap, done[i], 0);
        if (!u || u->edges_known != 1)
            return 0;
        for (size_t e = 0; e < u->n_edges; e++) {
            const jm_ap_taskstate_t *d = jm_ap_task_state(ap, ap->edges[u->edge0 + e], 0);
            if (!d || !d->pend_known)
                return 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const jm_ap_taskstate_t *u = jm_ap_task_state(ap, done[i], 0);
        size_t e0 = u->edge0, ne = u->n_edges;
        for (size_t e = 0; e < ne; e++) {
            jm_ap_taskstate_t *d = jm_ap_task_state(ap, ap->edges[e0 + e], 0);
            if (d->pend <= 0) /* as the statement: only while > 0 */
                continue;
            d->pend--;
            if (!d->pend_dirty) {
                d->pend_dirty = 1;
                ap->n_pend_dirty++;
            }
            if (d->pend == 0 && (d->status == 'G' || d->status == 'A'))
                ready_add_one(ap, d);
        }
    }
    return 1;
}

jm_rc_t jm_ap_edges_fetch_active(jm_apply_t *ap, jm_err_t *err)
{
    jm_pgarr_t *b = &ap->farr[1];
    jm_pgarr_reset(b);
    size_t nt = 0;
    jm_ap_taskstate_t *v = ap->task.v;
    for (size_t i = 0; i < ap->task.cap; i++)
        if (v[i].id && !v[i].edges_known && v[i].status && strchr("QIORD", v[i].status)) {
            v[i].edges_known = 2; /* asked for */
            jm_pgarr_add_int(b, v[i].id);
            nt++;
        }
    return nt ? edges_fetch(ap, b, err) : JM_OK;
}

jm_rc_t jm_ap_write_pend(jm_apply_t *ap, jm_err_t *err)
{
    if (!ap->n_pend_dirty)
        return JM_OK;
    jm_pgarr_t *a = &ap->farr[0], *b = &ap->farr[1];
    jm_pgarr_reset(a);
    jm_pgarr_reset(b);
    jm_ap_taskstate_t *v = ap->task.v;
    for (size_t i = 0; i < ap->task.cap; i++)
        if (v[i].id && v[i].pend_dirty) {
            jm_pgarr_add_int(a, v[i].id);
            jm_pgarr_add_int(b, v[i].pend);
            v[i].pend_dirty = 0;
        }
    ap->n_pend_dirty = 0;
    const char *p[2] = {jm_pgarr_finish(a), jm_pgarr_finish(b)};
    return jm_ap_exec(ap, AP_FLUSH_PENDING, 2, p, NULL, err);
}

void jm_ap_forget_rows(jm_apply_t *ap)
{
    for (size_t i = 0; i < ap->n_wfc; i++)
        ready_clear(&ap->wfc[i]);
    ap->n_wfc = 0;
    for (int k = 0; k < AP_DEFER__CNT; k++)
        defer_clear(&ap->dfr[k]);
    ap->n_newti = 0;
    ap->n_edges = 0;
    for (size_t i = 0; i < ap->n_strs; i++)
        free(ap->strs[i]);
    ap->n_strs = 0;
    ap->n_pend_dirty = 0;
    map_clear(&ap->ti);
    map_clear(&ap->task);
    ap->n_tlog = 0;
    ap->n_status_pending = 0;
}

/* An instance kept for the next transaction: known row, not finished. */
static int ti_kept(const jm_ap_tistate_t *t)
{
    return t->id && t->row && t->status && strchr("QIOR", t->status);
}

/* A task kept for the next transaction: not finished. */
static int task_kept(const jm_ap_taskstate_t *t)
{
    return t->id && t->status && strchr("GQIORA", t->status);
}

/* Rows kept for the next transaction at most (beyond: all forgotten; bounds the memory). */
#define AP_KEEP_MAX 32768

/* After the flush everything known is also stored, and this consumer stays the only writer of
 * its partitions' rows until a rebalance (the loop then calls jm_apply_rollback, as after a
 * failed COMMIT): keep the rows the next transaction's hot events are likely to need, so that
 * its prefetch reads only what it does not know.  Kept: instances in Q/I/O/R with their row,
 * and tasks not finished (G Q I O R A) with their downstream edges and pending counts.  Per-
 * transaction state (pending writes, ready sets, picks) is not kept. */
static void keep_rows(jm_apply_t *ap)
{
    jm_ap_map_t oti = ap->ti, otask = ap->task;
    int64_t *oedges = ap->edges;
    char **ostrs = ap->strs;
    size_t on_strs = ap->n_strs;
    ap->ti = (jm_ap_map_t){.elem = oti.elem};
    ap->task = (jm_ap_map_t){.elem = otask.elem};
    ap->edges = NULL;
    ap->n_edges = ap->cap_edges = 0;
    ap->strs = NULL;
    ap->n_strs = ap->cap_strs = 0;
    jm_ap_forget_rows(ap); /* the rest of the transaction's state */
    size_t nti = 0, ntask = 0;
    const jm_ap_tistate_t *tv = oti.v;
    const jm_ap_taskstate_t *kv = otask.v;
    for (size_t i = 0; i < oti.cap; i++)
        nti += ti_kept(&tv[i]);
    for (size_t i = 0; i < otask.cap; i++)
        ntask += task_kept(&kv[i]);
    /* Each new map is sized once and each old one freed as soon as it is copied: growing them
     * while both old maps were held made keep_rows the consumer's peak of memory. */
    if (nti <= AP_KEEP_MAX && ntask <= AP_KEEP_MAX) {
        map_reserve(&ap->ti, nti);
        for (size_t i = 0; i < oti.cap; i++)
            if (ti_kept(&tv[i]))
                *jm_ap_ti_state(ap, tv[i].id, 1) = (jm_ap_tistate_t){.id = tv[i].id,
                                                                     .status = tv[i].status,
                                                                     .row = 1,
                                                                     .task_id = tv[i].task_id,
                                                                     .run_id = tv[i].run_id,
                                                                     .wf = tv[i].wf,
                                                                     .attempt = tv[i].attempt};
        free(oti.v);
        oti.v = NULL;
        map_reserve(&ap->task, ntask);
        for (size_t i = 0; i < otask.cap; i++) {
            const jm_ap_taskstate_t *o = &kv[i];
            if (!task_kept(o))
                continue;
            jm_ap_taskstate_t *t = jm_ap_task_state(ap, o->id, 1);
            *t = (jm_ap_taskstate_t){.id = o->id,
                                     .status = o->status,
                                     .wf = o->wf,
                                     .tnum = o->tnum,
                                     .tmax = o->tmax,
                                     .tseq = o->tseq};
            if (o->edges_known == 1) {
                t->edges_known = 1;
                t->edge0 = ap->n_edges;
                t->n_edges = o->n_edges;
                for (size_t e = 0; e < o->n_edges; e++)
                    edge_push(ap, oedges[o->edge0 + e]);
            }
            if (o->pend_known) {
                t->pend_known = 1;
                t->pend = o->pend;
                t->array_id = o->array_id;
                t->res = str_push(ap, ostrs[o->res]); /* moved */
                ostrs[o->res] = NULL;
            }
        }
    }
    free(oti.v);
    free(otask.v);
    free(oedges);
    for (size_t i = 0; i < on_strs; i++)
        free(ostrs[i]);
    free(ostrs);
}

jm_rc_t jm_apply_flush(jm_apply_t *ap, jm_err_t *err)
{
    jm_rc_t rc = jm_ap_write_pending(ap, err);
    if (rc != JM_OK)
        goto out;
    if (ap->n_cnt) {
        jm_pgarr_t *a = &ap->farr[5], *b = &ap->farr[6], *c = &ap->farr[7];
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
        jm_pgarr_t *a = &ap->farr[5], *b = &ap->farr[6];
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
    ap->hints.n = 0;
    ap->n_cnt = 0;
    ap->n_bat = 0;
    if (rc == JM_OK)
        keep_rows(ap);
    else
        jm_ap_forget_rows(ap);
    return rc;
}

void jm_apply_rollback(jm_apply_t *ap)
{
    if (!ap)
        return;
    ap->hints.n = 0;
    ap->n_cnt = 0;
    ap->n_bat = 0;
    jm_ap_forget_rows(ap);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

jm_apply_t *jm_apply_new(jm_pg_t *pg, jm_err_t *err)
{
    jm_apply_t *ap = jm_calloc(1, sizeof(*ap));
    ap->ti.elem = sizeof(jm_ap_tistate_t);
    ap->task.elem = sizeof(jm_ap_taskstate_t);
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
    free(ap->task.v);
    free(ap->tlog);
    jm_pgcopy_free(&ap->tlog_copy);
    for (size_t i = 0; i < ap->cap_wfc && ap->wfc; i++)
        free(ap->wfc[i].ready); /* entries past n_wfc keep their (cleared) arrays */
    free(ap->wfc);
    free(ap->hints.v);
    free(ap->newti);
    free(ap->edges);
    for (size_t i = 0; i < ap->n_strs; i++)
        free(ap->strs[i]);
    free(ap->strs);
    for (int k = 0; k < AP_DEFER__CNT; k++) {
        defer_clear(&ap->dfr[k]);
        free(ap->dfr[k].v);
    }
    for (size_t i = 0; i < JM_ARRAY_LEN(ap->arr); i++)
        jm_pgarr_free(&ap->arr[i]);
    for (size_t i = 0; i < JM_ARRAY_LEN(ap->farr); i++)
        jm_pgarr_free(&ap->farr[i]);
    for (size_t i = 0; i < JM_ARRAY_LEN(ap->tiarr); i++)
        jm_pgarr_free(&ap->tiarr[i]);
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
    case JM_TR_LEGAL: return AP_ITEM_APPLIED;
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

/* Apply in memory when every legal item is a known row in the expected status (the row cannot
 * differ in the database: this transaction is its only writer).  Returns the number applied
 * (their st[] set to -1), 0 when the statement must run. */
static size_t defer(jm_apply_t *ap, jm_entity_t entity, size_t n, const int64_t *ids,
                    const char *cur, const char *to, int att, int *st)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (st[i] != AP_ITEM_APPLIED)
            continue;
        if (entity == JM_ENTITY_TI) {
            const jm_ap_tistate_t *t = jm_ap_ti_state(ap, ids[i], 0);
            if (!t || !t->row || t->status != cur[i])
                return 0;
        } else {
            const jm_ap_taskstate_t *k = jm_ap_task_state(ap, ids[i], 0);
            if (!k || k->status != cur[i])
                return 0;
        }
        m++;
    }
    if (m == 0)
        return 0;
    /* transition_log in id order, as the statement writes it */
    size_t *idx = jm_malloc(m * sizeof(*idx)), k = 0;
    for (size_t i = 0; i < n; i++)
        if (st[i] == AP_ITEM_APPLIED)
            idx[k++] = i;
    qsort_r(idx, m, sizeof(*idx), jm_cmp_idx_by_i64, (void *)ids);
    if (ap->n_tlog + m > ap->cap_tlog) {
        ap->cap_tlog = (ap->n_tlog + m) * 2;
        ap->tlog = jm_realloc(ap->tlog, ap->cap_tlog * sizeof(*ap->tlog));
    }
    for (size_t j = 0; j < m; j++) {
        size_t i = idx[j];
        char *status, *db;
        int64_t *at, wf;
        if (entity == JM_ENTITY_TI) {
            jm_ap_tistate_t *t = jm_ap_ti_state(ap, ids[i], 0);
            status = &t->status, db = &t->db_status, at = &t->status_at_ms, wf = t->wf;
            if (!*db)
                ap->n_status_pending++;
        } else {
            jm_ap_taskstate_t *t = jm_ap_task_state(ap, ids[i], 0);
            status = &t->status, db = &t->db_status, at = &t->status_at_ms, wf = t->wf;
            count_add(ap, wf, cur[i], -1);
            count_add(ap, wf, to[i], 1);
            if (att == AP_ATT_QUEUE)
                t->tnum++, t->tseq++;
            if (!*db)
                ap->task.n_pending++;
            if (strchr("GA", cur[i]) || strchr("GA", to[i]))
                ap->ga_dirty = 1;
        }
        if (!*db)
            *db = *status;
        *status = to[i];
        *at = ap->ev->ts_ms;
        jm_ap_tlog_t *l = &ap->tlog[ap->n_tlog++];
        l->entity = (char)entity;
        l->id = ids[i];
        l->wf = wf;
        l->from = cur[i];
        l->to = to[i];
        snprintf(l->evid, sizeof(l->evid), "%s", ap->evid);
        l->ts_ms = ap->ev->ts_ms;
        st[i] = -1;
        jm_log(JM_LOG_DEBUG, "fsm", "%s %" PRId64 ": %c -> %c (event %s)", jm_entity_name(entity),
               ids[i], cur[i], to[i], ap->evid);
    }
    free(idx);
    return m;
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

    if (entity == JM_ENTITY_RUN || entity == JM_ENTITY_WORKFLOW) {
        for (size_t i = 0; i < ap->n_wfc; i++)
            ready_clear(&ap->wfc[i]);
        ap->n_wfc = 0; /* the progress inputs read in this transaction may be stale */
    }
    if (entity == JM_ENTITY_TASK)
        for (size_t i = 0; i < n; i++)
            if (to[i] == 'G' || to[i] == 'A')
                jm_ap_ready_changed(ap);
    if ((att == AP_ATT_KEEP && entity == JM_ENTITY_TI) ||
        ((att == AP_ATT_KEEP || att == AP_ATT_QUEUE) && entity == JM_ENTITY_TASK))
        applied = defer(ap, entity, n, ids, cur, to, att, st);

    for (int round = 0; round < 3 && !applied; round++) {
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
        const char *p[6] = {jm_pgarr_finish(a_id),
                            jm_pgarr_finish(a_f),
                            jm_pgarr_finish(a_t),
                            ap->ts,
                            ap->evid,
                            attbuf};
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
                    jm_ap_taskstate_t *k = jm_ap_task_state(ap, ids[i], 0);
                    if (k) {
                        k->status = to[i];
                        if (att == AP_ATT_QUEUE)
                            k->tnum++, k->tseq++;
                        else if (att == AP_ATT_RESET)
                            k->tnum = 0;
                    }
                } else if (entity == JM_ENTITY_TI) {
                    jm_ap_ti_state(ap, ids[i], 1)->status = to[i];
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
    return jm_ap_transition(ap, entity, 1, &id, &from, &to, bypass, AP_ATT_KEEP, item, NULL, err);
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
    [JM_EV_WORKFLOW_PRUNE] = jm_ap_workflow_prune,
    [JM_EV_RUN_STATUS] = jm_ap_run_status,
    [JM_EV_RUN_HEARTBEAT] = jm_ap_run_heartbeat,
    [JM_EV_TI_INSTANTIATED] = jm_ap_ti_event,
    [JM_EV_TI_LAUNCHED] = jm_ap_ti_event,
    [JM_EV_TI_SUBMIT_FAILED] = jm_ap_ti_event,
    [JM_EV_TI_LAUNCH_HEARTBEAT] = jm_ap_ti_event,
    [JM_EV_TI_KILLED] = jm_ap_ti_event,
    [JM_EV_TI_TRIAGED] = jm_ap_ti_event,
    [JM_EV_TI_REPORTS] = jm_ap_ti_reports,
    [JM_EV_TI_RUNNING] = jm_ap_ti_event,
    [JM_EV_TI_HEARTBEAT] = jm_ap_ti_event,
    [JM_EV_TI_DONE] = jm_ap_ti_event,
    [JM_EV_TI_ERROR] = jm_ap_ti_event,
    [JM_EV_REAPER_OVERDUE] = jm_ap_ti_event,
    [JM_EV_REAPER_RUN_LOST] = jm_ap_reaper_run_lost,
    [JM_EV_REAPER_RUN_TIMEOUT] = jm_ap_reaper_run_timeout,
};

/* The client's events (the first section of the catalogue) except workflow.prune itself: what
 * could revive or change a workflow that is being pruned. */
static int revives(jm_event_type_t t)
{
    _Static_assert(JM_EV_WORKFLOW_PRUNE + 1 == JM_EV_RUN_STATUS, "prune ends the client events");
    return t < JM_EV_WORKFLOW_PRUNE;
}

/* A workflow being pruned (011_prune.sql) takes no client event until it is gone. */
static jm_rc_t refuse_if_pruning(jm_apply_t *ap, int *refused, jm_err_t *err)
{
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec_id(ap, AP_WF_PRUNING, ap->ev->workflow_id, &r, err);
    *refused = rc == JM_OK && PQntuples(r) > 0;
    PQclear(r);
    if (*refused)
        jm_ap_rejected(ap, "workflow %" PRId64 ": being pruned", ap->ev->workflow_id);
    return rc;
}

jm_rc_t jm_apply_event(jm_apply_t *ap, const jm_event_t *ev, int64_t offset, jm_apply_result_t *res,
                       jm_err_t *err)
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
    /* Known rows are only trusted across the hot task-instance events; any other handler may
     * change rows with statements that do not keep them. */
    int fast = ev->type == JM_EV_TI_INSTANTIATED || ev->type == JM_EV_TI_LAUNCHED ||
               ev->type == JM_EV_TI_LAUNCH_HEARTBEAT || ev->type == JM_EV_TI_RUNNING ||
               ev->type == JM_EV_TI_HEARTBEAT || ev->type == JM_EV_TI_DONE ||
               ev->type == JM_EV_TI_ERROR || ev->type == JM_EV_TI_REPORTS ||
               ev->type == JM_EV_RUN_HEARTBEAT;
    jm_rc_t rc = JM_OK;
    if (fast && ap->hints.n)
        rc = prefetch(ap, err);
    if (rc == JM_OK && !fast && (has_pending(ap) || ap->ti.n || ap->task.n))
        if ((rc = jm_ap_write_pending(ap, err)) == JM_OK)
            jm_ap_forget_rows(ap);
    int refused = 0;
    if (rc == JM_OK && revives(ev->type))
        rc = refuse_if_pruning(ap, &refused, err);
    if (rc == JM_OK && !refused)
        rc = handlers[ev->type](ap, err);
    if (rc == JM_OK && !fast && (rc = jm_ap_write_pending(ap, err)) == JM_OK)
        jm_ap_forget_rows(ap);
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
