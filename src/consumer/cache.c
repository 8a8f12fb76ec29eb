/*
 * cache.c — the Redis read model written after each commit (layout in docs/redis.md):
 * jm:wf:<id> hashes with workflow/run status and task counts, written by a Lua compare-and-set on
 * `version` (the Kafka offset of the workflow's latest event), and notifications on
 * jm:notify:wf:<id> / jm:notify:run:<id> published by the same script.
 *
 * Redis is a cache: when it is down this module logs once, remembers what it could not write and
 * keeps returning; once Redis answers again it rebuilds every non-terminal workflow plus those
 * touched meanwhile.  A Redis that restarted between two writes (the connection layer reconnects
 * silently) is noticed by its lost script cache (NOSCRIPT after a load) and rebuilt the same way.
 * It reads PostgreSQL (committed state, one query per chunk of workflows) and never writes it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status_sql.h"
#include "common/wfcache.h"
#include "consumer/consumer_int.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"
#include "jobmon/redis.h"

#define SUB                "cache"
#define REDIS_TIMEOUT_MS   500
#define RECONNECT_EVERY_MS 1000
#define CHUNK              500
#define DIRTY_MAX          100000

static const char read_sql[] =
    "WITH ids AS (SELECT unnest($1::bigint[]) AS id"
    "  UNION SELECT workflow_id FROM workflow_run WHERE id = ANY($2::bigint[])),"
    " runs AS (SELECT DISTINCT ON (wr.workflow_id) wr.workflow_id, wr.id, wr.status"
    "  FROM workflow_run wr JOIN ids ON wr.workflow_id = ids.id"
    "  ORDER BY wr.workflow_id, wr.status IN " JM_SQL_RUN_ALIVE " DESC,"
    "   wr.created_at DESC, wr.id DESC),"
    " notify AS (SELECT workflow_id, string_agg(id::text, ',') AS ids FROM workflow_run"
    "  WHERE id = ANY($2::bigint[]) GROUP BY workflow_id)"
    " SELECT w.id, w.status, r.id, r.status, w.total_tasks,"
    "  coalesce(k.g, 0), coalesce(k.q, 0), coalesce(k.i, 0), coalesce(k.o, 0), coalesce(k.r, 0),"
    "  coalesce(k.d, 0), coalesce(k.e, 0), coalesce(k.a, 0), coalesce(k.f, 0),"
    "  coalesce((SELECT e.kafka_offset FROM event_log e WHERE e.workflow_id = w.id"
    "            ORDER BY e.applied_seq DESC LIMIT 1), 0),"
    "  nt.ids"
    " FROM ids JOIN workflow w ON w.id = ids.id"
    " LEFT JOIN runs r ON r.workflow_id = w.id"
    " LEFT JOIN notify nt ON nt.workflow_id = w.id"
    " LEFT JOIN LATERAL (SELECT sum(n) FILTER (WHERE status = 'G') AS g,"
    "   sum(n) FILTER (WHERE status = 'Q') AS q, sum(n) FILTER (WHERE status = 'I') AS i,"
    "   sum(n) FILTER (WHERE status = 'O') AS o, sum(n) FILTER (WHERE status = 'R') AS r,"
    "   sum(n) FILTER (WHERE status = 'D') AS d, sum(n) FILTER (WHERE status = 'E') AS e,"
    "   sum(n) FILTER (WHERE status = 'A') AS a, sum(n) FILTER (WHERE status = 'F') AS f"
    "   FROM workflow_task_count c WHERE c.workflow_id = w.id) k ON true";

static const char open_sql[] = "SELECT id FROM workflow WHERE status NOT IN ('D', 'F', 'H', 'A')"
                               " AND id > $1 ORDER BY id LIMIT 500";

struct jm_cache_s {
    char *host;
    int port;
    jm_redis_t *r;
    char sha[48]; /* of the loaded script, "" = not loaded */
    int down;     /* Redis failed: log once, rebuild when back */
    int warned;   /* the outage was logged (reset when Redis answers) */
    int64_t retry_at;
    int64_t *dirty; /* workflows whose write was lost while down */
    size_t n_dirty, cap_dirty;
    int overflow;          /* too many to remember: rebuild everything */
    int rebuilding;        /* a rebuild is in progress (one chunk per update) */
    int64_t rebuild_after; /* keyset cursor of the rebuild */
    size_t rebuilt;
    jm_pgarr_t a_wf, a_run;
};

