/*
 * apply_run.c — workflow runs: run.start (incl. the resume hand-over), run.status, run.heartbeat,
 * run.stop, reaper.run_lost / run_timeout, and the completion check that follows every change.
 *
 * Hand-over on resume (decided here, see also jm_ap_run_handover):
 *   - the old alive run goes to C (cold) or H (hot); its Q/I instances → F (nothing to kill),
 *     O → K, and R → K when cold (hot leaves running instances alone);
 *   - the tasks of those F/K'd instances are reset to G at once (they belong to the new run);
 *   - on run.start with resume the old run then goes straight to T (workflow H → G → Q): the FSM
 *     is the only scheduler, so there is nothing to drain.  Every unfinished instance of earlier
 *     runs (K'd ones, and on hot resume the R ones) is adopted by the new run (run_id rewritten):
 *     a distributor only reads its own run's instances, so only the new one can kill or triage
 *     them.
 *   - a K'd instance's ti.killed later moves it K → F without touching its (already reset) task;
 *     a hot-resumed R instance that finishes still completes its task (the task stayed R).
 * Workflow statuses are derived from the run (jm_wf_status_for_run) and written as a documented
 * bypass: the run transition itself is validated.
 * Not here: what tasks are picked (sched.c) and task-instance events (apply_ti.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/apply_int.h"
#include "jobmon/log.h"

#define RUN_FIRST_HEARTBEAT_S 93 /* 30 s × 3.1, until the distributor's first run.heartbeat */

static int64_t get_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int get_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

jm_rc_t jm_ap_alive_run(jm_apply_t *ap, int64_t wf, int64_t *run_id, char *status, int *fail_fast,
                        jm_err_t *err)
{
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec_id(ap, AP_RUN_ALIVE, wf, &r, err);
    if (rc != JM_OK)
        return rc;
    *run_id = 0;
    if (PQntuples(r) > 0) {
        *run_id = get_i64(r, 0, 0);
        if (status)
            *status = PQgetvalue(r, 0, 1)[0];
        if (fail_fast)
            *fail_fast = get_bool(r, 0, 2);
    }
    PQclear(r);
    return JM_OK;
}

static jm_rc_t wf_get(jm_apply_t *ap, int64_t wf, char *status, int *bound, jm_err_t *err)
{
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec_id(ap, AP_WF_GET, wf, &r, err);
    if (rc != JM_OK)
        return rc;
    *status = 0;
    if (PQntuples(r) > 0) {
        *status = PQgetvalue(r, 0, 0)[0];
        if (bound)
            *bound = get_bool(r, 0, 2);
    }
    PQclear(r);
    return JM_OK;
}

jm_rc_t jm_ap_wf_move(jm_apply_t *ap, int64_t wf, char to, int bypass, jm_err_t *err)
{
    char cur;
    jm_rc_t rc = wf_get(ap, wf, &cur, NULL, err);
    if (rc != JM_OK || !cur || cur == to)
        return rc;
    int item;
    rc = jm_ap_transition1(ap, JM_ENTITY_WORKFLOW, wf, cur, to, bypass, &item, err);
    jm_ap_touch_wf(ap, wf);
    return rc;
}

jm_rc_t jm_ap_run_move(jm_apply_t *ap, int64_t wf, int64_t run_id, char from, char to, int bypass,
                       int *item, jm_err_t *err)
{
    int it = AP_ITEM_REJECTED;
    jm_rc_t rc = jm_ap_transition1(ap, JM_ENTITY_RUN, run_id, from, to, bypass, &it, err);
    if (item)
        *item = it;
    if (rc != JM_OK || it != AP_ITEM_APPLIED)
        return rc;
    jm_ap_touch_run(ap, run_id);
    int ws = jm_wf_status_for_run((jm_run_status_t)jm_status_from_letter(JM_ENTITY_RUN, to));
    if (ws >= 0)
        rc = jm_ap_wf_move(ap, wf, jm_status_letter(JM_ENTITY_WORKFLOW, ws), 1, err);
    return rc;
}

