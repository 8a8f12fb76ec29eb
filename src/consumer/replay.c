/*
 * replay.c — replay a workflow's event_log into another schema through the same handlers the
 * consume loop uses (apply.h), and compare the two schemas' rows.  This is how determinism is
 * checked (`jobmon audit`, tests): the FSM's state must be a pure function of its log.
 *
 * A workflow that was pruned and bound again is replayed from its last applied workflow.prune.
 * It does not create or migrate the target schema (the caller does), touch Kafka or Redis, or
 * write event_log in the target: only the model rows are rebuilt.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/apply.h"
#include "consumer/replay.h"
#include "jobmon/event.h"

#define REPLAY_PAGE "1000"

static const char page_sql[] =
    "SELECT applied_seq, convert_from(raw, 'UTF8'), outcome, kafka_offset FROM event_log"
    " WHERE workflow_id = $1::bigint AND applied_seq > $2::bigint AND outcome <> 'dead_letter'"
    " ORDER BY applied_seq LIMIT " REPLAY_PAGE;

static void count_outcome(jm_replay_stats_t *st, const jm_event_t *ev, const jm_apply_result_t *res,
                          const char *logged)
{
    st->events++;
    if (res->outcome == JM_OUTCOME_APPLIED)
        st->applied++;
    else if (res->outcome == JM_OUTCOME_IGNORED)
        st->ignored++;
    else
        st->rejected++;
    if (strcmp(jm_outcome_name(res->outcome), logged) == 0)
        return;
    if (st->outcome_mismatch++ == 0)
        snprintf(st->first_mismatch, sizeof(st->first_mismatch), "event %s (%s): %s, log says %s",
                 ev->id, jm_event_type_name(ev->type), jm_outcome_name(res->outcome), logged);
}

/* Apply one page of rows (already read) in one transaction on dst. */
static jm_rc_t apply_page(jm_apply_t *ap, jm_pg_t *dst, PGresult *r, jm_replay_stats_t *st,
                          jm_err_t *err)
{
    jm_rc_t rc = jm_pg_begin(dst, err);
    jm_event_t **evs = jm_calloc((size_t)PQntuples(r) + 1, sizeof(*evs));
    for (int i = 0; i < PQntuples(r); i++) { /* decoded twice: hints first, as the loop does */
        jm_err_t e2;
        if (jm_event_decode(PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), &evs[i], &e2) ==
            JM_OK)
            jm_apply_hint(ap, evs[i]);
    }
    for (int i = 0; i < PQntuples(r); i++)
        jm_event_destroy(evs[i]);
    free(evs);
    for (int i = 0; rc == JM_OK && i < PQntuples(r); i++) {
        jm_event_t *ev = NULL;
        const char *raw = PQgetvalue(r, i, 1);
        jm_err_t e2;
        if (jm_event_decode(raw, (size_t)PQgetlength(r, i, 1), &ev, &e2) != JM_OK) {
            rc = jm_err_set(err, JM_ERR_INVALID, "event_log row %s: %s", PQgetvalue(r, i, 0),
                            e2.msg);
            break;
        }
        jm_apply_result_t res;
        rc = jm_apply_event(ap, ev, strtoll(PQgetvalue(r, i, 3), NULL, 10), &res, err);
        if (rc == JM_OK)
            count_outcome(st, ev, &res, PQgetvalue(r, i, 2));
        jm_event_destroy(ev);
    }
    jm_apply_clear_touched(ap);
    if (rc == JM_OK)
        rc = jm_apply_flush(ap, err);
    if (rc == JM_OK && (rc = jm_pg_commit(dst, err)) == JM_OK)
        return JM_OK; /* the rows apply keeps for the next page are committed */
    jm_err_t e2;
    jm_rc_t rb = jm_pg_rollback(dst, &e2); /* the original error is the one to report */
    (void)rb;
    jm_apply_rollback(ap);
    return rc;
}

/* apply_page, applied again after a retriable failure (rolled back), as the consume loop does:
 * e.g. the COPY of a re-bound chunk fails once, then apply_bind.c probes that workflow. */
static jm_rc_t apply_page_retrying(jm_apply_t *ap, jm_pg_t *dst, PGresult *r, jm_replay_stats_t *st,
                                   jm_err_t *err)
{
    jm_replay_stats_t before = *st;
    jm_rc_t rc = JM_ERR_RETRY;
    for (int attempt = 0; rc == JM_ERR_RETRY && attempt < 3; attempt++) {
        *st = before; /* the counts of a rolled-back attempt do not stand */
        rc = apply_page(ap, dst, r, st, err);
    }
    return rc;
}

/* The workflow's history starts after its last applied workflow.prune (011_prune.sql): what the
 * log holds of it before that point was deleted with it.  *after receives that applied_seq, or
 * "0". */
