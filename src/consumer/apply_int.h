/*
 * apply_int.h — private interfaces between the event handlers behind apply.h:
 *   apply.c           dispatch, prepared statements, outcome bookkeeping, touched sets, and the
 *                     ONE status-change function (jm_ap_transition) every entity goes through
 *   apply_bind.c      workflow.bind / bind_tasks / bound
 *   apply_run.c       run.start / status / heartbeat / stop, reaper run events, completion
 *   apply_ti.c        ti.* and reaper.overdue
 *   apply_operator.c  workflow.resume / reset / concurrency, task.set_status
 *   sched.c           queueing ready tasks under the workflow and array limits
 * Not a public API; the consume loop only sees apply.h.
 */
#ifndef JOBMON_CONSUMER_APPLY_INT_H
#define JOBMON_CONSUMER_APPLY_INT_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "consumer/apply.h"
#include "consumer/consumer_int.h"
#include "jobmon/fsm.h"

/* Prepared statements (SQL text in apply_sql.c, prepared as "jm_ap_<n>"). */
typedef enum {
    AP_TR_TI = 0, /* generic transitions: $1 ids, $2 from, $3 to, $4 ts, $5 event id, ... */
    AP_TR_TASK,
    AP_TR_RUN,
    AP_TR_WF,
    AP_STATUS_TI, /* re-read after a conflict: $1 ids -> id, status */
    AP_STATUS_TASK,
    AP_STATUS_RUN,
    AP_STATUS_WF,
    AP_WF_GET,
    AP_RUN_GET,
    AP_RUN_ALIVE,
    AP_TI_LOAD,
    AP_TOOL_INS,
    AP_TTV_INS,
    AP_WF_INS,
    AP_WF_REBIND,
    AP_ARRAY_UPSERT,
    AP_TASKS_UPSERT,
    AP_TASKS_RESET_REBIND,
    AP_EDGES_INS,
    AP_WF_CHUNK,
    AP_WF_BOUND,
    AP_PENDING_RECOMPUTE,
    AP_RUN_INS,
    AP_RUN_HEARTBEAT,
    AP_SCHED_PICK,
    AP_SCHED_INSERT,
    AP_TI_SET_LAUNCHED,
    AP_TI_SET_REPORT_BY,
    AP_TI_SET_RUNNING,
    AP_TI_SET_RESULT,
    AP_TI_SET_MESSAGE,
    AP_DOWNSTREAM_DONE,
    AP_RUN_TIS_STATUS,
    AP_WF_TASKS_STATUS,
    AP_WF_COUNTS,
    AP_WF_SCHEDULABLE,
    AP_RUN_LIVE_TIS,
    AP_TASK_SCALE_LOAD,
    AP_TASK_SET_RESOURCES,
    AP_WF_SET_LIMIT,
    AP_ARRAY_SET_LIMIT,
    AP_TASK_DOWNSTREAM_CLOSURE,
    AP_TASKS_ACTIVE_TIS,
    AP_WF_OWNERSHIP,
    AP_WF_COUNTS_INIT,
    AP_TI_ADOPT,
    AP_WF_OLD_TIS,
    AP_WF_ARGS_TAKEN,
    AP_SCHED_PICK_FAST,
    AP_FLUSH_COUNTS,
    AP_FLUSH_BATCHES,
    AP_FLUSH_REPORT_BY,
    AP_FLUSH_TI_STATUS,
    AP_FLUSH_TASK_STATUS,
    AP_FLUSH_TLOG,
    AP_FLUSH_RUNNING,
    AP_FLUSH_RESULT,
    AP_TI_PREFETCH,
    AP_FLUSH_TI_INSERT,
    AP_SCHED_READY,
    AP_EDGES_PREFETCH,
    AP_FLUSH_PENDING,
    AP_FLUSH_TI_ROWS,
    AP_BIND_CHUNK_GET,
    AP_BIND_RECHECK,
    AP_WF_PRUNING,
    AP_WF_PRUNE_GET,
    AP_WF_PRUNE_MARK,
    AP_WF_PRUNE_CHUNK,
    AP_WF_RESOURCE_KILLED,
    AP_SQL__CNT
} jm_ap_sql_t;

