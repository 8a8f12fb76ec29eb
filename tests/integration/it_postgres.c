/*
 * it_postgres.c — PostgreSQL plumbing against `scripts/stack up`: the writer role (jobmon_fsm)
 * inserts and reads back with PQexecParams; the reader role (jobmon_reader) can read that row
 * (default privileges) but cannot write (SQLSTATE 42501).  Uses the scratch table of
 * schemas/sql/001_plumbing.sql; it does not test jobmon's schema.
 */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "it.h"
#include "jobmon/pg.h"

static PGconn *connect_env(const char *var)
{
    PGconn *pg = PQconnectdb(it_env(var));
    ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "connect with %s: %s", var, PQerrorMessage(pg));
    return pg;
}

/* Run `sql` with text parameters; the result must have status `want` (caller clears). */
static PGresult *exec_params(PGconn *pg, const char *sql, int n, const char *const *params,
                             ExecStatusType want)
{
    PGresult *res = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == want, "%s: %s (%s)", sql, PQresStatus(PQresultStatus(res)),
                  PQresultErrorMessage(res));
    return res;
}

START_TEST(test_writer_round_trip)
{
    PGconn *pg = connect_env("JOBMON_POSTGRES_CONNINFO");
    const char *note = it_unique();
    const char *ins[] = {note};
    PGresult *res = exec_params(pg, "INSERT INTO plumbing_check (note) VALUES ($1) RETURNING id", 1,
                                ins, PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(res), 1);
    char *id = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);

    const char *sel[] = {id};
    res = exec_params(pg, "SELECT note FROM plumbing_check WHERE id = $1::bigint", 1, sel,
                      PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(res), 1);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), note);
    PQclear(res);

    /* The reader sees the writer's committed row (SELECT granted by default privileges). */
    PGconn *rd = connect_env("JOBMON_POSTGRES_READER_CONNINFO");
    res = exec_params(rd, "SELECT note FROM plumbing_check WHERE id = $1::bigint", 1, sel,
                      PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(res), 1);
    ck_assert_str_eq(PQgetvalue(res, 0, 0), note);
    PQclear(res);
    PQfinish(rd);
    free(id);
    PQfinish(pg);
}
END_TEST

static void expect_denied(PGconn *pg, const char *sql, int n, const char *const *params)
{
    PGresult *res = exec_params(pg, sql, n, params, PGRES_FATAL_ERROR);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    ck_assert_msg(state && strcmp(state, "42501") == 0, "%s: SQLSTATE %s, want 42501 (%s)", sql,
                  state ? state : "(none)", PQresultErrorMessage(res));
    PQclear(res);
}

START_TEST(test_reader_cannot_write)
{
    PGconn *rd = connect_env("JOBMON_POSTGRES_READER_CONNINFO");
    const char *note[] = {"reader must not write"};
    expect_denied(rd, "INSERT INTO plumbing_check (note) VALUES ($1)", 1, note);
    expect_denied(rd, "UPDATE plumbing_check SET note = $1", 1, note);
    expect_denied(rd, "DELETE FROM plumbing_check", 0, NULL);
    expect_denied(rd, "CREATE TABLE reader_table (x int)", 0, NULL);
    PQfinish(rd);
}
END_TEST

START_TEST(test_migrations_recorded)
{
    PGconn *rd = connect_env("JOBMON_POSTGRES_READER_CONNINFO");
    const char *v[] = {"001_plumbing"};
    PGresult *res = exec_params(rd, "SELECT applied_at FROM schema_migrations WHERE version = $1",
                                1, v, PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(res), 1);
    PQclear(res);
    PQfinish(rd);
}
END_TEST

/* How many statements named `name` this session has prepared. */
static int prepared_count(jm_pg_t *pg, const char *name)
{
    const char *p[] = {name};
    PGresult *res = NULL;
    jm_err_t err;
    ck_assert_int_eq(jm_pg_exec(pg, "SELECT count(*) FROM pg_prepared_statements WHERE name = $1",
                                1, p, &res, &err),
                     JM_OK);
    int n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/* jm_pg_exec_prepared prepares once per session, returns the rows with the parameters of each
 * call, prepares again after a reconnect, and reports a statement that does not prepare. */
START_TEST(test_exec_prepared)
{
    jm_err_t err;
    jm_pg_t *pg = jm_pg_connect(it_env("JOBMON_POSTGRES_CONNINFO"), 0, &err);
    ck_assert_msg(pg != NULL, "%s", err.msg);
    const char *sql = "SELECT $1::int * 2";
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(prepared_count(pg, "it_double"), 0);
        for (int i = 1; i <= 3; i++) {
            char v[8];
            snprintf(v, sizeof(v), "%d", i);
            const char *p[] = {v};
            PGresult *res = NULL;
            ck_assert_int_eq(jm_pg_exec_prepared(pg, "it_double", sql, 1, p, &res, &err), JM_OK);
            ck_assert_int_eq(atoi(PQgetvalue(res, 0, 0)), 2 * i);
            PQclear(res);
            ck_assert_int_eq(prepared_count(pg, "it_double"), 1);
        }
        ck_assert_int_eq(jm_pg_reconnect(pg, 0, &err), JM_OK);
    }
    PGresult *res = (PGresult *)1;
    ck_assert_int_ne(jm_pg_exec_prepared(pg, "it_bad", "SELEC 1", 0, NULL, &res, &err), JM_OK);
    ck_assert_ptr_null(res);
    ck_assert_ptr_nonnull(strstr(err.msg, "42601"));
    jm_pg_destroy(pg);
}
END_TEST

Suite *it_postgres_suite(void)
{
    Suite *s = suite_create("postgres");
    TCase *tc = tcase_create("plumbing");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_writer_round_trip);
    tcase_add_test(tc, test_reader_cannot_write);
    tcase_add_test(tc, test_migrations_recorded);
    tcase_add_test(tc, test_exec_prepared);
    suite_add_tcase(s, tc);
    return s;
}