jm_cache_t *jm_cache_new(const char *host, int port)
{
    jm_cache_t *c = jm_calloc(1, sizeof(*c));
    c->host = jm_strdup(host ? host : "127.0.0.1");
    c->port = port;
    c->down = port > 0; /* connect lazily, then rebuild once: the cache may be stale */
    return c;
}

void jm_cache_destroy(jm_cache_t *c)
{
    if (!c)
        return;
    jm_redis_destroy(c->r);
    jm_pgarr_free(&c->a_wf);
    jm_pgarr_free(&c->a_run);
    free(c->dirty);
    free(c->host);
    free(c);
}

int jm_cache_dirty(const jm_cache_t *c)
{
    return c->port > 0 && (c->down || c->rebuilding || c->n_dirty > 0);
}

static void mark_down(jm_cache_t *c, const char *why)
{
    if (!c->warned)
        jm_log(JM_LOG_WARN, SUB,
               "Redis %s:%d unavailable, applying continues without the cache: "
               "%s",
               c->host, c->port, why);
    c->down = 1;
    c->warned = 1;
    c->retry_at = jm_time_mono_ms() + RECONNECT_EVERY_MS;
    c->sha[0] = '\0';
    jm_redis_destroy(c->r);
    c->r = NULL;
}

/* Sort and drop repeats: a busy workflow is touched by every batch of an outage. */
static void dirty_unique(jm_cache_t *c)
{
    c->n_dirty = jm_i64_sort_unique(c->dirty, c->n_dirty);
}

static void remember(jm_cache_t *c, const int64_t *ids, size_t n)
{
    for (size_t i = 0; i < n && !c->overflow; i++) {
        if (c->n_dirty == c->cap_dirty || c->n_dirty == DIRTY_MAX)
            dirty_unique(c);
        if (c->n_dirty == DIRTY_MAX) {
            c->overflow = 1;
            break;
        }
        if (c->n_dirty == c->cap_dirty) {
            c->cap_dirty = c->cap_dirty ? c->cap_dirty * 2 : 256;
            c->dirty = jm_realloc(c->dirty, c->cap_dirty * sizeof(*c->dirty));
        }
        c->dirty[c->n_dirty++] = ids[i];
    }
}

static jm_rc_t script_load(jm_cache_t *c, jm_err_t *err)
{
    redisReply *rep = NULL;
    const char *argv[] = {"SCRIPT", "LOAD", jm_wfcache_cas_script};
    jm_rc_t rc = jm_redis_command_argv(c->r, 3, argv, NULL, &rep, err);
    if (rc == JM_OK && rep->type == REDIS_REPLY_STRING && rep->len < sizeof(c->sha))
        memcpy(c->sha, rep->str, rep->len + 1);
    else if (rc == JM_OK)
        rc = jm_err_set(err, JM_ERR_INTERNAL, "SCRIPT LOAD: unexpected reply");
    jm_redis_reply_free(rep);
    return rc;
}

/* Rewrite every open workflow, a chunk per update, then the dirty ones (rebuild_step). */
static void start_rebuild(jm_cache_t *c, const char *why)
{
    jm_log(JM_LOG_INFO, SUB, "Redis %s:%d %s: rebuilding the cache", c->host, c->port, why);
    c->rebuilding = 1;
    c->rebuild_after = 0;
    c->rebuilt = 0;
}

/* EVALSHA the script with argv[3..] = key, args; load it first when Redis does not know it. */
static jm_rc_t script_run(jm_cache_t *c, int argc, const char **argv, jm_err_t *err)
{
    jm_rc_t rc = JM_ERR_NOT_FOUND;
    argv[0] = "EVALSHA";
    argv[1] = c->sha;
    argv[2] = "1";
    if (c->sha[0])
        rc = jm_redis_command_argv(c->r, argc, argv, NULL, NULL, err);
    if (rc == JM_ERR_NOT_FOUND && c->sha[0] && !c->rebuilding)
        start_rebuild(c, "lost its scripts (restarted?)");
    if (rc == JM_ERR_NOT_FOUND) {
        rc = script_load(c, err);
        if (rc == JM_OK)
            rc = jm_redis_command_argv(c->r, argc, argv, NULL, NULL, err);
    }
    return rc;
}

