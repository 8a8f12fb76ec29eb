/*
 * it_consumer.c — the consume loop of jobmon-fsm against the real stack: the tests start the real
 * binary (src/consumer/jobmon-fsm, or $JOBMON_STACK_FSM_BIN) as child processes, publish events
 * with libjobmon's producer and poll PostgreSQL and Kafka with deadlines (never sleep-wait).
 *
 * Isolation: each test uses its own topics (created here, 4 partitions), consumer group and
 * workflow ids, and its own PostgreSQL schema with this checkout's migrations (the FSMs are pointed
 * at it by options=-csearch_path), so the stack's own consumers, its schema's migration level and
 * other tests do not interfere; rows are found by topic / workflow id.  The reaper of the child
 * processes is kept idle (poll_interval 1 day). Events are simple: workflow.bind + bind_tasks +
 * bound + run.start per workflow.
 */
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "consumer/replay.h"
#include "it.h"
#include "jobmon/event.h"
#include "jobmon/jmtime.h"
#include "jobmon/producer.h"
#include "jobmon/redis.h"

#ifndef JM_TOP_SRCDIR
#define JM_TOP_SRCDIR "."
#endif

#define HEX        "0123456789abcdef0123456789abcdef"
#define DEADLINE_S 300

typedef struct {
    char topic[96], dlq[96], group[96], log[160];
    char schema[64], conninfo[1024]; /* a schema of this test's own, this checkout's migrations */
    PGconn *pg;
    jm_producer_t *p;
    int64_t wf_base;
} ctx_t;

/* ---- helpers ----------------------------------------------------------------------------------
 */

static int64_t q_int(ctx_t *c, const char *fmt, ...) JM_PRINTF(2, 3);
static int64_t q_int(ctx_t *c, const char *fmt, ...)
{
    char sql[2048];
    va_list va;
    va_start(va, fmt);
    vsnprintf(sql, sizeof(sql), fmt, va);
    va_end(va);
    PGresult *r = PQexec(c->pg, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK,
                  "%s: %s", sql, PQresultErrorMessage(r));
    int64_t v =
        PQntuples(r) == 0 || PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* Poll `sql` (one integer) until it equals `want` or the deadline passes; returns the last. */
static int64_t wait_int(ctx_t *c, int64_t want, const char *sql)
{
    int64_t deadline = jm_time_mono_ms() + DEADLINE_S * 1000, v;
    while ((v = q_int(c, "%s", sql)) != want && jm_time_mono_ms() < deadline)
        jm_time_sleep_ms(50, NULL);
    return v;
}

/* This checkout's migrations into conn's search_path. */
static void schema_migrate(PGconn *conn)
{
    char *sql = it_schema_sql();
    PGresult *r = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "migrations: %s", PQresultErrorMessage(r));
    PQclear(r);
    free(sql);
}

static void ctx_open(ctx_t *c)
{
    jm_err_t err;
    memset(c, 0, sizeof(*c));
    const char *u = it_unique();
    snprintf(c->topic, sizeof(c->topic), "it.fsm.%s", u);
    snprintf(c->dlq, sizeof(c->dlq), "it.fsm.dlq.%s", u);
    snprintf(c->group, sizeof(c->group), "it-fsm-%s", u);
    snprintf(c->log, sizeof(c->log), "/tmp/it_consumer_%s.log", u);
    it_create_topic(c->topic, 4);
    it_create_topic(c->dlq, 1);
    static int n_schema;
    snprintf(c->schema, sizeof(c->schema), "it_fsm_%d_%d", (int)getpid(), ++n_schema);
    snprintf(c->conninfo, sizeof(c->conninfo), "%s options=-csearch_path=%s",
             it_env("JOBMON_POSTGRES_CONNINFO"), c->schema);
    c->pg = PQconnectdb(it_env("JOBMON_POSTGRES_CONNINFO"));
    ck_assert_msg(PQstatus(c->pg) == CONNECTION_OK, "%s", PQerrorMessage(c->pg));
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE;"
             " CREATE SCHEMA %s; SET search_path = %s",
             c->schema, c->schema, c->schema);
    PGresult *r = PQexec(c->pg, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    schema_migrate(c->pg);
    c->p = jm_producer_new(it_env("JOBMON_KAFKA_BROKERS"), NULL, &err);
    ck_assert_msg(c->p != NULL, "%s", err.msg);
    jm_producer_set_topic(c->p, c->topic);
    /* workflow ids unique to this run: high bits from pid and time */
    c->wf_base = ((int64_t)(getpid() & 0xffff) << 40 | (jm_time_wall_ms() & 0xffffff) << 16) + 1;
}

