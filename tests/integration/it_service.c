/*
 * it_service.c — jobmon-fsm as a service, end to end: the reaper (deadlines → published claims →
 * applied transitions, one leader, fail-over), the Redis cache (Redis down and back, the version
 * compare-and-set) and graceful shutdown (SIGTERM finishes the batch, a second signal exits at
 * once).  Suites: reaper, cache, shutdown.
 *
 * Same harness as it_consumer.c (real jobmon-fsm child processes, private topics and group,
 * polling with deadlines, never sleep-waiting), plus a private PostgreSQL SCHEMA per test
 * (every migration after 001, jobmon-fsm pointed at it with options=-csearch_path): the reaper
 * scans every row it can see and its leader lock is per schema, so a private schema keeps the
 * stack's own consumers and reaper out of these tests and these tests out of everybody's rows.  The
 * cache tests start their own redis-server on a free loopback port (the stack's Redis is shared).
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it.h"
#include "jobmon/event.h"
#include "jobmon/hash.h"
#include "jobmon/jmtime.h"
#include "jobmon/producer.h"
#include "jobmon/redis.h"

#ifndef JM_TOP_SRCDIR
#define JM_TOP_SRCDIR "."
#endif

#define HEX "0123456789abcdef0123456789abcdef"
#ifndef DEADLINE_S
#define DEADLINE_S 120
#endif
#define LOCK_EXPR "hashtextextended('jobmon.reaper.' || current_schema(), 0)"

typedef struct {
    char topic[96], dlq[96], group[96], schema[64], log[3][160];
    char conninfo[1024];
    PGconn *pg;
    jm_producer_t *p;
    int64_t wf_base;
    int redis_port; /* 0: the stack's Redis */
    pid_t redis_pid;
    char redis_log[160];
} svc_t;

/* ---- PostgreSQL ---------------------------------------------------------------------------- */

