/*
 * it_apply.c — scenario tests of the event handlers (src/consumer/apply*.c, sched.c) against the
 * real PostgreSQL, without Kafka: each test creates its own schema, runs the migrations into it,
 * builds events with jm_event_new (timestamps from a synthetic clock), applies each in its own
 * transaction with jm_apply_event and asserts rows.  Replay determinism applies the same events
 * to a second fresh schema and compares every column of the model rows.
 * Connection: JOBMON_TEST_PG_CONNINFO (needs CREATE on the database), else
 * JOBMON_POSTGRES_CONNINFO.  Duplicate events are the loop's business (not tested here).
 */
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer/apply.h"
#include "consumer/apply_int.h"
#include "consumer/replay.h"
#include "it.h"
#include "jobmon/event.h"
#include "jobmon/hash.h"
#include "jobmon/jmtime.h"
#include "jobmon/pg.h"

#ifndef JM_TOP_SRCDIR
#define JM_TOP_SRCDIR "."
#endif

typedef struct {
    jm_pg_t *pg;
    jm_apply_t *ap;
    int64_t ts;
    char schema[64];
    jm_event_t *log[4096];
    size_t nlog;
    int keep_log;
    int array_limit;       /* bind(): the template's limit (0 = 10000) */
    const char *args_hash; /* bind(): workflow_args_hash (NULL = HEX) */
    int no_check;          /* skip the invariants after each event */
    int log_events;        /* also record each event in event_log as the consume loop does */
    int retries;           /* transactions rolled back on JM_ERR_RETRY and applied again */
    int64_t offset;
    char reason[256]; /* sc_apply: the reason of the last event's outcome */
} sc_t;

static void check_invariants(sc_t *sc, int64_t wf);
static void assert_same_tables(sc_t *a, sc_t *b, const char *const *tables, size_t n, int evids,
                               const char *what);

static int schema_n;

static void exec_ok(sc_t *sc, const char *sql)
{
    PGresult *r = PQexec(jm_pg_conn(sc->pg), sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static void sc_open(sc_t *sc)
{
    memset(sc, 0, sizeof(*sc));
    const char *ci = getenv("JOBMON_TEST_PG_CONNINFO");
    if (!ci || !*ci)
        ci = it_env("JOBMON_POSTGRES_CONNINFO");
    jm_err_t err;
    sc->pg = jm_pg_connect(ci, 0, &err);
    ck_assert_msg(sc->pg != NULL, "connect: %s", err.msg);
    snprintf(sc->schema, sizeof(sc->schema), "test_%d_%d", (int)getpid(), ++schema_n);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE;"
             " CREATE SCHEMA %s; SET search_path = %s",
             sc->schema, sc->schema, sc->schema);
    exec_ok(sc, sql);
    char *s = it_schema_sql();
    exec_ok(sc, s);
    free(s);
    sc->ap = jm_apply_new(sc->pg, &err);
    ck_assert_msg(sc->ap != NULL, "jm_apply_new: %s", err.msg);
    sc->ts = 1764000000000;
}

static void sc_close(sc_t *sc, int drop)
{
    char sql[128];
    if (drop) {
        snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", sc->schema);
        exec_ok(sc, sql);
    }
    jm_apply_destroy(sc->ap);
    jm_pg_destroy(sc->pg);
    for (size_t i = 0; i < sc->nlog; i++)
        jm_event_destroy(sc->log[i]);
}

/* The event's event_log row as the consume loop writes it (evlog.c): after the handlers, in the
 * same transaction, with the outcome and the raw message. */
static void evlog_write(sc_t *sc, const jm_event_t *ev, const jm_apply_result_t *res)
{
    size_t len = 0;
    char *raw = jm_event_encode(ev, &len);
    char wf[24], off[24], ts[40];
    snprintf(wf, sizeof(wf), "%lld", (long long)ev->workflow_id);
    snprintf(off, sizeof(off), "%lld", (long long)++sc->offset);
    jm_time_format_iso(ev->ts_ms, ts, sizeof(ts));
    const char *p[8] = {ev->id,
                        off,
                        wf,
                        jm_event_type_name(ev->type),
                        ts,
                        raw,
                        jm_outcome_name(res->outcome),
                        res->outcome == JM_OUTCOME_APPLIED ? NULL : res->reason};
    PGresult *r =
        PQexecParams(jm_pg_conn(sc->pg),
                     "INSERT INTO event_log (event_id, topic, partition, kafka_offset,"
                     " workflow_id, type, outcome, reason, ts, raw) VALUES ($1,"
                     " 'jobmon.events', 0, $2, $3, $4, $7, $8, $5, convert_to($6, 'UTF8'))",
                     8, NULL, p, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    free(raw);
}

/* Apply one event in its own transaction; returns the outcome. */
static jm_outcome_t sc_apply_ev(sc_t *sc, const jm_event_t *ev, char *reason)
{
    jm_err_t err;
    jm_apply_result_t res;
    jm_rc_t rc;
    /* a retriable failure is rolled back and applied again, as the consume loop does (a COPY
     * of a re-bound chunk fails once: apply_bind.c then probes that workflow's chunks) */
    for (int attempt = 0;; attempt++) {
        exec_ok(sc, "BEGIN");
        rc = jm_apply_event(sc->ap, ev, sc->offset, &res, &err);
        if (rc != JM_ERR_RETRY || attempt == 2)
            break;
        exec_ok(sc, "ROLLBACK");
        jm_apply_rollback(sc->ap);
        sc->retries++;
    }
    ck_assert_msg(rc == JM_OK, "apply %s: %s", jm_event_type_name(ev->type), err.msg);
    if (sc->log_events)
        evlog_write(sc, ev, &res);
    rc = jm_apply_flush(sc->ap, &err);
    ck_assert_msg(rc == JM_OK, "flush after %s: %s", jm_event_type_name(ev->type), err.msg);
    exec_ok(sc, "COMMIT");
    jm_apply_clear_touched(sc->ap);
    if (reason)
        snprintf(reason, 256, "%s", res.reason);
    return res.outcome;
}

static jm_outcome_t sc_apply(sc_t *sc, jm_event_type_t type, int64_t wf, json_t *payload)
{
    jm_event_t *ev = jm_event_new(type, wf, payload);
    sc->ts += 1000;
    ev->ts_ms = sc->ts;
    jm_err_t err;
    ck_assert_msg(jm_event_validate(ev, NULL, &err) == JM_OK, "%s: %s", jm_event_type_name(type),
                  err.msg);
    jm_outcome_t o = sc_apply_ev(sc, ev, sc->reason);
    ck_assert_msg(sc->nlog < JM_ARRAY_LEN(sc->log), "event log full");
    sc->log[sc->nlog++] = ev;
    if (!sc->no_check)
        check_invariants(sc, wf);
    return o;
}

static int64_t q_int(sc_t *sc, const char *fmt, ...) JM_PRINTF(2, 3);
static int64_t q_int(sc_t *sc, const char *fmt, ...)
{
    char sql[2048];
    va_list va;
    va_start(va, fmt);
    vsnprintf(sql, sizeof(sql), fmt, va);
    va_end(va);
    PGresult *r = PQexec(jm_pg_conn(sc->pg), sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    int64_t v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static char q_char(sc_t *sc, const char *sql)
{
    PGresult *r = PQexec(jm_pg_conn(sc->pg), sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql,
                  PQresultErrorMessage(r));
    char c = PQgetvalue(r, 0, 0)[0];
    PQclear(r);
    return c;
}

/* ---- building workflows -------------------------------------------------------------------- */

#define HEX    "0123456789abcdef0123456789abcdef"
#define RUN_ID 777

typedef struct {
    int64_t id;
    int64_t up[4];
    int nup;
    int max_attempts;
    int memory;
} task_def_t;

static void bind_header(sc_t *sc, int64_t wf, size_t n, int limit)
{
    json_t *tmpl = json_pack("[{s:s,s:s,s:s,s:[],s:[],s:[],s:I,s:i}]", "name", "tmpl", "hash", HEX,
                             "command_template", "{command}", "node_args", "task_args", "op_args",
                             "array_id", (json_int_t)(wf * 10), "max_concurrently_running",
                             sc->array_limit ? sc->array_limit : 10000);
    json_t *p = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:s,s:{},s:o}", "tool", "t",
                          "workflow_args_hash", sc->args_hash ? sc->args_hash : HEX, "task_hash",
                          HEX, "dag_hash", HEX, "name", "wf", "max_concurrently_running", limit,
                          "total_tasks", (int)n, "user", "u", "attributes", "templates", tmpl);
    ck_assert_int_eq(sc_apply(sc, JM_EV_WORKFLOW_BIND, wf, p), JM_OUTCOME_APPLIED);
}

/* The workflow.bind_tasks task list of t[0..n), in reverse order: chunks may name upstream tasks
 * that are not there yet. */
static json_t *task_list(int64_t wf, const task_def_t *t, size_t n)
{
    json_t *tasks = json_array();
    for (size_t i = n; i > 0; i--) {
        const task_def_t *d = &t[i - 1];
        json_t *up = json_array();
        for (int k = 0; k < d->nup; k++)
            json_array_append_new(up, json_integer(d->up[k]));
        char name[32], cmd[64];
        snprintf(name, sizeof(name), "task_%lld", (long long)d->id);
        snprintf(cmd, sizeof(cmd), "echo %lld", (long long)d->id);
        json_array_append_new(
            tasks,
            json_pack("{s:I,s:s,s:s,s:s,s:I,s:s,s:i,s:{s:i,s:s},s:{s:f},s:[],s:s,s:o}", "task_id",
                      (json_int_t)d->id, "name", name, "command", cmd, "template", "tmpl",
                      "array_id", (json_int_t)(wf * 10), "node_hash", HEX, "max_attempts",
                      d->max_attempts ? d->max_attempts : 3, "resources", "memory",
                      d->memory ? d->memory : 1024, "queue", "null.q", "resource_scales", "memory",
                      0.5, "fallback_queues", "cluster", "dummy", "upstream", up));
    }
    return tasks;
}

static void bind_chunk(sc_t *sc, int64_t wf, int chunk, const task_def_t *t, size_t n)
{
    ck_assert_int_eq(sc_apply(sc, JM_EV_WORKFLOW_BIND_TASKS, wf,
                              json_pack("{s:i,s:o}", "chunk", chunk, "tasks", task_list(wf, t, n))),
                     JM_OUTCOME_APPLIED);
}

static void bind_bound(sc_t *sc, int64_t wf, int total, int chunks)
{
    ck_assert_int_eq(sc_apply(sc, JM_EV_WORKFLOW_BOUND, wf,
                              json_pack("{s:i,s:i}", "total_tasks", total, "chunks", chunks)),
                     JM_OUTCOME_APPLIED);
}

static void bind(sc_t *sc, int64_t wf, const task_def_t *t, size_t n, int limit)
{
    bind_header(sc, wf, n, limit);
    bind_chunk(sc, wf, 0, t, n);
    bind_bound(sc, wf, (int)n, 1);
}

static void start(sc_t *sc, int64_t wf)
{
    ck_assert_int_eq(sc_apply(sc, JM_EV_RUN_START, wf,
                              json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id",
                                        (json_int_t)RUN_ID, "cluster", "dummy", "user", "u", "host",
                                        "h", "fail_fast", 0, "timeout_s", 0, "resume", "none")),
                     JM_OUTCOME_APPLIED);
    const char *st[] = {"I", "O", "R"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(
            sc_apply(sc, JM_EV_RUN_STATUS, wf,
                     json_pack("{s:I,s:s}", "run_id", (json_int_t)RUN_ID, "status", st[i])),
            JM_OUTCOME_APPLIED);
}

/* Drive one queued instance through the distributor and worker: ends D, or `fail` (E/Z). */
static void run_ti(sc_t *sc, int64_t wf, int64_t ti, char fail)
{
    ck_assert_int_eq(sc_apply(sc, JM_EV_TI_INSTANTIATED, wf,
                              json_pack("{s:I,s:[{s:I}]}", "run_id", (json_int_t)RUN_ID, "items",
                                        "ti_id", (json_int_t)ti)),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(
        sc_apply(sc, JM_EV_TI_LAUNCHED, wf,
                 json_pack("{s:I,s:i,s:[{s:I,s:s}]}", "run_id", (json_int_t)RUN_ID, "next_report_s",
                           300, "items", "ti_id", (json_int_t)ti, "distributor_id", "42")),
        JM_OUTCOME_APPLIED);
    ck_assert_int_eq(
        sc_apply(sc, JM_EV_TI_RUNNING, wf,
                 json_pack("{s:I,s:s,s:i,s:s,s:i,s:s,s:s}", "ti_id", (json_int_t)ti, "host",
                           "node1", "pid", 99, "distributor_id", "42", "next_report_s", 300,
                           "stdout_path", "/o", "stderr_path", "/e")),
        JM_OUTCOME_APPLIED);
    json_t *usage = json_pack("{s:i,s:i,s:i}", "wall_ms", 10, "cpu_ms", 5, "maxrss_kb", 100);
    if (!fail)
        ck_assert_int_eq(
            sc_apply(sc, JM_EV_TI_DONE, wf,
                     json_pack("{s:I,s:s,s:s,s:o}", "ti_id", (json_int_t)ti, "stdout_tail", "ok",
                               "stderr_tail", "", "usage", usage)),
            JM_OUTCOME_APPLIED);
    else
        ck_assert_int_eq(
            sc_apply(sc, JM_EV_TI_ERROR, wf,
                     json_pack("{s:I,s:s#,s:i,s:s,s:s,s:s,s:o}", "ti_id", (json_int_t)ti, "status",
                               &fail, 1, "exit_code", 1, "message", "boom", "stdout_tail", "",
                               "stderr_tail", "err", "usage", usage)),
            JM_OUTCOME_APPLIED);
}

/* Invariants after every step of a scenario. */
static void check_counts(sc_t *sc, int64_t wf)
{
    int64_t bad =
        q_int(sc,
              "SELECT count(*) FROM (SELECT status, count(*) n FROM task WHERE workflow_id"
              " = %lld GROUP BY status) a FULL JOIN (SELECT status, n FROM"
              " workflow_task_count WHERE workflow_id = %lld AND n > 0) b USING (status)"
              " WHERE a.n IS DISTINCT FROM b.n",
              (long long)wf, (long long)wf);
    ck_assert_msg(bad == 0, "workflow_task_count out of step");
}

/* Invariants after every event (sc_apply): per-status counters, the newest transition_log entry
 * of every row names its current status (a bound task without one is still in G: its creation is
 * task.bind_event_id), pending_upstreams matches the edges once bound, and no task has two
 * unfinished instances in an alive run. */
static void check_invariants(sc_t *sc, int64_t wf)
{
    long long w = (long long)wf;
    check_counts(sc, wf);
    static const struct {
        const char *table, *entity, *wfcol, *created;
    } ent[] = {
        {"task", "task", "workflow_id", "CASE WHEN x.bind_event_id IS NOT NULL THEN 'G' END"},
        {"task_instance", "task_instance", "workflow_id", "NULL"},
        {"workflow_run", "workflow_run", "workflow_id", "NULL"},
        {"workflow", "workflow", "id", "NULL"}};
    for (size_t i = 0; i < JM_ARRAY_LEN(ent); i++) {
        int64_t bad = q_int(sc,
                            "SELECT count(*) FROM %s x LEFT JOIN LATERAL (SELECT to_status FROM"
                            " transition_log l WHERE l.entity = '%s' AND l.entity_id = x.id"
                            " ORDER BY seq DESC LIMIT 1) l ON true WHERE x.%s = %lld"
                            " AND COALESCE(l.to_status, %s) IS DISTINCT FROM x.status",
                            ent[i].table, ent[i].entity, ent[i].wfcol, w, ent[i].created);
        ck_assert_msg(bad == 0,
                      "%s: %lld rows whose last transition_log entry is not their"
                      " status",
                      ent[i].table, (long long)bad);
    }
    int64_t bad = q_int(sc,
                        "SELECT count(*) FROM task t JOIN workflow w ON w.id = t.workflow_id"
                        " WHERE w.id = %lld AND w.bound_at IS NOT NULL AND t.pending_upstreams <>"
                        " (SELECT count(*) FROM task_edge e JOIN task u ON u.id = e.upstream_id"
                        " WHERE e.downstream_id = t.id AND u.status <> 'D')",
                        w);
    ck_assert_msg(bad == 0, "pending_upstreams out of step on %lld tasks", (long long)bad);
    bad = q_int(sc,
                "SELECT count(*) FROM (SELECT ti.task_id FROM task_instance ti JOIN workflow_run r"
                " ON r.id = ti.run_id WHERE ti.workflow_id = %lld AND r.status IN"
                " ('L','B','I','O','R','C','H') AND ti.status IN ('Q','I','O','R','T','X')"
                " GROUP BY ti.task_id HAVING count(*) > 1) d",
                w);
    ck_assert_msg(bad == 0, "%lld tasks with two live instances", (long long)bad);
}

/* Run every queued instance until none is left; tasks in `fail_ids` fail with `how`. */
static void drive(sc_t *sc, int64_t wf, const int64_t *fail_ids, size_t nfail, char how,
                  int64_t limit)
{
    for (int guard = 0; guard < 200; guard++) {
        int64_t ti = q_int(sc,
                           "SELECT min(id) FROM task_instance WHERE workflow_id = %lld AND"
                           " status = 'Q'",
                           (long long)wf);
        if (ti < 0)
            return;
        int64_t task =
            q_int(sc, "SELECT task_id FROM task_instance WHERE id = %lld", (long long)ti);
        char fail = 0;
        for (size_t i = 0; i < nfail; i++)
            if (fail_ids[i] == task)
                fail = how;
        run_ti(sc, wf, ti, fail);
        check_counts(sc, wf);
        if (limit)
            ck_assert_int_le(q_int(sc,
                                   "SELECT count(*) FROM task WHERE workflow_id = %lld AND"
                                   " status IN ('Q','I','O','R')",
                                   (long long)wf),
                             limit);
    }
    ck_abort_msg("scenario did not converge");
}

static char wf_status(sc_t *sc, int64_t wf)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT status FROM workflow WHERE id = %lld", (long long)wf);
    return q_char(sc, sql);
}

static char run_status(sc_t *sc)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT status FROM workflow_run WHERE id = %d", RUN_ID);
    return q_char(sc, sql);
}

/* ---- scenarios ----------------------------------------------------------------------------- */

START_TEST(test_diamond)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 11},
                      {.id = 12, .up = {11}, .nup = 1},
                      {.id = 13, .up = {11}, .nup = 1},
                      {.id = 14, .up = {12, 13}, .nup = 2}};
    bind(&sc, 1, t, 4, 100);
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 14"), 2);
    start(&sc, 1);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance"), 1);
    ck_assert_int_eq(q_int(&sc, "SELECT id FROM task_instance"), jm_hash_ti_id(11, 1));
    drive(&sc, 1, NULL, 0, 0, 0);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status = 'D'"), 4);
    ck_assert_int_eq(wf_status(&sc, 1), 'D');
    ck_assert_int_eq(run_status(&sc), 'D');
    ck_assert_int_eq(q_int(&sc, "SELECT n FROM workflow_task_count WHERE status = 'D'"), 4);
    /* 12 and 13 were queued together: one batch, steps 0 and 1 */
    ck_assert_int_eq(q_int(&sc, "SELECT count(DISTINCT batch_num) FROM task_instance"
                                " WHERE task_id IN (12, 13)"),
                     1);
    ck_assert_int_eq(q_int(&sc, "SELECT step FROM task_instance WHERE task_id = 13"), 1);
    /* an illegal transition is rejected with its reason */
    char reason[256];
    jm_event_t *ev = jm_event_new(JM_EV_TI_INSTANTIATED, 1,
                                  json_pack("{s:I,s:[{s:I}]}", "run_id", (json_int_t)RUN_ID,
                                            "items", "ti_id", (json_int_t)jm_hash_ti_id(11, 1)));
    ck_assert_int_eq(sc_apply_ev(&sc, ev, reason), JM_OUTCOME_REJECTED);
    ck_assert_msg(strstr(reason, "illegal D -> I") != NULL, "%s", reason);
    jm_event_destroy(ev);
    sc_close(&sc, 1);
}
END_TEST