/* Resume (Jobmon's increase_resources): a task that failed because its last instance was killed
 * for resources (Z with no attempt left) would be killed again with the same request, so it is
 * scaled once more from that instance's memory and runtime, as if it had entered A.  Also when a
 * re-bind (`jobmon run --resume`) reset it to G and wrote the file's request back — unless that
 * request is larger: the user's raise stands, unscaled.  A task already scaled (A, or a resume
 * that never queued it) asks for more than its killed instance and is left alone.  Before the
 * reset zeroes num_attempts, which picks the step of a list of scales. */
static jm_rc_t scale_resource_killed(jm_apply_t *ap, int64_t wf, jm_err_t *err)
{
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec_id(ap, AP_WF_RESOURCE_KILLED, wf, &r, err);
    size_t n = rc == JM_OK ? (size_t)PQntuples(r) : 0;
    int64_t *ids = jm_malloc((n ? n : 1) * sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = get_i64(r, (int)i, 0);
    PQclear(r);
    if (n)
        rc = jm_ap_scale_tasks(ap, ids, n, err);
    free(ids);
    return rc;
}

/* Reset tasks in `statuses` of the workflow to G (attempts 0 when `reset_attempts`). */
static jm_rc_t reset_tasks(jm_apply_t *ap, int64_t wf, const char *statuses, int reset_attempts,
                           jm_err_t *err)
{
    char w[24];
    jm_ap_i64(w, sizeof(w), wf);
    jm_pgarr_t *a = &ap->arr[0];
    jm_pgarr_reset(a);
    for (const char *s = statuses; *s; s++)
        jm_pgarr_add_text(a, s, 1);
    const char *p[2] = {w, jm_pgarr_finish(a)};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_WF_TASKS_STATUS, 2, p, &r, err);
    if (rc != JM_OK)
        return rc;
    size_t n = (size_t)PQntuples(r);
    int64_t *ids = jm_malloc((n ? n : 1) * sizeof(*ids));
    char *from = jm_malloc(n ? n : 1), *to = jm_malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        ids[i] = get_i64(r, (int)i, 0);
        from[i] = PQgetvalue(r, (int)i, 1)[0];
        to[i] = 'G';
    }
    PQclear(r);
    if (n)
        rc = jm_ap_transition(ap, JM_ENTITY_TASK, n, ids, from, to, 1,
                              reset_attempts ? AP_ATT_RESET : AP_ATT_KEEP, NULL, NULL, err);
    free(ids);
    free(from);
    free(to);
    return rc;
}

