/*
 * status.c — reading workflow status for clients (jobmon status/run, benchmarks, distributors):
 * Redis `jm:wf:<id>` first, PostgreSQL (reader role) when the hash is missing or Redis is down;
 * the user buckets, the `--json` contract object and the progress line; and the notification
 * subscription a watcher sleeps on.
 *
 * A reader that finds the hash missing (Redis flushed or restarted) reports from PostgreSQL and
 * re-fills the hash with the same versioned compare-and-set as the FSM's writer (version = Kafka
 * offset of the workflow's last applied event), so a stale re-fill never overwrites newer data.
 * Deliberately not here: notifications (only the FSM publishes) and any PostgreSQL write.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/status_sql.h"
#include "common/wfcache.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"
#include "jobmon/redis.h"
#include "jobmon/status.h"

#define SUB              "status"
#define REDIS_TIMEOUT_MS 500
#define REDIS_RETRY_MS   1000
#define PG_CONNECT_MS    5000

struct jm_status_ctx_s {
    char *host;
    int port;
    char *conninfo;
    jm_redis_t *r;
    int64_t redis_retry_at; /* mono ms before which a failed Redis is not retried */
    jm_pg_t *pg;
    jm_status_source_t src;
};

static const char task_letters[JM_TASK__CNT + 1] = "GQIORDEAF";
static const char *const user_names[JM_USER__CNT] = {"PENDING", "SCHEDULED", "RUNNING", "DONE",
                                                     "FATAL"};
_Static_assert(JM_ARRAY_LEN(user_names) == JM_USER__CNT, "user status names");

/* PostgreSQL read of the same fields as the cache writes (src/consumer/cache.c read_sql). */
static const char pg_sql[] =
    "SELECT w.status, coalesce(r.id, 0), coalesce(r.status, ''), w.total_tasks,"
    "  coalesce(k.g, 0), coalesce(k.q, 0), coalesce(k.i, 0), coalesce(k.o, 0), coalesce(k.r, 0),"
    "  coalesce(k.d, 0), coalesce(k.e, 0), coalesce(k.a, 0), coalesce(k.f, 0),"
    "  coalesce((SELECT e.kafka_offset FROM event_log e WHERE e.workflow_id = w.id"
    "            ORDER BY e.applied_seq DESC LIMIT 1), 0)"
    " FROM workflow w"
    " LEFT JOIN LATERAL (SELECT wr.id, wr.status FROM workflow_run wr WHERE wr.workflow_id = w.id"
    "   ORDER BY wr.status IN " JM_SQL_RUN_ALIVE " DESC, wr.created_at DESC, wr.id DESC"
    "   LIMIT 1) r ON true"
    " LEFT JOIN LATERAL (SELECT sum(n) FILTER (WHERE status = 'G') AS g,"
    "   sum(n) FILTER (WHERE status = 'Q') AS q, sum(n) FILTER (WHERE status = 'I') AS i,"
    "   sum(n) FILTER (WHERE status = 'O') AS o, sum(n) FILTER (WHERE status = 'R') AS r,"
    "   sum(n) FILTER (WHERE status = 'D') AS d, sum(n) FILTER (WHERE status = 'E') AS e,"
    "   sum(n) FILTER (WHERE status = 'A') AS a, sum(n) FILTER (WHERE status = 'F') AS f"
    "   FROM workflow_task_count c WHERE c.workflow_id = w.id) k ON true"
    " WHERE w.id = $1";

/* ---- context ------------------------------------------------------------------------------ */

jm_status_ctx_t *jm_status_ctx_new(const char *redis_host, int redis_port, const char *conninfo)
{
    jm_status_ctx_t *ctx = jm_calloc(1, sizeof(*ctx));
    ctx->host = jm_strdup(redis_host ? redis_host : "127.0.0.1");
    ctx->port = redis_port;
    ctx->conninfo = jm_strdup(conninfo ? conninfo : "");
    return ctx;
}

