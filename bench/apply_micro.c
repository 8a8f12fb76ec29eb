/*
 * apply_micro.c — the FSM handlers' cost without Kafka: apply a synthetic workflow's event stream
 * (bind chunks, run start, instantiated/launched batches of 500, then running, heartbeat and
 * done per instance) directly through jm_apply_event, `batch` events per transaction (hinted
 * with jm_apply_hint and ended with jm_apply_flush, as the consume loop does), against
 * the live PostgreSQL, in a fresh schema; print events/s overall and per event type.
 *
 *   bench/apply_micro [TASKS [LIMIT [BATCH]]]     defaults 20000 2000 1000
 * Connection: JOBMON_TEST_PG_CONNINFO, else JOBMON_POSTGRES_CONNINFO (eval "$(scripts/stack env)").
 * Schema files are read from JM_TOP_SRCDIR/schemas/sql.  The schema is dropped at the end.
 * The schema is ANALYZEd once bound and started (APPLY_MICRO_NO_ANALYZE=1 skips it), as
 * autovacuum keeps production tables analyzed; without it the cached plans are those of empty
 * tables and the numbers measure that instead of the handlers.
 * It does not measure the consume loop (decode, event_log, offsets, cache): see fsm_throughput.
 */
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consumer/apply.h"
#include "jobmon/event.h"
#include "jobmon/hash.h"
#include "jobmon/pg.h"

#ifndef JM_TOP_SRCDIR
#define JM_TOP_SRCDIR "."
#endif

#define HEX   "0123456789abcdef0123456789abcdef"
#define WF    4242
#define RUN   4343
#define CHUNK 500

typedef struct {
    jm_pg_t *pg;
    jm_apply_t *ap;
    int64_t ts;
    size_t batch, in_txn, total;
    double t_type[JM_EV__CNT];
    size_t n_type[JM_EV__CNT];
    double t_flush, t_hint, t_analyze;
    size_t n_flush;
    jm_event_t **q; /* the batch being built */
} bench_t;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "apply_micro: %s: %s\n", what, msg);
    exit(1);
}

static void sql(bench_t *b, const char *q)
{
    PGresult *r = PQexec(jm_pg_conn(b->pg), q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die(q, PQresultErrorMessage(r));
    PQclear(r);
}

static void run_file(bench_t *b, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/schemas/sql/%s", JM_TOP_SRCDIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        die("open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n)
        die("read", path);
    s[n] = 0;
    fclose(f);
    sql(b, s);
    free(s);
}

/* The handlers' pending per-transaction writes, then COMMIT (timed as "flush"). */
static void commit(bench_t *b)
{
    jm_err_t err;
    double t0 = now_s();
    if (jm_apply_flush(b->ap, &err) != JM_OK)
        die("jm_apply_flush", err.msg);
    b->t_flush += now_s() - t0;
    b->n_flush++;
    sql(b, "COMMIT");
}

/* Apply the queued events in one transaction, as the consume loop does: hints, each event,
 * flush, COMMIT. */
static void run_batch(bench_t *b)
{
    if (b->in_txn == 0)
        return;
    sql(b, "BEGIN");
    double t0 = now_s();
    for (size_t i = 0; i < b->in_txn; i++)
        jm_apply_hint(b->ap, b->q[i]);
    b->t_hint += now_s() - t0;
    for (size_t i = 0; i < b->in_txn; i++) {
        jm_event_t *ev = b->q[i];
        jm_apply_result_t res;
        jm_err_t err;
        t0 = now_s();
        if (jm_apply_event(b->ap, ev, 0, &res, &err) != JM_OK)
            die(jm_event_type_name(ev->type), err.msg);
        b->t_type[ev->type] += now_s() - t0;
        b->n_type[ev->type]++;
        if (res.outcome != JM_OUTCOME_APPLIED)
            die(jm_event_type_name(ev->type), res.reason);
        jm_event_destroy(ev);
        b->total++;
    }
    commit(b);
    jm_apply_clear_touched(b->ap);
    b->in_txn = 0;
}

/* Queue one event (takes the payload); apply every b->batch events. */
static void emit(bench_t *b, jm_event_type_t type, json_t *payload)
{
    jm_event_t *ev = jm_event_new(type, WF, payload);
    ev->ts_ms = ++b->ts;
    b->q[b->in_txn++] = ev;
    if (b->in_txn == b->batch)
        run_batch(b);
}

