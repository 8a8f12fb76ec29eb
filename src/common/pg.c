/*
 * pg.c — one PostgreSQL connection: connect with retries until a deadline, run parameterised
 * statements, and classify failures (see jobmon/pg.h for the table).
 *
 * It does not retry statements: only the caller knows where its transaction began.  It is the
 * one place that calls PQclear on results it did not hand out.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "jobmon/jmtime.h"
#include "jobmon/log.h"
#include "jobmon/pg.h"

#define PG_MAX_PREPARED 8

struct jm_pg_s {
    PGconn *conn;
    char *conninfo;
    const char *prepared[PG_MAX_PREPARED]; /* jm_pg_exec_prepared names known to conn */
    int nprepared;
};

static void on_notice(void *arg, const char *message)
{
    (void)arg;
    size_t n = strlen(message);
    while (n && message[n - 1] == '\n')
        n--;
    jm_log(JM_LOG_DEBUG, "pg", "notice: %.*s", (int)n, message);
}

/* Copy of a libpq message without the trailing newline, for err. */
static void set_conn_error(jm_err_t *err, jm_rc_t rc, const char *what, PGconn *conn)
{
    const char *m = conn ? PQerrorMessage(conn) : "out of memory";
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    jm_err_set(err, rc, "%s: %.*s", what, (int)n, m);
}

/* One connection attempt bounded by `timeout_s` (0 = libpq's default).  NULL + err on failure. */
static PGconn *connect_once(const char *conninfo, int64_t timeout_s, jm_err_t *err)
{
    char timeout[32];
    /* Later entries override earlier ones, so the caller's conninfo (expanded from "dbname")
     * wins over our connect_timeout. */
    const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *const vals[] = {timeout, "jobmon", conninfo, NULL};

    snprintf(timeout, sizeof(timeout), "%lld", (long long)(timeout_s > 0 ? timeout_s : 0));
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn && PQstatus(conn) == CONNECTION_OK) {
        PQsetNoticeProcessor(conn, on_notice, NULL);
        return conn;
    }
    set_conn_error(err, JM_ERR_UNAVAILABLE, "cannot connect to PostgreSQL", conn);
    PQfinish(conn);
    return NULL;
}

/* Attempts until the deadline; NULL + JM_ERR_UNAVAILABLE in err when they all failed. */
static PGconn *connect_until(const char *conninfo, int64_t deadline_ms, jm_err_t *err)
{
    for (unsigned attempt = 0;; attempt++) {
        int64_t left = deadline_ms ? deadline_ms - jm_time_mono_ms() : 0;
        /* connect_timeout is in whole seconds and libpq treats 1 as 2; use at least 2 */
        PGconn *conn =
            connect_once(conninfo, deadline_ms ? (left / 1000 < 2 ? 2 : left / 1000) : 0, err);
        if (conn)
            return conn;
        int64_t pause = jm_backoff_ms(attempt, 100, 5000);
        left = deadline_ms ? deadline_ms - jm_time_mono_ms() : 0;
        if (left <= pause)
            return NULL;
        jm_log(JM_LOG_WARN, "pg", "%s; retrying in %lld ms", err ? err->msg : "connect failed",
               (long long)pause);
        jm_time_sleep_ms(pause, NULL);
    }
}

jm_pg_t *jm_pg_connect(const char *conninfo, int64_t deadline_ms, jm_err_t *err)
{
    PGconn *conn = connect_until(conninfo ? conninfo : "", deadline_ms, err);
    if (!conn)
        return NULL;
    jm_pg_t *pg = jm_calloc(1, sizeof(*pg));
    pg->conn = conn;
    pg->conninfo = jm_strdup(conninfo ? conninfo : "");
    return pg;
}

void jm_pg_destroy(jm_pg_t *pg)
{
    if (!pg)
        return;
    PQfinish(pg->conn);
    free(pg->conninfo);
    free(pg);
}

PGconn *jm_pg_conn(jm_pg_t *pg)
{
    return pg->conn;
}

jm_rc_t jm_pg_reconnect(jm_pg_t *pg, int64_t deadline_ms, jm_err_t *err)
{
    PQfinish(pg->conn);
    pg->nprepared = 0; /* prepared statements die with their session */
    pg->conn = connect_until(pg->conninfo, deadline_ms, err);
    return pg->conn ? JM_OK : JM_ERR_UNAVAILABLE;
}