jm_status_ctx_t *jm_status_ctx_new_config(const jm_config_t *cfg)
{
    const char *ci = jm_config_str(cfg, "postgres.reader_conninfo");
    if (!ci || !*ci)
        ci = jm_config_str(cfg, "postgres.conninfo");
    return jm_status_ctx_new(jm_config_str(cfg, "redis.host"),
                             (int)jm_config_int(cfg, "redis.port"), ci);
}

void jm_status_ctx_destroy(jm_status_ctx_t *ctx)
{
    if (!ctx)
        return;
    jm_redis_destroy(ctx->r);
    jm_pg_destroy(ctx->pg);
    free(ctx->host);
    free(ctx->conninfo);
    free(ctx);
}

void jm_status_ctx_set_source(jm_status_ctx_t *ctx, jm_status_source_t src)
{
    ctx->src = src;
}

jm_pg_t *jm_status_ctx_pg(jm_status_ctx_t *ctx, jm_err_t *err)
{
    if (!ctx->pg)
        ctx->pg = jm_pg_connect(ctx->conninfo, jm_time_mono_ms() + PG_CONNECT_MS, err);
    return ctx->pg;
}

static jm_redis_t *ctx_redis(jm_status_ctx_t *ctx, jm_err_t *err)
{
    if (ctx->r)
        return ctx->r;
    if (ctx->port <= 0) {
        jm_err_set(err, JM_ERR_UNAVAILABLE, "Redis is not configured");
        return NULL;
    }
    if (ctx->redis_retry_at && jm_time_mono_ms() < ctx->redis_retry_at) {
        jm_err_set(err, JM_ERR_UNAVAILABLE, "Redis at %s:%d: unavailable (retrying shortly)",
                   ctx->host, ctx->port);
        return NULL;
    }
    ctx->r = jm_redis_connect(ctx->host, ctx->port, REDIS_TIMEOUT_MS, err);
    if (!ctx->r)
        ctx->redis_retry_at = jm_time_mono_ms() + REDIS_RETRY_MS;
    return ctx->r;
}

static void redis_failed(jm_status_ctx_t *ctx)
{
    jm_redis_destroy(ctx->r);
    ctx->r = NULL;
    ctx->redis_retry_at = jm_time_mono_ms() + REDIS_RETRY_MS;
}

jm_rc_t jm_status_ctx_ping_redis(jm_status_ctx_t *ctx, jm_err_t *err)
{
    ctx->redis_retry_at = 0;
    jm_redis_t *r = ctx_redis(ctx, err);
    if (!r)
        return JM_ERR_UNAVAILABLE;
    const char *argv[] = {"PING"};
    jm_rc_t rc = jm_redis_command_argv(r, 1, argv, NULL, NULL, err);
    if (rc != JM_OK)
        redis_failed(ctx);
    return rc;
}

/* ---- reads --------------------------------------------------------------------------------- */

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (!s)
        return -1;
    if (!*s) { /* the cache writes "" for "no run" */
        *out = 0;
        return 0;
    }
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