static void ctx_close(ctx_t *c)
{
    jm_err_t err;
    ck_assert_msg(jm_producer_flush(c->p, 10000, &err) == JM_OK, "%s", err.msg);
    jm_producer_destroy(c->p);
    it_delete_topic(c->topic);
    it_delete_topic(c->dlq);
    char sql[160];
    snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", c->schema);
    PQclear(PQexec(c->pg, sql));
    PQfinish(c->pg);
}

static const char *fsm_bin(void)
{
    const char *b = getenv("JOBMON_STACK_FSM_BIN");
    return b && *b ? b : JM_TOP_SRCDIR "/src/consumer/jobmon-fsm";
}

/* Start jobmon-fsm with this test's topics and group; stderr appended to c->log. */
static pid_t fsm_start(ctx_t *c, int consumers, const char *inject)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", consumers);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(c->log, "a", stderr);
        (void)f;
        setenv("JOBMON_POSTGRES_CONNINFO", c->conninfo, 1);
        setenv("JOBMON_KAFKA_TOPIC", c->topic, 1);
        setenv("JOBMON_KAFKA_DLQ_TOPIC", c->dlq, 1);
        setenv("JOBMON_FSM_GROUP_ID", c->group, 1);
        setenv("JOBMON_FSM_CONSUMERS", n, 1);
        setenv("JOBMON_FSM_BATCH_MAX",
               getenv("IT_CONSUMER_BATCH_MAX") ? getenv("IT_CONSUMER_BATCH_MAX") : "500", 1);
        setenv("JOBMON_REAPER_POLL_INTERVAL", "86400", 1);
        if (inject)
            setenv("JOBMON_FSM_INJECT_SERIALIZATION_FAILURE", inject, 1);
        if (getenv("IT_CONSUMER_DECODE_AHEAD"))
            setenv("JOBMON_FSM_DECODE_AHEAD", getenv("IT_CONSUMER_DECODE_AHEAD"), 1);
        execl(fsm_bin(), "jobmon-fsm", "--wait", "20", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int log_has(ctx_t *c, const char *needle)
{
    return it_file_has(c->log, needle);
}

/* Whether jobmon-fsm pid has said that it runs (its signal handlers are installed by then);
 * returns 1 with *status set when it exited before that.  A signal sent earlier is not the stop
 * under test: between fork and exec the child is still a copy of this test, with check's SIGTERM
 * handler that signals the test's whole process group (seen under valgrind, whose start-up is slow,
 * when FSM A had applied everything and B was stopped at once). */
static int fsm_wait_running(ctx_t *c, pid_t pid, int *status)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "fsm[%d] jobmon-fsm running", (int)pid);
    int64_t deadline = jm_time_mono_ms() + DEADLINE_S * 1000;
    while (!log_has(c, needle)) {
        if (waitpid(pid, status, WNOHANG) == pid)
            return 1;
        if (jm_time_mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            ck_abort_msg("jobmon-fsm %d did not start in %d s", (int)pid, DEADLINE_S);
        }
        jm_time_sleep_ms(20, NULL);
    }
    return 0;
}

/* Stop jobmon-fsm pid with sig (any other than SIGKILL once it runs); its wait status. */
static int fsm_stop(ctx_t *c, pid_t pid, int sig)
{
    int status = 0;
    if (sig != SIGKILL && fsm_wait_running(c, pid, &status))
        return status;
    kill(pid, sig);
    int64_t deadline = jm_time_mono_ms() + 30000;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (jm_time_mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            ck_abort_msg("jobmon-fsm %d did not stop on signal %d", (int)pid, sig);
        }
        jm_time_sleep_ms(20, NULL);
    }
    return status;
}

static void send_ev(ctx_t *c, jm_event_t *ev)
{
    jm_err_t err;
    ck_assert_msg(jm_producer_send(c->p, ev, &err) == JM_OK, "%s", err.msg);
}

static jm_event_t *ev_new(jm_event_type_t type, int64_t wf, json_t *payload)
{
    return jm_event_new(type, wf, payload);
}

