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
#include "it.h"
#include "jobmon/event.h"
#include "jobmon/hash.h"
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
    int array_limit; /* bind(): the template's limit (0 = 10000) */
    int no_check;    /* skip the invariants after each event */
} sc_t;

static void check_invariants(sc_t *sc, int64_t wf);

static int schema_n;

static void exec_ok(sc_t *sc, const char *sql)
{
    PGresult *r = PQexec(jm_pg_conn(sc->pg), sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert(fread(s, 1, (size_t)n, f) == (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
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
    snprintf(sql, sizeof(sql), "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE;"
             " CREATE SCHEMA %s; SET search_path = %s", sc->schema, sc->schema, sc->schema);
    exec_ok(sc, sql);
    const char *files[] = {"/schemas/sql/002_log.sql", "/schemas/sql/003_model.sql"};
    for (size_t i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s%s", JM_TOP_SRCDIR, files[i]);
        char *s = slurp(path);
        exec_ok(sc, s);
        free(s);
    }
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

/* Apply one event in its own transaction; returns the outcome. */
static jm_outcome_t sc_apply_ev(sc_t *sc, const jm_event_t *ev, char *reason)
{
    jm_err_t err;
    jm_apply_result_t res;
    exec_ok(sc, "BEGIN");
    jm_rc_t rc = jm_apply_event(sc->ap, ev, 0, &res, &err);
    ck_assert_msg(rc == JM_OK, "apply %s: %s", jm_event_type_name(ev->type), err.msg);
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
    char reason[256];
    jm_outcome_t o = sc_apply_ev(sc, ev, reason);
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

#define HEX "0123456789abcdef0123456789abcdef"
#define RUN_ID 777

typedef struct {
    int64_t id;
    int64_t up[4];
    int nup;
    int max_attempts;
    int memory;
} task_def_t;

static void bind(sc_t *sc, int64_t wf, const task_def_t *t, size_t n, int limit)
{
    json_t *tmpl = json_pack("[{s:s,s:s,s:s,s:[],s:[],s:[],s:I,s:i}]", "name", "tmpl", "hash", HEX,
                             "command_template", "{command}", "node_args", "task_args", "op_args",
                             "array_id", (json_int_t)(wf * 10), "max_concurrently_running",
                             sc->array_limit ? sc->array_limit : 10000);
    json_t *p = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:s,s:{},s:o}", "tool", "t",
                          "workflow_args_hash", HEX, "task_hash", HEX, "dag_hash", HEX, "name",
                          "wf", "max_concurrently_running", limit, "total_tasks", (int)n, "user",
                          "u", "attributes", "templates", tmpl);
    ck_assert_int_eq(sc_apply(sc, JM_EV_WORKFLOW_BIND, wf, p), JM_OUTCOME_APPLIED);
    json_t *tasks = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *up = json_array();
        for (int k = 0; k < t[i].nup; k++)
            json_array_append_new(up, json_integer(t[i].up[k]));
        char name[32], cmd[64];
        snprintf(name, sizeof(name), "task_%lld", (long long)t[i].id);
        snprintf(cmd, sizeof(cmd), "echo %lld", (long long)t[i].id);
        json_array_append_new(
            tasks, json_pack("{s:I,s:s,s:s,s:s,s:I,s:s,s:i,s:{s:i,s:s},s:{s:f},s:[],s:s,s:o}",
                             "task_id", (json_int_t)t[i].id, "name", name, "command", cmd,
                             "template", "tmpl", "array_id", (json_int_t)(wf * 10), "node_hash",
                             HEX, "max_attempts", t[i].max_attempts ? t[i].max_attempts : 3,
                             "resources", "memory", t[i].memory ? t[i].memory : 1024, "queue",
                             "null.q", "resource_scales", "memory", 0.5, "fallback_queues",
                             "cluster", "dummy", "upstream", up));
    }
    /* Reverse order: chunks may name upstream tasks that are not there yet. */
    json_t *rev = json_array();
    for (size_t i = n; i > 0; i--)
        json_array_append(rev, json_array_get(tasks, i - 1));
    json_decref(tasks);
    ck_assert_int_eq(sc_apply(sc, JM_EV_WORKFLOW_BIND_TASKS, wf,
                              json_pack("{s:i,s:o}", "chunk", 0, "tasks", rev)),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(sc_apply(sc, JM_EV_WORKFLOW_BOUND, wf,
                              json_pack("{s:i,s:i}", "total_tasks", (int)n, "chunks", 1)),
                     JM_OUTCOME_APPLIED);
}

static void start(sc_t *sc, int64_t wf)
{
    ck_assert_int_eq(sc_apply(sc, JM_EV_RUN_START, wf,
                              json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id",
                                        (json_int_t)RUN_ID, "cluster", "dummy", "user", "u",
                                        "host", "h", "fail_fast", 0, "timeout_s", 0, "resume",
                                        "none")),
                     JM_OUTCOME_APPLIED);
    const char *st[] = {"I", "O", "R"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(sc_apply(sc, JM_EV_RUN_STATUS, wf,
                                  json_pack("{s:I,s:s}", "run_id", (json_int_t)RUN_ID, "status",
                                            st[i])),
                         JM_OUTCOME_APPLIED);
}

/* Drive one queued instance through the distributor and worker: ends D, or `fail` (E/Z). */
static void run_ti(sc_t *sc, int64_t wf, int64_t ti, char fail)
{
    ck_assert_int_eq(sc_apply(sc, JM_EV_TI_INSTANTIATED, wf,
                              json_pack("{s:I,s:[{s:I}]}", "run_id", (json_int_t)RUN_ID, "items",
                                        "ti_id", (json_int_t)ti)),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(sc_apply(sc, JM_EV_TI_LAUNCHED, wf,
                              json_pack("{s:I,s:i,s:[{s:I,s:s}]}", "run_id", (json_int_t)RUN_ID,
                                        "next_report_s", 300, "items", "ti_id", (json_int_t)ti,
                                        "distributor_id", "42")),
                     JM_OUTCOME_APPLIED);
    ck_assert_int_eq(sc_apply(sc, JM_EV_TI_RUNNING, wf,
                              json_pack("{s:I,s:s,s:i,s:s,s:i,s:s,s:s}", "ti_id", (json_int_t)ti,
                                        "host", "node1", "pid", 99, "distributor_id", "42",
                                        "next_report_s", 300, "stdout_path", "/o", "stderr_path",
                                        "/e")),
                     JM_OUTCOME_APPLIED);
    json_t *usage = json_pack("{s:i,s:i,s:i}", "wall_ms", 10, "cpu_ms", 5, "maxrss_kb", 100);
    if (!fail)
        ck_assert_int_eq(sc_apply(sc, JM_EV_TI_DONE, wf,
                                  json_pack("{s:I,s:s,s:s,s:o}", "ti_id", (json_int_t)ti,
                                            "stdout_tail", "ok", "stderr_tail", "", "usage",
                                            usage)),
                         JM_OUTCOME_APPLIED);
    else
        ck_assert_int_eq(sc_apply(sc, JM_EV_TI_ERROR, wf,
                                  json_pack("{s:I,s:s#,s:i,s:s,s:s,s:s,s:o}", "ti_id",
                                            (json_int_t)ti, "status", &fail, 1, "exit_code", 1,
                                            "message", "boom", "stdout_tail", "", "stderr_tail",
                                            "err", "usage", usage)),
                         JM_OUTCOME_APPLIED);
}

/* Invariants after every step of a scenario. */
static void check_counts(sc_t *sc, int64_t wf)
{
    int64_t bad = q_int(sc,
                        "SELECT count(*) FROM (SELECT status, count(*) n FROM task WHERE workflow_id"
                        " = %lld GROUP BY status) a FULL JOIN (SELECT status, n FROM"
                        " workflow_task_count WHERE workflow_id = %lld AND n > 0) b USING (status)"
                        " WHERE a.n IS DISTINCT FROM b.n",
                        (long long)wf, (long long)wf);
    ck_assert_msg(bad == 0, "workflow_task_count out of step");
}

/* Run every queued instance until none is left; tasks in `fail_ids` fail with `how`. */
static void drive(sc_t *sc, int64_t wf, const int64_t *fail_ids, size_t nfail, char how,
                  int64_t limit)
{
    for (int guard = 0; guard < 200; guard++) {
        int64_t ti = q_int(sc, "SELECT min(id) FROM task_instance WHERE workflow_id = %lld AND"
                               " status = 'Q'", (long long)wf);
        if (ti < 0)
            return;
        int64_t task = q_int(sc, "SELECT task_id FROM task_instance WHERE id = %lld",
                             (long long)ti);
        char fail = 0;
        for (size_t i = 0; i < nfail; i++)
            if (fail_ids[i] == task)
                fail = how;
        run_ti(sc, wf, ti, fail);
        check_counts(sc, wf);
        if (limit)
            ck_assert_int_le(q_int(sc, "SELECT count(*) FROM task WHERE workflow_id = %lld AND"
                                       " status IN ('Q','I','O','R')", (long long)wf),
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
    task_def_t t[] = {{.id = 11}, {.id = 12, .up = {11}, .nup = 1},
                      {.id = 13, .up = {11}, .nup = 1}, {.id = 14, .up = {12, 13}, .nup = 2}};
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
                                " WHERE task_id IN (12, 13)"), 1);
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
    ck_assert_int_eq(q_char(&sc, "SELECT status FROM task_instance ORDER BY attempt LIMIT 1"),
                     'E');
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
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance WHERE task_id IN (36, 38)"),
                     0);
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
                                " WHERE status = 'Q'"), 1536);
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM transition_log WHERE entity = 'task'"
                                " AND to_status = 'A'"), 1);
    drive(&sc, 4, NULL, 0, 0, 0);
    ck_assert_int_eq(wf_status(&sc, 4), 'D');
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