extern const char *const jm_ap_sql[AP_SQL__CNT];

/* Per-item result of a transition. */
enum { AP_ITEM_APPLIED = 0, AP_ITEM_IGNORED, AP_ITEM_REJECTED, AP_ITEM_SKIPPED };

/* Task attempt counter handling in a task transition. */
enum { AP_ATT_KEEP = 0, AP_ATT_QUEUE = 1 /* num_attempts+1, ti_seq+1 */, AP_ATT_RESET = 2 };

typedef struct {
    int64_t *v;
    size_t n, cap;
} jm_ap_ids_t;

/* Per-transaction pending writes (flushed by jm_apply_flush, dropped by jm_apply_rollback). */
typedef struct {
    int64_t wf;
    char status;
    int64_t delta; /* may be 0: the row is still created, as a per-event apply would */
} jm_ap_count_t;

typedef struct {
    int64_t wf;
    int64_t batches; /* the highest batch_num handed out in this transaction */
} jm_ap_batch_t;

/* Row state known inside the transaction (authoritative there: the FSM is the only writer and
 * the partition's owner): task instances and tasks this transaction read or moved.  A status
 * change of a known row whose status is as expected is applied in memory (`db_status` keeps the
 * stored status, transition_log rows wait in order) and written before any statement that could
 * see the difference, or at the flush. */
typedef struct {
    int64_t id;
    char status;
    char db_status;       /* stored status when a change is pending, else 0 */
    int64_t status_at_ms; /* pending status_at */
    int64_t report_by_ms; /* pending report_by of coalesced heartbeats; 0 = none */
    int row;              /* the fields below are loaded (AP_TI_LOAD) */
    int64_t task_id, run_id, wf;
    int attempt;
    unsigned fields;  /* 1 << AP_DEFER_*: a field update of that kind is pending */
    unsigned drow[3]; /* its row in jm_apply_s.dfr[kind] (valid while the bit is set) */
} jm_ap_tistate_t;

/* Field updates of task instances applied as one statement per kind at the flush: the
 * parameters of AP_TI_SET_RUNNING / AP_TI_SET_RESULT, one row per instance. */
enum { AP_DEFER_RUNNING = 0, AP_DEFER_RESULT, AP_DEFER_LAUNCHED, AP_DEFER__CNT };
_Static_assert(AP_DEFER__CNT == 3, "jm_ap_tistate_t.drow has one slot per kind");
#define AP_DEFER_COLS 8
/* AP_FLUSH_TI_ROWS' parameters: id, stored/new status, status_at, report_by, then per kind a
 * flag and the kind's statement columns 1..AP_DEFER_COLS-1 (AP_DEFER_LAUNCHED, the last kind:
 * only its column 1, the distributor id; its report_by goes with the heartbeats') */
#define AP_TI_ROW_COLS (5 + 2 * AP_DEFER_COLS + 2)
typedef struct {
    char **v; /* n rows × AP_DEFER_COLS owned strings (NULL = SQL NULL) */
    size_t n, cap;
} jm_ap_defer_t;

typedef struct {
    int64_t id;
    char status, db_status;
    int64_t status_at_ms;
    int64_t wf;
    int tnum, tmax, tseq;
    /* downstream side (AP_EDGES_PREFETCH): pending_upstreams known (pend_dirty: changed in
     * memory), with what a ready-set entry needs */
    char pend_known, pend_dirty, edges_known;
    int pend;
    int64_t array_id;
    size_t res;            /* index in jm_apply_s.strs, resources as jsonb text */
    size_t edge0, n_edges; /* upstream side: its downstream ids in jm_apply_s.edges */
} jm_ap_taskstate_t;