/* The four events that bind a one-task workflow and start its run (run id = wf id). */
static void send_workflow(ctx_t *c, int64_t wf)
{
    json_t *tmpl = json_pack("[{s:s,s:s,s:s,s:[],s:[],s:[],s:I,s:i}]", "name", "tmpl", "hash", HEX,
                             "command_template", "{command}", "node_args", "task_args", "op_args",
                             "array_id", (json_int_t)(wf + 1), "max_concurrently_running", 100);
    jm_event_t *evs[4];
    char args_hash[40]; /* a workflow's args are its identity: unique per workflow */
    snprintf(args_hash, sizeof(args_hash), "%032llx", (unsigned long long)wf);
    evs[0] = ev_new(JM_EV_WORKFLOW_BIND, wf,
                    json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:s,s:{},s:o}", "tool", "t",
                              "workflow_args_hash", args_hash, "task_hash", HEX, "dag_hash", HEX,
                              "name", "wf", "max_concurrently_running", 100, "total_tasks", 1,
                              "user", "u", "attributes", "templates", tmpl));
    evs[1] =
        ev_new(JM_EV_WORKFLOW_BIND_TASKS, wf,
               json_pack("{s:i,s:[{s:I,s:s,s:s,s:s,s:I,s:s,s:i,s:{},s:{},s:[],s:s,s:[]}]}", "chunk",
                         0, "tasks", "task_id", (json_int_t)(wf + 2), "name", "task", "command",
                         "true", "template", "tmpl", "array_id", (json_int_t)(wf + 1), "node_hash",
                         HEX, "max_attempts", 3, "resources", "resource_scales", "fallback_queues",
                         "cluster", "dummy", "upstream"));
    evs[2] =
        ev_new(JM_EV_WORKFLOW_BOUND, wf, json_pack("{s:i,s:i}", "total_tasks", 1, "chunks", 1));
    evs[3] = ev_new(JM_EV_RUN_START, wf,
                    json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id", (json_int_t)wf, "cluster",
                              "dummy", "user", "u", "host", "h", "fail_fast", 0, "timeout_s", 0,
                              "resume", "none"));
    for (int i = 0; i < 4; i++) {
        send_ev(c, evs[i]);
        jm_event_destroy(evs[i]);
    }
}

static void flush(ctx_t *c)
{
    jm_err_t err;
    ck_assert_msg(jm_producer_flush(c->p, 30000, &err) == JM_OK, "%s", err.msg);
}

/* Events recorded for this test's topic (optionally with an outcome). */
static int64_t n_logged(ctx_t *c, const char *outcome)
{
    return q_int(c, "SELECT count(*) FROM event_log WHERE topic = '%s'%s%s%s", c->topic,
                 outcome ? " AND outcome = '" : "", outcome ? outcome : "", outcome ? "'" : "");
}

static char *sql_logged(ctx_t *c, char *buf, size_t n)
{
    snprintf(buf, n, "SELECT count(*) FROM event_log WHERE topic = '%s'", c->topic);
    return buf;
}

/* The n workflows in [base, base+span) each have exactly one run, and every produced offset was
 * consumed. */
static void check_applied_once(ctx_t *c, int64_t base, int64_t span, int n, int64_t produced)
{
    ck_assert_int_eq(q_int(c, "SELECT count(*) FROM workflow WHERE id >= %lld AND id < %lld",
                           (long long)base, (long long)(base + span)),
                     n);
    ck_assert_int_eq(q_int(c, "SELECT count(*) FROM workflow_run WHERE id >= %lld AND id < %lld",
                           (long long)base, (long long)(base + span)),
                     n);
    /* one creation transition per run: applying run.start twice would show twice (or fail) */
    ck_assert_int_eq(q_int(c,
                           "SELECT count(*) FROM workflow_run r JOIN transition_log t"
                           " ON t.entity_id = r.id AND t.entity = 'workflow_run'"
                           " AND t.from_status IS NULL WHERE r.id >= %lld AND r.id < %lld",
                           (long long)base, (long long)(base + span)),
                     n);
    ck_assert_int_eq(q_int(c,
                           "SELECT count(*) - count(DISTINCT (partition, kafka_offset))"
                           " FROM event_log WHERE topic = '%s'",
                           c->topic),
                     0);
    ck_assert_int_eq(
        q_int(c, "SELECT sum(next_offset) FROM consumer_offset WHERE topic = '%s'", c->topic),
        produced);
}

/* ---- tests ------------------------------------------------------------------------------------
 */

