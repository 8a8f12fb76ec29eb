/*
 * reaper.c — deadline scans, leader only (docs/reaper.md).  Every poll interval the process that
 * holds a PostgreSQL advisory lock (on its own connection; losing the connection releases it;
 * the key is derived from the schema it scans, so one leader per jobmon schema) looks for
 *   task instances in R past report_by  -> reaper.overdue item status T
 *   task instances in O past report_by  -> reaper.overdue item status X
 *   alive runs past heartbeat_by        -> reaper.run_lost
 *   runs in B/I/O/R past timeout_at     -> reaper.run_timeout
 * and PUBLISHES those claims as events (keyed by workflow id, ≤ 500 items each).  It writes no
 * rows: the FSM re-checks every claim against the event's ts and applies or ignores it.  It reads
 * the wall clock (claims are stamped with it).  A claim still in flight is not re-published:
 * claims are remembered for max(3 intervals, 30 s); a failed publish forgets them all (a
 * duplicate claim is harmless, a lost one is not).
 *
 * Automatic retention (reaper.retention_days > 0): each scan also takes up to RETENTION_WF of the
 * workflows `jobmon prune --older-than DAYS` would take (common/prune_sql.h) and publishes
 * RETENTION_EVENTS workflow.prune events for each, so a large workflow goes over a few scans;
 * events beyond its last chunk are recorded as ignored.  docs/reaper.md has the details.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/prune_sql.h"
#include "common/status_sql.h"
#include "consumer/consumer_int.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"

#define SUB "reaper"
/* One leader per schema: two deployments (or a test) sharing a database do not block each other */
#define LOCK_SQL                                                                                   \
    "SELECT pg_try_advisory_lock(hashtextextended('jobmon.reaper.' || current_schema(), 0))"
#define ITEMS_MAX        500
#define SCAN_LIMIT       "20000"
#define CONNECT_MS       2000
#define RETENTION_WF     "4"
#define RETENTION_EVENTS 4
#define RETENTION_USER   "jobmon-reaper"

static const char ti_sql[] = "SELECT workflow_id, id, status FROM task_instance"
                             " WHERE status IN ('R', 'O') AND report_by < $1::timestamptz"
                             " ORDER BY workflow_id, id LIMIT " SCAN_LIMIT;
static const char lost_sql[] =
    "SELECT workflow_id, id FROM workflow_run"
    " WHERE status IN " JM_SQL_RUN_ALIVE " AND heartbeat_by < $1::timestamptz LIMIT " SCAN_LIMIT;
static const char timeout_sql[] =
    "SELECT workflow_id, id FROM workflow_run"
    " WHERE status IN " JM_SQL_RUN_ACTIVE " AND timeout_at < $1::timestamptz LIMIT " SCAN_LIMIT;
static const char retention_sql[] = JM_SQL_PRUNE_CANDIDATES " LIMIT " RETENTION_WF;

struct jm_reaper_s {
    char *conninfo;
    jm_pg_t *pg;
    jm_producer_t *p; /* borrowed */
    int64_t interval_ms, next_at;
    int leader;
    int retention_days, retention_rows;
    jm_recent_t *seen_ti, *seen_lost, *seen_timeout;
};

jm_reaper_t *jm_reaper_new(const char *conninfo, jm_producer_t *producer, int poll_interval_s)
{
    jm_reaper_t *r = jm_calloc(1, sizeof(*r));
    r->conninfo = jm_strdup(conninfo ? conninfo : "");
    r->p = producer;
    r->interval_ms = (int64_t)poll_interval_s * 1000;
    r->seen_ti = jm_recent_new();
    r->seen_lost = jm_recent_new();
    r->seen_timeout = jm_recent_new();
    return r;
}

void jm_reaper_destroy(jm_reaper_t *r)
{
    if (!r)
        return;
    jm_pg_destroy(r->pg);
    jm_recent_destroy(r->seen_ti);
    jm_recent_destroy(r->seen_lost);
    jm_recent_destroy(r->seen_timeout);
    free(r->conninfo);
    free(r);
}