jm_rc_t jm_ap_run_handover(jm_apply_t *ap, int64_t wf, int64_t run_id, char status, int cold,
                           int terminate, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    PGresult *r = NULL;
    char target = cold ? 'C' : 'H';
    int64_t *ids = NULL, *tids = NULL;
    char *from = NULL, *to = NULL, *tfrom = NULL, *tto = NULL;

    if (status != 'C' && status != 'H') {
        int item;
        rc = jm_ap_run_move(ap, wf, run_id, status, target, 0, &item, err);
        if (rc == JM_OK && item != AP_ITEM_APPLIED) /* e.g. I/O → C: documented bypass */
            rc = jm_ap_run_move(ap, wf, run_id, status, target, 1, &item, err);
        if (rc != JM_OK)
            goto out;
        status = target;
    }
    /* Terminate the run's instances (reference §2.1 bypass). */
    char rid[24];
    jm_ap_i64(rid, sizeof(rid), run_id);
    const char *p[2] = {rid, status == 'C' ? "{Q,I,O,R}" : "{Q,I,O}"};
    rc = jm_ap_exec(ap, AP_RUN_TIS_STATUS, 2, p, &r, err);
    if (rc != JM_OK)
        goto out;
    size_t n = (size_t)PQntuples(r), nt = 0;
    ids = jm_malloc((n ? n : 1) * sizeof(*ids));
    tids = jm_malloc((n ? n : 1) * sizeof(*tids));
    from = jm_malloc(n + 1);
    to = jm_malloc(n + 1);
    tfrom = jm_malloc(n + 1);
    tto = jm_malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        ids[i] = get_i64(r, (int)i, 0);
        from[i] = PQgetvalue(r, (int)i, 1)[0];
        to[i] = (from[i] == 'Q' || from[i] == 'I') ? 'F' : 'K';
        char ts = PQgetvalue(r, (int)i, 3)[0];
        int latest = get_i64(r, (int)i, 4) == get_i64(r, (int)i, 5);
        if (latest && (ts == 'Q' || ts == 'I' || ts == 'O' || ts == 'R')) {
            tids[nt] = get_i64(r, (int)i, 2);
            tfrom[nt] = ts;
            tto[nt] = 'G';
            nt++;
        }
    }
    PQclear(r);
    r = NULL;
    if (n) {
        rc = jm_ap_transition(ap, JM_ENTITY_TI, n, ids, from, to, 1, AP_ATT_KEEP, NULL, NULL, err);
        if (rc == JM_OK && nt)
            rc = jm_ap_transition(ap, JM_ENTITY_TASK, nt, tids, tfrom, tto, 1, AP_ATT_KEEP, NULL,
                                  NULL, err);
        if (rc != JM_OK)
            goto out;
    }
    jm_ap_touch_run(ap, run_id);
    if (terminate)
        rc = jm_ap_run_move(ap, wf, run_id, status, 'T', 0, NULL, err);
out:
    PQclear(r);
    free(ids);
    free(tids);
    free(from);
    free(to);
    free(tfrom);
    free(tto);
    return rc;
}

/* ---- completion ---------------------------------------------------------------------------- */

static jm_rc_t run_live_tis(jm_apply_t *ap, int64_t run_id, int64_t *n, jm_err_t *err)
{
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec_id(ap, AP_RUN_LIVE_TIS, run_id, &r, err);
    if (rc == JM_OK)
        *n = get_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

typedef struct {
    int64_t total, active, done, fatal;
    int64_t limit;   /* workflow max_concurrently_running */
    int arrays_bind; /* some array limit is below it */
    int64_t run_id;  /* the alive run, 0 if none */
    char run_status;
    int fail_fast;
    int64_t batches;      /* last batch number handed out (stored or pending) */
    int64_t by_status[9]; /* wf_counts_read only: stored counts in the order of count_letters */
} counts_t;

static jm_rc_t wf_counts_read(jm_apply_t *ap, int64_t wf, counts_t *c, jm_err_t *err);

static void count_status(counts_t *c, char s, int64_t n)
{
    c->total += n;
    if (s == 'Q' || s == 'I' || s == 'O' || s == 'R')
        c->active += n;
    else if (s == 'D')
        c->done += n;
    else if (s == 'F')
        c->fatal += n;
}

static const char count_letters[] = "GQIORDEAF";

/* The stored inputs (AP_WF_COUNTS) are read once per transaction (jm_ap_wfc); the pending count
 * deltas and batch numbers are added on each call. */
static jm_rc_t wf_counts(jm_apply_t *ap, int64_t wf, counts_t *c, jm_err_t *err)
{
    jm_ap_wfc_t *k = jm_ap_wfc(ap, wf, 0);
    if (!k) {
        counts_t base;
        jm_rc_t rc = wf_counts_read(ap, wf, &base, err);
        if (rc != JM_OK)
            return rc;
        k = jm_ap_wfc(ap, wf, 1);
        memcpy(k->counts, base.by_status, sizeof(k->counts));
        k->limit = base.limit;
        k->arrays_bind = base.arrays_bind;
        k->run_id = base.run_id;
        k->run_status = base.run_status;
        k->fail_fast = base.fail_fast;
        k->batches = base.batches;
    }
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < 9; i++)
        count_status(c, count_letters[i], k->counts[i]);
    c->limit = k->limit;
    c->arrays_bind = k->arrays_bind;
    c->run_id = k->run_id;
    c->run_status = k->run_status;
    c->fail_fast = k->fail_fast;
    c->batches = k->batches;
    for (size_t i = 0; i < ap->n_cnt; i++)
        if (ap->cnt[i].wf == wf)
            count_status(c, ap->cnt[i].status, ap->cnt[i].delta);
    int64_t b = jm_ap_batches_pending(ap, wf);
    if (b > c->batches)
        c->batches = b;
    return JM_OK;
}