START_TEST(test_duplicate_applied_once)
{
    ctx_t c;
    char sql[512];
    ctx_open(&c);
    pid_t pid = fsm_start(&c, 1, NULL);
    int64_t wf = c.wf_base;
    send_workflow(&c, wf);
    /* the same run.start again, same event id: a replay */
    jm_event_t *dup = ev_new(JM_EV_RUN_START, wf,
                             json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id", (json_int_t)wf,
                                       "cluster", "dummy", "user", "u", "host", "h", "fail_fast", 0,
                                       "timeout_s", 0, "resume", "none"));
    send_ev(&c, dup);
    send_ev(&c, dup);
    jm_event_destroy(dup);
    flush(&c);
    snprintf(sql, sizeof(sql), "SELECT sum(next_offset) FROM consumer_offset WHERE topic = '%s'",
             c.topic);
    ck_assert_int_eq(wait_int(&c, 6, sql), 6);
    ck_assert_int_eq(n_logged(&c, NULL), 5); /* 6 messages, 5 distinct ids */
    /* the cache: jm:wf:<id> written with version = offset of the workflow's last event */
    jm_err_t err;
    redisReply *rep = NULL;
    char key[64];
    snprintf(key, sizeof(key), "jm:wf:%lld", (long long)wf);
    jm_redis_t *r = jm_redis_connect(it_env("JOBMON_REDIS_HOST"), atoi(it_env("JOBMON_REDIS_PORT")),
                                     2000, &err);
    ck_assert_msg(r != NULL, "%s", err.msg);
    const char *argv[] = {"HGET", key, "version"};
    int64_t want = q_int(&c, "SELECT max(kafka_offset) FROM event_log WHERE workflow_id = %lld",
                         (long long)wf);
    int64_t deadline = jm_time_mono_ms() + DEADLINE_S * 1000, got = -1;
    while (got != want && jm_time_mono_ms() < deadline) {
        ck_assert(jm_redis_command_argv(r, 3, argv, NULL, &rep, &err) == JM_OK);
        got = rep->type == REDIS_REPLY_STRING ? strtoll(rep->str, NULL, 10) : -1;
        jm_redis_reply_free(rep);
        if (got != want)
            jm_time_sleep_ms(50, NULL);
    }
    ck_assert_int_eq(got, want);
    const char *argv2[] = {"HGET", key, "run_id"};
    ck_assert(jm_redis_command_argv(r, 3, argv2, NULL, &rep, &err) == JM_OK);
    ck_assert_int_eq(rep->type, REDIS_REPLY_STRING);
    ck_assert_int_eq(strtoll(rep->str, NULL, 10), wf);
    jm_redis_reply_free(rep);
    jm_redis_destroy(r);
    ck_assert_int_eq(fsm_stop(&c, pid, SIGTERM), 0);
    ck_assert(log_has(&c, "jobmon-fsm running"));
    ck_assert_int_eq(
        q_int(&c, "SELECT count(*) FROM workflow_run WHERE workflow_id = %lld", (long long)wf), 1);
    ctx_close(&c);
}
END_TEST

/* Read the DLQ until a message with source_offset `off` shows up; return its reason header. */
static char *dlq_find(ctx_t *c, int64_t off)
{
    char errstr[256], want[24], *reason = NULL;
    snprintf(want, sizeof(want), "%lld", (long long)off);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", it_env("JOBMON_KAFKA_BROKERS"), errstr,
                      sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", c->group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ck_assert(rk != NULL);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->dlq, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    int64_t deadline = jm_time_mono_ms() + DEADLINE_S * 1000;
    while (!reason && jm_time_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t vn;
        if (m && !m->err && rd_kafka_message_headers(m, &h) == 0 &&
            rd_kafka_header_get_last(h, "source_offset", &v, &vn) == 0 && vn == strlen(want) &&
            memcmp(v, want, vn) == 0 && rd_kafka_header_get_last(h, "reason", &v, &vn) == 0)
            reason = jm_strndup(v, vn);
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return reason;
}

START_TEST(test_malformed_to_dlq_and_continue)
{
    ctx_t c;
    jm_err_t err;
    char key[24], sql[512];
    ctx_open(&c);
    int64_t wf = c.wf_base;
    snprintf(key, sizeof(key), "%lld", (long long)wf);
    pid_t pid = fsm_start(&c, 1, NULL);
    /* same key as the workflow: same partition, so the valid events come after it */
    ck_assert(jm_producer_send_raw(c.p, c.topic, key, "{\"v\":1,\"oops\"", 13, NULL, &err) ==
              JM_OK);
    send_workflow(&c, wf);
    flush(&c);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM workflow_run WHERE workflow_id = %lld AND id = %lld",
             (long long)wf, (long long)wf);
    ck_assert_int_eq(wait_int(&c, 1, sql), 1);
    ck_assert_int_eq(n_logged(&c, "dead_letter"), 1);
    ck_assert_int_eq(n_logged(&c, NULL), 5);
    int64_t off = q_int(&c,
                        "SELECT kafka_offset FROM event_log WHERE topic = '%s'"
                        " AND outcome = 'dead_letter'",
                        c.topic);
    char *reason = dlq_find(&c, off);
    ck_assert_msg(reason != NULL, "no dead letter for offset %lld in %s", (long long)off, c.dlq);
    ck_assert_msg(strstr(reason, "syntax") != NULL, "reason: %s", reason);
    free(reason);
    ck_assert(log_has(&c, "dead-lettered"));
    ck_assert_int_eq(fsm_stop(&c, pid, SIGTERM), 0);
    ctx_close(&c);
}
END_TEST