/* Binding in two chunks after workflow.bound, with an upstream that never arrives and one named
 * twice: binding completes with the chunk that brings the last task, not before, and
 * pending_upstreams counts the distinct upstream tasks that exist (the check after every event
 * compares all of them with the edges). */
START_TEST(test_bind_chunks_pending)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t a[] = {{.id = 201}, {.id = 202, .up = {201}, .nup = 1}};
    task_def_t b[] = {{.id = 203, .up = {201, 202, 299}, .nup = 3},
                      {.id = 204, .up = {203, 203}, .nup = 2}};
#define BOUND "SELECT count(*) FROM workflow WHERE id = 2 AND bound_at IS NOT NULL"
    bind_header(&sc, 2, 4, 100);
    bind_bound(&sc, 2, 4, 2);
    bind_chunk(&sc, 2, 0, a, 2);
    ck_assert_int_eq(q_int(&sc, BOUND), 0);
    bind_chunk(&sc, 2, 1, b, 2);
    ck_assert_int_eq(q_int(&sc, BOUND), 1);
#undef BOUND
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 201"), 0);
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 202"), 1);
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 203"), 2);
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 204"), 1);
    sc_close(&sc, 1);
}
END_TEST

/* Replay workflow `wf`'s event log from scenario `a` into a fresh schema (up to 1000 events per
 * transaction, with the consume loop's prefetch hints) and require `events` events replayed
 * with their logged outcomes, and identical rows. */
static void replay_n_same(sc_t *a, int64_t wf, size_t events)
{
    sc_t b;
    sc_open(&b);
    jm_apply_destroy(b.ap);
    b.ap = NULL;
    exec_ok(&b, "DEALLOCATE ALL");
    jm_err_t err;
    jm_replay_stats_t st;
    ck_assert_msg(jm_replay_workflow(a->pg, b.pg, wf, &st, &err) == JM_OK, "replay: %s", err.msg);
    ck_assert_int_eq(st.events, events);
    ck_assert_msg(st.outcome_mismatch == 0, "%s", st.first_mismatch);
    int n_diff = -1;
    char diff[256];
    ck_assert_msg(
        jm_replay_diff(a->pg, a->schema, b.schema, wf, &n_diff, diff, sizeof(diff), &err) == JM_OK,
        "diff: %s", err.msg);
    ck_assert_msg(n_diff == 0, "replay differs in %s", diff);
    b.ap = jm_apply_new(b.pg, &err);
    sc_close(&b, 1);
}

static void replay_same(sc_t *a, int64_t wf)
{
    replay_n_same(a, wf, a->nlog);
}

/* A first bind's chunks are copied (apply_bind.c chunk_copy), a re-bind's go through the general
 * statement: both give the rows the general statement gives everywhere — tasks (pending counts of
 * a repeated and a missing upstream, null template/array, fallback queues, jsonb), edges,
 * counts, and transition_log in the same order (same seq) — also when chunks share a
 * transaction (the replay applies up to 1000 events per transaction). */
static void bind_both_ways(sc_t *sc, int64_t wf)
{
    task_def_t a[] = {{.id = 501}, {.id = 502, .up = {501}, .nup = 1}, {.id = 503}};
    task_def_t b[] = {{.id = 504, .up = {501, 502, 599}, .nup = 3},
                      {.id = 505, .up = {504, 504, 503}, .nup = 3, .memory = 2048}};
    bind_header(sc, wf, 6, 100);
    bind_chunk(sc, wf, 0, a, 3);
    char note[3000]; /* resources longer than chunk_copy's stack buffer */
    memset(note, 'n', sizeof(note) - 1);
    note[sizeof(note) - 1] = 0;
    json_t *plain =
        json_pack("[{s:I,s:s,s:s,s:n,s:n,s:s,s:i,s:{s:f,s:[i,s],s:s},s:{},s:[s,s],"
                  "s:s,s:[I]}]",
                  "task_id", (json_int_t)506, "name", "t\\a\tb\"", "command", "echo 'x\ny' \u00e9",
                  "template", "array_id", "node_hash", HEX, "max_attempts", 1, "resources",
                  "runtime", 1.5, "x", 1, "q", "note", note, "resource_scales", "fallback_queues",
                  "long.q", "all.q", "cluster", "dummy", "upstream", (json_int_t)505);
    ck_assert_int_eq(sc_apply(sc, JM_EV_WORKFLOW_BIND_TASKS, wf,
                              json_pack("{s:i,s:o}", "chunk", 2, "tasks", plain)),
                     JM_OUTCOME_APPLIED);
    bind_chunk(sc, wf, 1, b, 2);
    bind_bound(sc, wf, 6, 3);
    /* re-bind (the resume path): the same tasks again, one chunk */
    task_def_t all[] = {a[0], a[1], a[2], b[0], b[1]};
    all[0].max_attempts = 7;
    bind_header(sc, wf, 6, 100);
    bind_chunk(sc, wf, 0, all, 5);
}

START_TEST(test_bind_copy_identical)
{
    sc_t a, b;
    sc_open(&a);
    a.log_events = 1;
    bind_both_ways(&a, 50);
    ck_assert_int_eq(q_int(&a, "SELECT pending_upstreams FROM task WHERE id = 504"), 2);
    ck_assert_int_eq(q_int(&a, "SELECT pending_upstreams FROM task WHERE id = 505"), 2);
    ck_assert_int_eq(q_int(&a, "SELECT max_attempts FROM task WHERE id = 501"), 7);
    ck_assert_int_eq(q_int(&a, "SELECT count(*) FROM task_edge WHERE workflow_id = 50"), 7);
    /* the re-bind's chunk was tried by COPY once (its ids exist), then probed: general */
    ck_assert_int_eq(a.retries, 1);
    sc_open(&b);
    b.ap->bind_general = 1;
    for (size_t i = 0; i < a.nlog; i++)
        sc_apply_ev(&b, a.log[i], NULL);
    ck_assert_int_eq(b.retries, 0);
    const char *tables[] = {"task", "task_edge", "workflow_task_count", "transition_log",
                            "workflow"};
    assert_same_tables(&a, &b, tables, JM_ARRAY_LEN(tables), 1, "between COPY and statement");
    sc_close(&b, 1);
    /* the chunks in one transaction (copied), against the per-event statement applies */
    replay_same(&a, 50);
    sc_close(&a, 1);
}
END_TEST

/* The bind's final recompute runs only when a chunk may have stored a wrong pending count
 * (workflow.bind_recheck): not for chunks in topological order; yes for an upstream that comes in
 * a later chunk, one that never comes, one that is D, and a re-bind.  The invariants checked after
 * every event include pending_upstreams = the upstreams that exist and are not D, once bound. */