/* Write one row of read_sql's result. */
static jm_rc_t write_row(jm_cache_t *c, PGresult *res, int row, jm_err_t *err)
{
    char key[48], chan_wf[64], nchan[16], run_chans[64][48];
    const char *argv[64 + 40];
    int argc = 3, n_runs = 0;
    snprintf(key, sizeof(key), "jm:wf:%s", PQgetvalue(res, row, 0));
    snprintf(chan_wf, sizeof(chan_wf), "jm:notify:wf:%s", PQgetvalue(res, row, 0));
    argv[argc++] = key;
    argv[argc++] = PQgetvalue(res, row, 14); /* version */
    argv[argc++] = nchan;
    argv[argc++] = chan_wf;
    char *runs = PQgetisnull(res, row, 15) ? NULL : jm_strdup(PQgetvalue(res, row, 15));
    for (char *save = NULL, *t = runs ? strtok_r(runs, ",", &save) : NULL; t && n_runs < 64;
         t = strtok_r(NULL, ",", &save)) {
        snprintf(run_chans[n_runs], sizeof(run_chans[0]), "jm:notify:run:%s", t);
        argv[argc++] = run_chans[n_runs++];
    }
    snprintf(nchan, sizeof(nchan), "%d", 1 + n_runs);
    argv[argc++] = "workflow_status";
    argv[argc++] = PQgetvalue(res, row, 1);
    argv[argc++] = "run_id";
    argv[argc++] = PQgetvalue(res, row, 2); /* "" when the workflow has no run */
    argv[argc++] = "run_status";
    argv[argc++] = PQgetvalue(res, row, 3);
    argv[argc++] = "total";
    argv[argc++] = PQgetvalue(res, row, 4);
    for (int k = 0; k < 9; k++) {
        argv[argc++] = jm_wfcache_count_fields[k];
        argv[argc++] = PQgetvalue(res, row, 5 + k);
    }
    jm_rc_t rc = script_run(c, argc, argv, err);
    free(runs);
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Workflows of `wf` that read_sql did not find were pruned (011_prune.sql): delete their keys and
 * tell their watchers.  No version check: nothing newer than the deletion can exist. */
static void drop_gone(jm_cache_t *c, PGresult *res, const int64_t *wf, size_t n_wf)
{
    size_t n = (size_t)PQntuples(res);
    int64_t *found = jm_malloc((n + 1) * sizeof(*found));
    for (size_t i = 0; i < n; i++)
        found[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
    qsort(found, n, sizeof(*found), cmp_i64);
    for (size_t i = 0; i < n_wf && !c->down; i++) {
        if (bsearch(&wf[i], found, n, sizeof(*found), cmp_i64))
            continue;
        char key[48], chan[64];
        snprintf(key, sizeof(key), "jm:wf:%" PRId64, wf[i]);
        snprintf(chan, sizeof(chan), "jm:notify:wf:%" PRId64, wf[i]);
        const char *del[2] = {"DEL", key}, *pub[3] = {"PUBLISH", chan, "0"};
        jm_err_t rerr;
        jm_rc_t r = jm_redis_command_argv(c->r, 2, del, NULL, NULL, &rerr);
        if (r == JM_OK)
            r = jm_redis_command_argv(c->r, 3, pub, NULL, NULL, &rerr);
        if (r == JM_ERR_UNAVAILABLE || r == JM_ERR_RETRY)
            mark_down(c, rerr.msg);
        else if (r != JM_OK)
            jm_log(JM_LOG_ERROR, SUB, "deleting %s: %s", key, rerr.msg);
    }
    free(found);
}

/* Read the workflows (and the workflows of the runs) from PostgreSQL and write them. */
static jm_rc_t refresh(jm_cache_t *c, jm_pg_t *pg, const int64_t *wf, size_t n_wf,
                       const int64_t *runs, size_t n_runs, jm_err_t *err)
{
    PGresult *res = NULL;
    jm_pgarr_reset(&c->a_wf);
    jm_pgarr_reset(&c->a_run);
    for (size_t i = 0; i < n_wf; i++)
        jm_pgarr_add_int(&c->a_wf, wf[i]);
    for (size_t i = 0; i < n_runs; i++)
        jm_pgarr_add_int(&c->a_run, runs[i]);
    const char *params[2] = {jm_pgarr_finish(&c->a_wf), jm_pgarr_finish(&c->a_run)};
    jm_rc_t rc = jm_pg_exec_prepared(pg, "jm_cache_read", read_sql, 2, params, &res, err);
    if (rc != JM_OK)
        return rc;
    for (int row = 0; row < PQntuples(res) && !c->down; row++) {
        jm_err_t rerr;
        jm_rc_t r = write_row(c, res, row, &rerr);
        if (r == JM_ERR_UNAVAILABLE || r == JM_ERR_RETRY) {
            mark_down(c, rerr.msg);
        } else if (r != JM_OK) {
            jm_log(JM_LOG_ERROR, SUB, "writing jm:wf:%s: %s", PQgetvalue(res, row, 0), rerr.msg);
        }
    }
    drop_gone(c, res, wf, n_wf);
    PQclear(res);
    return JM_OK;
}

/* Write what an earlier failed PostgreSQL read left behind. */
static jm_rc_t flush_dirty(jm_cache_t *c, jm_pg_t *pg, jm_err_t *err)
{
    for (size_t off = 0; off < c->n_dirty; off += CHUNK) {
        size_t k = c->n_dirty - off < CHUNK ? c->n_dirty - off : CHUNK;
        jm_rc_t rc = refresh(c, pg, c->dirty + off, k, NULL, 0, err);
        if (rc != JM_OK || c->down)
            return rc;
    }
    c->n_dirty = 0;
    return JM_OK;
}

/* One step of the rebuild after Redis came back: the next CHUNK non-terminal workflows, then
 * (last step) everything touched while Redis was down.  Done a step per call so applying never
 * waits for a whole rebuild. */
static jm_rc_t rebuild_step(jm_cache_t *c, jm_pg_t *pg, jm_err_t *err)
{
    PGresult *res = NULL;
    int64_t ids[CHUNK];
    char last[24];
    snprintf(last, sizeof(last), "%lld", (long long)c->rebuild_after);
    const char *params[1] = {last};
    jm_rc_t rc = jm_pg_exec(pg, open_sql, 1, params, &res, err);
    if (rc != JM_OK)
        return rc;
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++)
        ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    PQclear(res);
    if (rows > 0) {
        rc = refresh(c, pg, ids, (size_t)rows, NULL, 0, err);
        if (rc == JM_OK && !c->down) {
            c->rebuild_after = ids[rows - 1];
            c->rebuilt += (size_t)rows;
        }
        return rc;
    }
    rc = flush_dirty(c, pg, err);
    if (rc != JM_OK || c->down)
        return rc;
    if (c->overflow)
        jm_log(JM_LOG_WARN, SUB,
               "more than %d workflows changed while Redis was down; terminal "
               "ones among them may show a stale status until they change",
               DIRTY_MAX);
    jm_log(JM_LOG_INFO, SUB, "cache rebuilt: %zu open workflows and those touched meanwhile",
           c->rebuilt);
    c->rebuilding = 0;
    c->overflow = 0;
    return JM_OK;
}

/* Connect when down and due (a rebuild starts then).  0 while Redis stays unavailable. */
static int ensure_up(jm_cache_t *c)
{
    jm_err_t cerr;
    if (!c->down)
        return 1;
    if (jm_time_mono_ms() < c->retry_at)
        return 0;
    c->r = jm_redis_connect(c->host, c->port, REDIS_TIMEOUT_MS, &cerr);
    if (!c->r) {
        mark_down(c, cerr.msg);
        return 0;
    }
    c->down = 0;
    c->warned = 0;
    start_rebuild(c, "answers");
    return 1;
}

jm_rc_t jm_cache_update(jm_cache_t *c, jm_pg_t *pg, const int64_t *wf_ids, size_t n_wf,
                        const int64_t *run_ids, size_t n_runs, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    if (c->port <= 0)
        return JM_OK;
    if (ensure_up(c) &&
        (rc = c->rebuilding ? rebuild_step(c, pg, err) : flush_dirty(c, pg, err)) == JM_OK &&
        !c->down) {
        for (size_t off = 0; off < n_wf || (off == 0 && n_runs > 0); off += CHUNK) {
            size_t k = n_wf - off < CHUNK ? n_wf - off : CHUNK;
            rc = refresh(c, pg, wf_ids + off, k, off == 0 ? run_ids : NULL, off == 0 ? n_runs : 0,
                         err);
            if (rc != JM_OK || c->down)
                break;
        }
    }
    if (c->down || rc != JM_OK)
        remember(c, wf_ids, n_wf); /* run-only touches: their workflow is open, rebuild has it */
    return rc;
}