START_TEST(test_serialization_failure_retried)
{
    ctx_t c;
    char sql[512];
    ctx_open(&c);
    pid_t pid = fsm_start(&c, 1, "1"); /* the first batch transaction fails with 40001 */
    for (int i = 0; i < 5; i++)
        send_workflow(&c, c.wf_base + 16 * i);
    flush(&c);
    ck_assert_int_eq(wait_int(&c, 20, sql_logged(&c, sql, sizeof(sql))), 20);
    snprintf(sql, sizeof(sql), "SELECT sum(next_offset) FROM consumer_offset WHERE topic = '%s'",
             c.topic);
    ck_assert_int_eq(wait_int(&c, 20, sql), 20);
    ck_assert_int_eq(fsm_stop(&c, pid, SIGTERM), 0);
    ck_assert(log_has(&c, "injecting a serialization failure"));
    ck_assert(log_has(&c, "40001"));
    ck_assert_int_eq(n_logged(&c, "applied"), 20);
    ck_assert_int_eq(q_int(&c,
                           "SELECT count(*) FROM transition_log WHERE entity = 'workflow_run'"
                           " AND from_status IS NULL AND workflow_id >= %lld AND "
                           "workflow_id < %lld",
                           (long long)c.wf_base, (long long)(c.wf_base + 80)),
                     5);
    ctx_close(&c);
}
END_TEST

START_TEST(test_zombie_rolls_back)
{
    ctx_t c;
    char sql[512];
    ctx_open(&c);
    pid_t pid = fsm_start(&c, 1, NULL);
    int64_t wf = c.wf_base;
    send_workflow(&c, wf);
    flush(&c);
    snprintf(sql, sizeof(sql), "SELECT sum(next_offset) FROM consumer_offset WHERE topic = '%s'",
             c.topic);
    ck_assert_int_eq(wait_int(&c, 4, sql), 4);
    int part =
        (int)q_int(&c, "SELECT partition FROM event_log WHERE topic = '%s' LIMIT 1", c.topic);
    int64_t epoch = q_int(&c,
                          "SELECT owner_epoch FROM consumer_offset WHERE topic = '%s'"
                          " AND partition = %d",
                          c.topic, part);
    /* another consumer claims the partition behind our consumer's back */
    q_int(&c,
          "UPDATE consumer_offset SET owner_epoch = owner_epoch + 1 WHERE topic = '%s'"
          " AND partition = %d",
          c.topic, part);
    jm_event_t *stop = ev_new(JM_EV_RUN_STOP, wf, json_pack("{s:I}", "run_id", (json_int_t)wf));
    send_ev(&c, stop);
    flush(&c);
    /* the fenced batch is rolled back; after rejoining, the consumer claims again and applies */
    ck_assert_int_eq(wait_int(&c, 5, sql), 5);
    ck_assert(log_has(&c, "ZOMBIE"));
    ck_assert_int_ge(q_int(&c,
                           "SELECT owner_epoch FROM consumer_offset WHERE topic = '%s'"
                           " AND partition = %d",
                           c.topic, part),
                     epoch + 2);
    ck_assert_int_eq(q_int(&c, "SELECT count(*) FROM event_log WHERE event_id = '%s'", stop->id),
                     1);
    jm_event_destroy(stop);
    ck_assert_int_eq(fsm_stop(&c, pid, SIGTERM), 0);
    ctx_close(&c);
}
END_TEST

/* The topic was deleted and created again (or lost its tail): consumer_offset still says 1000
 * per partition, the log has a few events from offset 0.  They are applied, not skipped. */
START_TEST(test_offset_past_log_end_rewinds)
{
    ctx_t c;
    char sql[512];
    ctx_open(&c);
    q_int(&c,
          "INSERT INTO consumer_offset (topic, partition, next_offset, owner_epoch)"
          " SELECT '%s', p, 1000, 7 FROM generate_series(0, 3) AS p",
          c.topic);
    pid_t pid = fsm_start(&c, 1, NULL);
    send_workflow(&c, c.wf_base);
    send_workflow(&c, c.wf_base + 16);
    flush(&c);
    ck_assert_int_eq(wait_int(&c, 8, sql_logged(&c, sql, sizeof(sql))), 8);
    check_applied_once(&c, c.wf_base, 32, 2, 8);
    ck_assert_int_eq(fsm_stop(&c, pid, SIGTERM), 0);
    ck_assert(log_has(&c, "topic re-created or truncated"));
    ctx_close(&c);
}
END_TEST