START_TEST(test_bind_recheck)
{
    sc_t sc;
    sc_open(&sc);
    const char *q = "SELECT bind_recheck::int FROM workflow WHERE id = %d";
    task_def_t a[] = {{.id = 701}, {.id = 702, .up = {701}, .nup = 1}};
    task_def_t a2[] = {{.id = 703, .up = {701, 702}, .nup = 2}, {.id = 704, .up = {703}, .nup = 1}};
    bind_header(&sc, 70, 4, 100);
    bind_chunk(&sc, 70, 0, a, 2);
    bind_chunk(&sc, 70, 1, a2, 2);
    bind_bound(&sc, 70, 4, 2);
    ck_assert_int_eq(q_int(&sc, q, 70), 0);
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 703"), 2);
    /* the next workflows share bind_header's tool and workflow_args: keep one of them at a time */
    const char *aside = "UPDATE workflow SET workflow_args_hash = 'aside' || id"
                        " WHERE workflow_args_hash = '" HEX "'";
    exec_ok(&sc, aside);
    /* out of order: 712's upstream 711 comes in the next chunk */
    task_def_t b[] = {{.id = 712, .up = {711}, .nup = 1}}, b2[] = {{.id = 711}};
    bind_header(&sc, 71, 2, 100);
    bind_chunk(&sc, 71, 0, b, 1);
    ck_assert_int_eq(q_int(&sc, q, 71), 1);
    bind_chunk(&sc, 71, 1, b2, 1);
    bind_bound(&sc, 71, 2, 2);
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 712"), 1);
    exec_ok(&sc, aside);
    /* an upstream that never comes, and one that is D (of another workflow): counts 0 */
    exec_ok(&sc, "UPDATE task SET status = 'D' WHERE id = 704");
    task_def_t c[] = {{.id = 721, .up = {799}, .nup = 1}, {.id = 722, .up = {704}, .nup = 1}};
    bind_header(&sc, 72, 2, 100);
    bind_chunk(&sc, 72, 0, c, 2);
    bind_bound(&sc, 72, 2, 1);
    ck_assert_int_eq(q_int(&sc, q, 72), 1);
    ck_assert_int_eq(q_int(&sc, "SELECT sum(pending_upstreams) FROM task WHERE workflow_id = 72"),
                     0);
    /* a re-bind recomputes */
    exec_ok(&sc, "UPDATE task SET status = 'G' WHERE id = 704");
    exec_ok(&sc, aside);
    exec_ok(&sc, "UPDATE workflow SET workflow_args_hash = '" HEX "' WHERE id = 70");
    bind_header(&sc, 70, 4, 100);
    ck_assert_int_eq(q_int(&sc, q, 70), 1);
    sc_close(&sc, 1);
}
END_TEST

/* A run start that queues 1,000 tasks in two resource groups: the in-memory pick numbers the
 * batches (chunks of 500 per group, numbered by their first id) and steps exactly as
 * AP_SCHED_PICK_FAST's window functions would (recomputed here in SQL). */
START_TEST(test_pick_layout_wide)
{
    sc_t sc;
    sc_open(&sc);
    enum { N = 1000 };
    task_def_t *t = jm_calloc(N, sizeof(*t));
    for (int i = 0; i < N; i++)
        t[i] = (task_def_t){.id = 7000 + i, .memory = i % 3 == 0 ? 2048 : 0};
    bind(&sc, 70, t, N, N + 10);
    start(&sc, 70);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance WHERE workflow_id = 70"), N);
    ck_assert_int_eq(q_int(&sc, "SELECT count(DISTINCT batch_num) FROM task_instance"
                                " WHERE workflow_id = 70"),
                     3); /* 666 = 500 + 166, and 334 */
    ck_assert_int_eq(
        q_int(&sc,
              "WITH g AS (SELECT ti.batch_num, ti.step, t.id, row_number() OVER (PARTITION BY"
              "   t.array_id, t.resources::text ORDER BY t.id) - 1 AS rn, t.array_id,"
              "   t.resources::text AS r FROM task_instance ti JOIN task t ON t.id = ti.task_id"
              "   WHERE ti.workflow_id = 70),"
              " c AS (SELECT *, min(id) OVER (PARTITION BY array_id, r, rn / 500) AS f FROM g)"
              " SELECT count(*) FROM (SELECT *, dense_rank() OVER (ORDER BY f) AS br FROM c) x"
              " WHERE step <> rn %% 500 OR batch_num <> br"),
        0);
    free(t);
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_retry_then_done)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 21}};
    bind(&sc, 2, t, 1, 100);
    start(&sc, 2);
    run_ti(&sc, 2, jm_hash_ti_id(21, 1), 'E');
    ck_assert_int_eq(q_char(&sc, "SELECT status FROM task WHERE id = 21"), 'Q');
    ck_assert_int_eq(q_int(&sc, "SELECT num_attempts FROM task WHERE id = 21"), 2);
    ck_assert_int_eq(q_char(&sc, "SELECT status FROM task_instance ORDER BY attempt LIMIT 1"), 'E');
    drive(&sc, 2, NULL, 0, 0, 0);
    ck_assert_int_eq(wf_status(&sc, 2), 'D');
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance"), 2);
    sc_close(&sc, 1);
}
END_TEST

/* a → b1 b2 b3 → c1 c2 c3 (bi → ci) → d; b2 always fails. */
static void fork_join(sc_t *sc, int64_t wf)
{
    task_def_t t[] = {{.id = 31},
                      {.id = 32, .up = {31}, .nup = 1, .max_attempts = 2},
                      {.id = 33, .up = {31}, .nup = 1, .max_attempts = 2},
                      {.id = 34, .up = {31}, .nup = 1, .max_attempts = 2},
                      {.id = 35, .up = {32}, .nup = 1},
                      {.id = 36, .up = {33}, .nup = 1},
                      {.id = 37, .up = {34}, .nup = 1},
                      {.id = 38, .up = {35, 36, 37}, .nup = 3}};
    bind(sc, wf, t, 8, 100);
    start(sc, wf);
    int64_t fail[] = {33};
    drive(sc, wf, fail, 1, 'E', 0);
}

START_TEST(test_attempts_exhausted)
{
    sc_t sc;
    sc_open(&sc);
    fork_join(&sc, 3);
    ck_assert_int_eq(q_char(&sc, "SELECT status FROM task WHERE id = 33"), 'F');
    ck_assert_int_eq(q_int(&sc, "SELECT num_attempts FROM task WHERE id = 33"), 2);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance WHERE task_id IN (36, 38)"), 0);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status = 'D'"), 5);
    ck_assert_int_eq(run_status(&sc), 'E');
    ck_assert_int_eq(wf_status(&sc, 3), 'F');
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_resource_error_scaled)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 41, .memory = 1024}};
    bind(&sc, 4, t, 1, 100);
    start(&sc, 4);
    run_ti(&sc, 4, jm_hash_ti_id(41, 1), 'Z');
    ck_assert_int_eq(q_int(&sc, "SELECT (resources->>'memory')::int FROM task WHERE id = 41"),
                     1536);
    ck_assert_int_eq(q_char(&sc, "SELECT status FROM task WHERE id = 41"), 'Q');
    ck_assert_int_eq(q_int(&sc, "SELECT (resources->>'memory')::int FROM task_instance"
                                " WHERE status = 'Q'"),
                     1536);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM transition_log WHERE entity = 'task'"
                                " AND to_status = 'A'"),
                     1);
    drive(&sc, 4, NULL, 0, 0, 0);
    ck_assert_int_eq(wf_status(&sc, 4), 'D');
    sc_close(&sc, 1);
}
END_TEST

/* A resume scales once more the resources of a task that failed because its last instance was
 * killed for resources (Jobmon's increase_resources): with the same request it would be killed
 * again.  The base is the killed instance's request even after a re-bind wrote the file's smaller
 * one back.  A task that failed otherwise keeps its request.  The replay gives the same rows. */
START_TEST(test_resume_scales_resource_killed)
{
    sc_t sc;
    sc_open(&sc);
    sc.log_events = 1;
    task_def_t t[] = {{.id = 421, .memory = 1024, .max_attempts = 2},
                      {.id = 422, .memory = 1024, .max_attempts = 1},
                      {.id = 423}};
    bind(&sc, 42, t, 3, 100);
    start(&sc, 42);
    run_ti(&sc, 42, jm_hash_ti_id(421, 1), 'Z'); /* 1024 killed → 1536, retried */
    run_ti(&sc, 42, jm_hash_ti_id(421, 2), 'Z'); /* 1536 killed, no attempt left */
    run_ti(&sc, 42, jm_hash_ti_id(422, 1), 'E');
    run_ti(&sc, 42, jm_hash_ti_id(423, 1), 0);
    ck_assert_int_eq(wf_status(&sc, 42), 'F');
    ck_assert_int_eq(q_char(&sc, "SELECT status FROM task WHERE id = 421"), 'F');
    ck_assert_int_eq(q_int(&sc, "SELECT (resources->>'memory')::int FROM task WHERE id = 421"),
                     1536);   /* not scaled when it failed */
    bind(&sc, 42, t, 3, 100); /* the re-bind of `jobmon run --resume`: the file's 1024 again */
    ck_assert_int_eq(q_int(&sc, "SELECT (resources->>'memory')::int FROM task WHERE id = 421"),
                     1024);
    ck_assert_int_eq(sc_apply(&sc, JM_EV_RUN_START, 42,
                              json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id", (json_int_t)779,
                                        "cluster", "dummy", "user", "u", "host", "h", "fail_fast",
                                        0, "timeout_s", 0, "resume", "cold")),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(q_int(&sc, "SELECT (resources->>'memory')::int FROM task WHERE id = 421"),
                     2304); /* 1536 × 1.5 */
    ck_assert_int_eq(q_int(&sc, "SELECT (resources->>'memory')::int FROM task WHERE id = 422"),
                     1024);
    ck_assert_int_eq(q_int(&sc, "SELECT (resources->>'memory')::int FROM task_instance"
                                " WHERE task_id = 421 AND run_id = 779"),
                     2304);
    ck_assert_int_eq(q_char(&sc, "SELECT status FROM task WHERE id = 423"), 'D');
    replay_same(&sc, 42);
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_concurrency_limit)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[8];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < 8; i++)
        t[i].id = 51 + i;
    bind(&sc, 5, t, 8, 2);
    start(&sc, 5);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status = 'Q'"), 2);
    run_ti(&sc, 5, jm_hash_ti_id(51, 1), 0);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status IN ('Q','I','O','R')"), 2);
    ck_assert_int_eq(sc_apply(&sc, JM_EV_WORKFLOW_CONCURRENCY, 5,
                              json_pack("{s:i,s:n}", "max_concurrently_running", 5, "template")),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status IN ('Q','I','O','R')"), 5);
    drive(&sc, 5, NULL, 0, 0, 5);
    ck_assert_int_eq(wf_status(&sc, 5), 'D');
    sc_close(&sc, 1);
}
END_TEST

static const char *const model_tables[] = {"workflow",           "workflow_run", "task",
                                           "task_instance",      "task_array",   "task_edge",
                                           "workflow_task_count"};

/* The rows of `table`; without evids, without the event ids a row keeps (task.bind_event_id). */
static char *table_digest(sc_t *sc, const char *table, int evids)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT md5(COALESCE(string_agg(x::text, '|' ORDER BY x::text),"
             " '')) FROM (SELECT %s FROM %s x) x",
             evids ? "x" : "to_jsonb(x) - 'bind_event_id'", table);
    PGresult *r = PQexec(jm_pg_conn(sc->pg), sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    char *d = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return d;
}

/* Each of `tables` has the same rows in a's and b's schemas (event ids included when evids);
 * `what` names the difference. */
static void assert_same_tables(sc_t *a, sc_t *b, const char *const *tables, size_t n, int evids,
                               const char *what)
{
    for (size_t i = 0; i < n; i++) {
        char *da = table_digest(a, tables[i], evids), *db = table_digest(b, tables[i], evids);
        ck_assert_msg(strcmp(da, db) == 0, "table %s differs %s", tables[i], what);
        free(da);
        free(db);
    }
}

START_TEST(test_replay_identical)
{
    sc_t a, b;
    sc_open(&a);
    fork_join(&a, 6);
    ck_assert_int_eq(run_status(&a), 'E');
    sc_open(&b);
    for (size_t i = 0; i < a.nlog; i++)
        sc_apply_ev(&b, a.log[i], NULL);
    /* b's search_path is its own schema */
    assert_same_tables(&a, &b, model_tables, JM_ARRAY_LEN(model_tables), 1, "after replay");
    sc_close(&b, 1);
    sc_close(&a, 1);
}
END_TEST

START_TEST(test_cold_resume)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 71}, {.id = 72}};
    bind(&sc, 7, t, 2, 1); /* limit 1: 71 runs, 72 waits in G */
    start(&sc, 7);
    int64_t ti71 = jm_hash_ti_id(71, 1);
    ck_assert_int_eq(sc_apply(&sc, JM_EV_TI_INSTANTIATED, 7,
                              json_pack("{s:I,s:[{s:I}]}", "run_id", (json_int_t)RUN_ID, "items",
                                        "ti_id", (json_int_t)ti71)),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(
        sc_apply(&sc, JM_EV_TI_LAUNCHED, 7,
                 json_pack("{s:I,s:i,s:[{s:I,s:s}]}", "run_id", (json_int_t)RUN_ID, "next_report_s",
                           300, "items", "ti_id", (json_int_t)ti71, "distributor_id", "42")),
        JM_OUTCOME_APPLIED);
    /* a second run without resume is refused while the first is alive */
    ck_assert_int_eq(sc_apply(&sc, JM_EV_RUN_START, 7,
                              json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id", (json_int_t)778,
                                        "cluster", "dummy", "user", "u", "host", "h", "fail_fast",
                                        0, "timeout_s", 0, "resume", "none")),
                     JM_OUTCOME_REJECTED);
    ck_assert_int_eq(sc_apply(&sc, JM_EV_RUN_START, 7,
                              json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id", (json_int_t)778,
                                        "cluster", "dummy", "user", "u", "host", "h", "fail_fast",
                                        0, "timeout_s", 0, "resume", "cold")),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(run_status(&sc), 'T');
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT status FROM task_instance WHERE id = %lld", (long long)ti71);
    ck_assert_int_eq(q_char(&sc, sql), 'K');
    /* 71 was reset and requeued for the new run with a fresh instance id; the K'd instance is
     * adopted by the new run (its distributor is the one that kills it) */
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance WHERE run_id = 778"), 2);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance WHERE run_id = 778"
                                " AND status = 'Q'"),
                     1);
    ck_assert_int_eq(
        q_int(&sc, "SELECT run_id FROM task_instance WHERE id = %lld", (long long)ti71), 778);
    ck_assert_int_eq(q_int(&sc, "SELECT ti_seq FROM task WHERE id = 71"), 2);
    ck_assert_int_eq(q_int(&sc, "SELECT num_attempts FROM task WHERE id = 71"), 1);
    ck_assert_int_eq(sc_apply(&sc, JM_EV_TI_KILLED, 7,
                              json_pack("{s:I,s:[{s:I}]}", "run_id", (json_int_t)778, "items",
                                        "ti_id", (json_int_t)ti71)),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(q_char(&sc, sql), 'F');
    ck_assert_int_eq(q_char(&sc, "SELECT status FROM task WHERE id = 71"), 'Q');
    check_counts(&sc, 7);
    sc_close(&sc, 1);
}
END_TEST