static jm_rc_t wf_counts_read(jm_apply_t *ap, int64_t wf, counts_t *c, jm_err_t *err)
{
    PGresult *r = NULL;
    memset(c, 0, sizeof(*c));
    jm_rc_t rc = jm_ap_exec_id(ap, AP_WF_COUNTS, wf, &r, err);
    if (rc != JM_OK)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        c->limit = get_i64(r, i, 2);
        c->arrays_bind = get_bool(r, i, 3);
        c->run_id = get_i64(r, i, 4);
        c->run_status = c->run_id ? PQgetvalue(r, i, 5)[0] : 0;
        c->fail_fast = get_bool(r, i, 6);
        c->batches = get_i64(r, i, 7);
        if (PQgetisnull(r, i, 0))
            continue;
        const char *l = strchr(count_letters, PQgetvalue(r, i, 0)[0]);
        if (l)
            c->by_status[l - count_letters] += get_i64(r, i, 1);
    }
    PQclear(r);
    return JM_OK;
}

jm_rc_t jm_ap_progress(jm_apply_t *ap, int64_t wf, jm_err_t *err)
{
    counts_t c;
    jm_rc_t rc = wf_counts(ap, wf, &c, err);
    if (rc != JM_OK || c.run_id == 0)
        return rc;
    int64_t run_id = c.run_id;
    char st = c.run_status;
    int ff = c.fail_fast;
    if (st == 'C' || st == 'H') {
        int64_t live = 0;
        rc = run_live_tis(ap, run_id, &live, err);
        if (rc == JM_OK && live == 0)
            rc = jm_ap_run_move(ap, wf, run_id, st, 'T', 0, NULL, err);
        return rc;
    }
    if (st != 'B' && st != 'I' && st != 'O' && st != 'R')
        return JM_OK;
    if (st == 'R' && c.total > 0 && c.done == c.total)
        return jm_ap_run_move(ap, wf, run_id, 'R', 'D', 0, NULL, err);
    if (st == 'R' && ff && c.fatal > 0)
        return jm_ap_run_move(ap, wf, run_id, 'R', 'E', 0, NULL, err);
    size_t queued = 0;
    int64_t cap = jm_sched_capacity(c.limit, c.active);
    jm_ap_wfc_t *k = jm_ap_wfc(ap, wf, 0);
    /* nothing to pick when the tracked ready set is known to be empty */
    if (cap > 0 && !(k && k->no_ready && k->exhausted && k->n_ready == 0 && !c.arrays_bind)) {
        if ((rc = jm_sched_workflow(ap, wf, run_id, cap, c.arrays_bind, c.batches, &queued, err)) !=
            JM_OK)
            return rc;
    }
    if (st == 'R' && queued == 0 && c.active == 0 && c.fatal > 0) {
        PGresult *r = NULL;
        if ((rc = jm_ap_exec_id(ap, AP_WF_SCHEDULABLE, wf, &r, err)) != JM_OK)
            return rc;
        int ready = get_bool(r, 0, 0);
        PQclear(r);
        if (!ready) /* nothing can progress and some task is F */
            rc = jm_ap_run_move(ap, wf, run_id, 'R', 'E', 0, NULL, err);
    }
    return rc;
}

/* ---- handlers ------------------------------------------------------------------------------ */