jm_rc_t jm_status_from_hash(int64_t wf_id, const char *const *fields, const char *const *values,
                            size_t n, jm_status_t *out)
{
    jm_status_t st;
    int have_status = 0;
    memset(&st, 0, sizeof(st));
    st.workflow_id = wf_id;
    st.source = JM_STATUS_SRC_REDIS;
    for (size_t i = 0; i < n; i++) {
        const char *f = fields[i], *v = values[i];
        int64_t x = 0;
        if (strcmp(f, "workflow_status") == 0) {
            if (strlen(v) != 1 || jm_status_from_letter(JM_ENTITY_WORKFLOW, v[0]) < 0)
                return JM_ERR_INVALID;
            st.workflow_status = v[0];
            have_status = 1;
        } else if (strcmp(f, "run_status") == 0) {
            if (*v && (strlen(v) != 1 || jm_status_from_letter(JM_ENTITY_RUN, v[0]) < 0))
                return JM_ERR_INVALID;
            st.run_status = v[0];
        } else if (strcmp(f, "run_id") == 0) {
            if (parse_i64(v, &x) < 0 || x < 0)
                return JM_ERR_INVALID;
            st.run_id = x;
        } else if (strcmp(f, "total") == 0) {
            if (parse_i64(v, &x) < 0 || x < 0)
                return JM_ERR_INVALID;
            st.total = x;
        } else if (strcmp(f, "version") == 0) {
            if (parse_i64(v, &x) < 0)
                return JM_ERR_INVALID;
            st.version = x;
        } else if (strncmp(f, "n_", 2) == 0 && f[2] && !f[3]) {
            int k = jm_status_from_letter(JM_ENTITY_TASK, f[2]);
            if (k < 0)
                continue; /* a field we do not know: newer writer, ignore */
            if (parse_i64(v, &x) < 0 || x < 0)
                return JM_ERR_INVALID;
            st.n[k] = x;
        }
    }
    if (!have_status)
        return JM_ERR_NOT_FOUND;
    if (!st.run_id)
        st.run_status = 0;
    *out = st;
    return JM_OK;
}

/* JM_OK (found), JM_ERR_NOT_FOUND (no hash), JM_ERR_UNAVAILABLE/others (Redis failed). */
static jm_rc_t get_redis(jm_status_ctx_t *ctx, int64_t wf_id, jm_status_t *out, jm_err_t *err)
{
    char key[40];
    const char *argv[2] = {"HGETALL", key};
    redisReply *rep = NULL;
    const char **fields = NULL, **values = NULL;
    jm_rc_t rc;
    jm_redis_t *r = ctx_redis(ctx, err);
    if (!r)
        return JM_ERR_UNAVAILABLE;
    snprintf(key, sizeof(key), "jm:wf:%" PRId64, wf_id);
    rc = jm_redis_command_argv(r, 2, argv, NULL, &rep, err);
    if (rc != JM_OK) {
        if (rc == JM_ERR_UNAVAILABLE)
            redis_failed(ctx);
        goto out;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
        rc = jm_err_set(err, JM_ERR_INTERNAL, "HGETALL %s: unexpected reply", key);
        goto out;
    }
    size_t n = rep->elements / 2;
    fields = jm_calloc(n + 1, sizeof(*fields));
    values = jm_calloc(n + 1, sizeof(*values));
    for (size_t i = 0; i < n; i++) {
        redisReply *f = rep->element[2 * i], *v = rep->element[2 * i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            rc = jm_err_set(err, JM_ERR_INTERNAL, "HGETALL %s: unexpected element", key);
            goto out;
        }
        fields[i] = f->str;
        values[i] = v->str;
    }
    rc = jm_status_from_hash(wf_id, fields, values, n, out);
    if (rc == JM_ERR_INVALID)
        rc = jm_err_set(err, JM_ERR_INTERNAL, "%s: malformed cache entry", key);
    else if (rc == JM_ERR_NOT_FOUND)
        jm_err_set(err, JM_ERR_NOT_FOUND, "%s: not cached", key);
out:
    free(fields);
    free(values);
    jm_redis_reply_free(rep);
    return rc;
}