static void exec_ok(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%.200s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static int64_t q_int(svc_t *c, const char *fmt, ...) JM_PRINTF(2, 3);
static int64_t q_int(svc_t *c, const char *fmt, ...)
{
    char sql[2048];
    va_list va;
    va_start(va, fmt);
    vsnprintf(sql, sizeof(sql), fmt, va);
    va_end(va);
    PGresult *r = PQexec(c->pg, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    int64_t v =
        PQntuples(r) == 0 || PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* Poll `fmt` (one integer) until it equals `want` or the deadline passes; returns the last. */
static int64_t wait_int(svc_t *c, int64_t want, const char *fmt, ...) JM_PRINTF(3, 4);
static int64_t wait_int(svc_t *c, int64_t want, const char *fmt, ...)
{
    char sql[2048];
    va_list va;
    va_start(va, fmt);
    vsnprintf(sql, sizeof(sql), fmt, va);
    va_end(va);
    int64_t deadline = jm_time_mono_ms() + DEADLINE_S * 1000, v;
    while ((v = q_int(c, "%s", sql)) != want && jm_time_mono_ms() < deadline)
        jm_time_sleep_ms(50, NULL);
    return v;
}

/* A fresh schema with the jobmon tables; c->pg and c->conninfo use it. */
static void schema_create(svc_t *c)
{
    static int n;
    const char *base = it_env("JOBMON_POSTGRES_CONNINFO");
    char sql[512];
    snprintf(c->schema, sizeof(c->schema), "it_svc_%d_%d", (int)getpid(), ++n);
    snprintf(c->conninfo, sizeof(c->conninfo), "%s options=-csearch_path=%s", base, c->schema);
    c->pg = PQconnectdb(base);
    ck_assert_msg(PQstatus(c->pg) == CONNECTION_OK, "%s", PQerrorMessage(c->pg));
    snprintf(sql, sizeof(sql),
             "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE;"
             " CREATE SCHEMA %s; SET search_path = %s",
             c->schema, c->schema, c->schema);
    exec_ok(c->pg, sql);
    char *s = it_schema_sql();
    exec_ok(c->pg, s);
    free(s);
}

/* ---- Kafka, processes ---------------------------------------------------------------------- */

static void svc_open(svc_t *c, int partitions)
{
    jm_err_t err;
    memset(c, 0, sizeof(*c));
    const char *u = it_unique();
    snprintf(c->topic, sizeof(c->topic), "it.svc.%s", u);
    snprintf(c->dlq, sizeof(c->dlq), "it.svc.dlq.%s", u);
    snprintf(c->group, sizeof(c->group), "it-svc-%s", u);
    for (int i = 0; i < 3; i++)
        snprintf(c->log[i], sizeof(c->log[i]), "/tmp/it_service_%s.%d.log", u, i);
    snprintf(c->redis_log, sizeof(c->redis_log), "/tmp/it_service_%s.redis.log", u);
    it_create_topic(c->topic, partitions);
    it_create_topic(c->dlq, 1);
    schema_create(c);
    c->p = jm_producer_new(it_env("JOBMON_KAFKA_BROKERS"), NULL, &err);
    ck_assert_msg(c->p != NULL, "%s", err.msg);
    jm_producer_set_topic(c->p, c->topic);
    c->wf_base = ((int64_t)(getpid() & 0xffff) << 40 | (jm_time_wall_ms() & 0xffffff) << 16) + 1;
}

static void svc_close(svc_t *c)
{
    jm_err_t err;
    char sql[128];
    ck_assert_msg(jm_producer_flush(c->p, 10000, &err) == JM_OK, "%s", err.msg);
    jm_producer_destroy(c->p);
    it_delete_topic(c->topic);
    it_delete_topic(c->dlq);
    snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", c->schema);
    exec_ok(c->pg, sql);
    PQfinish(c->pg);
}

static const char *fsm_bin(void)
{
    const char *b = getenv("JOBMON_STACK_FSM_BIN");
    return b && *b ? b : JM_TOP_SRCDIR "/src/consumer/jobmon-fsm";
}

/* Start jobmon-fsm number `idx` (its own log) on this test's topics, group and schema, with the
 * reaper scanning every `reaper_s` seconds, writing the cache to c->redis_port (0: the stack's). */
static pid_t fsm_start(svc_t *c, int idx, int reaper_s)
{
    char rs[16], port[16];
    snprintf(rs, sizeof(rs), "%d", reaper_s);
    snprintf(port, sizeof(port), "%d", c->redis_port);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(c->log[idx], "a", stderr);
        (void)f;
        setenv("JOBMON_POSTGRES_CONNINFO", c->conninfo, 1);
        setenv("JOBMON_KAFKA_TOPIC", c->topic, 1);
        setenv("JOBMON_KAFKA_DLQ_TOPIC", c->dlq, 1);
        setenv("JOBMON_FSM_GROUP_ID", c->group, 1);
        setenv("JOBMON_FSM_CONSUMERS", "1", 1);
        setenv("JOBMON_FSM_BATCH_MAX", "500", 1);
        setenv("JOBMON_REAPER_POLL_INTERVAL", rs, 1);
        setenv("JOBMON_LOG_LEVEL", "info", 1);
        if (c->redis_port) {
            setenv("JOBMON_REDIS_HOST", "127.0.0.1", 1);
            setenv("JOBMON_REDIS_PORT", port, 1);
        }
        execl(fsm_bin(), "jobmon-fsm", "--wait", "20", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Wait for the child within `ms`; 1 and *status when it exited, 0 when still running. */
static int wait_exit(pid_t pid, int64_t ms, int *status)
{
    int64_t deadline = jm_time_mono_ms() + ms;
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid)
            return 1;
        ck_assert_msg(w == 0, "waitpid %d failed", (int)pid);
        if (jm_time_mono_ms() > deadline)
            return 0;
        jm_time_sleep_ms(10, NULL);
    }
}

/* Signal the child and reap it within 30 s (SIGKILL and fail otherwise); its wait status. */
static int fsm_stop(pid_t pid, int sig)
{
    int status = 0;
    kill(pid, sig);
    if (!wait_exit(pid, 30000, &status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ck_abort_msg("jobmon-fsm %d did not stop on signal %d", (int)pid, sig);
    }
    return status;
}

static int wait_log(const char *path, const char *needle)
{
    int64_t deadline = jm_time_mono_ms() + DEADLINE_S * 1000;
    while (!it_file_has(path, needle) && jm_time_mono_ms() < deadline)
        jm_time_sleep_ms(50, NULL);
    return it_file_has(path, needle);
}

/* ---- events -------------------------------------------------------------------------------- */

/* Send an event stamped `ts_ms` (0: now). */
static void send_at(svc_t *c, jm_event_type_t type, int64_t wf, json_t *payload, int64_t ts_ms)
{
    jm_err_t err;
    jm_event_t *ev = jm_event_new(type, wf, payload);
    if (ts_ms)
        ev->ts_ms = ts_ms;
    ck_assert_msg(jm_producer_send(c->p, ev, &err) == JM_OK, "%s", err.msg);
    jm_event_destroy(ev);
}

static void flush(svc_t *c)
{
    jm_err_t err;
    ck_assert_msg(jm_producer_flush(c->p, 30000, &err) == JM_OK, "%s", err.msg);
}

#define TASK(wf)   ((wf) + 2)
#define TI(wf, at) jm_hash_ti_id(TASK(wf), at)

/* Bind a one-task workflow (task TASK(wf), 3 attempts). */
static void send_bind(svc_t *c, int64_t wf, int64_t ts)
{
    char args_hash[40];
    snprintf(args_hash, sizeof(args_hash), "%032llx", (unsigned long long)wf);
    json_t *tmpl = json_pack("[{s:s,s:s,s:s,s:[],s:[],s:[],s:I,s:i}]", "name", "tmpl", "hash", HEX,
                             "command_template", "{command}", "node_args", "task_args", "op_args",
                             "array_id", (json_int_t)(wf + 1), "max_concurrently_running", 100);
    send_at(c, JM_EV_WORKFLOW_BIND, wf,
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:s,s:{},s:o}", "tool", "t",
                      "workflow_args_hash", args_hash, "task_hash", HEX, "dag_hash", HEX, "name",
                      "wf", "max_concurrently_running", 100, "total_tasks", 1, "user", "u",
                      "attributes", "templates", tmpl),
            ts);
    send_at(c, JM_EV_WORKFLOW_BIND_TASKS, wf,
            json_pack("{s:i,s:[{s:I,s:s,s:s,s:s,s:I,s:s,s:i,s:{},s:{},s:[],s:s,s:[]}]}", "chunk", 0,
                      "tasks", "task_id", (json_int_t)TASK(wf), "name", "task", "command", "true",
                      "template", "tmpl", "array_id", (json_int_t)(wf + 1), "node_hash", HEX,
                      "max_attempts", 3, "resources", "resource_scales", "fallback_queues",
                      "cluster", "dummy", "upstream"),
            ts);
    send_at(c, JM_EV_WORKFLOW_BOUND, wf, json_pack("{s:i,s:i}", "total_tasks", 1, "chunks", 1), ts);
}

/* Start run `wf` (run id = workflow id); `up`: the distributor's handshake to R as well. */
static void send_start(svc_t *c, int64_t wf, int timeout_s, int up, int64_t ts)
{
    send_at(c, JM_EV_RUN_START, wf,
            json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id", (json_int_t)wf, "cluster", "dummy",
                      "user", "u", "host", "h", "fail_fast", 0, "timeout_s", timeout_s, "resume",
                      "none"),
            ts);
    const char *st[] = {"I", "O", "R"};
    for (int i = 0; up && i < 3; i++)
        send_at(c, JM_EV_RUN_STATUS, wf,
                json_pack("{s:I,s:s}", "run_id", (json_int_t)wf, "status", st[i]), ts);
}

/* The user stops run `wf`: the run goes S, the workflow F. */
static void send_stop(svc_t *c, int64_t wf, int64_t ts)
{
    send_at(c, JM_EV_RUN_STOP, wf, json_pack("{s:I}", "run_id", (json_int_t)wf), ts);
}

/* The instance of attempt 1: instantiated, launched (report by launch_s), and when run_s > 0
 * running (report by run_s). */
static void send_ti(svc_t *c, int64_t wf, int launch_s, int run_s)
{
    json_int_t ti = (json_int_t)TI(wf, 1);
    send_at(c, JM_EV_TI_INSTANTIATED, wf,
            json_pack("{s:I,s:[{s:I}]}", "run_id", (json_int_t)wf, "items", "ti_id", ti), 0);
    send_at(c, JM_EV_TI_LAUNCHED, wf,
            json_pack("{s:I,s:i,s:[{s:I,s:s}]}", "run_id", (json_int_t)wf, "next_report_s",
                      launch_s, "items", "ti_id", ti, "distributor_id", "42"),
            0);
    if (run_s > 0)
        send_at(c, JM_EV_TI_RUNNING, wf,
                json_pack("{s:I,s:s,s:i,s:s,s:i,s:s,s:s}", "ti_id", ti, "host", "node1", "pid", 99,
                          "distributor_id", "42", "next_report_s", run_s, "stdout_path", "/o",
                          "stderr_path", "/e"),
                0);
}

static int64_t offsets_sum(svc_t *c)
{
    return q_int(c, "SELECT coalesce(sum(next_offset), 0) FROM consumer_offset WHERE topic = '%s'",
                 c->topic);
}

static int64_t n_logged(svc_t *c)
{
    return q_int(c, "SELECT count(*) FROM event_log WHERE topic = '%s'", c->topic);
}

/* Every partition's next_offset is one past the last offset in event_log, and every offset below
 * it is there exactly once: nothing of a batch without the rest. */
static void check_offsets_match_log(svc_t *c)
{
    ck_assert_int_eq(q_int(c,
                           "SELECT count(*) FROM consumer_offset o LEFT JOIN (SELECT partition,"
                           " count(*) n, max(kafka_offset) m, count(DISTINCT kafka_offset) d"
                           " FROM event_log WHERE topic = '%s' GROUP BY partition) e USING"
                           " (partition) WHERE o.topic = '%s' AND NOT (coalesce(e.n, 0) ="
                           " o.next_offset AND coalesce(e.d, 0) = o.next_offset AND"
                           " coalesce(e.m + 1, 0) = o.next_offset)",
                           c->topic, c->topic),
                     0);
}

/* ---- reaper --------------------------------------------------------------------------------- */

static char st(svc_t *c, const char *table, int64_t id)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT ascii(status) FROM %s WHERE id = %lld", table,
             (long long)id);
    return (char)q_int(c, "%s", sql);
}