/* A new run became the alive one: the unfinished instances of earlier (dead) runs are settled.
 * Those still driving their task (hot resume: R) and K ones are adopted by the new run, whose
 * distributor is the only one left to triage or kill them; stale Q/I → F (nothing to kill),
 * stale O/R/T/X → K and adopted (documented bypass, as in the resume termination). */
static jm_rc_t sweep_old_tis(jm_apply_t *ap, int64_t wf, int64_t run_id, jm_err_t *err)
{
    char w[24], rid[24];
    jm_ap_i64(w, sizeof(w), wf);
    jm_ap_i64(rid, sizeof(rid), run_id);
    const char *p[2] = {w, rid};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_WF_OLD_TIS, 2, p, &r, err);
    if (rc != JM_OK)
        return rc;
    size_t n = (size_t)PQntuples(r), m = 0, na = 0;
    int64_t *ids = jm_malloc((n + 1) * sizeof(*ids));
    char *from = jm_malloc(n + 1), *to = jm_malloc(n + 1);
    jm_pgarr_t *a = &ap->arr[1];
    jm_pgarr_reset(a);
    for (size_t i = 0; i < n; i++) {
        int64_t id = get_i64(r, (int)i, 0);
        char st = PQgetvalue(r, (int)i, 1)[0];
        int driving = get_bool(r, (int)i, 2);
        if (!driving && st != 'K') {
            ids[m] = id;
            from[m] = st;
            to[m++] = (st == 'Q' || st == 'I') ? 'F' : 'K';
        }
        if (driving || (st != 'Q' && st != 'I')) {
            jm_pgarr_add_int(a, id);
            na++;
        }
    }
    PQclear(r);
    if (na) {
        const char *q[2] = {jm_pgarr_finish(a), rid};
        rc = jm_ap_exec(ap, AP_TI_ADOPT, 2, q, NULL, err);
    }
    if (rc == JM_OK && m)
        rc = jm_ap_transition(ap, JM_ENTITY_TI, m, ids, from, to, 1, AP_ATT_KEEP, NULL, NULL, err);
    free(ids);
    free(from);
    free(to);
    return rc;
}