static jm_rc_t history_start(jm_pg_t *src, const char *wf, char *after, size_t len, jm_err_t *err)
{
    static const char sql[] =
        "SELECT coalesce(max(applied_seq), 0) FROM event_log WHERE workflow_id = $1::bigint"
        " AND type = 'workflow.prune' AND outcome = 'applied'";
    const char *p[1] = {wf};
    PGresult *r = NULL;
    jm_rc_t rc = jm_pg_exec(src, sql, 1, p, &r, err);
    if (rc == JM_OK)
        snprintf(after, len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

jm_rc_t jm_replay_workflow(jm_pg_t *src, jm_pg_t *dst, int64_t workflow_id,
                           jm_replay_stats_t *stats, jm_err_t *err)
{
    jm_replay_stats_t local;
    jm_replay_stats_t *st = stats ? stats : &local;
    memset(st, 0, sizeof(*st));
    jm_apply_t *ap = jm_apply_new(dst, err);
    if (!ap)
        return err ? err->rc : JM_ERR_INTERNAL;
    char wf[24], after[24] = "0";
    snprintf(wf, sizeof(wf), "%" PRId64, workflow_id);
    jm_rc_t rc = history_start(src, wf, after, sizeof(after), err);
    while (rc == JM_OK) {
        const char *p[2] = {wf, after};
        PGresult *r = NULL;
        if ((rc = jm_pg_exec(src, page_sql, 2, p, &r, err)) != JM_OK)
            break;
        int n = PQntuples(r);
        if (n > 0) {
            snprintf(after, sizeof(after), "%s", PQgetvalue(r, n - 1, 0));
            rc = apply_page_retrying(ap, dst, r, st, err);
        }
        PQclear(r);
        if (rc != JM_OK || n == 0)
            break;
    }
    jm_apply_destroy(ap);
    /* the handlers' statements are per connection: leave dst as we found it */
    PQclear(PQexec(jm_pg_conn(dst), "DEALLOCATE ALL"));
    return rc;
}

/* ---- comparison ---------------------------------------------------------------------------- */

static const struct {
    const char *table, *wfcol;
} model[] = {
    {"workflow", "id"},
    {"workflow_run", "workflow_id"},
    {"task", "workflow_id"},
    {"task_instance", "workflow_id"},
    {"task_array", "workflow_id"},
    {"task_edge", "workflow_id"},
    {"workflow_task_count", "workflow_id"},
};

#define TL_COLS "entity, entity_id, workflow_id, from_status, to_status, event_id, at"

static jm_rc_t diff_one(jm_pg_t *pg, const char *a, const char *b, const char *wf, int k,
                        int *differs, jm_err_t *err)
{
    char sql[1024];
    if (k < 0)
        snprintf(sql, sizeof(sql),
                 "SELECT (SELECT string_agg(row(" TL_COLS ")::text, '|' ORDER BY seq) FROM"
                 " %s.transition_log WHERE workflow_id = $1::bigint) IS NOT DISTINCT FROM"
                 " (SELECT string_agg(row(" TL_COLS ")::text, '|' ORDER BY seq) FROM"
                 " %s.transition_log WHERE workflow_id = $1::bigint)",
                 a, b);
    else
        snprintf(sql, sizeof(sql),
                 "SELECT NOT EXISTS (SELECT * FROM %s.%s WHERE %s = $1::bigint EXCEPT ALL"
                 " SELECT * FROM %s.%s WHERE %s = $1::bigint) AND NOT EXISTS (SELECT * FROM"
                 " %s.%s WHERE %s = $1::bigint EXCEPT ALL SELECT * FROM %s.%s WHERE %s ="
                 " $1::bigint)",
                 a, model[k].table, model[k].wfcol, b, model[k].table, model[k].wfcol, b,
                 model[k].table, model[k].wfcol, a, model[k].table, model[k].wfcol);
    const char *p[1] = {wf};
    PGresult *r = NULL;
    jm_rc_t rc = jm_pg_exec(pg, sql, 1, p, &r, err);
    if (rc == JM_OK)
        *differs = PQgetvalue(r, 0, 0)[0] != 't';
    PQclear(r);
    return rc;
}

jm_rc_t jm_replay_diff(jm_pg_t *pg, const char *schema_a, const char *schema_b, int64_t workflow_id,
                       int *n_diff, char *diff, size_t diff_len, jm_err_t *err)
{
    PGconn *conn = jm_pg_conn(pg);
    char *a = PQescapeIdentifier(conn, schema_a, strlen(schema_a));
    char *b = PQescapeIdentifier(conn, schema_b, strlen(schema_b));
    char wf[24];
    jm_rc_t rc = JM_OK;
    snprintf(wf, sizeof(wf), "%" PRId64, workflow_id);
    *n_diff = 0;
    if (diff && diff_len)
        diff[0] = '\0';
    if (!a || !b) {
        rc = jm_err_set(err, JM_ERR_INVALID, "schema name: %s", PQerrorMessage(conn));
        goto out;
    }
    for (int k = -1; k < (int)JM_ARRAY_LEN(model); k++) {
        int differs = 0;
        if ((rc = diff_one(pg, a, b, wf, k, &differs, err)) != JM_OK)
            goto out;
        if (!differs)
            continue;
        if (diff && diff_len) {
            size_t used = strlen(diff);
            snprintf(diff + used, diff_len - used, "%s%s", *n_diff ? "," : "",
                     k < 0 ? "transition_log" : model[k].table);
        }
        (*n_diff)++;
    }
out:
    PQfreemem(a);
    PQfreemem(b);
    return rc;
}
