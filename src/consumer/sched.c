/*
 * sched.c — the scheduler that moved from Jobmon's client into the FSM: queue the ready tasks of
 * a workflow (G or A with no pending upstream) for its alive run, up to the workflow limit minus
 * its active (Q I O R) tasks and each array's limit minus that array's active tasks (0 pauses).
 * Resource retries (A) go first, then ascending task id: deterministic.  Each queued task goes
 * G/A → Q with num_attempts + 1 and gets a new task instance in Q, id jm_hash_ti_id(task,
 * ti_seq), grouped into batches of equal (array, resources) of at most 500 with 0-based steps by
 * task id; the batch numbers continue after the caller's `batches` (the stored value or the
 * transaction's pending one), and the new highest is noted for the flush (jm_apply_flush).
 * Three statements per call whatever the number of tasks: pick (with the batch layout),
 * the task transitions, the instance inserts; none when the caller found no capacity.  The pick
 * is bounded by the capacity (an index scan of at most 2 × cap rows) unless an array limit below
 * the workflow's can bind, which needs the per-array active counts (full pick).
 * It does not decide when to run (callers: jm_ap_progress) nor read any clock.
 */
#include <stdlib.h>
#include <string.h>

#include "consumer/apply_int.h"
#include "jobmon/hash.h"

int64_t jm_sched_capacity(int64_t limit, int64_t active)
{
    return limit > active ? limit - active : 0;
}

jm_rc_t jm_sched_workflow(jm_apply_t *ap, int64_t wf, int64_t run_id, int64_t cap, int arrays_bind,
                          int64_t batches, size_t *queued, jm_err_t *err)
{
    char w[24], rid[24], c[24], bt[24];
    jm_ap_i64(w, sizeof(w), wf);
    jm_ap_i64(rid, sizeof(rid), run_id);
    jm_ap_i64(c, sizeof(c), cap);
    jm_ap_i64(bt, sizeof(bt), batches);
    const char *p[3] = {w, c, bt};
    int64_t max_batch = 0;
    PGresult *r = NULL;
    jm_rc_t rc;
    int64_t *tids = NULL, *ok_ids = NULL;
    int *attempts = NULL;
    char *from = NULL, *to = NULL;
    int *item = NULL;
    if (queued)
        *queued = 0;
    if (cap <= 0)
        return JM_OK;
    if ((rc = jm_ap_exec(ap, arrays_bind ? AP_SCHED_PICK : AP_SCHED_PICK_FAST, 3, p, &r, err)) !=
        JM_OK)
        return rc;
    size_t n = (size_t)PQntuples(r);
    ap->last_pick = n;
    if (n == 0)
        goto out;
    tids = jm_malloc(n * sizeof(*tids));
    from = jm_malloc(n);
    to = jm_malloc(n);
    item = jm_malloc(n * sizeof(*item));
    for (size_t i = 0; i < n; i++) {
        tids[i] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        from[i] = PQgetvalue(r, (int)i, 1)[0];
        to[i] = 'Q';
        /* known from here on: the transition and later events of this transaction stay in
         * memory (apply_int.h) */
        jm_ap_taskstate_t *k = jm_ap_task_state(ap, tids[i], 1);
        if (!k->status) {
            k->status = from[i];
            k->tseq = atoi(PQgetvalue(r, (int)i, 2)) - 1;
            k->tnum = atoi(PQgetvalue(r, (int)i, 5));
            k->tmax = atoi(PQgetvalue(r, (int)i, 6));
            k->wf = wf;
        }
    }
    rc = jm_ap_transition(ap, JM_ENTITY_TASK, n, tids, from, to, 0, AP_ATT_QUEUE, item, NULL, err);
    if (rc != JM_OK)
        goto out;
    jm_pgarr_t *a_ti = &ap->arr[0], *a_task = &ap->arr[1], *a_att = &ap->arr[2], *a_b = &ap->arr[3],
               *a_s = &ap->arr[4];
    jm_pgarr_reset(a_ti);
    jm_pgarr_reset(a_task);
    jm_pgarr_reset(a_att);
    jm_pgarr_reset(a_b);
    jm_pgarr_reset(a_s);
    size_t m = 0;
    attempts = jm_malloc(n * sizeof(*attempts));
    ok_ids = jm_malloc(n * sizeof(*ok_ids));
    for (size_t i = 0; i < n; i++) {
        int attempt = attempts[i] = atoi(PQgetvalue(r, (int)i, 2));
        ok_ids[i] = jm_hash_ti_id(tids[i], attempt);
        if (item[i] != AP_ITEM_APPLIED)
            continue;
        jm_pgarr_add_int(a_ti, ok_ids[i]);
        jm_pgarr_add_int(a_task, tids[i]);
        jm_pgarr_add_int(a_att, attempt);
        int64_t bn = strtoll(PQgetvalue(r, (int)i, 3), NULL, 10);
        if (bn > max_batch)
            max_batch = bn;
        jm_pgarr_add_int(a_b, bn);
        jm_pgarr_add_int(a_s, strtoll(PQgetvalue(r, (int)i, 4), NULL, 10));
        m++;
    }
    PQclear(r);
    r = NULL;
    if (m == 0)
        goto out;
    const char *q[8] = {jm_pgarr_finish(a_ti),
                        jm_pgarr_finish(a_task),
                        jm_pgarr_finish(a_att),
                        jm_pgarr_finish(a_b),
                        jm_pgarr_finish(a_s),
                        w,
                        rid,
                        ap->ts};
    if ((rc = jm_ap_exec(ap, AP_SCHED_INSERT, 8, q, &r, err)) != JM_OK)
        goto out;
    /* the new instances' transition_log rows (in id order), and they are known rows now */
    for (int k = 0; k < PQntuples(r); k++) {
        int64_t id = strtoll(PQgetvalue(r, k, 0), NULL, 10);
        jm_ap_tlog_push(ap, JM_ENTITY_TI, id, wf, 0, 'Q');
        for (size_t i = 0; i < n; i++)
            if (item[i] == AP_ITEM_APPLIED && ok_ids[i] == id) {
                jm_ap_tistate_t *t = jm_ap_ti_state(ap, id, 1);
                t->status = 'Q';
                t->row = 1;
                t->task_id = tids[i];
                t->run_id = run_id;
                t->attempt = attempts[i];
                t->wf = wf;
            }
    }
    PQclear(r);
    r = NULL;
    jm_ap_batches_note(ap, wf, max_batch); /* workflow.batches, written at the flush */
    jm_ap_touch_run(ap, run_id);
    jm_ap_touch_wf(ap, wf);
    if (queued)
        *queued = m;
out:
    PQclear(r);
    free(tids);
    free(ok_ids);
    free(attempts);
    free(from);
    free(to);
    free(item);
    return rc;
}