static void flush(bench_t *b)
{
    run_batch(b);
}

static void bind(bench_t *b, int n, int limit)
{
    json_t *tmpl = json_pack("[{s:s,s:s,s:s,s:[],s:[],s:[],s:I,s:i}]", "name", "tmpl", "hash", HEX,
                             "command_template", "{command}", "node_args", "task_args", "op_args",
                             "array_id", (json_int_t)WF * 10, "max_concurrently_running", 100000);
    emit(b, JM_EV_WORKFLOW_BIND,
         json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:s,s:{},s:o}", "tool", "bench",
                   "workflow_args_hash", HEX, "task_hash", HEX, "dag_hash", HEX, "name", "bench",
                   "max_concurrently_running", limit, "total_tasks", n, "user", "u", "attributes",
                   "templates", tmpl));
    int chunks = 0;
    for (int first = 1; first <= n; first += 1000, chunks++) {
        json_t *tasks = json_array();
        for (int id = first; id < first + 1000 && id <= n; id++) {
            char cmd[32];
            snprintf(cmd, sizeof(cmd), "echo %d", id);
            json_array_append_new(
                tasks,
                json_pack("{s:I,s:s,s:s,s:s,s:I,s:s,s:i,s:{s:i,s:s},s:{},s:[],s:s,s:[]}", "task_id",
                          (json_int_t)id, "name", cmd, "command", cmd, "template", "tmpl",
                          "array_id", (json_int_t)WF * 10, "node_hash", HEX, "max_attempts", 3,
                          "resources", "memory", 1024, "queue", "null.q", "resource_scales",
                          "fallback_queues", "cluster", "dummy", "upstream"));
        }
        emit(b, JM_EV_WORKFLOW_BIND_TASKS, json_pack("{s:i,s:o}", "chunk", chunks, "tasks", tasks));
    }
    emit(b, JM_EV_WORKFLOW_BOUND, json_pack("{s:i,s:i}", "total_tasks", n, "chunks", chunks));
}

static void start(bench_t *b)
{
    emit(b, JM_EV_RUN_START,
         json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id", (json_int_t)RUN, "cluster", "dummy",
                   "user", "u", "host", "h", "fail_fast", 0, "timeout_s", 0, "resume", "none"));
    const char *st[] = {"I", "O", "R"};
    for (int i = 0; i < 3; i++)
        emit(b, JM_EV_RUN_STATUS,
             json_pack("{s:I,s:s}", "run_id", (json_int_t)RUN, "status", st[i]));
}

/* Tasks first..last (all queued by now): one instantiated and one launched batch, then
 * running, heartbeat, done per instance. */
static void wave(bench_t *b, int first, int last)
{
    json_t *inst = json_array(), *launch = json_array();
    for (int id = first; id <= last; id++) {
        json_int_t ti = (json_int_t)jm_hash_ti_id(id, 1);
        json_array_append_new(inst, json_pack("{s:I}", "ti_id", ti));
        json_array_append_new(launch, json_pack("{s:I,s:s}", "ti_id", ti, "distributor_id", "1"));
    }
    emit(b, JM_EV_TI_INSTANTIATED,
         json_pack("{s:I,s:o}", "run_id", (json_int_t)RUN, "items", inst));
    emit(b, JM_EV_TI_LAUNCHED,
         json_pack("{s:I,s:i,s:o}", "run_id", (json_int_t)RUN, "next_report_s", 300, "items",
                   launch));
    for (int id = first; id <= last; id++) {
        json_int_t ti = (json_int_t)jm_hash_ti_id(id, 1);
        emit(b, JM_EV_TI_RUNNING,
             json_pack("{s:I,s:s,s:i,s:s,s:i,s:s,s:s}", "ti_id", ti, "host", "n1", "pid", 1,
                       "distributor_id", "1", "next_report_s", 300, "stdout_path", "/o",
                       "stderr_path", "/e"));
    }
    for (int id = first; id <= last; id++)
        emit(b, JM_EV_TI_HEARTBEAT,
             json_pack("{s:I,s:i}", "ti_id", (json_int_t)jm_hash_ti_id(id, 1), "next_report_s",
                       300));
    for (int id = first; id <= last; id++)
        emit(b, JM_EV_TI_DONE,
             json_pack("{s:I,s:s,s:s,s:{s:i,s:i,s:i}}", "ti_id", (json_int_t)jm_hash_ti_id(id, 1),
                       "stdout_tail", "", "stderr_tail", "", "usage", "wall_ms", 1, "cpu_ms", 1,
                       "maxrss_kb", 1));
}