/* Wait until row `id` of `table` has status `want`; returns the last status seen. */
static char wait_st(svc_t *c, const char *table, int64_t id, char want)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT ascii(status) FROM %s WHERE id = %lld", table,
             (long long)id);
    return (char)wait_int(c, want, "%s", sql);
}

/* Reaper events of `type` for workflow `wf`: all of them, or those applied by the FSM and
 * published by a reaper (producer.kind in the raw envelope). */
static int64_t n_reaper(svc_t *c, const char *type, int64_t wf, int applied_by_reaper)
{
    return q_int(c,
                 "SELECT count(*) FROM event_log WHERE topic = '%s' AND type = '%s' AND"
                 " workflow_id = %lld%s",
                 c->topic, type, (long long)wf,
                 applied_by_reaper ? " AND outcome = 'applied' AND convert_from(raw, 'UTF8')::json"
                                     " -> 'producer' ->> 'kind' = 'reaper'"
                                   : "");
}

/* The transition from -> to of `id` was caused by a reaper event of `type`. */
static int64_t n_caused(svc_t *c, const char *entity, int64_t id, char from, char to,
                        const char *type)
{
    return q_int(c,
                 "SELECT count(*) FROM transition_log t JOIN event_log e USING (event_id)"
                 " WHERE t.entity = '%s' AND t.entity_id = %lld AND t.from_status = '%c' AND"
                 " t.to_status = '%c' AND e.type = '%s'",
                 entity, (long long)id, from, to, type);
}

/* Which of the two logs says "reaper leader": 0, 1, or -1 for none or both. */
static int leader_of(svc_t *c)
{
    int a = it_file_has(c->log[0], "this process is the reaper leader");
    int b = it_file_has(c->log[1], "this process is the reaper leader");
    return a == b ? -1 : a ? 0 : 1;
}