void jm_reaper_set_retention(jm_reaper_t *r, int days, int rows)
{
    r->retention_days = days;
    r->retention_rows = rows;
}

static int64_t ttl_ms(const jm_reaper_t *r)
{
    return r->interval_ms * 3 > 30000 ? r->interval_ms * 3 : 30000;
}

/* Hold the leader lock: connect if needed and try to take it. 1 = we lead. */
static jm_rc_t lead(jm_reaper_t *r, jm_err_t *err)
{
    PGresult *res = NULL;
    if (r->pg && PQstatus(jm_pg_conn(r->pg)) != CONNECTION_OK) {
        jm_pg_destroy(r->pg); /* the lock went with the connection */
        r->pg = NULL;
        r->leader = 0;
    }
    if (!r->pg && !(r->pg = jm_pg_connect(r->conninfo, jm_time_mono_ms() + CONNECT_MS, err)))
        return JM_ERR_UNAVAILABLE;
    if (r->leader)
        return JM_OK;
    jm_rc_t rc = jm_pg_exec(r->pg, LOCK_SQL, 0, NULL, &res, err);
    if (rc == JM_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        r->leader = 1;
        jm_log(JM_LOG_INFO, SUB, "this process is the reaper leader");
    }
    PQclear(res);
    return rc;
}

static jm_rc_t publish(jm_reaper_t *r, jm_event_type_t type, int64_t wf, json_t *payload,
                       jm_err_t *err)
{
    jm_event_t *ev = jm_event_new(type, wf, payload);
    jm_rc_t rc = jm_producer_send(r->p, ev, err);
    if (rc != JM_OK)
        jm_log(JM_LOG_ERROR, SUB, "publishing %s for workflow %lld: %s", jm_event_type_name(type),
               (long long)wf, err->msg);
    else
        jm_log(JM_LOG_INFO, SUB, "published %s %s for workflow %lld (%zu item(s))",
               jm_event_type_name(type), ev->id, (long long)wf,
               type == JM_EV_REAPER_OVERDUE ? json_array_size(json_object_get(payload, "items"))
                                            : (size_t)1);
    jm_event_destroy(ev);
    return rc;
}

/* Overdue task instances, one event per workflow and ≤ ITEMS_MAX items. */
static jm_rc_t scan_ti(jm_reaper_t *r, const char *now, int64_t now_ms, int *n, jm_err_t *err)
{
    PGresult *res = NULL;
    const char *params[1] = {now};
    jm_rc_t rc = jm_pg_exec(r->pg, ti_sql, 1, params, &res, err);
    json_t *items = NULL;
    int64_t cur_wf = 0;
    for (int row = 0; rc == JM_OK && row <= PQntuples(res); row++) {
        int64_t wf = row < PQntuples(res) ? strtoll(PQgetvalue(res, row, 0), NULL, 10) : 0;
        if (items && (wf != cur_wf || json_array_size(items) == ITEMS_MAX)) {
            rc = publish(r, JM_EV_REAPER_OVERDUE, cur_wf, json_pack("{s:o}", "items", items), err);
            items = NULL;
        }
        if (rc != JM_OK || row == PQntuples(res))
            break;
        int64_t ti = strtoll(PQgetvalue(res, row, 1), NULL, 10);
        if (jm_recent_check_add(r->seen_ti, ti, now_ms, ttl_ms(r)))
            continue;
        if (!items)
            items = json_array();
        cur_wf = wf;
        const char *to = PQgetvalue(res, row, 2)[0] == 'R' ? "T" : "X";
        json_array_append_new(items,
                              json_pack("{s:I, s:s}", "ti_id", (json_int_t)ti, "status", to));
        (*n)++;
    }
    json_decref(items);
    PQclear(res);
    return rc;
}

