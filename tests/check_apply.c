/* Unit tests of the pure helpers behind the event handlers (src/consumer/apply.c, sched.c):
 * outcome names, the timestamp literal every handler passes to SQL, scheduler capacity.
 * Scenarios against PostgreSQL are in tests/integration/it_apply.c. */
#include <check.h>
#include <string.h>

#include "consumer/apply_int.h"

START_TEST(test_outcome_names)
{
    ck_assert_str_eq(jm_outcome_name(JM_OUTCOME_APPLIED), "applied");
    ck_assert_str_eq(jm_outcome_name(JM_OUTCOME_IGNORED), "ignored");
    ck_assert_str_eq(jm_outcome_name(JM_OUTCOME_REJECTED), "rejected");
    ck_assert_str_eq(jm_outcome_name(JM_OUTCOME__CNT), "?");
}
END_TEST

START_TEST(test_ts_literal)
{
    char buf[40];
    jm_ap_ts(buf, sizeof(buf), 0);
    ck_assert_str_eq(buf, "1970-01-01 00:00:00.000+00");
    jm_ap_ts(buf, sizeof(buf), 1795617167123LL);
    ck_assert_str_eq(buf, "2026-11-25 14:32:47.123+00");
    jm_ap_ts(buf, sizeof(buf), -1);
    ck_assert_str_eq(buf, "1969-12-31 23:59:59.999+00");
}
END_TEST

START_TEST(test_capacity)
{
    ck_assert_int_eq(jm_sched_capacity(10, 3), 7);
    ck_assert_int_eq(jm_sched_capacity(2, 2), 0);
    ck_assert_int_eq(jm_sched_capacity(2, 5), 0); /* a lowered limit never goes negative */
    ck_assert_int_eq(jm_sched_capacity(0, 0), 0); /* 0 pauses */
}
END_TEST

START_TEST(test_ids_set)
{
    jm_ap_ids_t ids = {0};
    for (int i = 0; i < 40; i++)
        jm_ap_ids_add(&ids, i % 20);
    ck_assert_uint_eq(ids.n, 20);
    jm_ap_ids_free(&ids);
    ck_assert_uint_eq(ids.n, 0);
}
END_TEST

Suite *jm_apply_suite(void);
Suite *jm_apply_suite(void)
{
    Suite *s = suite_create("apply");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, test_outcome_names);
    tcase_add_test(tc, test_ts_literal);
    tcase_add_test(tc, test_capacity);
    tcase_add_test(tc, test_ids_set);
    suite_add_tcase(s, tc);
    return s;
}