jm_rc_t jm_ap_run_start(jm_apply_t *ap, jm_err_t *err)
{
    const json_t *p = ap->ev->payload;
    int64_t wf = ap->ev->workflow_id, run_id = jm_ev_int(p, "run_id");
    const char *mode = jm_ev_str(p, "resume");
    int resume = mode && strcmp(mode, "none") != 0, cold = mode && strcmp(mode, "cold") == 0;
    char wst;
    int bound = 0;
    jm_rc_t rc = wf_get(ap, wf, &wst, &bound, err);
    if (rc != JM_OK)
        return rc;
    if (!wst) {
        jm_ap_rejected(ap, "workflow %" PRId64 ": unknown", wf);
        return JM_OK;
    }
    if (!bound) {
        jm_ap_rejected(ap, "workflow %" PRId64 ": binding not complete", wf);
        return JM_OK;
    }
    if (wst == 'D') {
        jm_ap_rejected(ap, "workflow %" PRId64 ": already done", wf);
        return JM_OK;
    }
    int64_t alive;
    char ast = 0;
    if ((rc = jm_ap_alive_run(ap, wf, &alive, &ast, NULL, err)) != JM_OK)
        return rc;
    if (alive == run_id) {
        jm_ap_ignored(ap, "workflow_run %" PRId64 ": already started", run_id);
        return JM_OK;
    }
    if (alive && !resume) {
        jm_ap_rejected(ap, "workflow %" PRId64 ": run %" PRId64 " is alive", wf, alive);
        return JM_OK;
    }
    if (alive && (rc = jm_ap_run_handover(ap, wf, alive, ast, cold, 1, err)) != JM_OK)
        return rc;
    if (resume) /* §3.10: every task not D (and not R on hot) → G with attempts 0 */
        if ((rc = scale_resource_killed(ap, wf, err)) != JM_OK ||
            (rc = reset_tasks(ap, wf, cold ? "GQIORAEF" : "GQIOAEF", 1, err)) != JM_OK)
            return rc;
    if ((rc = wf_get(ap, wf, &wst, NULL, err)) != JM_OK)
        return rc;
    if (wst != 'G' && (rc = jm_ap_wf_move(ap, wf, 'G', 1, err)) != JM_OK)
        return rc;

    char rid[24], w[24], ff[8], tmo[16], hb[16];
    jm_ap_i64(rid, sizeof(rid), run_id);
    jm_ap_i64(w, sizeof(w), wf);
    snprintf(ff, sizeof(ff), "%s", jm_ev_bool(p, "fail_fast") ? "true" : "false");
    snprintf(tmo, sizeof(tmo), "%" PRId64, jm_ev_int(p, "timeout_s"));
    snprintf(hb, sizeof(hb), "%d", RUN_FIRST_HEARTBEAT_S);
    const char *q[11] = {rid,
                         w,
                         jm_ev_str(p, "cluster"),
                         jm_ev_str(p, "user"),
                         jm_ev_str(p, "host"),
                         ff,
                         tmo,
                         mode ? mode : "none",
                         ap->ts,
                         ap->evid,
                         hb};
    PGresult *r = NULL;
    if ((rc = jm_ap_exec(ap, AP_RUN_INS, 11, q, &r, err)) != JM_OK)
        return rc;
    int created = PQntuples(r) > 0;
    PQclear(r);
    if (!created) {
        jm_ap_rejected(ap, "workflow_run %" PRId64 ": already exists", run_id);
        return JM_OK;
    }
    jm_ap_applied(ap);
    jm_ap_touch_run(ap, run_id);
    jm_ap_touch_wf(ap, wf);
    if ((rc = sweep_old_tis(ap, wf, run_id, err)) != JM_OK)
        return rc;
    if ((rc = jm_ap_wf_move(ap, wf, 'Q', 1, err)) != JM_OK)
        return rc;
    return jm_ap_progress(ap, wf, err);
}

typedef struct {
    int found;
    int64_t wf;
    char status;
    int fail_fast, lapsed, timed_out;
    char mode[8];
} run_row_t;

static jm_rc_t run_get(jm_apply_t *ap, int64_t run_id, run_row_t *rr, jm_err_t *err)
{
    char rid[24];
    jm_ap_i64(rid, sizeof(rid), run_id);
    const char *p[2] = {rid, ap->ts};
    PGresult *r = NULL;
    memset(rr, 0, sizeof(*rr));
    jm_rc_t rc = jm_ap_exec(ap, AP_RUN_GET, 2, p, &r, err);
    if (rc != JM_OK)
        return rc;
    if (PQntuples(r) > 0) {
        rr->found = 1;
        rr->wf = get_i64(r, 0, 0);
        rr->status = PQgetvalue(r, 0, 1)[0];
        rr->fail_fast = get_bool(r, 0, 2);
        snprintf(rr->mode, sizeof(rr->mode), "%s", PQgetvalue(r, 0, 3));
        rr->lapsed = get_bool(r, 0, 4);
        rr->timed_out = get_bool(r, 0, 5);
    }
    PQclear(r);
    if (rr->found && rr->wf != ap->ev->workflow_id)
        rr->found = 0;
    return JM_OK;
}

/* The run named by the event: run_get(), and an unknown run is recorded as rejected (the caller
 * returns when rr->found is 0). */
static jm_rc_t event_run(jm_apply_t *ap, int64_t run_id, run_row_t *rr, jm_err_t *err)
{
    jm_rc_t rc = run_get(ap, run_id, rr, err);
    if (rc == JM_OK && !rr->found)
        jm_ap_rejected(ap, "workflow_run %" PRId64 ": unknown", run_id);
    return rc;
}