/* ---- event helpers (one event each; return the outcome) ------------------------------------ */

#define JI(v) ((json_int_t)(v))

/* run.start of `run` by `user` */
static jm_outcome_t start_run_by(sc_t *sc, int64_t wf, int64_t run, const char *resume, int ff,
                                 int timeout_s, const char *user)
{
    return sc_apply(sc, JM_EV_RUN_START, wf,
                    json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id", JI(run), "cluster",
                              "dummy", "user", user, "host", "h", "fail_fast", ff, "timeout_s",
                              timeout_s, "resume", resume));
}

static jm_outcome_t start_run(sc_t *sc, int64_t wf, int64_t run, const char *resume, int ff,
                              int timeout_s)
{
    return start_run_by(sc, wf, run, resume, ff, timeout_s, "u");
}

static void run_up(sc_t *sc, int64_t wf, int64_t run)
{
    const char *st[] = {"I", "O", "R"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(sc_apply(sc, JM_EV_RUN_STATUS, wf,
                                  json_pack("{s:I,s:s}", "run_id", JI(run), "status", st[i])),
                         JM_OUTCOME_APPLIED);
}

static jm_outcome_t ev_items(sc_t *sc, jm_event_type_t type, int64_t wf, int64_t ti)
{
    return sc_apply(sc, type, wf,
                    json_pack("{s:I,s:[{s:I}]}", "run_id", JI(RUN_ID), "items", "ti_id", JI(ti)));
}

static jm_outcome_t ev_launched(sc_t *sc, int64_t wf, int64_t ti, int secs)
{
    return sc_apply(sc, JM_EV_TI_LAUNCHED, wf,
                    json_pack("{s:I,s:i,s:[{s:I,s:s}]}", "run_id", JI(RUN_ID), "next_report_s",
                              secs, "items", "ti_id", JI(ti), "distributor_id", "42"));
}

static jm_outcome_t ev_launch_hb(sc_t *sc, int64_t wf, int64_t ti, int secs)
{
    return sc_apply(sc, JM_EV_TI_LAUNCH_HEARTBEAT, wf,
                    json_pack("{s:I,s:i,s:[{s:I}]}", "run_id", JI(RUN_ID), "next_report_s", secs,
                              "items", "ti_id", JI(ti)));
}

static jm_outcome_t ev_running(sc_t *sc, int64_t wf, int64_t ti, int secs)
{
    return sc_apply(sc, JM_EV_TI_RUNNING, wf,
                    json_pack("{s:I,s:s,s:i,s:s,s:i,s:s,s:s}", "ti_id", JI(ti), "host", "node1",
                              "pid", 99, "distributor_id", "42", "next_report_s", secs,
                              "stdout_path", "/o", "stderr_path", "/e"));
}

static jm_outcome_t ev_heartbeat(sc_t *sc, int64_t wf, int64_t ti, int secs)
{
    return sc_apply(sc, JM_EV_TI_HEARTBEAT, wf,
                    json_pack("{s:I,s:i}", "ti_id", JI(ti), "next_report_s", secs));
}

static jm_outcome_t ev_done(sc_t *sc, int64_t wf, int64_t ti)
{
    return sc_apply(sc, JM_EV_TI_DONE, wf,
                    json_pack("{s:I,s:s,s:s,s:{s:i,s:i,s:i}}", "ti_id", JI(ti), "stdout_tail", "ok",
                              "stderr_tail", "", "usage", "wall_ms", 10, "cpu_ms", 5, "maxrss_kb",
                              100));
}

/* `what` is one status letter, as a string */
static jm_outcome_t ev_status_items(sc_t *sc, jm_event_type_t type, int64_t wf, int64_t ti,
                                    const char *what)
{
    json_t *item = json_pack("{s:I,s:s}", "ti_id", JI(ti), "status", what);
    json_t *p;
    if (type == JM_EV_TI_TRIAGED) {
        json_object_set_new(item, "message", json_string("triaged"));
        p = json_pack("{s:I,s:[o]}", "run_id", JI(RUN_ID), "items", item);
    } else {
        p = json_pack("{s:[o]}", "items", item);
    }
    return sc_apply(sc, type, wf, p);
}

static jm_outcome_t ev_run(sc_t *sc, jm_event_type_t type, int64_t wf, int64_t run)
{
    return sc_apply(sc, type, wf, json_pack("{s:I}", "run_id", JI(run)));
}

/* Operator events, published by `user` (reference §3.11 checks it against the runs' users). */
static jm_outcome_t ev_reset(sc_t *sc, int64_t wf, int partial, const char *user)
{
    return sc_apply(sc, JM_EV_WORKFLOW_RESET, wf,
                    json_pack("{s:b,s:s}", "partial", partial, "user", user));
}

static jm_outcome_t ev_set_status(sc_t *sc, int64_t wf, json_t *task_ids, const char *status,
                                  int recursive, const char *user)
{
    return sc_apply(sc, JM_EV_TASK_SET_STATUS, wf,
                    json_pack("{s:o,s:s,s:b,s:s}", "task_ids", task_ids, "status", status,
                              "recursive", recursive, "user", user));
}

/* Instantiate, launch and start one instance (ends R). */
static void to_running(sc_t *sc, int64_t wf, int64_t ti, int secs)
{
    ck_assert_int_eq(ev_items(sc, JM_EV_TI_INSTANTIATED, wf, ti), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_launched(sc, wf, ti, 300), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_running(sc, wf, ti, secs), JM_OUTCOME_APPLIED);
}

static char st_of(sc_t *sc, const char *table, int64_t id)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT status FROM %s WHERE id = %lld", table, (long long)id);
    return q_char(sc, sql);
}
#define TI_ST(sc, id)     st_of(sc, "task_instance", id)
#define TASK_ST(sc, id)   st_of(sc, "task", id)
#define RUN_ST(sc, id)    st_of(sc, "workflow_run", id)
#define WF_ST(sc, id)     st_of(sc, "workflow", id)
#define TI(task, attempt) jm_hash_ti_id(task, attempt)

static int64_t n_log(sc_t *sc, const char *entity, int64_t id, char from, char to)
{
    return q_int(sc,
                 "SELECT count(*) FROM transition_log WHERE entity = '%s' AND entity_id = %lld"
                 " AND from_status = '%c' AND to_status = '%c'",
                 entity, (long long)id, from, to);
}

/* ---- resume, reset, operator --------------------------------------------------------------- */

START_TEST(test_hot_resume)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 81}, {.id = 82}, {.id = 83}};
    bind(&sc, 8, t, 3, 2);
    start(&sc, 8);
    to_running(&sc, 8, TI(81, 1), 300);
    ck_assert_int_eq(ev_items(&sc, JM_EV_TI_INSTANTIATED, 8, TI(82, 1)), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_launched(&sc, 8, TI(82, 1), 300), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(start_run(&sc, 8, 778, "hot", 0, 0), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'T');
    ck_assert_int_eq(RUN_ST(&sc, 778), 'B');
    ck_assert_int_eq(WF_ST(&sc, 8), 'Q');
    /* the running instance survives, keeps its task R and is adopted by the new run */
    ck_assert_int_eq(TI_ST(&sc, TI(81, 1)), 'R');
    ck_assert_int_eq(TASK_ST(&sc, 81), 'R');
    ck_assert_int_eq(
        q_int(&sc, "SELECT run_id FROM task_instance WHERE id = %lld", (long long)TI(81, 1)), 778);
    /* the launched one is killed (O -> K), adopted, and its task requeued for the new run */
    ck_assert_int_eq(TI_ST(&sc, TI(82, 1)), 'K');
    ck_assert_int_eq(n_log(&sc, "task_instance", TI(82, 1), 'O', 'K'), 1);
    ck_assert_int_eq(
        q_int(&sc, "SELECT run_id FROM task_instance WHERE id = %lld", (long long)TI(82, 1)), 778);
    ck_assert_int_eq(TI_ST(&sc, TI(82, 2)), 'Q');
    ck_assert_int_eq(TASK_ST(&sc, 82), 'Q');
    ck_assert_int_eq(q_int(&sc, "SELECT num_attempts FROM task WHERE id = 82"), 1);
    /* limit 2: 81 (R) and 82 (Q) are active, 83 waits */
    ck_assert_int_eq(TASK_ST(&sc, 83), 'G');
    ck_assert_int_eq(ev_items(&sc, JM_EV_TI_KILLED, 8, TI(82, 1)), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, TI(82, 1)), 'F');
    ck_assert_int_eq(TASK_ST(&sc, 82), 'Q');
    run_up(&sc, 8, 778);
    ck_assert_int_eq(ev_done(&sc, 8, TI(81, 1)), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TASK_ST(&sc, 81), 'D');
    ck_assert_int_eq(TASK_ST(&sc, 83), 'Q');
    drive(&sc, 8, NULL, 0, 0, 2);
    ck_assert_int_eq(WF_ST(&sc, 8), 'D');
    ck_assert_int_eq(RUN_ST(&sc, 778), 'D');
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_resume_signal_cold)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 91}, {.id = 92}, {.id = 93}, {.id = 94}};
    bind(&sc, 9, t, 4, 3);
    start(&sc, 9);
    to_running(&sc, 9, TI(91, 1), 300);
    ck_assert_int_eq(ev_items(&sc, JM_EV_TI_INSTANTIATED, 9, TI(92, 1)), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_launched(&sc, 9, TI(92, 1), 300), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(sc_apply(&sc, JM_EV_WORKFLOW_RESUME, 9, json_pack("{s:s}", "mode", "cold")),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'C');
    ck_assert_int_eq(WF_ST(&sc, 9), 'R');
    ck_assert_int_eq(TI_ST(&sc, TI(91, 1)), 'K');
    ck_assert_int_eq(TI_ST(&sc, TI(92, 1)), 'K');
    ck_assert_int_eq(TI_ST(&sc, TI(93, 1)), 'F');
    for (int64_t id = 91; id <= 94; id++)
        ck_assert_int_eq(TASK_ST(&sc, id), 'G');
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance"), 3); /* nothing queued */
    /* a second signal is ignored */
    ck_assert_int_eq(sc_apply(&sc, JM_EV_WORKFLOW_RESUME, 9, json_pack("{s:s}", "mode", "hot")),
                     JM_OUTCOME_IGNORED);
    ck_assert_int_eq(ev_items(&sc, JM_EV_TI_KILLED, 9, TI(91, 1)), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'C'); /* 92 still to be killed */
    /* the worker of a K instance finishing normally does not touch its (reset) task */
    ck_assert_int_eq(ev_done(&sc, 9, TI(92, 1)), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, TI(92, 1)), 'D');
    ck_assert_int_eq(TASK_ST(&sc, 92), 'G');
    /* drained: C -> T, workflow H */
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'T');
    ck_assert_int_eq(WF_ST(&sc, 9), 'H');
    ck_assert_int_eq(sc_apply(&sc, JM_EV_WORKFLOW_RESUME, 9, json_pack("{s:s}", "mode", "cold")),
                     JM_OUTCOME_IGNORED);
    /* the next run starts from scratch */
    ck_assert_int_eq(start_run(&sc, 9, 778, "cold", 0, 0), JM_OUTCOME_APPLIED);
    run_up(&sc, 9, 778);
    drive(&sc, 9, NULL, 0, 0, 3);
    ck_assert_int_eq(WF_ST(&sc, 9), 'D');
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_resume_signal_hot)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 95}, {.id = 96}};
    bind(&sc, 10, t, 2, 10);
    start(&sc, 10);
    to_running(&sc, 10, TI(95, 1), 300);
    ck_assert_int_eq(ev_items(&sc, JM_EV_TI_INSTANTIATED, 10, TI(96, 1)), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_launched(&sc, 10, TI(96, 1), 300), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(sc_apply(&sc, JM_EV_WORKFLOW_RESUME, 10, json_pack("{s:s}", "mode", "hot")),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'H');
    ck_assert_int_eq(TI_ST(&sc, TI(95, 1)), 'R');
    ck_assert_int_eq(TASK_ST(&sc, 95), 'R');
    ck_assert_int_eq(TI_ST(&sc, TI(96, 1)), 'K');
    ck_assert_int_eq(TASK_ST(&sc, 96), 'G');
    ck_assert_int_eq(ev_items(&sc, JM_EV_TI_KILLED, 10, TI(96, 1)), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'H'); /* 95 still running */
    ck_assert_int_eq(ev_heartbeat(&sc, 10, TI(95, 1), 300), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_done(&sc, 10, TI(95, 1)), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TASK_ST(&sc, 95), 'D');
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'T');
    ck_assert_int_eq(WF_ST(&sc, 10), 'H');
    ck_assert_int_eq(start_run(&sc, 10, 778, "hot", 0, 0), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, TI(96, 2)), 'Q');
    run_up(&sc, 10, 778);
    drive(&sc, 10, NULL, 0, 0, 0);
    ck_assert_int_eq(WF_ST(&sc, 10), 'D');
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_workflow_reset)
{
    sc_t sc;
    sc_open(&sc);
    fork_join(&sc, 11); /* 33 F, 36 and 38 never queued, 5 D; run E, workflow F */
    ck_assert_int_eq(WF_ST(&sc, 11), 'F');
    /* refused while a run is alive */
    ck_assert_int_eq(start_run(&sc, 11, 778, "cold", 0, 0), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, TI(33, 3)), 'Q');
    ck_assert_int_eq(ev_reset(&sc, 11, 1, "u"), JM_OUTCOME_REJECTED);
    ck_assert_int_eq(ev_run(&sc, JM_EV_RUN_STOP, 11, 778), JM_OUTCOME_APPLIED); /* B -> S */
    ck_assert_int_eq(RUN_ST(&sc, 778), 'S');
    /* partial: everything but D back to G with no attempts used */
    ck_assert_int_eq(ev_reset(&sc, 11, 1, "u"), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(WF_ST(&sc, 11), 'G');
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status = 'D'"), 5);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status = 'G'"), 3);
    ck_assert_int_eq(q_int(&sc, "SELECT num_attempts FROM task WHERE id = 33"), 0);
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 38"), 1);
    /* full: every task G, pending counts from scratch */
    ck_assert_int_eq(ev_reset(&sc, 11, 0, "u"), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status = 'G'"), 8);
    ck_assert_int_eq(q_int(&sc, "SELECT sum(num_attempts) FROM task"), 0);
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 38"), 3);
    ck_assert_int_eq(q_int(&sc, "SELECT n FROM workflow_task_count WHERE status = 'D'"), 0);
    /* the next run re-executes everything; the stopped run's queued instance is settled */
    ck_assert_int_eq(start_run(&sc, 11, 779, "none", 0, 0), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, TI(33, 3)), 'F');
    run_up(&sc, 11, 779);
    drive(&sc, 11, NULL, 0, 0, 0);
    ck_assert_int_eq(WF_ST(&sc, 11), 'D');
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance WHERE run_id = 779"
                                " AND status = 'D'"),
                     8);
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_set_status_g_done_workflow)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 111},
                      {.id = 112, .up = {111}, .nup = 1},
                      {.id = 113, .up = {111}, .nup = 1},
                      {.id = 114, .up = {112, 113}, .nup = 2}};
    bind(&sc, 12, t, 4, 100);
    start(&sc, 12);
    drive(&sc, 12, NULL, 0, 0, 0);
    ck_assert_int_eq(WF_ST(&sc, 12), 'D');
    ck_assert_int_eq(ev_set_status(&sc, 12, json_pack("[I]", JI(112)), "G", 1, "u"),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TASK_ST(&sc, 111), 'D');
    ck_assert_int_eq(TASK_ST(&sc, 112), 'G');
    ck_assert_int_eq(TASK_ST(&sc, 113), 'D');
    ck_assert_int_eq(TASK_ST(&sc, 114), 'G');
    ck_assert_int_eq(q_int(&sc, "SELECT num_attempts FROM task WHERE id = 114"), 0);
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 114"), 1);
    ck_assert_int_eq(WF_ST(&sc, 12), 'F'); /* so it can be resumed */
    ck_assert_int_eq(start_run(&sc, 12, 778, "cold", 0, 0), JM_OUTCOME_APPLIED);
    run_up(&sc, 12, 778);
    drive(&sc, 12, NULL, 0, 0, 0);
    ck_assert_int_eq(WF_ST(&sc, 12), 'D');
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance WHERE run_id = 778"), 2);
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_set_status_g_active)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 121}, {.id = 122, .up = {121}, .nup = 1}};
    bind(&sc, 13, t, 2, 100);
    start(&sc, 13);
    to_running(&sc, 13, TI(121, 1), 300);
    ck_assert_int_eq(ev_set_status(&sc, 13, json_pack("[I]", JI(121)), "G", 1, "u"),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, TI(121, 1)), 'K');
    /* the alive run queues it again at once, with a fresh instance and budget */
    ck_assert_int_eq(TASK_ST(&sc, 121), 'Q');
    ck_assert_int_eq(TI_ST(&sc, TI(121, 2)), 'Q');
    ck_assert_int_eq(q_int(&sc, "SELECT num_attempts FROM task WHERE id = 121"), 1);
    ck_assert_int_eq(ev_items(&sc, JM_EV_TI_KILLED, 13, TI(121, 1)), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, TI(121, 1)), 'F');
    ck_assert_int_eq(TASK_ST(&sc, 121), 'Q');
    drive(&sc, 13, NULL, 0, 0, 0);
    ck_assert_int_eq(WF_ST(&sc, 13), 'D');
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_set_status_d)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 131, .max_attempts = 1},
                      {.id = 132, .up = {131}, .nup = 1},
                      {.id = 133, .up = {132}, .nup = 1}};
    bind(&sc, 14, t, 3, 100);
    start(&sc, 14);
    run_ti(&sc, 14, TI(131, 1), 'E');
    ck_assert_int_eq(TASK_ST(&sc, 131), 'F');
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'E');
    ck_assert_int_eq(WF_ST(&sc, 14), 'F');
    ck_assert_int_eq(ev_set_status(&sc, 14, json_pack("[I]", JI(131)), "D", 0, "u"),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TASK_ST(&sc, 131), 'D');
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 132"), 0);
    ck_assert_int_eq(q_int(&sc, "SELECT pending_upstreams FROM task WHERE id = 133"), 1);
    ck_assert_int_eq(WF_ST(&sc, 14), 'F');
    ck_assert_int_eq(ev_set_status(&sc, 14, json_pack("[I,I]", JI(132), JI(133)), "D", 0, "u"),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(WF_ST(&sc, 14), 'D');
    ck_assert_int_eq(q_int(&sc, "SELECT n FROM workflow_task_count WHERE status = 'D'"), 3);
    sc_close(&sc, 1);
}
END_TEST

