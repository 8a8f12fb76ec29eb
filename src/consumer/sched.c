/*
 * sched.c — the scheduler that moved from Jobmon's client into the FSM: queue the ready tasks of
 * a workflow (G or A with no pending upstream) for its alive run, up to the workflow limit minus
 * its active (Q I O R) tasks and each array's limit minus that array's active tasks (0 pauses).
 * Resource retries (A) go first, then ascending task id: deterministic.  Each queued task goes
 * G/A → Q with num_attempts + 1 and gets a new task instance in Q, id jm_hash_ti_id(task,
 * ti_seq), grouped into batches of equal (array, resources) of at most 500 with 0-based steps by
 * task id; the batch numbers continue after the caller's `batches` (the stored value or the
 * transaction's pending one), and the new highest is noted for the flush (jm_apply_flush).
 * When no array limit below the workflow's can bind, the ready set is tracked in memory per
 * transaction (jm_ap_wfc_t): read once by AP_SCHED_READY (the first cap + 256 ready tasks, an
 * index scan), then kept (picks remove, AP_DOWNSTREAM_DONE adds the tasks it releases) and read
 * again only when the tracked part runs short; the pick and its batch layout are computed here,
 * exactly as AP_SCHED_PICK_FAST would.  Otherwise the full pick statement (per-array active
 * counts) runs.  The task transitions G/A → Q and the new instances (inserted by
 * AP_FLUSH_TI_INSERT) are pending writes of the transaction (apply_int.h): usually no
 * statement at all per call.
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

typedef struct {
    int64_t id, array_id;
    char status;
    int attempt, tnum, tmax;
    int64_t batch, step;
    const char *resources;
} pick_t;

static int cmp_pick_order(const void *a, const void *b)
{
    const jm_ap_ready_t *x = a, *y = b;
    if ((x->status == 'A') != (y->status == 'A'))
        return x->status == 'A' ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Sort the tracked ready set.  c->ready stays NULL while nothing was ever tracked, and qsort's
 * base must not be NULL even for 0 elements (UBSan aborts on it). */
static void sort_ready(jm_ap_wfc_t *c)
{
    if (c->n_ready > 1)
        qsort(c->ready, c->n_ready, sizeof(*c->ready), cmp_pick_order);
}