static int it_n(void)
{
    const char *s = getenv("IT_CONSUMER_EVENTS");
    int n = s ? atoi(s) : 10000;
    return n < 40 ? 40 : n;
}

START_TEST(test_two_consumers_four_partitions)
{
    ctx_t c;
    char sql[512];
    int n_wf = it_n() / 4;
    ctx_open(&c);
    pid_t a = fsm_start(&c, 1, NULL);
    for (int i = 0; i < n_wf / 2; i++)
        send_workflow(&c, c.wf_base + 4 * i);
    flush(&c);
    pid_t b = fsm_start(&c, 1, NULL); /* joins while A is applying: a rebalance mid-stream */
    for (int i = n_wf / 2; i < n_wf; i++)
        send_workflow(&c, c.wf_base + 4 * i);
    flush(&c);
    snprintf(sql, sizeof(sql), "SELECT sum(next_offset) FROM consumer_offset WHERE topic = '%s'",
             c.topic);
    ck_assert_int_eq(wait_int(&c, 4 * n_wf, sql), 4 * n_wf);
    ck_assert_int_eq(fsm_stop(&c, a, SIGTERM), 0);
    ck_assert_int_eq(fsm_stop(&c, b, SIGTERM), 0);
    ck_assert_int_eq(n_logged(&c, NULL), 4 * n_wf);
    ck_assert_int_eq(q_int(&c,
                           "SELECT count(*) FROM workflow_run WHERE id >= %lld AND id < %lld"
                           " AND id %% 4 = %lld %% 4",
                           (long long)c.wf_base, (long long)(c.wf_base + 4 * n_wf),
                           (long long)c.wf_base),
                     n_wf);
    ck_assert_int_eq(q_int(&c,
                           "SELECT count(*) FROM workflow_run r JOIN transition_log t"
                           " ON t.entity_id = r.id AND t.entity = 'workflow_run'"
                           " AND t.from_status IS NULL WHERE r.id >= %lld AND r.id < %lld",
                           (long long)c.wf_base, (long long)(c.wf_base + 4 * n_wf)),
                     n_wf);
    ck_assert_int_eq(
        q_int(&c, "SELECT count(DISTINCT partition) FROM event_log WHERE topic = '%s'", c.topic),
        4);
    ctx_close(&c);
}
END_TEST

START_TEST(test_sigkill_mid_batch_loses_nothing)
{
    ctx_t c;
    char sql[512];
    int n_wf = it_n() / 4;
    ctx_open(&c);
    for (int i = 0; i < n_wf; i++)
        send_workflow(&c, c.wf_base + 4 * i);
    flush(&c);
    pid_t a = fsm_start(&c, 1, NULL);
    /* kill as soon as something was applied, while the rest is in flight */
    int64_t deadline = jm_time_mono_ms() + DEADLINE_S * 1000;
    while (n_logged(&c, NULL) == 0 && jm_time_mono_ms() < deadline)
        jm_time_sleep_ms(5, NULL);
    int st = fsm_stop(&c, a, SIGKILL);
    ck_assert(WIFSIGNALED(st));
    int64_t at_kill = n_logged(&c, NULL);
    ck_assert_int_gt(at_kill, 0);
    pid_t b = fsm_start(&c, 1, NULL);
    snprintf(sql, sizeof(sql), "SELECT sum(next_offset) FROM consumer_offset WHERE topic = '%s'",
             c.topic);
    ck_assert_int_eq(wait_int(&c, 4 * n_wf, sql), 4 * n_wf);
    ck_assert_int_eq(fsm_stop(&c, b, SIGTERM), 0);
    ck_assert_int_eq(n_logged(&c, NULL), 4 * n_wf);
    check_applied_once(&c, c.wf_base, 4 * n_wf, n_wf, 4 * n_wf);
    (void)at_kill;
    ctx_close(&c);
}
END_TEST

/* Workflow wf bound in `chunks` bind_tasks events of 3 tasks each (task k's upstream is task
 * k-1, so edges cross chunks), then started: the events of a bind and of the run's first step. */