START_TEST(test_reaper_end_to_end)
{
    svc_t c;
    svc_open(&c, 2);
    pid_t fsm[2] = {fsm_start(&c, 0, 1), fsm_start(&c, 1, 1)};
    int64_t a = c.wf_base, b = a + 16, lost = a + 32, tmo = a + 48, now = jm_time_wall_ms();
    /* a: running, report-by in 2 s; b: launched, never started, report-by in 2 s */
    send_bind(&c, a, 0);
    send_start(&c, a, 0, 1, 0);
    send_ti(&c, a, 300, 2);
    send_bind(&c, b, 0);
    send_start(&c, b, 0, 1, 0);
    send_ti(&c, b, 2, 0);
    /* lost: started 100 s ago, never heard of since (first heartbeat due at start + 93 s) */
    send_bind(&c, lost, now - 100000);
    send_start(&c, lost, 0, 1, now - 100000);
    /* tmo: timeout_s 2 */
    send_bind(&c, tmo, 0);
    send_start(&c, tmo, 2, 1, 0);
    flush(&c);

    ck_assert_int_eq(wait_st(&c, "task_instance", TI(a, 1), 'T'), 'T');
    ck_assert_int_eq(n_caused(&c, "task_instance", TI(a, 1), 'R', 'T', "reaper.overdue"), 1);
    ck_assert_int_eq(wait_st(&c, "task_instance", TI(b, 1), 'E'), 'E');
    ck_assert_int_eq(n_caused(&c, "task_instance", TI(b, 1), 'O', 'X', "reaper.overdue"), 1);
    ck_assert_int_eq(wait_st(&c, "task_instance", TI(b, 2), 'Q'), 'Q'); /* retried */
    ck_assert_int_eq(q_int(&c, "SELECT num_attempts FROM task WHERE id = %lld", (long long)TASK(b)),
                     2);
    ck_assert_int_eq(wait_st(&c, "workflow_run", lost, 'E'), 'E');
    ck_assert_int_eq(wait_st(&c, "workflow", lost, 'F'), 'F');
    ck_assert_int_eq(n_caused(&c, "workflow_run", lost, 'R', 'E', "reaper.run_lost"), 1);
    ck_assert_int_eq(wait_st(&c, "workflow_run", tmo, 'E'), 'E');
    ck_assert_int_eq(wait_st(&c, "workflow", tmo, 'F'), 'F');
    ck_assert_int_eq(n_caused(&c, "workflow_run", tmo, 'R', 'E', "reaper.run_timeout"), 1);
    ck_assert_int_eq(st(&c, "workflow_run", a), 'R'); /* not lost: its heartbeat is not due */

    /* published by a reaper, applied, and each claim once: one leader, in-flight dedup */
    ck_assert_int_eq(n_reaper(&c, "reaper.overdue", a, 1), 1);
    ck_assert_int_eq(n_reaper(&c, "reaper.overdue", b, 1), 1);
    ck_assert_int_eq(n_reaper(&c, "reaper.run_lost", lost, 1), 1);
    ck_assert_int_eq(n_reaper(&c, "reaper.run_timeout", tmo, 1), 1);
    /* a second scan after everything was applied finds nothing new (the states moved on) */
    int leader = leader_of(&c);
    ck_assert_msg(leader >= 0, "expected exactly one reaper leader among the two processes");
    ck_assert_int_eq(q_int(&c,
                           "SELECT count(*) FROM event_log WHERE topic = '%s' AND type LIKE"
                           " 'reaper.%%' AND workflow_id IN (%lld, %lld, %lld, %lld)",
                           c.topic, (long long)a, (long long)b, (long long)lost, (long long)tmo),
                     4);
    /* the lock is held (by the leader), so this session cannot take it */
    ck_assert_int_eq(q_int(&c, "SELECT pg_try_advisory_lock(" LOCK_EXPR ")::int"), 0);

    /* fail-over: stop the leader; the other one takes the lock and reaps the next deadline */
    ck_assert_int_eq(fsm_stop(fsm[leader], SIGTERM), 0);
    int64_t e = a + 64;
    send_bind(&c, e, 0);
    send_start(&c, e, 0, 1, 0);
    send_ti(&c, e, 300, 1);
    flush(&c);
    ck_assert_int_eq(wait_st(&c, "task_instance", TI(e, 1), 'T'), 'T');
    ck_assert_int_eq(n_reaper(&c, "reaper.overdue", e, 1), 1);
    ck_assert(it_file_has(c.log[1 - leader], "this process is the reaper leader"));
    ck_assert_int_eq(fsm_stop(fsm[1 - leader], SIGTERM), 0);
    ck_assert_int_eq(n_reaper(&c, "reaper.overdue", a, 0), 1); /* still once */
    svc_close(&c);
}
END_TEST

/* Automatic retention: with reaper.retention_days 2 the reaper prunes the workflow that finished
 * three days ago (5 rows per event, so over several events and scans) and not the one that
 * finished a day ago. */