static jm_rc_t get_pg(jm_status_ctx_t *ctx, int64_t wf_id, jm_status_t *out, jm_err_t *err)
{
    PGresult *res = NULL;
    jm_rc_t rc;
    jm_pg_t *pg = jm_status_ctx_pg(ctx, err);
    if (!pg)
        return JM_ERR_UNAVAILABLE;
    rc = jm_pg_exec_id(pg, pg_sql, wf_id, &res, err);
    if (rc == JM_ERR_UNAVAILABLE &&
        jm_pg_reconnect(pg, jm_time_mono_ms() + PG_CONNECT_MS, NULL) == JM_OK)
        rc = jm_pg_exec_id(pg, pg_sql, wf_id, &res, err);
    if (rc != JM_OK)
        goto out;
    if (PQntuples(res) == 0) {
        rc = jm_err_set(err, JM_ERR_NOT_FOUND, "workflow %" PRId64 " not found", wf_id);
        goto out;
    }
    memset(out, 0, sizeof(*out));
    out->workflow_id = wf_id;
    out->source = JM_STATUS_SRC_PG;
    out->workflow_status = PQgetvalue(res, 0, 0)[0];
    out->run_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    out->run_status = out->run_id ? PQgetvalue(res, 0, 2)[0] : 0;
    out->total = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    for (int k = 0; k < JM_TASK__CNT; k++)
        out->n[k] = strtoll(PQgetvalue(res, 0, 4 + k), NULL, 10);
    out->version = strtoll(PQgetvalue(res, 0, 4 + JM_TASK__CNT), NULL, 10);
out:
    PQclear(res);
    return rc;
}

/* Best effort: write what PostgreSQL said back into the missing hash (versioned). */
static void refill(jm_status_ctx_t *ctx, const jm_status_t *st)
{
    char key[40], ver[24], wst[2] = {st->workflow_status, 0}, rid[24], rst[2] = {st->run_status, 0};
    char total[24], n[JM_TASK__CNT][24];
    const char *argv[4 + 2 + 2 * (4 + JM_TASK__CNT)];
    int argc = 0;
    if (!ctx->r || st->version <= 0)
        return;
    snprintf(key, sizeof(key), "jm:wf:%" PRId64, st->workflow_id);
    snprintf(ver, sizeof(ver), "%" PRId64, st->version);
    if (st->run_id)
        snprintf(rid, sizeof(rid), "%" PRId64, st->run_id);
    else
        rid[0] = '\0';
    snprintf(total, sizeof(total), "%" PRId64, st->total);
    argv[argc++] = "EVAL";
    argv[argc++] = jm_wfcache_cas_script;
    argv[argc++] = "1";
    argv[argc++] = key;
    argv[argc++] = ver;
    argv[argc++] = "0"; /* no notifications: the state did not change, only the cache */
    argv[argc++] = "workflow_status";
    argv[argc++] = wst;
    argv[argc++] = "run_id";
    argv[argc++] = rid;
    argv[argc++] = "run_status";
    argv[argc++] = rst;
    argv[argc++] = "total";
    argv[argc++] = total;
    for (int k = 0; k < JM_TASK__CNT; k++) {
        snprintf(n[k], sizeof(n[k]), "%" PRId64, st->n[k]);
        argv[argc++] = jm_wfcache_count_fields[k];
        argv[argc++] = n[k];
    }
    jm_err_t err;
    if (jm_redis_command_argv(ctx->r, argc, argv, NULL, NULL, &err) != JM_OK)
        jm_log(JM_LOG_DEBUG, SUB, "%s: re-fill failed: %s", key, err.msg);
}

jm_rc_t jm_status_get(jm_status_ctx_t *ctx, int64_t wf_id, jm_status_t *out, jm_err_t *err)
{
    jm_rc_t rc = JM_ERR_NOT_FOUND;
    jm_err_t rerr;
    jm_err_clear(&rerr);
    if (ctx->src != JM_STATUS_SRC_PG) {
        rc = get_redis(ctx, wf_id, out, &rerr);
        if (rc == JM_OK || ctx->src == JM_STATUS_SRC_REDIS) {
            if (rc != JM_OK && err)
                *err = rerr;
            return rc;
        }
        if (rc != JM_ERR_NOT_FOUND)
            jm_log(JM_LOG_DEBUG, SUB, "workflow %" PRId64 ": Redis: %s; reading PostgreSQL", wf_id,
                   rerr.msg);
    }
    rc = get_pg(ctx, wf_id, out, err);
    if (rc == JM_OK && rerr.rc == JM_ERR_NOT_FOUND && ctx->src == JM_STATUS_SRC_AUTO)
        refill(ctx, out);
    if (rc == JM_ERR_UNAVAILABLE && err && ctx->src == JM_STATUS_SRC_AUTO &&
        rerr.rc == JM_ERR_UNAVAILABLE) {
        char pgmsg[JM_ERR_MSG_MAX];
        snprintf(pgmsg, sizeof(pgmsg), "%s", err->msg);
        jm_err_set(err, JM_ERR_UNAVAILABLE, "%s; and %s", rerr.msg, pgmsg);
    }
    return rc;
}