/* Reference §3.11 ownership: only the user of the most recent errored run may reset, a task
 * status update needs the user of any run; a violation is rejected with its reason (event_log)
 * and changes nothing. */
START_TEST(test_operator_ownership)
{
    sc_t sc;
    sc_open(&sc);
    sc.log_events = 1;
    fork_join(&sc, 18); /* run 777 by u errored, workflow F */
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'E');
    int64_t nlog = q_int(&sc, "SELECT count(*) FROM transition_log");
    ck_assert_int_eq(ev_reset(&sc, 18, 0, "v"), JM_OUTCOME_REJECTED);
    ck_assert_str_eq(sc.reason,
                     "workflow 18: user v did not start its last errored run 777 (user u)");
    ck_assert_int_eq(ev_set_status(&sc, 18, json_pack("[I]", JI(33)), "G", 1, "v"),
                     JM_OUTCOME_REJECTED);
    ck_assert_str_eq(sc.reason, "workflow 18: user v started none of its runs");
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM transition_log"), nlog);
    ck_assert_int_eq(WF_ST(&sc, 18), 'F');
    ck_assert_int_eq(TASK_ST(&sc, 33), 'F');
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM event_log WHERE outcome = 'rejected'"
                                " AND reason LIKE 'workflow 18: user v %%'"),
                     2);
    /* the owner may */
    ck_assert_int_eq(ev_reset(&sc, 18, 1, "u"), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(WF_ST(&sc, 18), 'G');
    ck_assert_int_eq(TASK_ST(&sc, 33), 'G');
    /* v runs it next and that run errors (heartbeat lost): now only v may reset */
    ck_assert_int_eq(start_run_by(&sc, 18, 778, "none", 0, 0, "v"), JM_OUTCOME_APPLIED);
    run_up(&sc, 18, 778);
    sc.ts += 100000;
    ck_assert_int_eq(ev_run(&sc, JM_EV_REAPER_RUN_LOST, 18, 778), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, 778), 'E');
    ck_assert_int_eq(ev_reset(&sc, 18, 1, "u"), JM_OUTCOME_REJECTED);
    ck_assert_str_eq(sc.reason,
                     "workflow 18: user u did not start its last errored run 778 (user v)");
    ck_assert_int_eq(ev_reset(&sc, 18, 1, "v"), JM_OUTCOME_APPLIED);
    /* both started a run: both may update task statuses */
    ck_assert_int_eq(ev_set_status(&sc, 18, json_pack("[I]", JI(31)), "G", 1, "u"),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TASK_ST(&sc, 35), 'G');
    ck_assert_int_eq(ev_set_status(&sc, 18, json_pack("[I]", JI(31)), "D", 0, "v"),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TASK_ST(&sc, 31), 'D');

    sc_close(&sc, 1);

    /* a workflow without an errored run cannot be reset; nobody owns one without runs */
    sc_open(&sc);
    task_def_t t[] = {{.id = 171}};
    bind(&sc, 19, t, 1, 10);
    ck_assert_int_eq(ev_set_status(&sc, 19, json_pack("[I]", JI(171)), "D", 0, "u"),
                     JM_OUTCOME_REJECTED);
    ck_assert_str_eq(sc.reason, "workflow 19: user u started none of its runs");
    ck_assert_int_eq(start_run(&sc, 19, 790, "none", 0, 0), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_run(&sc, JM_EV_RUN_STOP, 19, 790), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_reset(&sc, 19, 0, "u"), JM_OUTCOME_REJECTED);
    ck_assert_str_eq(sc.reason, "workflow 19: has no errored run (a reset needs its user)");
    ck_assert_int_eq(ev_reset(&sc, 12345, 0, "u"), JM_OUTCOME_REJECTED);
    ck_assert_str_eq(sc.reason, "workflow 12345: unknown");
    sc_close(&sc, 1);
}
END_TEST

/* §3.11: a reset ends a resume hand-over run (C/H) whose heartbeat lapsed by the event's ts, as
 * reaper.run_lost would (T; cold: its R instances K, hot: left R), and is rejected while that run
 * still heartbeats.  _i: 0 cold, 1 hot. */
START_TEST(test_reset_lapsed_handover)
{
    const char *mode = _i == 0 ? "cold" : "hot";
    char hand = _i == 0 ? 'C' : 'H';
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 181}, {.id = 182}};
    bind(&sc, 20, t, 2, 10);
    ck_assert_int_eq(start_run(&sc, 20, 776, "none", 0, 0), JM_OUTCOME_APPLIED);
    run_up(&sc, 20, 776);
    sc.ts += 100000;
    ck_assert_int_eq(ev_run(&sc, JM_EV_REAPER_RUN_LOST, 20, 776), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, 776), 'E'); /* the errored run: u may reset */
    ck_assert_int_eq(start_run(&sc, 20, RUN_ID, "cold", 0, 0), JM_OUTCOME_APPLIED);
    run_up(&sc, 20, RUN_ID);
    int64_t ti =
        q_int(&sc, "SELECT min(id) FROM task_instance WHERE run_id = %d AND status = 'Q'", RUN_ID);
    to_running(&sc, 20, ti, 600);
    ck_assert_int_eq(sc_apply(&sc, JM_EV_WORKFLOW_RESUME, 20, json_pack("{s:s}", "mode", mode)),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), hand);
    char wst = WF_ST(&sc, 20);
    /* its heartbeat (run.start + 93 s) has not lapsed: rejected, nothing changed */
    ck_assert_int_eq(ev_reset(&sc, 20, 0, "u"), JM_OUTCOME_REJECTED);
    char want[128];
    snprintf(want, sizeof(want),
             "workflow 20: run %d is handing over (%c) and its heartbeat has not lapsed", RUN_ID,
             hand);
    ck_assert_str_eq(sc.reason, want);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), hand);
    ck_assert_int_eq(WF_ST(&sc, 20), wst);
    /* lapsed: the reset ends it, then resets */
    sc.ts += 100000;
    ck_assert_int_eq(ev_reset(&sc, 20, 0, "u"), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'T');
    ck_assert_int_eq(q_int(&sc,
                           "SELECT count(*) FROM transition_log WHERE entity = 'workflow_run'"
                           " AND entity_id = %d AND from_status = '%c' AND to_status = 'T'"
                           " AND event_id = '%s'",
                           RUN_ID, hand, sc.log[sc.nlog - 1]->id),
                     1);
    ck_assert_int_eq(TI_ST(&sc, ti), _i == 0 ? 'K' : 'R');
    ck_assert_int_eq(WF_ST(&sc, 20), 'G');
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status = 'G'"), 2);
    /* the next run takes over what is left */
    ck_assert_int_eq(start_run(&sc, 20, 778, "none", 0, 0), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, ti), 'K');
    ck_assert_int_eq(q_int(&sc, "SELECT run_id FROM task_instance WHERE id = %lld", (long long)ti),
                     778);
    sc_close(&sc, 1);
}
END_TEST

/* ---- runs ------------------------------------------------------------------------------------ */

START_TEST(test_run_stop)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 141}, {.id = 142}, {.id = 143}, {.id = 144}};
    bind(&sc, 15, t, 4, 2);
    start(&sc, 15);
    ck_assert_int_eq(ev_run(&sc, JM_EV_RUN_STOP, 15, RUN_ID), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'S');
    ck_assert_int_eq(WF_ST(&sc, 15), 'F');
    run_ti(&sc, 15, TI(141, 1), 0);
    ck_assert_int_eq(TASK_ST(&sc, 141), 'D');
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance"), 2); /* nothing new */
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'S');
    ck_assert_int_eq(ev_run(&sc, JM_EV_RUN_STOP, 15, RUN_ID), JM_OUTCOME_REJECTED);
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_run_lost)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 151}};
    bind(&sc, 16, t, 1, 10);
    start(&sc, 16); /* first heartbeat deadline: run.start + 93 s */
    ck_assert_int_eq(ev_run(&sc, JM_EV_REAPER_RUN_LOST, 16, RUN_ID), JM_OUTCOME_IGNORED);
    sc.ts += 80000;
    ck_assert_int_eq(sc_apply(&sc, JM_EV_RUN_HEARTBEAT, 16,
                              json_pack("{s:I,s:i}", "run_id", JI(RUN_ID), "next_report_s", 60)),
                     JM_OUTCOME_APPLIED);
    sc.ts += 30000; /* past the first deadline, not the extended one: a stale claim */
    ck_assert_int_eq(ev_run(&sc, JM_EV_REAPER_RUN_LOST, 16, RUN_ID), JM_OUTCOME_IGNORED);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'R');
    sc.ts += 30000;
    ck_assert_int_eq(ev_run(&sc, JM_EV_REAPER_RUN_LOST, 16, RUN_ID), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'E');
    ck_assert_int_eq(WF_ST(&sc, 16), 'F');
    ck_assert_int_eq(sc_apply(&sc, JM_EV_RUN_HEARTBEAT, 16,
                              json_pack("{s:I,s:i}", "run_id", JI(RUN_ID), "next_report_s", 60)),
                     JM_OUTCOME_IGNORED);
    ck_assert_int_eq(ev_run(&sc, JM_EV_REAPER_RUN_LOST, 16, 999), JM_OUTCOME_REJECTED);
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_run_timeout)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 161}};
    bind(&sc, 17, t, 1, 10);
    ck_assert_int_eq(start_run(&sc, 17, RUN_ID, "none", 0, 60), JM_OUTCOME_APPLIED);
    run_up(&sc, 17, RUN_ID);
    ck_assert_int_eq(ev_run(&sc, JM_EV_REAPER_RUN_TIMEOUT, 17, RUN_ID), JM_OUTCOME_IGNORED);
    sc.ts += 60000;
    ck_assert_int_eq(ev_run(&sc, JM_EV_REAPER_RUN_TIMEOUT, 17, RUN_ID), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'E');
    ck_assert_int_eq(WF_ST(&sc, 17), 'F');
    ck_assert_int_eq(ev_run(&sc, JM_EV_REAPER_RUN_TIMEOUT, 17, RUN_ID), JM_OUTCOME_IGNORED);
    sc_close(&sc, 1);
}
END_TEST