START_TEST(test_reaper_retention)
{
    svc_t c;
    svc_open(&c, 1);
    int64_t old = c.wf_base, young = old + 16, day = 86400000, now = jm_time_wall_ms();
    send_bind(&c, old, now - 3 * day);
    send_start(&c, old, 0, 1, now - 3 * day);
    send_stop(&c, old, now - 3 * day);
    send_bind(&c, young, now - day);
    send_start(&c, young, 0, 1, now - day);
    send_stop(&c, young, now - day);
    flush(&c);
    setenv("JOBMON_REAPER_RETENTION_DAYS", "2", 1);
    setenv("JOBMON_REAPER_RETENTION_ROWS", "5", 1);
    pid_t fsm = fsm_start(&c, 0, 1);
    unsetenv("JOBMON_REAPER_RETENTION_DAYS");
    unsetenv("JOBMON_REAPER_RETENTION_ROWS");

    ck_assert_int_eq(wait_st(&c, "workflow", young, 'F'), 'F');
    ck_assert_int_eq(
        wait_int(&c, 0, "SELECT count(*) FROM workflow WHERE id = %lld", (long long)old), 0);
    const char *tables[] = {"workflow_run", "task", "task_instance", "transition_log"};
    for (size_t i = 0; i < JM_ARRAY_LEN(tables); i++)
        ck_assert_msg(q_int(&c, "SELECT count(*) FROM %s WHERE workflow_id = %lld", tables[i],
                            (long long)old) == 0,
                      "%s rows of the pruned workflow are left", tables[i]);
    /* what is left of its event log: the reaper's prune events of the last transaction */
    ck_assert_int_eq(q_int(&c,
                           "SELECT count(*) FROM event_log WHERE topic = '%s' AND workflow_id ="
                           " %lld AND type <> 'workflow.prune'",
                           c.topic, (long long)old),
                     0);
    ck_assert_int_ge(n_reaper(&c, "workflow.prune", old, 1), 1);
    /* the young one is whole and was never a candidate; the reaper kept leading */
    ck_assert_int_eq(n_reaper(&c, "workflow.prune", young, 0), 0);
    ck_assert_int_eq(st(&c, "workflow_run", young), 'S');
    ck_assert_int_eq(
        q_int(&c, "SELECT count(*) FROM task WHERE workflow_id = %lld", (long long)young), 1);
    ck_assert(it_file_has(c.log[0], "published workflow.prune"));
    ck_assert_int_eq(fsm_stop(fsm, SIGTERM), 0);
    svc_close(&c);
}
END_TEST

/* ---- cache ---------------------------------------------------------------------------------- */

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert(fd >= 0);
    ck_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    ck_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* One Redis command on the private Redis; the reply (caller frees) or NULL when unreachable. */
static redisReply *redis_cmd(svc_t *c, int argc, const char **argv)
{
    jm_err_t err;
    redisReply *rep = NULL;
    jm_redis_t *r = jm_redis_connect("127.0.0.1", c->redis_port, 1000, &err);
    if (r && jm_redis_command_argv(r, argc, argv, NULL, &rep, &err) != JM_OK)
        rep = NULL;
    jm_redis_destroy(r);
    return rep;
}

/* Start (or restart) the private, empty, non-persistent redis-server on c->redis_port. */
static void redis_start(svc_t *c)
{
    char port[16];
    if (!c->redis_port)
        c->redis_port = free_port();
    snprintf(port, sizeof(port), "%d", c->redis_port);
    c->redis_pid = fork();
    ck_assert(c->redis_pid >= 0);
    if (c->redis_pid == 0) {
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--logfile", c->redis_log, (char *)NULL);
        _exit(127);
    }
    const char *ping[] = {"PING"};
    int64_t deadline = jm_time_mono_ms() + 20000;
    redisReply *rep = NULL;
    while (!(rep = redis_cmd(c, 1, ping)) && jm_time_mono_ms() < deadline)
        jm_time_sleep_ms(20, NULL);
    ck_assert_msg(rep != NULL, "redis-server on port %d did not answer", c->redis_port);
    jm_redis_reply_free(rep);
}

static void redis_kill(svc_t *c)
{
    int status;
    kill(c->redis_pid, SIGKILL);
    waitpid(c->redis_pid, &status, 0);
    c->redis_pid = 0;
}

/* HGET jm:wf:<wf> field, as a new string ("" when absent or unreachable). */
static char *hget(svc_t *c, int64_t wf, const char *field)
{
    char key[48];
    snprintf(key, sizeof(key), "jm:wf:%lld", (long long)wf);
    const char *argv[] = {"HGET", key, field};
    redisReply *rep = redis_cmd(c, 3, argv);
    char *v = jm_strdup(rep && rep->type == REDIS_REPLY_STRING ? rep->str : "");
    jm_redis_reply_free(rep);
    return v;
}

/* Wait until every field of jm:wf:<wf> has its value (pairs, NULL-terminated); 1 if it did. */
static int wait_hash(svc_t *c, int64_t wf, const char *const *kv)
{
    int64_t deadline = jm_time_mono_ms() + DEADLINE_S * 1000;
    for (;;) {
        int ok = 1;
        for (const char *const *p = kv; ok && p[0]; p += 2) {
            char *v = hget(c, wf, p[0]);
            ok = strcmp(v, p[1]) == 0;
            if (!ok && jm_time_mono_ms() >= deadline)
                fprintf(stderr, "jm:wf:%lld %s = '%s', want '%s'\n", (long long)wf, p[0], v, p[1]);
            free(v);
        }
        if (ok || jm_time_mono_ms() >= deadline)
            return ok;
        jm_time_sleep_ms(50, NULL);
    }
}

/* The first row of `sql`: its first ncol fields as text (each < 24 bytes). */
static void q_row(svc_t *c, const char *sql, char out[][24], int ncol)
{
    PGresult *r = PQexec(c->pg, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql,
                  PQresultErrorMessage(r));
    for (int i = 0; i < ncol; i++)
        snprintf(out[i], 24, "%s", PQgetvalue(r, 0, i));
    PQclear(r);
}