typedef struct {
    void *v; /* open addressing on the first int64_t field, 0 = empty */
    size_t elem, n, cap, n_pending;
} jm_ap_map_t;

/* What jm_ap_progress read of a workflow in this transaction (AP_WF_COUNTS without the pending
 * count deltas, which are added on use), valid until a run or workflow status changes or a
 * handler outside the hot task-instance events runs; `no_ready`: the last pick found fewer
 * ready tasks than capacity and no task became ready since. */
typedef struct {
    int64_t id, array_id; /* array_id 0 = none */
    char status;          /* G or A */
    int tseq, tnum, tmax;
    char *resources; /* jsonb text, owned */
} jm_ap_ready_t;

typedef struct {
    int64_t wf;
    int64_t counts[9]; /* by task status, in the order of "GQIORDEAF" */
    int64_t limit, run_id, batches;
    int arrays_bind, fail_fast;
    /* Tracked ready set (no array limit binds): `ready` holds every ready task ordered up to
     * the bound (A first, then id; all of them when `exhausted`), read by AP_SCHED_READY with
     * look-ahead and kept up to date (picks remove, AP_DOWNSTREAM_DONE adds); any other way a
     * task becomes ready stops the tracking (jm_ap_ready_changed). */
    int no_ready; /* tracking */
    int exhausted, bound_a;
    int64_t bound_id;
    char run_status;
    jm_ap_ready_t *ready;
    size_t n_ready, cap_ready;
} jm_ap_wfc_t;

typedef struct {
    char entity; /* jm_entity_t */
    int64_t id, wf;
    char from, to;
    char evid[40];
    int64_t ts_ms;
} jm_ap_tlog_t;

struct jm_apply_s {
    jm_pg_t *pg;
    PGconn *conn;
    const jm_event_t *ev; /* the event being applied (borrowed) */
    char ts[40];          /* ev->ts_ms as a timestamptz literal */
    char evid[40];
    char wfid[24];
    int n_applied, n_ignored, n_rejected;
    char reject_reason[256];
    char ignore_reason[256];
    jm_ap_ids_t touched_wf, touched_runs;
    jm_pgarr_t arr[8];  /* scratch array literals */
    jm_pgarr_t farr[9]; /* the same for writing pending state (may run inside a handler's call) */
    jm_pgarr_t tiarr[AP_TI_ROW_COLS]; /* flush_ti_rows' array literals */
    jm_ap_count_t *cnt;               /* pending workflow_task_count deltas */
    size_t n_cnt, cap_cnt;
    jm_ap_batch_t *bat; /* pending workflow.batches */
    size_t n_bat, cap_bat;
    jm_ap_map_t ti;        /* jm_ap_tistate_t */
    jm_ap_map_t task;      /* jm_ap_taskstate_t */
    jm_ap_tlog_t *tlog;    /* pending transition_log rows, in order */
    jm_pgcopy_t tlog_copy; /* their COPY stream (flush_tlog) */
    size_t n_tlog, cap_tlog;
    size_t n_status_pending; /* rows with db_status set */
    int ga_dirty;            /* a pending task change enters or leaves G/A (the ready set) */
    jm_ap_wfc_t *wfc;        /* workflows read by jm_ap_progress in this transaction */
    size_t n_wfc, cap_wfc;
    size_t last_pick; /* rows of the last schedule pick */
    jm_ap_defer_t dfr[AP_DEFER__CNT];
    jm_ap_ids_t hints;           /* task instance ids of jm_apply_hint, not read yet */
    struct jm_ap_newti_s *newti; /* task instances queued in memory, inserted at the flush */
    size_t n_newti, cap_newti;
    int64_t *edges; /* downstream ids of known tasks (edge0/n_edges) */
    size_t n_edges, cap_edges;
    char **strs; /* owned strings of known tasks */
    size_t n_strs, cap_strs;
    size_t n_pend_dirty;
    int bind_general; /* tests: every bind_tasks chunk through AP_TASKS_UPSERT (no COPY path) */
    /* Workflows whose bind_tasks chunks are probed for existing tasks before the COPY path (a
     * COPY of theirs failed: a re-bind, or an id of another workflow); not per transaction. */
    int64_t bind_probe[8];
    unsigned bind_probe_next;
};