static jm_rc_t scan_runs(jm_reaper_t *r, const char *sql, jm_event_type_t type, jm_recent_t *seen,
                         const char *now, int64_t now_ms, int *n, jm_err_t *err)
{
    PGresult *res = NULL;
    const char *params[1] = {now};
    jm_rc_t rc = jm_pg_exec(r->pg, sql, 1, params, &res, err);
    for (int row = 0; rc == JM_OK && row < PQntuples(res); row++) {
        int64_t wf = strtoll(PQgetvalue(res, row, 0), NULL, 10);
        int64_t run = strtoll(PQgetvalue(res, row, 1), NULL, 10);
        if (jm_recent_check_add(seen, run, now_ms, ttl_ms(r)))
            continue;
        rc = publish(r, type, wf, json_pack("{s:I}", "run_id", (json_int_t)run), err);
        (*n)++;
    }
    PQclear(res);
    return rc;
}

/* Automatic retention: RETENTION_EVENTS workflow.prune events for each of the first RETENTION_WF
 * workflows finished before now - retention_days (prunes left unfinished first). */
static jm_rc_t scan_retention(jm_reaper_t *r, int64_t now_ms, int *n, jm_err_t *err)
{
    char cutoff[32];
    PGresult *res = NULL;
    if (r->retention_days <= 0)
        return JM_OK;
    jm_time_format_iso(now_ms - (int64_t)r->retention_days * 86400000, cutoff, sizeof(cutoff));
    const char *params[2] = {cutoff, NULL};
    jm_rc_t rc = jm_pg_exec(r->pg, retention_sql, 2, params, &res, err);
    for (int row = 0; rc == JM_OK && row < PQntuples(res); row++) {
        int64_t wf = strtoll(PQgetvalue(res, row, 0), NULL, 10);
        for (int k = 0; k < RETENTION_EVENTS && rc == JM_OK; k++, (*n)++)
            rc = publish(r, JM_EV_WORKFLOW_PRUNE, wf,
                         json_pack("{ss sI ss}", "finished_before", cutoff, "rows",
                                   (json_int_t)r->retention_rows, "user", RETENTION_USER),
                         err);
    }
    PQclear(res);
    return rc;
}

/* A scan or publish failed: forget the claims in flight so none waits a TTL to be retried (a
 * claim remembered but never delivered would leave its instance or run unreaped that long). */
static void forget_claims(jm_reaper_t *r)
{
    jm_recent_destroy(r->seen_ti);
    jm_recent_destroy(r->seen_lost);
    jm_recent_destroy(r->seen_timeout);
    r->seen_ti = jm_recent_new();
    r->seen_lost = jm_recent_new();
    r->seen_timeout = jm_recent_new();
}

int jm_reaper_tick(jm_reaper_t *r, int64_t now_mono_ms, int64_t now_wall_ms, jm_err_t *err)
{
    char now[32];
    int n = 0;
    if (r->next_at == 0) /* first scan one interval after start: let the consumers catch up */
        r->next_at = now_mono_ms + r->interval_ms;
    if (now_mono_ms < r->next_at)
        return 0;
    r->next_at = now_mono_ms + r->interval_ms;
    jm_rc_t rc = lead(r, err);
    if (rc != JM_OK || !r->leader)
        return rc;
    jm_time_format_iso(now_wall_ms, now, sizeof(now));
    rc = scan_ti(r, now, now_wall_ms, &n, err);
    if (rc == JM_OK)
        rc = scan_runs(r, lost_sql, JM_EV_REAPER_RUN_LOST, r->seen_lost, now, now_wall_ms, &n, err);
    if (rc == JM_OK)
        rc = scan_runs(r, timeout_sql, JM_EV_REAPER_RUN_TIMEOUT, r->seen_timeout, now, now_wall_ms,
                       &n, err);
    if (rc == JM_OK)
        rc = scan_retention(r, now_wall_ms, &n, err);
    if (rc == JM_OK && n > 0)
        rc = jm_producer_flush(r->p, 10000, err);
    if (rc != JM_OK)
        forget_claims(r);
    return rc != JM_OK ? rc : n;
}