/* Wait until jm:wf:<wf> holds what PostgreSQL says: version, statuses, total, and per-status
 * counts counted from the task rows themselves. */
static int wait_hash_db(svc_t *c, int64_t wf)
{
    static const char *const fields[] = {"version", "workflow_status",
                                         "run_id",  "run_status",
                                         "total",   "n_G",
                                         "n_Q",     "n_I",
                                         "n_O",     "n_R",
                                         "n_D",     "n_E",
                                         "n_A",     "n_F"};
    char val[14][24], sql[1024];
    const char *kv[2 * 14 + 1];
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT kafka_offset FROM event_log WHERE workflow_id = w.id ORDER BY"
             " applied_seq DESC LIMIT 1), w.status, r.id, r.status, w.total_tasks, %s"
             " FROM workflow w LEFT JOIN workflow_run r ON r.workflow_id = w.id"
             " WHERE w.id = %lld",
             "(SELECT count(*) FILTER (WHERE status = 'G') FROM task WHERE workflow_id = w.id),"
             "(SELECT count(*) FILTER (WHERE status = 'Q') FROM task WHERE workflow_id = w.id),"
             "(SELECT count(*) FILTER (WHERE status = 'I') FROM task WHERE workflow_id = w.id),"
             "(SELECT count(*) FILTER (WHERE status = 'O') FROM task WHERE workflow_id = w.id),"
             "(SELECT count(*) FILTER (WHERE status = 'R') FROM task WHERE workflow_id = w.id),"
             "(SELECT count(*) FILTER (WHERE status = 'D') FROM task WHERE workflow_id = w.id),"
             "(SELECT count(*) FILTER (WHERE status = 'E') FROM task WHERE workflow_id = w.id),"
             "(SELECT count(*) FILTER (WHERE status = 'A') FROM task WHERE workflow_id = w.id),"
             "(SELECT count(*) FILTER (WHERE status = 'F') FROM task WHERE workflow_id = w.id)",
             (long long)wf);
    q_row(c, sql, val, 14);
    for (int i = 0; i < 14; i++) {
        kv[2 * i] = fields[i];
        kv[2 * i + 1] = val[i];
    }
    kv[28] = NULL;
    return wait_hash(c, wf, kv);
}

START_TEST(test_cache_redis_down_and_back)
{
    svc_t c;
    svc_open(&c, 1);
    redis_start(&c);
    pid_t fsm = fsm_start(&c, 0, 86400);
    int64_t w1 = c.wf_base, w2 = w1 + 16;
    send_bind(&c, w1, 0);
    send_start(&c, w1, 0, 0, 0);
    flush(&c);
    ck_assert_int_eq(wait_int(&c, 4, "SELECT count(*) FROM event_log WHERE topic = '%s'", c.topic),
                     4);
    ck_assert(wait_hash_db(&c, w1));
    ck_assert_int_eq(q_int(&c, "SELECT count(*) FROM task WHERE status = 'Q'"), 1);

    redis_kill(&c);              /* Redis dies; applying must go on */
    send_start(&c, w1, 0, 0, 0); /* duplicate run.start: rejected/ignored but logged */
    send_at(&c, JM_EV_RUN_STATUS, w1,
            json_pack("{s:I,s:s}", "run_id", (json_int_t)w1, "status", "I"), 0);
    send_bind(&c, w2, 0);
    send_start(&c, w2, 0, 0, 0);
    flush(&c);
    ck_assert_int_eq(wait_int(&c, 10, "SELECT count(*) FROM event_log WHERE topic = '%s'", c.topic),
                     10);
    ck_assert_int_eq(wait_int(&c, 10,
                              "SELECT sum(next_offset) FROM consumer_offset WHERE topic = '%s'",
                              c.topic),
                     10);
    ck_assert(wait_log(c.log[0], "applying continues without the cache"));
    /* more batches while down: each is applied */
    send_at(&c, JM_EV_TI_INSTANTIATED, w1,
            json_pack("{s:I,s:[{s:I}]}", "run_id", (json_int_t)w1, "items", "ti_id",
                      (json_int_t)TI(w1, 1)),
            0);
    flush(&c);
    ck_assert_int_eq(wait_int(&c, 11,
                              "SELECT sum(next_offset) FROM consumer_offset WHERE topic = '%s'",
                              c.topic),
                     11);
    ck_assert_int_eq(waitpid(fsm, NULL, WNOHANG), 0); /* still running */

    redis_start(&c); /* back, empty, on the same port: rebuilt with no new event */
    ck_assert_int_eq(st(&c, "workflow_run", w1), 'I'); /* changed while Redis was down */
    ck_assert(wait_hash_db(&c, w1));
    ck_assert(wait_hash_db(&c, w2));
    const char *k1[] = {"run_status", "I", "total", "1", NULL};
    ck_assert(wait_hash(&c, w1, k1));
    ck_assert(wait_log(c.log[0], "cache rebuilt"));
    ck_assert_int_eq(fsm_stop(fsm, SIGTERM), 0);
    redis_kill(&c);
    svc_close(&c);
}
END_TEST

/* Redis restarts (empty) between two batches: the connection layer reconnects silently, so only
 * the lost script cache tells; an untouched workflow must come back all the same. */