jm_rc_t jm_pg_sqlstate_rc(const char *s)
{
    if (!s || strlen(s) != 5)
        return JM_ERR_INTERNAL;
    for (int k = 0; k < 5; k++)
        if (!isalnum((unsigned char)s[k]))
            return JM_ERR_INTERNAL;
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "55P03") == 0 ||
        strcmp(s, "57014") == 0)
        return JM_ERR_RETRY;
    if (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
        strcmp(s, "57P03") == 0 || strcmp(s, "53300") == 0)
        return JM_ERR_UNAVAILABLE;
    if (strncmp(s, "23", 2) == 0)
        return JM_ERR_CONFLICT;
    if (strncmp(s, "22", 2) == 0)
        return JM_ERR_INVALID;
    return JM_ERR_INTERNAL; /* includes 42501: see pg.h */
}

jm_rc_t jm_pg_classify(const PGresult *res, PGconn *conn)
{
    if (res) {
        switch (PQresultStatus(res)) {
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
        case PGRES_SINGLE_TUPLE:
        case PGRES_EMPTY_QUERY:
        case PGRES_COPY_IN:
        case PGRES_COPY_OUT:
        case PGRES_COPY_BOTH:
        case PGRES_PIPELINE_SYNC: return JM_OK;
        default: break;
        }
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state)
            return jm_pg_sqlstate_rc(state);
    }
    return conn && PQstatus(conn) == CONNECTION_BAD ? JM_ERR_UNAVAILABLE : JM_ERR_INTERNAL;
}

/* Classify res, give it to *out on success (if out), free it otherwise. */
static jm_rc_t take_result(jm_pg_t *pg, PGresult *res, PGresult **out, jm_err_t *err)
{
    jm_rc_t rc = jm_pg_classify(res, pg->conn);

    if (out)
        *out = NULL;
    if (rc != JM_OK) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        if (msg)
            jm_err_set(err, rc, "%s: %s", state ? state : "-----", msg);
        else
            set_conn_error(err, rc, "PostgreSQL", pg->conn);
        goto out;
    }
    if (out) {
        *out = res;
        res = NULL;
    }
out:
    PQclear(res);
    return rc;
}

jm_rc_t jm_pg_exec(jm_pg_t *pg, const char *sql, int nparams, const char *const *params,
                   PGresult **out, jm_err_t *err)
{
    return take_result(pg, PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0), out,
                       err);
}

static int is_prepared(const jm_pg_t *pg, const char *name)
{
    for (int i = 0; i < pg->nprepared; i++)
        if (strcmp(pg->prepared[i], name) == 0)
            return 1;
    return 0;
}

jm_rc_t jm_pg_exec_prepared(jm_pg_t *pg, const char *name, const char *sql, int nparams,
                            const char *const *params, PGresult **out, jm_err_t *err)
{
    if (!is_prepared(pg, name)) {
        if (pg->nprepared == PG_MAX_PREPARED)
            return jm_pg_exec(pg, sql, nparams, params, out, err);
        jm_rc_t rc = take_result(pg, PQprepare(pg->conn, name, sql, nparams, NULL), NULL, err);
        if (rc != JM_OK) {
            if (out)
                *out = NULL;
            return rc;
        }
        pg->prepared[pg->nprepared++] = name;
    }
    return take_result(pg, PQexecPrepared(pg->conn, name, nparams, params, NULL, NULL, 0), out,
                       err);
}

jm_rc_t jm_pg_exec_id(jm_pg_t *pg, const char *sql, int64_t id, PGresult **out, jm_err_t *err)
{
    char text[24];
    const char *params[1] = {text};
    snprintf(text, sizeof(text), "%lld", (long long)id);
    return jm_pg_exec(pg, sql, 1, params, out, err);
}

jm_rc_t jm_pg_begin(jm_pg_t *pg, jm_err_t *err)
{
    return jm_pg_exec(pg, "BEGIN", 0, NULL, NULL, err);
}

jm_rc_t jm_pg_commit(jm_pg_t *pg, jm_err_t *err)
{
    PGresult *res = NULL;
    jm_rc_t rc = jm_pg_exec(pg, "COMMIT", 0, NULL, &res, err);
    /* COMMIT of a transaction that already failed "succeeds" with the tag ROLLBACK. */
    if (rc == JM_OK && strcmp(PQcmdStatus(res), "ROLLBACK") == 0)
        rc = jm_err_set(err, JM_ERR_INTERNAL, "COMMIT rolled back: the transaction had failed");
    PQclear(res);
    return rc;
}

jm_rc_t jm_pg_rollback(jm_pg_t *pg, jm_err_t *err)
{
    return jm_pg_exec(pg, "ROLLBACK", 0, NULL, NULL, err);
}