/* ---- pure helpers --------------------------------------------------------------------------- */

const char *jm_user_status_name(jm_user_status_t s)
{
    return (unsigned)s < JM_USER__CNT ? user_names[s] : "?";
}

int jm_user_status_of_letter(char letter)
{
    switch (letter) {
    case 'G':
    case 'Q':
    case 'I':
    case 'A':
    case 'E': return JM_USER_PENDING;
    case 'O': return JM_USER_SCHEDULED;
    case 'R': return JM_USER_RUNNING;
    case 'D': return JM_USER_DONE;
    case 'F': return JM_USER_FATAL;
    default: return -1;
    }
}

int jm_user_status_parse(const char *name)
{
    for (int i = 0; name && i < JM_USER__CNT; i++)
        if (strcasecmp(name, user_names[i]) == 0)
            return i;
    return -1;
}

void jm_status_user_counts(const jm_status_t *st, int64_t out[JM_USER__CNT])
{
    memset(out, 0, sizeof(int64_t) * JM_USER__CNT);
    for (int k = 0; k < JM_TASK__CNT; k++)
        out[jm_user_status_of_letter(task_letters[k])] += st->n[k];
}

double jm_status_pct(int64_t n, int64_t total)
{
    if (total <= 0 || n <= 0)
        return 0.0;
    /* round half up to one decimal, in integers so 1/3 prints 33.3 everywhere */
    int64_t tenths = (n * 2000 / total + 1) / 2;
    return (double)tenths / 10.0;
}

void jm_status_format_count(char *buf, size_t len, int64_t n, int64_t total)
{
    snprintf(buf, len, "%" PRId64 " (%.1f%%)", n, jm_status_pct(n, total));
}

json_t *jm_status_json(const jm_status_t *st)
{
    int64_t u[JM_USER__CNT];
    char letter[2] = {st->workflow_status ? st->workflow_status : '?', 0};
    jm_status_user_counts(st, u);
    json_t *tasks =
        json_pack("{sI sI sI sI sI sI}", "total", (json_int_t)st->total, "PENDING",
                  (json_int_t)u[JM_USER_PENDING], "SCHEDULED", (json_int_t)u[JM_USER_SCHEDULED],
                  "RUNNING", (json_int_t)u[JM_USER_RUNNING], "DONE", (json_int_t)u[JM_USER_DONE],
                  "FATAL", (json_int_t)u[JM_USER_FATAL]);
    return json_pack("{sI so ss so}", "workflow_id", (json_int_t)st->workflow_id, "workflow_run_id",
                     st->run_id ? json_integer((json_int_t)st->run_id) : json_null(), "status",
                     letter, "tasks", tasks);
}