typedef struct jm_ap_newti_s {
    int64_t id, task_id, wf, run_id, ts_ms;
    int attempt, batch, step;
} jm_ap_newti_t;

/* Pending state readers: the count delta of (wf, status) and the workflow's pending batches
 * (0 when none). */
int64_t jm_ap_count_delta(const jm_apply_t *ap, int64_t wf, char status);
int64_t jm_ap_batches_pending(const jm_apply_t *ap, int64_t wf);
void jm_ap_batches_note(jm_apply_t *ap, int64_t wf, int64_t batch_num);
/* The status this transaction last gave task instance `id`, 0 when unknown. */
char jm_ap_ti_known(const jm_apply_t *ap, int64_t id);
/* Remember that instance `id` is in `status` now (read from the database in this transaction). */
void jm_ap_ti_note(jm_apply_t *ap, int64_t id, char status);
/* Known rows (NULL when unknown); `create` adds an empty entry. */
jm_ap_tistate_t *jm_ap_ti_state(jm_apply_t *ap, int64_t id, int create);
jm_ap_taskstate_t *jm_ap_task_state(jm_apply_t *ap, int64_t id, int create);
/* The transaction's copy of workflow `wf`'s progress inputs (NULL when not read yet). */
jm_ap_wfc_t *jm_ap_wfc(jm_apply_t *ap, int64_t wf, int create);
/* Some task may have become ready: picks must look again. */
void jm_ap_ready_changed(jm_apply_t *ap);
/* AP_DOWNSTREAM_DONE's rows: those that became ready join the tracked ready sets. */
void jm_ap_ready_add(jm_apply_t *ap, const PGresult *r);
/* AP_DOWNSTREAM_DONE in memory when the edges of every task in `done` are known: returns 1
 * when done so (pending_upstreams written at the flush), 0 when the statement must run. */
int jm_ap_downstream_done_known(jm_apply_t *ap, const int64_t *done, size_t n);
/* Read the downstream edges of every known task that is active or done (Q I O R D) and whose
 * edges are not known yet (those picked or created in this transaction, which the batch's
 * prefetch could not see), in one statement: after a miss of jm_ap_downstream_done_known, so
 * that the ti.done events that follow need no AP_DOWNSTREAM_DONE each. */
JM_WUR jm_rc_t jm_ap_edges_fetch_active(jm_apply_t *ap, jm_err_t *err);
/* Write the pending pending_upstreams changes now. */
jm_rc_t jm_ap_write_pend(jm_apply_t *ap, jm_err_t *err) JM_WUR;
/* Store one AP_TI_LOAD-shaped row (columns 0..9, + column 10 workflow id when `wfcol`) as known
 * (apply_ti.c); *row (may be NULL) receives the row as the handler sees it. */
struct ti_row_s;
void jm_ap_ti_known_row(jm_apply_t *ap, const PGresult *r, int k, int64_t wf);
/* Queue the AP_TI_SET_RUNNING (kind AP_DEFER_RUNNING) or AP_TI_SET_RESULT parameters of
 * instance `id` (params[0]) for the flush. */