static void send_chunked_workflow(ctx_t *c, int64_t wf, int chunks)
{
    json_t *tmpl = json_pack("[{s:s,s:s,s:s,s:[],s:[],s:[],s:I,s:i}]", "name", "tmpl", "hash", HEX,
                             "command_template", "{command}", "node_args", "task_args", "op_args",
                             "array_id", (json_int_t)(wf + 1), "max_concurrently_running", 100);
    char args_hash[40];
    snprintf(args_hash, sizeof(args_hash), "%032llx", (unsigned long long)wf);
    int n = 3 * chunks;
    jm_event_t *ev =
        ev_new(JM_EV_WORKFLOW_BIND, wf,
               json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:s,s:{},s:o}", "tool", "t",
                         "workflow_args_hash", args_hash, "task_hash", HEX, "dag_hash", HEX, "name",
                         "wf", "max_concurrently_running", 100, "total_tasks", n, "user", "u",
                         "attributes", "templates", tmpl));
    send_ev(c, ev);
    jm_event_destroy(ev);
    for (int k = 0; k < chunks; k++) {
        json_t *tasks = json_array();
        for (int i = 3 * k; i < 3 * k + 3; i++) {
            json_t *up = i ? json_pack("[I]", (json_int_t)(wf + 99 + i)) : json_array();
            json_array_append_new(
                tasks,
                json_pack("{s:I,s:s,s:s,s:s,s:I,s:s,s:i,s:{s:i},s:{},s:[],s:s,s:o}", "task_id",
                          (json_int_t)(wf + 100 + i), "name", "task", "command", "true", "template",
                          "tmpl", "array_id", (json_int_t)(wf + 1), "node_hash", HEX,
                          "max_attempts", 3, "resources", "cores", 1 + i % 2, "resource_scales",
                          "fallback_queues", "cluster", "dummy", "upstream", up));
        }
        ev = ev_new(JM_EV_WORKFLOW_BIND_TASKS, wf,
                    json_pack("{s:i,s:o}", "chunk", k, "tasks", tasks));
        send_ev(c, ev);
        jm_event_destroy(ev);
    }
    ev = ev_new(JM_EV_WORKFLOW_BOUND, wf,
                json_pack("{s:i,s:i}", "total_tasks", n, "chunks", chunks));
    send_ev(c, ev);
    jm_event_destroy(ev);
    ev = ev_new(JM_EV_RUN_START, wf,
                json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id", (json_int_t)wf, "cluster",
                          "dummy", "user", "u", "host", "h", "fail_fast", 0, "timeout_s", 0,
                          "resume", "none"));
    send_ev(c, ev);
    jm_event_destroy(ev);
}

/* A fresh schema with this checkout's migrations (002 on), on its own connection. */
static jm_pg_t *schema_fresh(const char *name)
{
    jm_err_t err;
    jm_pg_t *pg = jm_pg_connect(it_env("JOBMON_POSTGRES_CONNINFO"), 0, &err);
    ck_assert_msg(pg != NULL, "%s", err.msg);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SET client_min_messages = warning; CREATE SCHEMA %s; SET search_path = %s", name,
             name);
    PGresult *r = PQexec(jm_pg_conn(pg), sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    schema_migrate(jm_pg_conn(pg));
    return pg;
}

/* Decode ahead (the next batch decoded on a second thread while one is applied): with small
 * batches of chunked binds, runs and a malformed message, the FSM applies every event once and
 * its rows are those of a replay of the event log, which decodes and applies one event after
 * the other (jobmon audit).  Each run's first or third transaction fails after its handlers:
 * with bind chunks the next batch was decoded while they ran; with run heartbeats only, the
 * batch's events were freed for the next one's decoding, and the retry decodes them again. */