size_t jm_status_format_progress(char *buf, size_t len, const jm_status_t *st, double elapsed_s,
                                 double rate, int width, int bar)
{
    int64_t u[JM_USER__CNT];
    char tail[160], head[512];
    size_t out_len;
    if (len == 0)
        return 0;
    if (width < 40)
        width = 40;
    jm_status_user_counts(st, u);
    double pct = jm_status_pct(u[JM_USER_DONE], st->total);
    long el = elapsed_s < 0 ? 0 : (long)elapsed_s;
    snprintf(tail, sizeof(tail),
             " %5.1f%%  PENDING %" PRId64 "  SCHEDULED %" PRId64 "  RUNNING %" PRId64
             "  DONE %" PRId64 "  FATAL %" PRId64 " / %" PRId64 "  %.1f t/s  %02ld:%02ld:%02ld",
             pct, u[JM_USER_PENDING], u[JM_USER_SCHEDULED], u[JM_USER_RUNNING], u[JM_USER_DONE],
             u[JM_USER_FATAL], st->total, rate < 0 ? 0.0 : rate, el / 3600, el / 60 % 60, el % 60);
    int cells = 0;
    if (bar) {
        cells = width - (int)strlen(tail) - 2;
        if (cells > 40)
            cells = 40;
        if (cells < 10)
            cells = 10;
    }
    size_t k = 0;
    if (bar) {
        int64_t filled = st->total > 0 ? u[JM_USER_DONE] * cells / st->total : 0;
        int64_t failed = st->total > 0 ? u[JM_USER_FATAL] * cells / st->total : 0;
        if (filled + failed > cells)
            failed = cells - filled;
        head[k++] = '[';
        for (int i = 0; i < cells; i++)
            head[k++] = i < filled ? '#' : i < filled + failed ? 'x' : '.';
        head[k++] = ']';
    }
    head[k] = '\0';
    out_len = (size_t)snprintf(buf, len, "%s%s", head, tail);
    if (out_len >= len)
        out_len = len - 1;
    if (bar && out_len > (size_t)width) { /* narrow terminal: cut, never wrap */
        out_len = (size_t)width;
        buf[out_len] = '\0';
    }
    return out_len;
}

/* ---- notifications ---------------------------------------------------------------------- */

struct jm_notify_s {
    redisContext *c;
};

jm_notify_t *jm_notify_new(const char *host, int port, const char *channel, jm_err_t *err)
{
    struct timeval tv = {REDIS_TIMEOUT_MS / 1000, (REDIS_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    redisReply *rep = NULL;
    if (!c || c->err) {
        jm_err_set(err, JM_ERR_UNAVAILABLE, "cannot connect to Redis at %s:%d: %s", host, port,
                   c ? c->errstr : "out of memory");
        goto fail;
    }
    redisSetTimeout(c, tv);
    rep = redisCommand(c, "SUBSCRIBE %s", channel);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        jm_err_set(err, JM_ERR_UNAVAILABLE, "Redis SUBSCRIBE %s: %s", channel,
                   rep ? rep->str : c->errstr);
        goto fail;
    }
    freeReplyObject(rep);
    jm_notify_t *n = jm_calloc(1, sizeof(*n));
    n->c = c;
    return n;
fail:
    if (rep)
        freeReplyObject(rep);
    if (c)
        redisFree(c);
    return NULL;
}

void jm_notify_destroy(jm_notify_t *n)
{
    if (!n)
        return;
    redisFree(n->c);
    free(n);
}

int jm_notify_fd(const jm_notify_t *n)
{
    return n->c->fd;
}

int jm_notify_drain(jm_notify_t *n, jm_err_t *err)
{
    int count = 0;
    void *rep = NULL;
    if (redisBufferRead(n->c) != REDIS_OK)
        return jm_err_set(err, JM_ERR_UNAVAILABLE, "Redis subscription lost: %s", n->c->errstr);
    while (redisGetReplyFromReader(n->c, &rep) == REDIS_OK && rep) {
        freeReplyObject(rep);
        rep = NULL;
        count++;
    }
    if (n->c->err)
        return jm_err_set(err, JM_ERR_UNAVAILABLE, "Redis subscription lost: %s", n->c->errstr);
    return count;
}

int jm_notify_wait(jm_notify_t *n, int timeout_ms, jm_err_t *err)
{
    struct pollfd pfd = {.fd = n->c->fd, .events = POLLIN};
    int rc = poll(&pfd, 1, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0
                              : jm_err_set(err, JM_ERR_UNAVAILABLE, "poll: %s", strerror(errno));
    if (rc == 0)
        return 0;
    rc = jm_notify_drain(n, err);
    return rc < 0 ? rc : rc > 0;
}