/* Queue AP_TI_SET_LAUNCHED for instance `id`: distributor id and report_by (ms). */
jm_rc_t jm_ap_defer_launched(jm_apply_t *ap, int64_t id, const char *distributor_id,
                             int64_t report_by_ms, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_defer_fields(jm_apply_t *ap, int kind, int64_t id, const char *const *params,
                           jm_err_t *err) JM_WUR;
/* Queue a new task instance (in Q) for the flush. */
void jm_ap_newti_add(jm_apply_t *ap, const jm_ap_newti_t *t);
/* Queue a transition_log row (from 0 = created) for the flush, after those already queued. */
void jm_ap_tlog_push(jm_apply_t *ap, jm_entity_t entity, int64_t id, int64_t wf, char from,
                     char to);
/* Write the pending task status changes now (before reading the ready set). */
jm_rc_t jm_ap_write_task_status(jm_apply_t *ap, jm_err_t *err) JM_WUR;
/* Drop workflow `wf`'s pending count deltas and batch numbers (it is being deleted). */
void jm_ap_pending_drop_wf(jm_apply_t *ap, int64_t wf);
/* Write every pending status change, transition_log row and report_by now. */
jm_rc_t jm_ap_write_pending(jm_apply_t *ap, jm_err_t *err) JM_WUR;
/* Forget the known rows (after writing what is pending). */
void jm_ap_forget_rows(jm_apply_t *ap);
/* Defer report_by = ts_ms + secs for an instance known to be R (ti.heartbeat). */
void jm_ap_ti_defer_report_by(jm_apply_t *ap, int64_t id, int64_t report_by_ms);

/* Execute prepared statement `s`; *res (may be NULL) receives the result (caller PQclear).
 * Classifies failures: 40001/40P01 → JM_ERR_RETRY, lost connection → JM_ERR_UNAVAILABLE, else
 * JM_ERR_INTERNAL. */
jm_rc_t jm_ap_exec(jm_apply_t *ap, jm_ap_sql_t s, int n, const char *const *params, PGresult **res,
                   jm_err_t *err) JM_WUR;
/* jm_ap_exec() of a statement whose one parameter is an id. */
jm_rc_t jm_ap_exec_id(jm_apply_t *ap, jm_ap_sql_t s, int64_t id, PGresult **res,
                      jm_err_t *err) JM_WUR;

/* Bookkeeping of the event's outcome. */
void jm_ap_applied(jm_apply_t *ap);
void jm_ap_ignored(jm_apply_t *ap, const char *fmt, ...) JM_PRINTF(2, 3);
void jm_ap_rejected(jm_apply_t *ap, const char *fmt, ...) JM_PRINTF(2, 3);
void jm_ap_touch_wf(jm_apply_t *ap, int64_t wf);
void jm_ap_touch_run(jm_apply_t *ap, int64_t run);

void jm_ap_ids_add(jm_ap_ids_t *ids, int64_t v);
void jm_ap_ids_free(jm_ap_ids_t *ids);

/* Small text helpers for parameters. */
void jm_ap_i64(char *buf, size_t n, int64_t v);
/* ts_ms as "YYYY-MM-DD HH:MM:SS.mmm+00". */
void jm_ap_ts(char *buf, size_t n, int64_t ts_ms);

/*
 * THE status-change function.  For n entities of `entity` moving from[i] -> to[i] (letters):
 * validates each with jm_fsm_check (unless `bypass`, for the documented bulk bypasses), updates
 * the rows whose status is still from[i] (one statement), writes transition_log, and for tasks
 * maintains workflow_task_count and applies `att` (AP_ATT_*).  Rows whose status moved under us
 * are re-read and re-checked.  Illegal → the event records "task_instance 123: illegal R -> Q";
 * untimely → ignored.  item[i] (may be NULL) receives AP_ITEM_*.  *n_applied (may be NULL) is
 * the number of rows changed.
 */
jm_rc_t jm_ap_transition(jm_apply_t *ap, jm_entity_t entity, size_t n, const int64_t *ids,
                         const char *from, const char *to, int bypass, int att, int *item,
                         size_t *n_applied, jm_err_t *err) JM_WUR;
/* One-entity convenience: returns AP_ITEM_* in *item. */
jm_rc_t jm_ap_transition1(jm_apply_t *ap, jm_entity_t entity, int64_t id, char from, char to,
                          int bypass, int *item, jm_err_t *err) JM_WUR;

/* ---- handlers ------------------------------------------------------------------------------ */
jm_rc_t jm_ap_workflow_bind(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_workflow_bind_tasks(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_workflow_bound(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_run_start(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_run_status(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_run_heartbeat(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_run_stop(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_reaper_run_lost(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_reaper_run_timeout(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_ti_event(jm_apply_t *ap, jm_err_t *err) JM_WUR;
/* ti.reports: each item's running / result applied as ti.running, then ti.done / ti.error. */
jm_rc_t jm_ap_ti_reports(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_workflow_resume(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_workflow_reset(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_workflow_concurrency(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_task_set_status(jm_apply_t *ap, jm_err_t *err) JM_WUR;
jm_rc_t jm_ap_workflow_prune(jm_apply_t *ap, jm_err_t *err) JM_WUR;

/* Scale the resources of tasks `tids` for their next attempt (jm_res_scale with their
 * resource_scales, fallback queues and num_attempts), as a task entering A (apply_ti.c). */
jm_rc_t jm_ap_scale_tasks(jm_apply_t *ap, const int64_t *tids, size_t n, jm_err_t *err) JM_WUR;

/* ---- shared run logic (apply_run.c) --------------------------------------------------------- */

/* The workflow's alive run: *run_id 0 when none. */
jm_rc_t jm_ap_alive_run(jm_apply_t *ap, int64_t wf, int64_t *run_id, char *status, int *fail_fast,
                        jm_err_t *err) JM_WUR;
/* Move run `run_id` from -> to and the workflow to jm_wf_status_for_run(to) (validated). */
jm_rc_t jm_ap_run_move(jm_apply_t *ap, int64_t wf, int64_t run_id, char from, char to, int bypass,
                       int *item, jm_err_t *err) JM_WUR;
/* Move the workflow to `to` if it is not there yet (validated; bypass for documented bypasses). */
jm_rc_t jm_ap_wf_move(jm_apply_t *ap, int64_t wf, char to, int bypass, jm_err_t *err) JM_WUR;
/* Hand-over of an alive run (resume): run → C/H, its Q/I instances → F, O → K, R → K when cold;
 * tasks of F/K'd instances → G (attempts kept).  Then, if `terminate`, C/H → T (workflow H). */
jm_rc_t jm_ap_run_handover(jm_apply_t *ap, int64_t wf, int64_t run_id, char status, int cold,
                           int terminate, jm_err_t *err) JM_WUR;
/* After any change: completion of the alive run (D / E / fail-fast / C,H → T), else schedule. */
jm_rc_t jm_ap_progress(jm_apply_t *ap, int64_t wf, jm_err_t *err) JM_WUR;

/* ---- sched.c --------------------------------------------------------------------------------- */

/* Queue ready tasks of workflow `wf` for run `run_id` up to capacity `cap` (> 0: the workflow
 * limit minus its active tasks, as the caller just counted).  `arrays_bind`: some array's limit
 * is below the workflow's, so array capacities must be computed (the slower, full pick);
 * otherwise the pick comes from the transaction's tracked ready set (sched.c).  `batches`:
 * the workflow's last batch number handed out (stored value or this transaction's pending
 * one).  *queued (may be NULL) receives the number of new task instances. */
jm_rc_t jm_sched_workflow(jm_apply_t *ap, int64_t wf, int64_t run_id, int64_t cap, int arrays_bind,
                          int64_t batches, size_t *queued, jm_err_t *err) JM_WUR;

/* Pure helpers (unit-tested). */
#define JM_SCHED_BATCH_MAX 500
/* Capacity left under `limit` with `active` running: max(0, limit - active). */
int64_t jm_sched_capacity(int64_t limit, int64_t active);

#endif
