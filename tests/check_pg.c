/* Unit tests for src/common/pg.c that need no server: SQLSTATE classification and a refused
 * connection.  Statements against a live server are integration tests. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jobmon/pg.h"

START_TEST(test_sqlstate_rc)
{
    static const struct {
        const char *state;
        jm_rc_t rc;
    } cases[] = {
        {"40001", JM_ERR_RETRY},       {"40P01", JM_ERR_RETRY},       {"55P03", JM_ERR_RETRY},
        {"57014", JM_ERR_RETRY},       {"08000", JM_ERR_UNAVAILABLE}, {"08006", JM_ERR_UNAVAILABLE},
        {"08P01", JM_ERR_UNAVAILABLE}, {"57P01", JM_ERR_UNAVAILABLE}, {"53300", JM_ERR_UNAVAILABLE},
        {"23505", JM_ERR_CONFLICT},    {"23503", JM_ERR_CONFLICT},    {"22P02", JM_ERR_INVALID},
        {"42501", JM_ERR_INTERNAL},    {"42P01", JM_ERR_INTERNAL},    {"40002", JM_ERR_INTERNAL},
        {"XX000", JM_ERR_INTERNAL},    {"", JM_ERR_INTERNAL},         {"4000", JM_ERR_INTERNAL},
        {"400011", JM_ERR_INTERNAL},   {"40 01", JM_ERR_INTERNAL},
    };
    for (size_t i = 0; i < JM_ARRAY_LEN(cases); i++)
        ck_assert_msg(jm_pg_sqlstate_rc(cases[i].state) == cases[i].rc, "%s -> %s", cases[i].state,
                      jm_rc_name(jm_pg_sqlstate_rc(cases[i].state)));
    ck_assert_int_eq(jm_pg_sqlstate_rc(NULL), JM_ERR_INTERNAL);
}
END_TEST

START_TEST(test_classify_without_server)
{
    /* No result and no connection: nothing says the server is gone. */
    ck_assert_int_eq(jm_pg_classify(NULL, NULL), JM_ERR_INTERNAL);
    /* A fabricated result: libpq lets us make one with a status but not with a SQLSTATE. */
    PGresult *ok = PQmakeEmptyPGresult(NULL, PGRES_COMMAND_OK);
    PGresult *bad = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
    ck_assert_int_eq(jm_pg_classify(ok, NULL), JM_OK);
    ck_assert_int_eq(jm_pg_classify(bad, NULL), JM_ERR_INTERNAL);
    PQclear(ok);
    PQclear(bad);
}
END_TEST

START_TEST(test_connect_refused)
{
    jm_err_t err;
    jm_err_clear(&err);
    /* Port 1 on loopback: refused at once; deadline 0 = a single attempt, no sleeping. */
    jm_pg_t *pg = jm_pg_connect("host=127.0.0.1 port=1 dbname=x user=x", 0, &err);
    ck_assert_ptr_null(pg);
    ck_assert_int_eq(err.rc, JM_ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot connect to PostgreSQL"));
    jm_pg_destroy(NULL);
}
END_TEST

Suite *jm_pg_suite(void);
Suite *jm_pg_suite(void)
{
    Suite *s = suite_create("pg");
    TCase *tc = tcase_create("offline");
    tcase_add_test(tc, test_sqlstate_rc);
    tcase_add_test(tc, test_classify_without_server);
    tcase_add_test(tc, test_connect_refused);
    suite_add_tcase(s, tc);
    return s;
}