static int cmp_pick_id(const void *a, const void *b)
{
    const pick_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* AP_SCHED_PICK_FAST in memory, over the tracked ready set (jm_ap_wfc_t.ready): the first `cap`
 * (A first, then by id), grouped by (array, resources) in id order into batches of at most
 * JM_SCHED_BATCH_MAX numbered after `batches` by their first id, step = rank in the batch. */
#define READY_LOOKAHEAD 256

/* Entries of the (sorted) tracked set that may be picked: all when exhausted, else those up to
 * the bound (beyond it the database may hold ready tasks not read yet). */
static size_t tracked_valid(const jm_ap_wfc_t *c)
{
    size_t v = 0;
    if (c->exhausted)
        return c->n_ready;
    while (v < c->n_ready) {
        const jm_ap_ready_t *e = &c->ready[v];
        int a = e->status == 'A';
        if (a != c->bound_a ? a < c->bound_a : e->id > c->bound_id)
            break;
        v++;
    }
    return v;
}

/* (Re)read the tracked ready set: the first cap + READY_LOOKAHEAD ready tasks. */
static jm_rc_t ready_refill(jm_apply_t *ap, jm_ap_wfc_t *c, int64_t wf, int64_t cap, jm_err_t *err)
{
    char w[24], lim[24];
    jm_ap_i64(w, sizeof(w), wf);
    jm_ap_i64(lim, sizeof(lim), cap + READY_LOOKAHEAD);
    const char *p[2] = {w, lim};
    PGresult *r = NULL;
    jm_rc_t rc = jm_ap_exec(ap, AP_SCHED_READY, 2, p, &r, err);
    if (rc != JM_OK)
        return rc;
    for (size_t i = 0; i < c->n_ready; i++)
        free(c->ready[i].resources);
    size_t n = (size_t)PQntuples(r);
    if (n > c->cap_ready) {
        c->cap_ready = n;
        c->ready = jm_realloc(c->ready, n * sizeof(*c->ready));
    }
    for (size_t i = 0; i < n; i++) {
        jm_ap_ready_t *e = &c->ready[i];
        e->id = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        e->status = PQgetvalue(r, (int)i, 1)[0];
        e->tseq = atoi(PQgetvalue(r, (int)i, 2));
        e->tnum = atoi(PQgetvalue(r, (int)i, 3));
        e->tmax = atoi(PQgetvalue(r, (int)i, 4));
        e->array_id = PQgetisnull(r, (int)i, 5) ? 0 : strtoll(PQgetvalue(r, (int)i, 5), NULL, 10);
        e->resources = jm_strdup(PQgetvalue(r, (int)i, 6));
    }
    c->n_ready = n;
    c->no_ready = 1;
    c->exhausted = n < (size_t)(cap + READY_LOOKAHEAD);
    c->bound_a = n ? c->ready[n - 1].status == 'A' : 0;
    c->bound_id = n ? c->ready[n - 1].id : 0;
    PQclear(r);
    return JM_OK;
}

/* Order of pick indexes by (array, resources, id): the members of each group in id order. */
static int cmp_group(const void *a, const void *b, void *base)
{
    const pick_t *x = (const pick_t *)base + *(const size_t *)a;
    const pick_t *y = (const pick_t *)base + *(const size_t *)b;
    if (x->array_id != y->array_id)
        return x->array_id < y->array_id ? -1 : 1;
    int c = strcmp(x->resources, y->resources);
    if (c)
        return c;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Batch layout of picks sorted by id: step = rank in its (array, resources) group, cut into
 * chunks of JM_SCHED_BATCH_MAX; the chunks are numbered after `batches` in the order of their
 * first (smallest) id.  O(n log n): a wide fan-out releases 10k tasks in one transaction. */
static void number_batches(pick_t *out, size_t n, int64_t batches)
{
    size_t *ord = jm_malloc((n ? n : 1) * sizeof(*ord));
    int64_t *first = jm_malloc((n ? n : 1) * sizeof(*first));
    int64_t *firsts = jm_malloc((n ? n : 1) * sizeof(*firsts));
    size_t nf = 0;
    for (size_t i = 0; i < n; i++)
        ord[i] = i;
    if (n > 1)
        qsort_r(ord, n, sizeof(*ord), cmp_group, out);
    for (size_t g = 0; g < n;) { /* one group: ord[g .. e) */
        size_t e = g + 1;
        while (e < n && out[ord[e]].array_id == out[ord[g]].array_id &&
               strcmp(out[ord[e]].resources, out[ord[g]].resources) == 0)
            e++;
        for (size_t k = g; k < e; k++) {
            size_t rn = k - g, chunk0 = g + rn / JM_SCHED_BATCH_MAX * JM_SCHED_BATCH_MAX;
            out[ord[k]].step = (int64_t)rn;
            first[ord[k]] = out[ord[chunk0]].id;
            if (k == chunk0)
                firsts[nf++] = out[ord[k]].id;
        }
        g = e;
    }
    if (nf > 1)
        qsort(firsts, nf, sizeof(*firsts), jm_cmp_i64);
    for (size_t i = 0; i < n; i++) {
        const int64_t *f = bsearch(&first[i], firsts, nf, sizeof(*firsts), jm_cmp_i64);
        out[i].batch = batches + (f - firsts) + 1;
        out[i].step %= JM_SCHED_BATCH_MAX;
    }
    free(ord);
    free(first);
    free(firsts);
}

static size_t pick_tracked(jm_ap_wfc_t *c, int64_t cap, int64_t batches, pick_t *out)
{
    sort_ready(c);
    size_t valid = tracked_valid(c);
    size_t n = valid < (size_t)cap ? valid : (size_t)cap;
    for (size_t i = 0; i < n; i++) {
        const jm_ap_ready_t *e = &c->ready[i];
        out[i] = (pick_t){.id = e->id,
                          .array_id = e->array_id,
                          .status = e->status,
                          .attempt = e->tseq + 1,
                          .tnum = e->tnum,
                          .tmax = e->tmax,
                          .resources = e->resources};
    }
    qsort(out, n, sizeof(*out), cmp_pick_id);
    number_batches(out, n, batches);
    return n;
}

jm_rc_t jm_sched_workflow(jm_apply_t *ap, int64_t wf, int64_t run_id, int64_t cap, int arrays_bind,
                          int64_t batches, size_t *queued, jm_err_t *err)
{
    char w[24], c[24], bt[24];
    jm_ap_i64(w, sizeof(w), wf);
    jm_ap_i64(c, sizeof(c), cap);
    jm_ap_i64(bt, sizeof(bt), batches);
    const char *p[3] = {w, c, bt};
    int64_t max_batch = 0;
    PGresult *r = NULL;
    jm_rc_t rc = JM_OK;
    int64_t *tids = NULL, *ok_ids = NULL;
    char *from = NULL, *to = NULL;
    int *item = NULL;
    pick_t *pk = NULL;
    size_t n = 0;
    jm_ap_wfc_t *wc = jm_ap_wfc(ap, wf, 0);
    if (queued)
        *queued = 0;
    if (cap <= 0)
        return JM_OK;
    if (!arrays_bind && wc) {
        /* the ready set is tracked in memory: a statement only to (re)fill it */
        if (wc->no_ready)
            sort_ready(wc);
        if ((!wc->no_ready || (!wc->exhausted && tracked_valid(wc) < (size_t)cap)) &&
            (rc = ready_refill(ap, wc, wf, cap, err)) != JM_OK)
            return rc;
        pk = jm_malloc((wc->n_ready ? wc->n_ready : 1) * sizeof(*pk));
        n = pick_tracked(wc, cap, batches, pk);
    } else {
        if ((rc = jm_ap_exec(ap, arrays_bind ? AP_SCHED_PICK : AP_SCHED_PICK_FAST, 3, p, &r,
                             err)) != JM_OK)
            return rc;
        n = (size_t)PQntuples(r);
        pk = jm_malloc((n ? n : 1) * sizeof(*pk));
        for (size_t i = 0; i < n; i++)
            pk[i] = (pick_t){.id = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10),
                             .status = PQgetvalue(r, (int)i, 1)[0],
                             .attempt = atoi(PQgetvalue(r, (int)i, 2)),
                             .batch = strtoll(PQgetvalue(r, (int)i, 3), NULL, 10),
                             .step = strtoll(PQgetvalue(r, (int)i, 4), NULL, 10),
                             .tnum = atoi(PQgetvalue(r, (int)i, 5)),
                             .tmax = atoi(PQgetvalue(r, (int)i, 6))};
    }
    ap->last_pick = n;
    if (n == 0)
        goto out;
    tids = jm_malloc(n * sizeof(*tids));
    from = jm_malloc(n);
    to = jm_malloc(n);
    item = jm_malloc(n * sizeof(*item));
    for (size_t i = 0; i < n; i++) {
        tids[i] = pk[i].id;
        from[i] = pk[i].status;
        to[i] = 'Q';
        /* known from here on: the transition and later events of this transaction stay in
         * memory (apply_int.h) */
        jm_ap_taskstate_t *k = jm_ap_task_state(ap, tids[i], 1);
        if (!k->status) {
            k->status = from[i];
            k->tseq = pk[i].attempt - 1;
            k->tnum = pk[i].tnum;
            k->tmax = pk[i].tmax;
            k->wf = wf;
        }
    }
    if (wc && wc->no_ready && !arrays_bind) { /* the picked ones leave the tracked set */
        size_t k = 0;
        int64_t *pids = jm_malloc(n * sizeof(*pids));
        for (size_t j = 0; j < n; j++)
            pids[j] = pk[j].id;
        qsort(pids, n, sizeof(*pids), jm_cmp_i64);
        for (size_t i = 0; i < wc->n_ready; i++) {
            int picked = bsearch(&wc->ready[i].id, pids, n, sizeof(*pids), jm_cmp_i64) != NULL;
            if (picked)
                free(wc->ready[i].resources);
            else
                wc->ready[k++] = wc->ready[i];
        }
        wc->n_ready = k;
        free(pids);
        for (size_t j = 0; j < n; j++)
            pk[j].resources = NULL; /* freed above */
    }
    rc = jm_ap_transition(ap, JM_ENTITY_TASK, n, tids, from, to, 0, AP_ATT_QUEUE, item, NULL, err);
    if (rc != JM_OK)
        goto out;
    size_t m = 0;
    ok_ids = jm_malloc(n * sizeof(*ok_ids));
    for (size_t i = 0; i < n; i++) {
        ok_ids[i] = jm_hash_ti_id(tids[i], pk[i].attempt);
        if (item[i] != AP_ITEM_APPLIED)
            continue;
        if (pk[i].batch > max_batch)
            max_batch = pk[i].batch;
        m++;
    }
    if (m == 0)
        goto out;
    /* the new instances (in id order, as AP_SCHED_INSERT wrote them and their log rows):
     * inserted at the flush or before any statement that could see them */
    size_t *ord = jm_malloc(n * sizeof(*ord)), no = 0;
    for (size_t i = 0; i < n; i++)
        if (item[i] == AP_ITEM_APPLIED)
            ord[no++] = i;
    if (no > 1) /* by instance id */
        qsort_r(ord, no, sizeof(*ord), jm_cmp_idx_by_i64, ok_ids);
    for (size_t x = 0; x < no; x++) {
        size_t i = ord[x];
        jm_ap_newti_add(ap, &(jm_ap_newti_t){.id = ok_ids[i],
                                             .task_id = tids[i],
                                             .wf = wf,
                                             .run_id = run_id,
                                             .ts_ms = ap->ev->ts_ms,
                                             .attempt = pk[i].attempt,
                                             .batch = (int)pk[i].batch,
                                             .step = (int)pk[i].step});
        jm_ap_tlog_push(ap, JM_ENTITY_TI, ok_ids[i], wf, 0, 'Q');
        jm_ap_tistate_t *t = jm_ap_ti_state(ap, ok_ids[i], 1);
        t->status = 'Q';
        t->row = 1;
        t->task_id = tids[i];
        t->run_id = run_id;
        t->attempt = pk[i].attempt;
        t->wf = wf;
    }
    free(ord);
    jm_ap_batches_note(ap, wf, max_batch); /* workflow.batches, written at the flush */
    jm_ap_touch_run(ap, run_id);
    jm_ap_touch_wf(ap, wf);
    if (queued)
        *queued = m;
out:
    PQclear(r);
    free(pk);
    free(tids);
    free(ok_ids);
    free(from);
    free(to);
    free(item);
    return rc;
}