/* ---- task instances: deadlines, triage, submission ----------------------------------------- */

START_TEST(test_overdue_running)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 171}};
    bind(&sc, 18, t, 1, 10);
    start(&sc, 18);
    int64_t ti = TI(171, 1);
    to_running(&sc, 18, ti, 100);
    ck_assert_int_eq(ev_status_items(&sc, JM_EV_REAPER_OVERDUE, 18, ti, "T"), JM_OUTCOME_IGNORED);
    sc.ts += 200000; /* the reaper saw it overdue, but a heartbeat lands before its claim */
    ck_assert_int_eq(ev_heartbeat(&sc, 18, ti, 100), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_status_items(&sc, JM_EV_REAPER_OVERDUE, 18, ti, "T"), JM_OUTCOME_IGNORED);
    ck_assert_int_eq(TI_ST(&sc, ti), 'R');
    sc.ts += 200000;
    ck_assert_int_eq(ev_status_items(&sc, JM_EV_REAPER_OVERDUE, 18, ti, "T"), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, ti), 'T');
    ck_assert_int_eq(TASK_ST(&sc, 171), 'R');
    /* a late heartbeat brings it back */
    ck_assert_int_eq(ev_heartbeat(&sc, 18, ti, 100), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, ti), 'R');
    ck_assert_int_eq(n_log(&sc, "task_instance", ti, 'T', 'R'), 1);
    sc.ts += 200000;
    ck_assert_int_eq(ev_status_items(&sc, JM_EV_REAPER_OVERDUE, 18, ti, "T"), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_status_items(&sc, JM_EV_TI_TRIAGED, 18, ti, "U"), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, ti), 'U');
    ck_assert_int_eq(TASK_ST(&sc, 171), 'Q');
    ck_assert_int_eq(TI_ST(&sc, TI(171, 2)), 'Q');
    /* untimely: the worker's late success and heartbeat after U are recorded as ignored */
    int64_t before = q_int(&sc, "SELECT count(*) FROM transition_log");
    ck_assert_int_eq(ev_done(&sc, 18, ti), JM_OUTCOME_IGNORED);
    ck_assert_int_eq(ev_heartbeat(&sc, 18, ti, 100), JM_OUTCOME_IGNORED);
    ck_assert_int_eq(TI_ST(&sc, ti), 'U');
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM transition_log"), before);
    ck_assert_int_eq(q_int(&sc,
                           "SELECT count(*) FROM task_instance WHERE id = %lld AND"
                           " stdout_tail IS NOT NULL",
                           (long long)ti),
                     0);
    drive(&sc, 18, NULL, 0, 0, 0);
    ck_assert_int_eq(WF_ST(&sc, 18), 'D');
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_overdue_launched)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 181}};
    bind(&sc, 19, t, 1, 10);
    start(&sc, 19);
    int64_t ti = TI(181, 1);
    ck_assert_int_eq(ev_items(&sc, JM_EV_TI_INSTANTIATED, 19, ti), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_launched(&sc, 19, ti, 300), JM_OUTCOME_APPLIED);
    sc.ts += 250000;
    ck_assert_int_eq(ev_launch_hb(&sc, 19, ti, 300), JM_OUTCOME_APPLIED);
    sc.ts += 100000; /* past the first report-by, not the extended one */
    ck_assert_int_eq(ev_status_items(&sc, JM_EV_REAPER_OVERDUE, 19, ti, "X"), JM_OUTCOME_IGNORED);
    ck_assert_int_eq(TI_ST(&sc, ti), 'O');
    /* a claim of the wrong kind (T for a launched instance) is ignored too */
    sc.ts += 300000;
    ck_assert_int_eq(ev_status_items(&sc, JM_EV_REAPER_OVERDUE, 19, ti, "T"), JM_OUTCOME_IGNORED);
    ck_assert_int_eq(ev_status_items(&sc, JM_EV_REAPER_OVERDUE, 19, ti, "X"), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, ti), 'E');
    ck_assert_int_eq(n_log(&sc, "task_instance", ti, 'O', 'X'), 1);
    ck_assert_int_eq(n_log(&sc, "task_instance", ti, 'X', 'E'), 1);
    ck_assert_int_eq(q_int(&sc,
                           "SELECT count(*) FROM task_instance WHERE id = %lld AND message"
                           " LIKE '%%never reported a heartbeat%%'",
                           (long long)ti),
                     1);
    ck_assert_int_eq(TASK_ST(&sc, 181), 'Q'); /* retried */
    ck_assert_int_eq(q_int(&sc, "SELECT num_attempts FROM task WHERE id = 181"), 2);
    ck_assert_int_eq(TI_ST(&sc, TI(181, 2)), 'Q');
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_triaged)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 191}, {.id = 192}, {.id = 193, .max_attempts = 1}, {.id = 194}};
    bind(&sc, 20, t, 4, 10);
    start(&sc, 20);
    for (int64_t id = 191; id <= 194; id++)
        to_running(&sc, 20, TI(id, 1), 100);
    sc.ts += 200000;
    ck_assert_int_eq(ev_heartbeat(&sc, 20, TI(194, 1), 1000), JM_OUTCOME_APPLIED);
    json_t *items = json_array();
    for (int64_t id = 191; id <= 194; id++)
        json_array_append_new(items, json_pack("{s:I,s:s}", "ti_id", JI(TI(id, 1)), "status", "T"));
    ck_assert_int_eq(sc_apply(&sc, JM_EV_REAPER_OVERDUE, 20, json_pack("{s:o}", "items", items)),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, TI(194, 1)), 'R'); /* its claim was stale */
    const char *what[] = {"Z", "U", "F"};
    items = json_array();
    for (int i = 0; i < 3; i++)
        json_array_append_new(items, json_pack("{s:I,s:s,s:s}", "ti_id", JI(TI(191 + i, 1)),
                                               "status", what[i], "message", "triaged"));
    ck_assert_int_eq(sc_apply(&sc, JM_EV_TI_TRIAGED, 20,
                              json_pack("{s:I,s:o}", "run_id", JI(RUN_ID), "items", items)),
                     JM_OUTCOME_APPLIED);
    /* Z: resources scaled, requeued */
    ck_assert_int_eq(TI_ST(&sc, TI(191, 1)), 'Z');
    ck_assert_int_eq(n_log(&sc, "task", 191, 'E', 'A'), 1);
    ck_assert_int_eq(TASK_ST(&sc, 191), 'Q');
    ck_assert_int_eq(q_int(&sc,
                           "SELECT (resources->>'memory')::int FROM task_instance WHERE id"
                           " = %lld",
                           (long long)TI(191, 2)),
                     1536);
    /* U: plain retry */
    ck_assert_int_eq(TI_ST(&sc, TI(192, 1)), 'U');
    ck_assert_int_eq(n_log(&sc, "task", 192, 'E', 'G'), 1);
    ck_assert_int_eq(TI_ST(&sc, TI(192, 2)), 'Q');
    ck_assert_int_eq(q_int(&sc,
                           "SELECT (resources->>'memory')::int FROM task_instance WHERE id"
                           " = %lld",
                           (long long)TI(192, 2)),
                     1024);
    /* F: fatal, no retry */
    ck_assert_int_eq(TI_ST(&sc, TI(193, 1)), 'F');
    ck_assert_int_eq(TASK_ST(&sc, 193), 'F');
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance WHERE task_id = 193"), 1);
    ck_assert_int_eq(q_int(&sc,
                           "SELECT count(*) FROM task_instance WHERE id = %lld AND message"
                           " = 'triaged'",
                           (long long)TI(193, 1)),
                     1);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'R');
    /* a U verdict after a heartbeat made the instance R again is not applied */
    ck_assert_int_eq(ev_status_items(&sc, JM_EV_TI_TRIAGED, 20, TI(194, 1), "U"),
                     JM_OUTCOME_IGNORED);
    ck_assert_int_eq(TI_ST(&sc, TI(194, 1)), 'R');
    ck_assert_int_eq(ev_done(&sc, 20, TI(194, 1)), JM_OUTCOME_APPLIED);
    drive(&sc, 20, NULL, 0, 0, 0);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'E'); /* 193 is F */
    ck_assert_int_eq(WF_ST(&sc, 20), 'F');
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_submit_failed)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 201}};
    bind(&sc, 21, t, 1, 10);
    start(&sc, 21);
    int64_t ti = TI(201, 1);
    ck_assert_int_eq(ev_items(&sc, JM_EV_TI_INSTANTIATED, 21, ti), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(sc_apply(&sc, JM_EV_TI_SUBMIT_FAILED, 21,
                              json_pack("{s:I,s:s,s:[{s:I}]}", "run_id", JI(RUN_ID), "error",
                                        "sbatch: no", "items", "ti_id", JI(ti))),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TI_ST(&sc, ti), 'W');
    ck_assert_int_eq(q_int(&sc,
                           "SELECT count(*) FROM task_instance WHERE id = %lld AND message"
                           " = 'sbatch: no'",
                           (long long)ti),
                     1);
    ck_assert_int_eq(n_log(&sc, "task", 201, 'I', 'E'), 1);
    ck_assert_int_eq(TASK_ST(&sc, 201), 'Q');
    ck_assert_int_eq(TI_ST(&sc, TI(201, 2)), 'Q');
    drive(&sc, 21, NULL, 0, 0, 0);
    ck_assert_int_eq(WF_ST(&sc, 21), 'D');
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_fail_fast)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 211, .max_attempts = 1}, {.id = 212}, {.id = 213}};
    bind(&sc, 22, t, 3, 2);
    ck_assert_int_eq(start_run(&sc, 22, RUN_ID, "none", 1, 0), JM_OUTCOME_APPLIED);
    run_up(&sc, 22, RUN_ID);
    to_running(&sc, 22, TI(212, 1), 300);
    run_ti(&sc, 22, TI(211, 1), 'E');
    ck_assert_int_eq(TASK_ST(&sc, 211), 'F');
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'E');
    ck_assert_int_eq(WF_ST(&sc, 22), 'F');
    ck_assert_int_eq(TI_ST(&sc, TI(212, 1)), 'R'); /* running work is not killed */
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance WHERE task_id = 213"), 0);
    ck_assert_int_eq(ev_done(&sc, 22, TI(212, 1)), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(TASK_ST(&sc, 212), 'D');
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance WHERE task_id = 213"), 0);
    ck_assert_int_eq(RUN_ST(&sc, RUN_ID), 'E');
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_array_limit)
{
    sc_t sc;
    sc_open(&sc);
    sc.array_limit = 2;
    task_def_t t[6];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < 6; i++)
        t[i].id = 221 + i;
    bind(&sc, 23, t, 6, 100);
    start(&sc, 23);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status = 'Q'"), 2);
    run_ti(&sc, 23, TI(221, 1), 0);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status IN ('Q','I','O','R')"), 2);
    ck_assert_int_eq(
        sc_apply(&sc, JM_EV_WORKFLOW_CONCURRENCY, 23,
                 json_pack("{s:i,s:s}", "max_concurrently_running", 3, "template", "tmpl")),
        JM_OUTCOME_APPLIED);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task WHERE status IN ('Q','I','O','R')"), 3);
    ck_assert_int_eq(
        sc_apply(&sc, JM_EV_WORKFLOW_CONCURRENCY, 23,
                 json_pack("{s:i,s:s}", "max_concurrently_running", 3, "template", "nope")),
        JM_OUTCOME_REJECTED);
    drive(&sc, 23, NULL, 0, 0, 3);
    ck_assert_int_eq(WF_ST(&sc, 23), 'D');
    sc_close(&sc, 1);
}
END_TEST

START_TEST(test_same_args_different_tasks)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 231}};
    bind(&sc, 24, t, 1, 10);
    json_t *p = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:s,s:{},s:[]}", "tool", "t", "workflow_args_hash", HEX,
        "task_hash", "ffffffffffffffffffffffffffffffff", "dag_hash", HEX, "name", "wf",
        "max_concurrently_running", 10, "total_tasks", 1, "user", "u", "attributes", "templates");
    ck_assert_int_eq(sc_apply(&sc, JM_EV_WORKFLOW_BIND, 25, p), JM_OUTCOME_REJECTED);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM workflow"), 1);
    /* the same workflow again is a re-bind (the resume path), not a conflict */
    bind(&sc, 24, t, 1, 10);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM workflow"), 1);
    sc_close(&sc, 1);
}
END_TEST

/* ---- replay of event_log ------------------------------------------------------------------- */

/* Most handlers in one workflow: failures, fatal, operator reset of a sub-DAG, hot resume,
 * deadlines and triage, a cold resume signal drained by kills, a partial reset, a fresh run. */