static int run_alive(char s)
{
    return s && strchr("LBIORCH", s) != NULL;
}

jm_rc_t jm_ap_run_status(jm_apply_t *ap, jm_err_t *err)
{
    int64_t run_id = jm_ev_int(ap->ev->payload, "run_id");
    char to = jm_ev_str(ap->ev->payload, "status")[0];
    run_row_t rr;
    jm_rc_t rc = event_run(ap, run_id, &rr, err);
    if (rc != JM_OK || !rr.found)
        return rc;
    int item;
    rc = jm_ap_run_move(ap, rr.wf, run_id, rr.status, to, 0, &item, err);
    if (rc == JM_OK && item == AP_ITEM_APPLIED && to == 'R')
        rc = jm_ap_progress(ap, rr.wf, err);
    return rc;
}

jm_rc_t jm_ap_run_heartbeat(jm_apply_t *ap, jm_err_t *err)
{
    int64_t run_id = jm_ev_int(ap->ev->payload, "run_id");
    char rid[24], secs[24];
    jm_ap_i64(rid, sizeof(rid), run_id);
    jm_ap_i64(secs, sizeof(secs), jm_ev_int(ap->ev->payload, "next_report_s"));
    const char *p[3] = {rid, ap->ts, secs};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_RUN_HEARTBEAT, 3, p, &r, err);
    if (rc != JM_OK)
        return rc;
    if (PQntuples(r) > 0)
        jm_ap_applied(ap);
    else
        jm_ap_ignored(ap, "workflow_run %" PRId64 ": not alive or draining", run_id);
    PQclear(r);
    return JM_OK;
}

jm_rc_t jm_ap_run_stop(jm_apply_t *ap, jm_err_t *err)
{
    int64_t run_id = jm_ev_int(ap->ev->payload, "run_id");
    run_row_t rr;
    jm_rc_t rc = event_run(ap, run_id, &rr, err);
    if (rc != JM_OK || !rr.found)
        return rc;
    return jm_ap_run_move(ap, rr.wf, run_id, rr.status, 'S', 0, NULL, err);
}

jm_rc_t jm_ap_reaper_run_lost(jm_apply_t *ap, jm_err_t *err)
{
    int64_t run_id = jm_ev_int(ap->ev->payload, "run_id");
    run_row_t rr;
    jm_rc_t rc = event_run(ap, run_id, &rr, err);
    if (rc != JM_OK || !rr.found)
        return rc;
    if (!run_alive(rr.status) || !rr.lapsed) {
        jm_ap_ignored(ap, "workflow_run %" PRId64 ": %c, heartbeat %s", run_id, rr.status,
                      rr.lapsed ? "lapsed" : "not lapsed");
        return JM_OK;
    }
    switch (rr.status) {
    case 'L': return jm_ap_run_move(ap, rr.wf, run_id, 'L', 'A', 0, NULL, err);
    case 'C':
    case 'H': return jm_ap_run_handover(ap, rr.wf, run_id, rr.status, rr.status == 'C', 1, err);
    default: /* R, and runs stuck in B/I/O are reaped too */
        return jm_ap_run_move(ap, rr.wf, run_id, rr.status, 'E', rr.status != 'R', NULL, err);
    }
}

jm_rc_t jm_ap_reaper_run_timeout(jm_apply_t *ap, jm_err_t *err)
{
    int64_t run_id = jm_ev_int(ap->ev->payload, "run_id");
    run_row_t rr;
    jm_rc_t rc = event_run(ap, run_id, &rr, err);
    if (rc != JM_OK || !rr.found)
        return rc;
    if (!strchr("BIOR", rr.status) || !rr.timed_out) {
        jm_ap_ignored(ap, "workflow_run %" PRId64 ": %c, not timed out", run_id, rr.status);
        return JM_OK;
    }
    return jm_ap_run_move(ap, rr.wf, run_id, rr.status, 'E', rr.status != 'R', NULL, err);
}