static void report(const bench_t *b, double wall)
{
    wall -= b->t_analyze; /* not part of applying */
    printf("%-22s %8s %10s %10s %12s\n", "event type", "count", "total s", "us/event", "events/s");
    for (int t = 0; t < JM_EV__CNT; t++) {
        if (!b->n_type[t])
            continue;
        printf("%-22s %8zu %10.3f %10.1f %12.0f\n", jm_event_type_name((jm_event_type_t)t),
               b->n_type[t], b->t_type[t], b->t_type[t] * 1e6 / (double)b->n_type[t],
               (double)b->n_type[t] / b->t_type[t]);
    }
    if (b->n_flush)
        printf("%-22s %8zu %10.3f %10.1f   (jm_apply_hint: %.3f s)\n", "(jm_apply_flush)",
               b->n_flush, b->t_flush, b->t_flush * 1e6 / (double)b->n_flush, b->t_hint);
    printf("%-22s %8zu %10.3f %10.1f %12.0f   (incl. BEGIN/COMMIT, excl. ANALYZE)\n", "all",
           b->total, wall, wall * 1e6 / (double)b->total, (double)b->total / wall);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000, limit = argc > 2 ? atoi(argv[2]) : 2000;
    bench_t b;
    memset(&b, 0, sizeof(b));
    b.batch = argc > 3 ? (size_t)atoi(argv[3]) : 1000;
    b.q = calloc(b.batch + 1, sizeof(*b.q));
    if (n < 1 || limit < CHUNK || b.batch < 1)
        die("usage", "apply_micro [TASKS >= 1 [LIMIT >= 500 [BATCH >= 1]]]");
    const char *ci = getenv("JOBMON_TEST_PG_CONNINFO");
    if (!ci || !*ci)
        ci = getenv("JOBMON_POSTGRES_CONNINFO");
    if (!ci)
        die("connect", "JOBMON_POSTGRES_CONNINFO not set (eval \"$(scripts/stack env)\")");
    jm_err_t err;
    b.pg = jm_pg_connect(ci, 0, &err);
    if (!b.pg)
        die("connect", err.msg);
    char q[256];
    snprintf(q, sizeof(q),
             "SET client_min_messages = warning; DROP SCHEMA IF EXISTS bench_%d"
             " CASCADE; CREATE SCHEMA bench_%d; SET search_path = bench_%d",
             (int)getpid(), (int)getpid(), (int)getpid());
    sql(&b, q);
    run_file(&b, "002_log.sql");
    run_file(&b, "003_model.sql");
    b.ap = jm_apply_new(b.pg, &err);
    if (!b.ap)
        die("jm_apply_new", err.msg);
    b.ts = 1764000000000;
    double t0 = now_s();
    bind(&b, n, limit);
    start(&b);
    if (!getenv("APPLY_MICRO_NO_ANALYZE")) {
        /* Production tables have statistics (autovacuum); a fresh schema has none, and plans
         * cached for empty tables (seq scans) would be measured instead of the handlers. */
        flush(&b);
        double ta = now_s();
        sql(&b, "ANALYZE");
        b.t_analyze = now_s() - ta;
    }
    for (int first = 1; first <= n; first += CHUNK)
        wave(&b, first, first + CHUNK - 1 <= n ? first + CHUNK - 1 : n);
    flush(&b);
    double wall = now_s() - t0;
    PGresult *r = PQexec(jm_pg_conn(b.pg), "SELECT status FROM workflow");
    printf("tasks %d, limit %d, batch %zu: workflow %s\n", n, limit, b.batch,
           PQntuples(r) ? PQgetvalue(r, 0, 0) : "?");
    PQclear(r);
    report(&b, wall);
    snprintf(q, sizeof(q), "RESET search_path; DROP SCHEMA bench_%d CASCADE", (int)getpid());
    sql(&b, q);
    jm_apply_destroy(b.ap);
    jm_pg_destroy(b.pg);
    return 0;
}