static void rich_scenario(sc_t *sc, int64_t wf)
{
    task_def_t t[] = {{.id = 301},
                      {.id = 302, .up = {301}, .nup = 1},
                      {.id = 303, .up = {301}, .nup = 1},
                      {.id = 304, .up = {302, 303}, .nup = 2},
                      {.id = 305, .max_attempts = 1},
                      {.id = 306, .memory = 2048}};
    bind(sc, wf, t, 6, 3);
    start(sc, wf);
    int64_t fail[] = {305};
    drive(sc, wf, fail, 1, 'E', 3);
    ck_assert_int_eq(WF_ST(sc, wf), 'F');
    ck_assert_int_eq(ev_set_status(sc, wf, json_pack("[I]", JI(302)), "G", 1, "u"),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(start_run(sc, wf, 778, "hot", 0, 0), JM_OUTCOME_APPLIED);
    run_up(sc, wf, 778);
    int64_t ti = q_int(sc, "SELECT min(id) FROM task_instance WHERE status = 'Q'");
    to_running(sc, wf, ti, 100);
    /* heartbeats: the replay applies them in the same transaction as ti.running (kept in
     * memory until the overdue check reads report_by) */
    ck_assert_int_eq(ev_heartbeat(sc, wf, ti, 50), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_heartbeat(sc, wf, ti, 100), JM_OUTCOME_APPLIED);
    sc->ts += 200000;
    ck_assert_int_eq(ev_status_items(sc, JM_EV_REAPER_OVERDUE, wf, ti, "T"), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_status_items(sc, JM_EV_TI_TRIAGED, wf, ti, "Z"), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_done(sc, wf, ti), JM_OUTCOME_REJECTED); /* Z -> D is illegal */
    ti = q_int(sc, "SELECT min(id) FROM task_instance WHERE status = 'Q'");
    to_running(sc, wf, ti, 100);
    ck_assert_int_eq(ev_heartbeat(sc, wf, ti, 300), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(sc_apply(sc, JM_EV_WORKFLOW_RESUME, wf, json_pack("{s:s}", "mode", "cold")),
                     JM_OUTCOME_APPLIED);
    for (int guard = 0; guard < 10; guard++) {
        int64_t k = q_int(sc, "SELECT min(id) FROM task_instance WHERE status = 'K'");
        if (k < 0)
            break;
        ck_assert_int_eq(ev_items(sc, JM_EV_TI_KILLED, wf, k), JM_OUTCOME_APPLIED);
    }
    ck_assert_int_eq(RUN_ST(sc, 778), 'T');
    ck_assert_int_eq(ev_reset(sc, wf, 1, "u"), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(start_run(sc, wf, 779, "none", 0, 0), JM_OUTCOME_APPLIED);
    run_up(sc, wf, 779);
    drive(sc, wf, NULL, 0, 0, 3);
    ck_assert_int_eq(WF_ST(sc, wf), 'D');
}

START_TEST(test_replay_event_log)
{
    sc_t a, b;
    sc_open(&a);
    a.log_events = 1;
    rich_scenario(&a, 30);
    ck_assert_int_gt(q_int(&a, "SELECT count(*) FROM event_log WHERE outcome <> 'applied'"), 0);
    sc_open(&b); /* a fresh, migrated schema; the replay prepares its own handlers */
    jm_apply_destroy(b.ap);
    b.ap = NULL;
    exec_ok(&b, "DEALLOCATE ALL");
    jm_err_t err;
    jm_replay_stats_t st;
    ck_assert_msg(jm_replay_workflow(a.pg, b.pg, 30, &st, &err) == JM_OK, "replay: %s", err.msg);
    ck_assert_int_eq(st.events, a.nlog);
    ck_assert_msg(st.outcome_mismatch == 0, "%s", st.first_mismatch);
    int n_diff = -1;
    char diff[256];
    ck_assert_msg(jm_replay_diff(a.pg, a.schema, b.schema, 30, &n_diff, diff, sizeof(diff), &err) ==
                      JM_OK,
                  "diff: %s", err.msg);
    ck_assert_msg(n_diff == 0, "replay differs in %s", diff);
    /* the comparison sees one changed column and a reordered log */
    exec_ok(&b, "UPDATE task_instance SET maxrss_kb = maxrss_kb + 1 WHERE id = (SELECT min(id)"
                " FROM task_instance WHERE maxrss_kb IS NOT NULL)");
    exec_ok(&b, "UPDATE transition_log SET seq = -seq WHERE seq IN (SELECT seq FROM transition_log"
                " WHERE entity = 'task' ORDER BY seq LIMIT 2)");
    ck_assert(jm_replay_diff(a.pg, a.schema, b.schema, 30, &n_diff, diff, sizeof(diff), &err) ==
              JM_OK);
    ck_assert_int_eq(n_diff, 2);
    ck_assert_str_eq(diff, "transition_log,task_instance");
    b.ap = jm_apply_new(b.pg, &err); /* for sc_close */
    sc_close(&b, 1);
    sc_close(&a, 1);
}
END_TEST

/* The replay applies up to 1000 events per transaction, where the scenario applied one each:
 * retries (E), resource kills (Z -> A, scaled, requeued), a DAG and a limit of 2, so queueing
 * and completion happen in the middle of a replayed transaction, with heartbeats. */
START_TEST(test_replay_batched_retries)
{
    sc_t a;
    sc_open(&a);
    a.log_events = 1;
    task_def_t t[] = {{.id = 401},
                      {.id = 402, .up = {401}, .nup = 1},
                      {.id = 403, .up = {401}, .nup = 1},
                      {.id = 404, .up = {401}, .nup = 1},
                      {.id = 405, .up = {402, 403}, .nup = 2},
                      {.id = 406, .memory = 1024},
                      {.id = 407, .max_attempts = 2},
                      {.id = 408, .up = {404}, .nup = 1}};
    bind(&a, 40, t, 8, 2);
    start(&a, 40);
    int64_t fail_z[] = {406};
    for (int guard = 0; guard < 100; guard++) {
        int64_t ti = q_int(&a, "SELECT min(id) FROM task_instance WHERE workflow_id = 40 AND"
                               " status = 'Q'");
        if (ti < 0)
            break;
        int64_t task =
            q_int(&a, "SELECT task_id FROM task_instance WHERE id = %lld", (long long)ti);
        int attempt =
            (int)q_int(&a, "SELECT attempt FROM task_instance WHERE id = %lld", (long long)ti);
        char fail = 0;
        if (task == fail_z[0] && attempt == 1)
            fail = 'Z';
        if (task == 407 && attempt == 1)
            fail = 'E';
        to_running(&a, 40, ti, 300);
        ck_assert_int_eq(ev_heartbeat(&a, 40, ti, 300), JM_OUTCOME_APPLIED);
        ck_assert_int_eq(ev_heartbeat(&a, 40, ti, 400), JM_OUTCOME_APPLIED);
        if (fail) {
            json_t *usage = json_pack("{s:i,s:i,s:i}", "wall_ms", 10, "cpu_ms", 5, "maxrss_kb", 1);
            ck_assert_int_eq(
                sc_apply(&a, JM_EV_TI_ERROR, 40,
                         json_pack("{s:I,s:s#,s:i,s:s,s:s,s:s,s:o}", "ti_id", JI(ti), "status",
                                   &fail, 1, "exit_code", 1, "message", "boom", "stdout_tail", "",
                                   "stderr_tail", "e", "usage", usage)),
                JM_OUTCOME_APPLIED);
        } else {
            ck_assert_int_eq(ev_done(&a, 40, ti), JM_OUTCOME_APPLIED);
        }
        ck_assert_int_eq(ev_heartbeat(&a, 40, ti, 500), JM_OUTCOME_IGNORED); /* late */
    }
    ck_assert_int_eq(WF_ST(&a, 40), 'D');
    replay_same(&a, 40);
    sc_close(&a, 1);
}
END_TEST

/* A fan-in whose upstreams finish inside one replayed transaction, with the downstream edges
 * already known from the batch's prefetch: the join is queued by its last upstream's ti.done,
 * not earlier (a done once decremented its downstreams twice), so the replay matches. */
START_TEST(test_replay_fan_in)
{
    sc_t a;
    sc_open(&a);
    a.log_events = 1;
    task_def_t t[] = {{.id = 501},
                      {.id = 502, .up = {501}, .nup = 1},
                      {.id = 503, .up = {501}, .nup = 1},
                      {.id = 504, .up = {501}, .nup = 1},
                      {.id = 505, .up = {502, 503, 504}, .nup = 3}};
    bind(&a, 50, t, 5, 100);
    start(&a, 50);
    drive(&a, 50, NULL, 0, 0, 0);
    ck_assert_int_eq(WF_ST(&a, 50), 'D');
    replay_same(&a, 50);
    sc_close(&a, 1);
}
END_TEST

/* The edge prefetch of a batch probes task_edge per id whatever the statistics say.  Statistics
 * taken while a workflow was being bound (here: 2,000 edges of one upstream task, analyzed, then
 * 100k edges of distinct ones) made the prefetch as a join scan all of task_edge: O(every
 * workflow's edges) per transaction (bench/RESULTS.md, 2026-11-26). */
START_TEST(test_edges_prefetch_probes)
{
    sc_t a;
    sc_open(&a);
    exec_ok(&a, "INSERT INTO task_edge (workflow_id, upstream_id, downstream_id)"
                " SELECT 1, 1, g FROM generate_series(2, 2001) g");
    exec_ok(&a, "ANALYZE task_edge");
    exec_ok(&a, "INSERT INTO task_edge (workflow_id, upstream_id, downstream_id)"
                " SELECT 1, g, g + 1 FROM generate_series(10000, 110000) g");
    exec_ok(&a, "INSERT INTO task (id, workflow_id, name, command, node_hash, status,"
                " max_attempts, resources, resource_scales, fallback_queues, cluster, status_at)"
                " SELECT g, 1, 't' || g, 'true', 'h' || g, 'G', 1, '{}', '{}', '{}', 'dummy',"
                " now() FROM generate_series(2, 110001) g");
    char *ids = jm_malloc(1500 * 12 + 3), *w = ids;
    *w++ = '{';
    for (int i = 0; i < 1500; i++)
        w += sprintf(w, "%s%d", i ? "," : "", 10000 + 60 * i);
    strcpy(w, "}");
    /* pg_stat_xact_user_tables: this backend's counts not yet reported (this transaction and
     * the last ones), so compared before and after the statement */
    static const char seq_sql[] = "SELECT COALESCE(sum(seq_scan), 0) FROM pg_stat_xact_user_tables"
                                  " WHERE relname IN ('task_edge', 'task')"
                                  " AND schemaname = current_schema()";
    static const char idx_sql[] = "SELECT COALESCE(sum(idx_scan), 0) FROM pg_stat_xact_user_tables"
                                  " WHERE relname = 'task_edge' AND schemaname = current_schema()";
    exec_ok(&a, "BEGIN");
    int64_t seq0 = q_int(&a, seq_sql), idx0 = q_int(&a, idx_sql);
    const char *p[1] = {ids};
    PGresult *r =
        PQexecParams(jm_pg_conn(a.pg), jm_ap_sql[AP_EDGES_PREFETCH], 1, NULL, p, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    ck_assert_int_eq(PQntuples(r), 1500);
    ck_assert_str_eq(PQgetvalue(r, 1, 0), "10060"); /* ordered by upstream id */
    ck_assert_str_eq(PQgetvalue(r, 1, 1), "10061");
    PQclear(r);
    ck_assert_int_eq(q_int(&a, seq_sql), seq0);        /* no sequential scan */
    ck_assert_int_ge(q_int(&a, idx_sql), idx0 + 1500); /* a probe per id */
    exec_ok(&a, "COMMIT");
    free(ids);
    sc_close(&a, 1);
}
END_TEST

/* ---- ti.reports ---------------------------------------------------------------------------- */

static json_t *report_running(void)
{
    return json_pack("{s:s,s:i,s:s,s:i,s:s,s:s}", "host", "node1", "pid", 99, "distributor_id",
                     "42", "next_report_s", 300, "stdout_path", "/o", "stderr_path", "/e");
}

static json_t *report_result(char st)
{
    return json_pack("{s:s#,s:i,s:s,s:s,s:s,s:{s:i,s:i,s:i}}", "status", &st, 1, "exit_code",
                     st == 'D' ? 0 : 1, "message", st == 'D' ? "" : "boom", "stdout_tail", "ok",
                     "stderr_tail", "err", "usage", "wall_ms", 10, "cpu_ms", 5, "maxrss_kb", 100);
}

/* The reports of `n` instances (running and/or result, per `what`: 'r', 'x' or both "rx"),
 * applied at one clock value: as one ti.reports event (`batch`), or as the individual
 * ti.running / ti.done / ti.error events, in the same order, each in its own transaction. */
static void apply_reports(sc_t *sc, int64_t wf, const int64_t *ti, const char *st, size_t n,
                          const char *what, int batch)
{
    int64_t at = sc->ts + 1000;
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *run = strchr(what, 'r') ? report_running() : json_null();
        json_t *res = strchr(what, 'x') ? report_result(st[i]) : json_null();
        if (batch) {
            json_array_append_new(items, json_pack("{s:I,s:o,s:o}", "ti_id", JI(ti[i]), "running",
                                                   run, "result", res));
            continue;
        }
        if (json_is_object(run)) {
            json_object_set_new(run, "ti_id", json_integer(ti[i]));
            sc->ts = at - 1000;
            ck_assert_int_eq(sc_apply(sc, JM_EV_TI_RUNNING, wf, run), JM_OUTCOME_APPLIED);
        } else {
            json_decref(run);
        }
        if (json_is_object(res)) {
            json_object_set_new(res, "ti_id", json_integer(ti[i]));
            if (st[i] == 'D') {
                json_object_del(res, "status");
                json_object_del(res, "exit_code");
                json_object_del(res, "message");
            }
            sc->ts = at - 1000;
            ck_assert_int_eq(sc_apply(sc, st[i] == 'D' ? JM_EV_TI_DONE : JM_EV_TI_ERROR, wf, res),
                             JM_OUTCOME_APPLIED);
        } else {
            json_decref(res);
        }
    }
    if (batch) {
        sc->ts = at - 1000;
        ck_assert_int_eq(sc_apply(sc, JM_EV_TI_REPORTS, wf,
                                  json_pack("{s:I,s:o}", "run_id", JI(RUN_ID), "items", items)),
                         JM_OUTCOME_APPLIED);
    } else {
        json_decref(items);
    }
    sc->ts = at;
}

/* The fork-join DAG (task 33 fails every attempt, 32 once) driven round by round: every queued
 * instance is instantiated and launched, then reported R and D/E — together in one item, or in
 * two rounds of reports (odd rounds) — by ti.reports (`batch`) or the individual events. */
static void drive_reports(sc_t *sc, int64_t wf, int batch)
{
    task_def_t t[] = {{.id = 31},
                      {.id = 32, .up = {31}, .nup = 1, .max_attempts = 2},
                      {.id = 33, .up = {31}, .nup = 1, .max_attempts = 2},
                      {.id = 34, .up = {31}, .nup = 1, .max_attempts = 2},
                      {.id = 35, .up = {32}, .nup = 1},
                      {.id = 36, .up = {33}, .nup = 1},
                      {.id = 37, .up = {34}, .nup = 1},
                      {.id = 38, .up = {35, 36, 37}, .nup = 3}};
    bind(sc, wf, t, 8, 100);
    start(sc, wf);
    for (int round = 0; round < 20; round++) {
        int64_t ti[8];
        char st[8];
        size_t n = 0;
        for (int64_t id = -1; n < 8; n++) {
            id = q_int(sc,
                       "SELECT min(id) FROM task_instance WHERE workflow_id = %lld AND status = 'Q'"
                       " AND id > %lld",
                       (long long)wf, (long long)id);
            if (id < 0)
                break;
            ti[n] = id;
            int64_t task =
                q_int(sc, "SELECT task_id FROM task_instance WHERE id = %lld", (long long)id);
            int64_t att =
                q_int(sc, "SELECT attempt FROM task_instance WHERE id = %lld", (long long)id);
            st[n] = task == 33 || (task == 32 && att == 1) ? 'E' : 'D';
        }
        if (n == 0)
            return;
        json_t *inst = json_array(), *launch = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(inst, json_pack("{s:I}", "ti_id", JI(ti[i])));
            json_array_append_new(
                launch, json_pack("{s:I,s:s}", "ti_id", JI(ti[i]), "distributor_id", "42"));
        }
        ck_assert_int_eq(sc_apply(sc, JM_EV_TI_INSTANTIATED, wf,
                                  json_pack("{s:I,s:o}", "run_id", JI(RUN_ID), "items", inst)),
                         JM_OUTCOME_APPLIED);
        ck_assert_int_eq(sc_apply(sc, JM_EV_TI_LAUNCHED, wf,
                                  json_pack("{s:I,s:i,s:o}", "run_id", JI(RUN_ID), "next_report_s",
                                            300, "items", launch)),
                         JM_OUTCOME_APPLIED);
        if (round % 2) {
            apply_reports(sc, wf, ti, st, n, "r", batch);
            apply_reports(sc, wf, ti, st, n, "x", batch);
        } else {
            apply_reports(sc, wf, ti, st, n, "rx", batch);
        }
    }
    ck_abort_msg("scenario did not converge");
}

/* transition_log without its event ids (they differ: one ti.reports for several events) */
static char *tlog_digest(sc_t *sc)
{
    PGresult *r = PQexec(jm_pg_conn(sc->pg),
                         "SELECT md5(string_agg(concat_ws(',', entity, entity_id, workflow_id,"
                         " from_status, to_status, at), '|' ORDER BY seq)) FROM transition_log");
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    char *d = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return d;
}

/* ti.reports applies each item like the individual events: every model row and the transition
 * log come out the same (retries and a failed task included), and its replay is identical. */
START_TEST(test_reports_like_events)
{
    sc_t a, b;
    sc_open(&a);
    drive_reports(&a, 60, 0);
    sc_open(&b);
    b.log_events = 1;
    drive_reports(&b, 60, 1);
    ck_assert_int_eq(WF_ST(&b, 60), 'F');
    ck_assert_int_eq(q_char(&b, "SELECT status FROM task WHERE id = 33"), 'F');
    ck_assert_int_eq(q_int(&b, "SELECT count(*) FROM task WHERE status = 'D'"), 5);
    ck_assert_int_gt(q_int(&b, "SELECT count(*) FROM event_log WHERE type = 'ti.reports'"), 3);
    assert_same_tables(&a, &b, model_tables, JM_ARRAY_LEN(model_tables), 0,
                       "between ti.reports and events");
    char *la = tlog_digest(&a), *lb = tlog_digest(&b);
    ck_assert_str_eq(la, lb);
    free(la);
    free(lb);
    replay_same(&b, 60);
    sc_close(&b, 1);
    sc_close(&a, 1);
}
END_TEST

/* An item whose instance is no longer running is refused like the event would be, without
 * failing the other items; an item with neither report is ignored. */
START_TEST(test_reports_partial)
{
    sc_t sc;
    sc_open(&sc);
    task_def_t t[] = {{.id = 71}, {.id = 72}};
    bind(&sc, 7, t, 2, 100);
    start(&sc, 7);
    int64_t a = jm_hash_ti_id(71, 1), b = jm_hash_ti_id(72, 1);
    run_ti(&sc, 7, a, 0); /* a is D */
    ck_assert_int_eq(ev_items(&sc, JM_EV_TI_INSTANTIATED, 7, b), JM_OUTCOME_APPLIED);
    ck_assert_int_eq(ev_launched(&sc, 7, b, 300), JM_OUTCOME_APPLIED);
    json_t *items =
        json_pack("[{s:I,s:n,s:o},{s:I,s:o,s:o},{s:I,s:n,s:n}]", "ti_id", JI(a), "running",
                  "result", report_result('D'), "ti_id", JI(b), "running", report_running(),
                  "result", report_result('D'), "ti_id", JI(b), "running", "result");
    /* the same instance reported done twice in one event: applied once */
    json_array_append_new(
        items, json_pack("{s:I,s:n,s:o}", "ti_id", JI(b), "running", "result", report_result('D')));
    ck_assert_int_eq(sc_apply(&sc, JM_EV_TI_REPORTS, 7,
                              json_pack("{s:I,s:o}", "run_id", JI(RUN_ID), "items", items)),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(st_of(&sc, "task_instance", b), 'D');
    ck_assert_int_eq(WF_ST(&sc, 7), 'D');
    ck_assert_int_eq(n_log(&sc, "task_instance", b, 'R', 'D'), 1);
    ck_assert_int_eq(n_log(&sc, "task_instance", a, 'R', 'D'), 1); /* not twice */
    /* every item refused or ignored: the event is too */
    items = json_pack("[{s:I,s:n,s:o}]", "ti_id", JI(a), "running", "result", report_result('D'));
    ck_assert_int_ne(sc_apply(&sc, JM_EV_TI_REPORTS, 7,
                              json_pack("{s:I,s:o}", "run_id", JI(RUN_ID), "items", items)),
                     JM_OUTCOME_APPLIED);
    sc_close(&sc, 1);
}
END_TEST

/* ---- retention: workflow.prune ------------------------------------------------------------ */

static jm_outcome_t ev_prune(sc_t *sc, int64_t wf, int64_t before_ms, int rows)
{
    char ts[40];
    jm_time_format_iso(before_ms, ts, sizeof(ts));
    return sc_apply(sc, JM_EV_WORKFLOW_PRUNE, wf,
                    json_pack("{s:s,s:i,s:s}", "finished_before", ts, "rows", rows, "user", "ops"));
}

/* Rows of workflow `wf` in every table a prune empties, event_log aside. */
static int64_t wf_rows(sc_t *sc, int64_t wf)
{
    return q_int(sc,
                 "SELECT (SELECT count(*) FROM workflow WHERE id = %1$lld)"
                 " + (SELECT count(*) FROM workflow_run WHERE workflow_id = %1$lld)"
                 " + (SELECT count(*) FROM task WHERE workflow_id = %1$lld)"
                 " + (SELECT count(*) FROM task_instance WHERE workflow_id = %1$lld)"
                 " + (SELECT count(*) FROM task_edge WHERE workflow_id = %1$lld)"
                 " + (SELECT count(*) FROM task_array WHERE workflow_id = %1$lld)"
                 " + (SELECT count(*) FROM workflow_task_count WHERE workflow_id = %1$lld)"
                 " + (SELECT count(*) FROM transition_log WHERE workflow_id = %1$lld)",
                 (long long)wf);
}

/* A finished workflow is deleted a few rows per event: refused while it runs, is not finished
 * or finished after the cutoff; client events are refused while it is being pruned; a bystander
 * keeps its rows; once gone, the workflow can be bound and run again, and the replay of its log
 * (from the last applied prune) gives the live rows. */
START_TEST(test_prune)
{
    sc_t sc;
    sc_open(&sc);
    sc.log_events = 1;
    task_def_t t[] = {{.id = 411},
                      {.id = 412, .up = {411}, .nup = 1},
                      {.id = 413, .up = {411}, .nup = 1},
                      {.id = 414, .up = {412, 413}, .nup = 2}};
    task_def_t other[] = {{.id = 511}, {.id = 512, .up = {511}, .nup = 1}};
    bind(&sc, 41, t, 4, 100);
    sc.args_hash = "fedcba9876543210fedcba9876543210";
    bind(&sc, 51, other, 2, 100);
    sc.args_hash = NULL;
    int64_t far = sc.ts + 1000000000;
    ck_assert_int_eq(ev_prune(&sc, 41, far, 1000), JM_OUTCOME_REJECTED);
    ck_assert_msg(strstr(sc.reason, "not finished"), "%s", sc.reason);
    start(&sc, 41);
    ck_assert_int_eq(ev_prune(&sc, 41, far, 1000), JM_OUTCOME_REJECTED);
    ck_assert_msg(strstr(sc.reason, "alive run"), "%s", sc.reason);
    drive(&sc, 41, NULL, 0, 0, 0);
    ck_assert_int_eq(WF_ST(&sc, 41), 'D');
    ck_assert_int_eq(ev_prune(&sc, 41, sc.ts - 5000, 1000), JM_OUTCOME_REJECTED);
    ck_assert_msg(strstr(sc.reason, "at or after"), "%s", sc.reason);

    int64_t rows = wf_rows(&sc, 41), bystander = wf_rows(&sc, 51);
    ck_assert_int_gt(rows, 30);
    sc.no_check = 1; /* the counts do not match the tasks half way */
    int events = 0;
    while (q_int(&sc, "SELECT count(*) FROM workflow WHERE id = 41") > 0) {
        ck_assert_int_eq(ev_prune(&sc, 41, far, 7), JM_OUTCOME_APPLIED);
        ck_assert_int_lt(++events, 1000);
        if (events == 1) {
            ck_assert_int_eq(ev_reset(&sc, 41, 0, "u"), JM_OUTCOME_REJECTED);
            ck_assert_msg(strstr(sc.reason, "being pruned"), "%s", sc.reason);
        }
    }
    sc.no_check = 0;
    /* every chunk but the last deleted its 7 rows; the event_log rows went too (the events
     * logged after each chunk's delete: the last prune and nothing else remains) */
    ck_assert_int_ge(events, (int)((rows + 7) / 7));
    ck_assert_int_eq(wf_rows(&sc, 41), 0);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM event_log WHERE workflow_id = 41"), 1);
    ck_assert_int_eq(wf_rows(&sc, 51), bystander);
    ck_assert_int_eq(ev_prune(&sc, 41, far, 7), JM_OUTCOME_IGNORED);
    ck_assert_msg(strstr(sc.reason, "not found"), "%s", sc.reason);

    /* bound again: a new history, replayed from the last applied prune */
    size_t history = sc.nlog;
    bind(&sc, 41, t, 4, 100);
    start(&sc, 41);
    drive(&sc, 41, NULL, 0, 0, 0);
    ck_assert_int_eq(WF_ST(&sc, 41), 'D');
    replay_n_same(&sc, 41, sc.nlog - history + 1); /* the ignored prune, then the rest */
    sc_close(&sc, 1);
}
END_TEST

Suite *it_apply_suite(void)
{
    Suite *s = suite_create("apply");
    TCase *tc = tcase_create("scenarios");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_diamond);
    tcase_add_test(tc, test_bind_chunks_pending);
    tcase_add_test(tc, test_pick_layout_wide);
    tcase_add_test(tc, test_retry_then_done);
    tcase_add_test(tc, test_attempts_exhausted);
    tcase_add_test(tc, test_resource_error_scaled);
    tcase_add_test(tc, test_resume_scales_resource_killed);
    tcase_add_test(tc, test_concurrency_limit);
    tcase_add_test(tc, test_replay_identical);
    tcase_add_test(tc, test_cold_resume);
    suite_add_tcase(s, tc);
    tc = tcase_create("operations");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hot_resume);
    tcase_add_test(tc, test_resume_signal_cold);
    tcase_add_test(tc, test_resume_signal_hot);
    tcase_add_test(tc, test_workflow_reset);
    tcase_add_test(tc, test_operator_ownership);
    tcase_add_loop_test(tc, test_reset_lapsed_handover, 0, 2);
    tcase_add_test(tc, test_set_status_g_done_workflow);
    tcase_add_test(tc, test_set_status_g_active);
    tcase_add_test(tc, test_set_status_d);
    tcase_add_test(tc, test_run_stop);
    tcase_add_test(tc, test_run_lost);
    tcase_add_test(tc, test_run_timeout);
    tcase_add_test(tc, test_overdue_running);
    tcase_add_test(tc, test_overdue_launched);
    tcase_add_test(tc, test_triaged);
    tcase_add_test(tc, test_submit_failed);
    tcase_add_test(tc, test_fail_fast);
    tcase_add_test(tc, test_array_limit);
    tcase_add_test(tc, test_same_args_different_tasks);
    tcase_add_test(tc, test_replay_event_log);
    tcase_add_test(tc, test_replay_batched_retries);
    tcase_add_test(tc, test_prune);
    tcase_add_test(tc, test_replay_fan_in);
    tcase_add_test(tc, test_edges_prefetch_probes);
    tcase_add_test(tc, test_bind_copy_identical);
    tcase_add_test(tc, test_bind_recheck);
    tcase_add_test(tc, test_reports_like_events);
    tcase_add_test(tc, test_reports_partial);
    suite_add_tcase(s, tc);
    return s;
}