START_TEST(test_cache_redis_restart_between_batches)
{
    svc_t c;
    svc_open(&c, 1);
    redis_start(&c);
    pid_t fsm = fsm_start(&c, 0, 86400);
    int64_t w1 = c.wf_base, w2 = w1 + 16;
    send_bind(&c, w1, 0);
    send_start(&c, w1, 0, 0, 0);
    flush(&c);
    ck_assert_int_eq(wait_int(&c, 4, "SELECT count(*) FROM event_log WHERE topic = '%s'", c.topic),
                     4);
    ck_assert(wait_hash_db(&c, w1));
    ck_assert(wait_log(c.log[0], "cache rebuilt")); /* the start-up rebuild is over */
    redis_kill(&c);
    redis_start(&c);
    send_bind(&c, w2, 0); /* touches w2 only */
    flush(&c);
    ck_assert_int_eq(wait_int(&c, 7, "SELECT count(*) FROM event_log WHERE topic = '%s'", c.topic),
                     7);
    ck_assert(wait_hash_db(&c, w2));
    ck_assert(wait_hash_db(&c, w1));
    ck_assert_int_eq(fsm_stop(fsm, SIGTERM), 0);
    redis_kill(&c);
    svc_close(&c);
}
END_TEST

START_TEST(test_cache_stale_writer_loses)
{
    svc_t c;
    char key[48];
    svc_open(&c, 1);
    redis_start(&c);
    pid_t fsm = fsm_start(&c, 0, 86400);
    int64_t w1 = c.wf_base, w2 = w1 + 16;
    snprintf(key, sizeof(key), "jm:wf:%lld", (long long)w1);
    send_bind(&c, w1, 0);
    send_start(&c, w1, 0, 0, 0);
    flush(&c);
    const char *first[] = {"version", "3", "run_status", "B", NULL};
    ck_assert(wait_hash(&c, w1, first));

    /* a newer writer (by hand) got there first: version far ahead */
    const char *hset[] = {"HSET", key, "version", "1000000000", "run_status", "Z"};
    redisReply *rep = redis_cmd(&c, 6, hset);
    ck_assert(rep != NULL);
    jm_redis_reply_free(rep);
    send_at(&c, JM_EV_RUN_STATUS, w1,
            json_pack("{s:I,s:s}", "run_id", (json_int_t)w1, "status", "I"), 0);
    flush(&c);
    ck_assert_int_eq(wait_int(&c, 5, "SELECT count(*) FROM event_log WHERE topic = '%s'", c.topic),
                     5);
    ck_assert_int_eq(st(&c, "workflow_run", w1), 'I');
    /* barrier: a later batch (one partition, one consumer) has been written to Redis, so the
     * write of w1's batch was attempted before it */
    send_bind(&c, w2, 0);
    flush(&c);
    const char *k2[] = {"version", "7", NULL};
    ck_assert(wait_hash(&c, w2, k2));
    const char *kept[] = {"version", "1000000000", "run_status", "Z", NULL};
    ck_assert(wait_hash(&c, w1, kept));

    /* an older hash (lower version) is overwritten by the next write */
    const char *hset0[] = {"HSET", key, "version", "0", "run_status", "Z"};
    rep = redis_cmd(&c, 6, hset0);
    ck_assert(rep != NULL);
    jm_redis_reply_free(rep);
    send_at(&c, JM_EV_RUN_STATUS, w1,
            json_pack("{s:I,s:s}", "run_id", (json_int_t)w1, "status", "O"), 0);
    flush(&c);
    ck_assert_int_eq(wait_int(&c, 9, "SELECT count(*) FROM event_log WHERE topic = '%s'", c.topic),
                     9);
    ck_assert(wait_hash_db(&c, w1));
    const char *fresh[] = {"run_status", "O", NULL};
    ck_assert(wait_hash(&c, w1, fresh));
    ck_assert_int_eq(fsm_stop(fsm, SIGTERM), 0);
    redis_kill(&c);
    svc_close(&c);
}
END_TEST

/* ---- shutdown ------------------------------------------------------------------------------- */

/* Lock this topic's consumer_offset rows from a second session (returned, in a transaction), so
 * the next batch transaction blocks at its offset advance. */
static PGconn *block_offsets(svc_t *c)
{
    char sql[512];
    PGconn *lk = PQconnectdb(c->conninfo);
    ck_assert_msg(PQstatus(lk) == CONNECTION_OK, "%s", PQerrorMessage(lk));
    snprintf(sql, sizeof(sql), "BEGIN; SELECT * FROM consumer_offset WHERE topic = '%s' FOR UPDATE",
             c->topic);
    exec_ok(lk, sql);
    return lk;
}

/* The pid of a backend blocked by lk's locks (0 if none within the deadline). */
static int wait_blocked(svc_t *c, PGconn *lk)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(min(pid), 0) FROM pg_stat_activity WHERE %d = ANY"
             " (pg_blocking_pids(pid))",
             PQbackendPID(lk));
    int64_t deadline = jm_time_mono_ms() + DEADLINE_S * 1000, pid;
    while ((pid = q_int(c, "%s", sql)) == 0 && jm_time_mono_ms() < deadline)
        jm_time_sleep_ms(20, NULL);
    return (int)pid;
}

/* Four events applied, then four more whose batch is blocked mid-transaction. */
static pid_t start_blocked(svc_t *c, PGconn **lk, int *blocked)
{
    pid_t fsm = fsm_start(c, 0, 86400);
    send_bind(c, c->wf_base, 0);
    send_start(c, c->wf_base, 0, 0, 0);
    flush(c);
    ck_assert_int_eq(wait_int(c, 4,
                              "SELECT coalesce(sum(next_offset), 0) FROM consumer_offset"
                              " WHERE topic = '%s'",
                              c->topic),
                     4);
    *lk = block_offsets(c);
    send_bind(c, c->wf_base + 16, 0);
    send_start(c, c->wf_base + 16, 0, 0, 0);
    flush(c);
    *blocked = wait_blocked(c, *lk);
    ck_assert_msg(*blocked > 0, "the batch transaction never blocked on consumer_offset");
    return fsm;
}