START_TEST(test_decode_ahead_same_rows)
{
    ctx_t c;
    char sql[512];
    enum { N_WF = 12, CHUNKS = 3, BEATS = 3 };
    ctx_open(&c);
    for (int i = 0; i < N_WF; i++) {
        send_chunked_workflow(&c, c.wf_base + 1000 * i, CHUNKS);
        if (i == N_WF / 2) { /* a dead letter in the middle of a partition's batches */
            jm_err_t err;
            char key[24];
            snprintf(key, sizeof(key), "%lld", (long long)(c.wf_base + 1000 * i));
            ck_assert(jm_producer_send_raw(c.p, c.topic, key, "{not json", 9, NULL, &err) == JM_OK);
        }
    }
    flush(&c);
    int64_t produced = N_WF * (CHUNKS + 3) + 1;
    setenv("IT_CONSUMER_BATCH_MAX", "4", 1);
    setenv("IT_CONSUMER_DECODE_AHEAD", "true", 1);
    pid_t pid = fsm_start(&c, 1, "3"); /* everything is fetched already: batches of 4 */
    unsetenv("IT_CONSUMER_BATCH_MAX");
    unsetenv("IT_CONSUMER_DECODE_AHEAD");
    snprintf(sql, sizeof(sql), "SELECT sum(next_offset) FROM consumer_offset WHERE topic = '%s'",
             c.topic);
    ck_assert_int_eq(wait_int(&c, produced, sql), produced);
    ck_assert_int_eq(fsm_stop(&c, pid, SIGTERM), 0);
    ck_assert_int_eq(n_logged(&c, NULL), produced);
    ck_assert_int_eq(n_logged(&c, "dead_letter"), 1);
    ck_assert_int_eq(n_logged(&c, "applied"), produced - 1);
    ck_assert_msg(!log_has(&c, "(0 decoded ahead,"), "no batch was decoded ahead (see %s)", c.log);
    ck_assert(log_has(&c, "injecting a serialization failure"));
    ck_assert(log_has(&c, "retry 1"));
    for (int k = 0; k < BEATS; k++)
        for (int i = 0; i < N_WF; i++) {
            jm_event_t *ev =
                ev_new(JM_EV_RUN_HEARTBEAT, c.wf_base + 1000 * i,
                       json_pack("{s:I,s:i}", "run_id", (json_int_t)(c.wf_base + 1000 * i),
                                 "next_report_s", 60 + k));
            send_ev(&c, ev);
            jm_event_destroy(ev);
        }
    flush(&c);
    produced += N_WF * BEATS;
    setenv("IT_CONSUMER_BATCH_MAX", "4", 1);
    setenv("IT_CONSUMER_DECODE_AHEAD", "true", 1);
    pid = fsm_start(&c, 1, "1");
    unsetenv("IT_CONSUMER_BATCH_MAX");
    unsetenv("IT_CONSUMER_DECODE_AHEAD");
    ck_assert_int_eq(wait_int(&c, produced, sql), produced);
    ck_assert_int_eq(fsm_stop(&c, pid, SIGTERM), 0);
    ck_assert_int_eq(n_logged(&c, NULL), produced);
    ck_assert_int_eq(n_logged(&c, "applied"), produced - 1);
    ck_assert_msg(log_has(&c, "its events decoded again"), "no rerun decoded again (see %s)",
                  c.log);
    char schema[64];
    snprintf(schema, sizeof(schema), "it_ahead_%d", (int)getpid());
    jm_pg_t *dst = schema_fresh(schema);
    jm_err_t err;
    jm_pg_t *src = jm_pg_connect(c.conninfo, 0, &err);
    ck_assert_msg(src != NULL, "%s", err.msg);
    for (int i = 0; i < N_WF; i++) {
        int64_t wf = c.wf_base + 1000 * i;
        jm_replay_stats_t st;
        int n_diff = -1;
        char diff[256];
        ck_assert_msg(jm_replay_workflow(src, dst, wf, &st, &err) == JM_OK, "%s", err.msg);
        ck_assert_int_eq(st.events, CHUNKS + 3 + BEATS);
        ck_assert_msg(st.outcome_mismatch == 0, "%s", st.first_mismatch);
        ck_assert_msg(
            jm_replay_diff(src, c.schema, schema, wf, &n_diff, diff, sizeof(diff), &err) == JM_OK,
            "%s", err.msg);
        ck_assert_msg(n_diff == 0, "workflow %lld: %s differ", (long long)wf, diff);
    }
    ck_assert_int_eq(
        q_int(&c, "SELECT count(*) FROM task WHERE workflow_id = %lld", (long long)c.wf_base),
        3 * CHUNKS);
    snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schema);
    PQclear(PQexec(jm_pg_conn(src), sql));
    jm_pg_destroy(src);
    jm_pg_destroy(dst);
    ctx_close(&c);
}
END_TEST

Suite *it_consumer_suite(void)
{
    Suite *s = suite_create("consumer");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, 1200);
    tcase_add_test(tc, test_duplicate_applied_once);
    tcase_add_test(tc, test_malformed_to_dlq_and_continue);
    tcase_add_test(tc, test_serialization_failure_retried);
    tcase_add_test(tc, test_zombie_rolls_back);
    tcase_add_test(tc, test_offset_past_log_end_rewinds);
    tcase_add_test(tc, test_two_consumers_four_partitions);
    tcase_add_test(tc, test_sigkill_mid_batch_loses_nothing);
    tcase_add_test(tc, test_decode_ahead_same_rows);
    suite_add_tcase(s, tc);
    return s;
}