static const char *const model_tables[] = {"workflow", "workflow_run", "task", "task_instance",
                                           "task_array", "task_edge", "workflow_task_count"};

static char *table_digest(sc_t *sc, const char *table)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT md5(COALESCE(string_agg(x::text, '|' ORDER BY x::text),"
             " '')) FROM %s x", table);
    PGresult *r = PQexec(jm_pg_conn(sc->pg), sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    char *d = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return d;
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
    for (size_t i = 0; i < JM_ARRAY_LEN(model_tables); i++) {
        char *da = table_digest(&a, model_tables[i]);
        /* b's search_path is its own schema */
        char *db = table_digest(&b, model_tables[i]);
        ck_assert_msg(strcmp(da, db) == 0, "table %s differs after replay", model_tables[i]);
        free(da);
        free(db);
    }
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
    ck_assert_int_eq(sc_apply(&sc, JM_EV_TI_LAUNCHED, 7,
                              json_pack("{s:I,s:i,s:[{s:I,s:s}]}", "run_id", (json_int_t)RUN_ID,
                                        "next_report_s", 300, "items", "ti_id", (json_int_t)ti71,
                                        "distributor_id", "42")),
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
    /* 71 was reset and requeued for the new run with a fresh instance id */
    ck_assert_int_eq(q_int(&sc, "SELECT count(*) FROM task_instance WHERE run_id = 778"), 1);
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

Suite *it_apply_suite(void)
{
    Suite *s = suite_create("apply");
    TCase *tc = tcase_create("scenarios");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_diamond);
    tcase_add_test(tc, test_retry_then_done);
    tcase_add_test(tc, test_attempts_exhausted);
    tcase_add_test(tc, test_resource_error_scaled);
    tcase_add_test(tc, test_concurrency_limit);
    tcase_add_test(tc, test_replay_identical);
    tcase_add_test(tc, test_cold_resume);
    suite_add_tcase(s, tc);
    return s;
}