START_TEST(test_sigterm_finishes_batch)
{
    svc_t c;
    PGconn *lk;
    int blocked, status;
    svc_open(&c, 1);
    pid_t fsm = start_blocked(&c, &lk, &blocked);
    kill(fsm, SIGTERM);
    ck_assert(wait_log(c.log[0], "stopping"));
    ck_assert_int_eq(wait_exit(fsm, 300, &status), 0); /* the batch in flight is not abandoned */
    ck_assert_int_eq(n_logged(&c), 4);
    exec_ok(lk, "COMMIT"); /* let it finish */
    ck_assert_msg(wait_exit(fsm, 30000, &status), "jobmon-fsm did not exit after SIGTERM");
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_int_eq(n_logged(&c), 8); /* the whole batch, committed */
    ck_assert_int_eq(offsets_sum(&c), 8);
    check_offsets_match_log(&c);
    PQfinish(lk);
    svc_close(&c);
}
END_TEST

START_TEST(test_second_signal_exits_at_once)
{
    svc_t c;
    PGconn *lk;
    int blocked, status;
    svc_open(&c, 1);
    pid_t fsm = start_blocked(&c, &lk, &blocked);
    kill(fsm, SIGTERM);
    ck_assert(wait_log(c.log[0], "stopping"));
    ck_assert_int_eq(wait_exit(fsm, 300, &status), 0);
    kill(fsm, SIGTERM);
    ck_assert_msg(wait_exit(fsm, 2000, &status), "a second SIGTERM did not exit at once");
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 128 + SIGTERM);
    ck_assert(it_file_has(c.log[0], "second signal"));
    exec_ok(lk, "ROLLBACK");
    /* the dead process's transaction ends with its backend: nothing of that batch remains */
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", blocked);
    ck_assert_int_eq(wait_int(&c, 0, "%s", sql), 0);
    ck_assert_int_eq(n_logged(&c), 4);
    ck_assert_int_eq(offsets_sum(&c), 4);
    check_offsets_match_log(&c);
    /* and a new consumer applies it, once */
    pid_t again = fsm_start(&c, 1, 86400);
    ck_assert_int_eq(wait_int(&c, 8, "SELECT count(*) FROM event_log WHERE topic = '%s'", c.topic),
                     8);
    ck_assert_int_eq(wait_int(&c, 8,
                              "SELECT sum(next_offset) FROM consumer_offset WHERE topic ="
                              " '%s'",
                              c.topic),
                     8);
    ck_assert_int_eq(fsm_stop(again, SIGTERM), 0);
    check_offsets_match_log(&c);
    PQfinish(lk);
    svc_close(&c);
}
END_TEST

START_TEST(test_sigterm_under_load)
{
    svc_t c;
    int status, n_wf = 400;
    svc_open(&c, 4);
    for (int i = 0; i < n_wf; i++) {
        send_bind(&c, c.wf_base + 16 * i, 0);
        send_start(&c, c.wf_base + 16 * i, 0, 1, 0);
    }
    flush(&c); /* 7 events each */
    pid_t fsm = fsm_start(&c, 0, 86400);
    int64_t deadline = jm_time_mono_ms() + DEADLINE_S * 1000;
    while (n_logged(&c) == 0 && jm_time_mono_ms() < deadline)
        jm_time_sleep_ms(5, NULL);
    kill(fsm, SIGTERM);
    ck_assert_msg(wait_exit(fsm, 30000, &status), "jobmon-fsm did not exit within 30 s");
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    int64_t at_stop = n_logged(&c);
    ck_assert_int_gt(at_stop, 0);
    check_offsets_match_log(&c);
    /* the rest is applied by the next consumer, each event once */
    pid_t again = fsm_start(&c, 1, 86400);
    ck_assert_int_eq(wait_int(&c, 7 * n_wf,
                              "SELECT sum(next_offset) FROM consumer_offset WHERE"
                              " topic = '%s'",
                              c.topic),
                     7 * n_wf);
    ck_assert_int_eq(fsm_stop(again, SIGTERM), 0);
    ck_assert_int_eq(n_logged(&c), 7 * n_wf);
    check_offsets_match_log(&c);
    ck_assert_int_eq(q_int(&c, "SELECT count(*) FROM workflow_run WHERE status = 'R'"), n_wf);
    svc_close(&c);
}
END_TEST

Suite *it_reaper_suite(void)
{
    Suite *s = suite_create("reaper");
    TCase *tc = tcase_create("service");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_reaper_end_to_end);
    tcase_add_test(tc, test_reaper_retention);
    suite_add_tcase(s, tc);
    return s;
}

Suite *it_cache_suite(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("service");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_cache_redis_down_and_back);
    tcase_add_test(tc, test_cache_redis_restart_between_batches);
    tcase_add_test(tc, test_cache_stale_writer_loses);
    suite_add_tcase(s, tc);
    return s;
}

Suite *it_shutdown_suite(void)
{
    Suite *s = suite_create("shutdown");
    TCase *tc = tcase_create("service");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_sigterm_finishes_batch);
    tcase_add_test(tc, test_second_signal_exits_at_once);
    tcase_add_test(tc, test_sigterm_under_load);
    suite_add_tcase(s, tc);
    return s;
}
