/* Unit tests for src/common: error codes, allocation helpers, time parsing and back-off. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jobmon/common.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"

START_TEST(test_err_set)
{
    jm_err_t err;
    jm_err_clear(&err);
    ck_assert_int_eq(jm_err_set(&err, JM_ERR_INVALID, "field %s", "x"), JM_ERR_INVALID);
    ck_assert_int_eq(err.rc, JM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "field x");
    ck_assert_int_eq(jm_err_set(NULL, JM_ERR_IO, "ignored"), JM_ERR_IO);
}
END_TEST

START_TEST(test_rc_classes)
{
    ck_assert(jm_rc_is_retriable(JM_ERR_RETRY));
    ck_assert(jm_rc_is_retriable(JM_ERR_UNAVAILABLE));
    ck_assert(!jm_rc_is_retriable(JM_ERR_INVALID));
    ck_assert_int_eq(jm_rc_to_exit(JM_ERR_INVALID), JM_EXIT_USAGE);
    ck_assert_int_eq(jm_rc_to_exit(JM_ERR_UNAVAILABLE), JM_EXIT_UNAVAILABLE);
    ck_assert_int_eq(jm_rc_to_exit(JM_OK), JM_EXIT_OK);
    ck_assert_str_eq(jm_rc_name(JM_ERR_CONFLICT), "JM_ERR_CONFLICT");
}
END_TEST

START_TEST(test_iso_round_trip)
{
    char buf[32];
    int64_t ms = 0;
    ck_assert_str_eq(jm_time_format_iso(1764081167123LL, buf, sizeof(buf)),
                     "2025-11-25T14:32:47.123Z");
    ck_assert_int_eq(jm_time_parse_iso(buf, &ms), JM_OK);
    ck_assert_int_eq(ms, 1764081167123LL);
    ck_assert_int_eq(jm_time_parse_iso("2025-11-25T14:32:47Z", &ms), JM_OK);
    ck_assert_int_eq(ms, 1764081167000LL);
    ck_assert_int_eq(jm_time_parse_iso("2025-11-25T14:32:47.5Z", &ms), JM_OK);
    ck_assert_int_eq(ms, 1764081167500LL);
    ck_assert_int_eq(jm_time_parse_iso("2025-11-25 14:32:47Z", &ms), JM_ERR_INVALID);
    ck_assert_int_eq(jm_time_parse_iso("2025-13-25T14:32:47Z", &ms), JM_ERR_INVALID);
    ck_assert_int_eq(jm_time_parse_iso("2025-11-25T14:32:47.Z", &ms), JM_ERR_INVALID);
    ck_assert_int_eq(jm_time_parse_iso("2025-11-25T14:32:47Zjunk", &ms), JM_ERR_INVALID);
}
END_TEST

START_TEST(test_backoff_bounds)
{
    for (unsigned a = 0; a < 20; a++) {
        int64_t d = jm_backoff_ms(a, 10, 1000);
        int64_t full = 10;
        for (unsigned i = 0; i < a && full < 1000; i++)
            full *= 2;
        if (full > 1000)
            full = 1000;
        ck_assert_int_gt(d, full / 2);
        ck_assert_int_le(d, full + 1);
    }
}
END_TEST

START_TEST(test_log_level_parse)
{
    jm_log_level_t lvl;
    ck_assert_int_eq(jm_log_level_parse("DEBUG", &lvl), JM_OK);
    ck_assert_int_eq(lvl, JM_LOG_DEBUG);
    ck_assert_int_eq(jm_log_level_parse("loud", &lvl), JM_ERR_INVALID);
}
END_TEST

START_TEST(test_strdup_asprintf)
{
    char *s = jm_asprintf("%d-%s", 42, "x");
    ck_assert_str_eq(s, "42-x");
    free(s);
    s = jm_strndup("abcdef", 3);
    ck_assert_str_eq(s, "abc");
    free(s);
}
END_TEST

Suite *jm_common_suite(void);
Suite *jm_common_suite(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_err_set);
    tcase_add_test(tc, test_rc_classes);
    tcase_add_test(tc, test_iso_round_trip);
    tcase_add_test(tc, test_backoff_bounds);
    tcase_add_test(tc, test_log_level_parse);
    tcase_add_test(tc, test_strdup_asprintf);
    suite_add_tcase(s, tc);
    return s;
}
