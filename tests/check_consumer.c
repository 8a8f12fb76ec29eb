/* Unit tests for the pure helpers of jobmon-fsm's consume loop (src/consumer/util.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/consumer_int.h"

START_TEST(test_batch_grows_when_full)
{
    ck_assert_uint_eq(jm_batch_next_size(100, 100, 0, 10, 1000), 200);
    ck_assert_uint_eq(jm_batch_next_size(800, 800, 0, 10, 1000), 1000);
    ck_assert_uint_eq(jm_batch_next_size(1000, 1000, 0, 10, 1000), 1000);
}
END_TEST

START_TEST(test_batch_keeps_when_partial)
{
    ck_assert_uint_eq(jm_batch_next_size(100, 3, 0, 10, 1000), 100);
    ck_assert_uint_eq(jm_batch_next_size(100, 0, 0, 10, 1000), 100);
}
END_TEST

START_TEST(test_batch_shrinks_on_retry)
{
    ck_assert_uint_eq(jm_batch_next_size(100, 100, 1, 10, 1000), 50);
    ck_assert_uint_eq(jm_batch_next_size(15, 15, 1, 10, 1000), 10);
    ck_assert_uint_eq(jm_batch_next_size(1, 1, 1, 1, 1), 1);
}
END_TEST

START_TEST(test_dead_letter_uuid)
{
    char a[JM_UUID_STR_LEN + 1], b[JM_UUID_STR_LEN + 1], c[JM_UUID_STR_LEN + 1];
    jm_dead_letter_uuid("jobmon.events", 3, 42, a);
    jm_dead_letter_uuid("jobmon.events", 3, 42, b);
    ck_assert_str_eq(a, b);
    ck_assert(jm_uuid_is_valid(a, strlen(a)));
    ck_assert_int_eq(a[14], '8'); /* version 8 */
    ck_assert(strchr("89ab", a[19]) != NULL);
    jm_dead_letter_uuid("jobmon.events", 3, 43, c);
    ck_assert_str_ne(a, c);
    jm_dead_letter_uuid("jobmon.events", 2, 42, c);
    ck_assert_str_ne(a, c);
    jm_dead_letter_uuid("jobmon.event", 3, 42, c);
    ck_assert_str_ne(a, c);
}
END_TEST

START_TEST(test_uuid_valid)
{
    const char *ok = "0b7c6f0e-3c1e-4d8e-9a55-2f6f1c9e7a10";
    ck_assert(jm_uuid_is_valid(ok, strlen(ok)));
    ck_assert(!jm_uuid_is_valid("0B7C6F0E-3C1E-4D8E-9A55-2F6F1C9E7A10", 36));
    ck_assert(!jm_uuid_is_valid("0b7c6f0e-3c1e-4d8e-9a55-2f6f1c9e7a1", 35));
    ck_assert(!jm_uuid_is_valid("0b7c6f0e03c1e-4d8e-9a55-2f6f1c9e7a10", 36));
}
END_TEST

START_TEST(test_pgarr)
{
    jm_pgarr_t a = {0};
    jm_pgarr_reset(&a);
    ck_assert_str_eq(jm_pgarr_finish(&a), "{}");
    jm_pgarr_reset(&a);
    jm_pgarr_add_int(&a, 1);
    jm_pgarr_add_int(&a, -9223372036854775807LL - 1);
    jm_pgarr_add_null(&a);
    ck_assert_str_eq(jm_pgarr_finish(&a), "{1,-9223372036854775808,NULL}");
    jm_pgarr_reset(&a);
    jm_pgarr_add_text(&a, "a\"b\\c,{}", 8);
    jm_pgarr_add_text(&a, NULL, 0);
    jm_pgarr_add_text(&a, "", 0);
    ck_assert_str_eq(jm_pgarr_finish(&a), "{\"a\\\"b\\\\c,{}\",NULL,\"\"}");
    jm_pgarr_reset(&a);
    jm_pgarr_add_bytea(&a, "\x00\xff{", 3);
    ck_assert_str_eq(jm_pgarr_finish(&a), "{\"\\\\x00ff7b\"}");
    jm_pgarr_free(&a);
}
END_TEST

START_TEST(test_pgarr_grows)
{
    jm_pgarr_t a = {0};
    jm_pgarr_reset(&a);
    for (int i = 0; i < 10000; i++)
        jm_pgarr_add_text(&a, "0123456789", 10);
    const char *s = jm_pgarr_finish(&a);
    ck_assert_uint_eq(strlen(s), 2 + 10000 * 12 + 9999);
    jm_pgarr_free(&a);
}
END_TEST

/* The binary COPY encoding: header, field count, big-endian lengths and values, UUID bytes,
 * timestamptz as microseconds since 2000-01-01 UTC, NULL as length -1. */
START_TEST(test_pgcopy_encoding)
{
    static const unsigned char want[] = {'P',  'G',  'C',  'O',  'P',  'Y',  '\n', 0xff, '\r',
                                         '\n', 0,    0,    0,    0,    0,    0,    0,    0,
                                         0,       /* header */
                                         0,    4, /* 4 fields */
                                         0,    0,    0,    16,   0x01, 0x23, 0x45, 0x67, 0x89,
                                         0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                                         0xcd, 0xef, /* uuid */
                                         0,    0,    0,    8,    0,    0,    0,    0,    0,
                                         0,    0x03, 0xe8, /* timestamptz 2000-01-01 + 1 ms */
                                         0,    0,    0,    4,    0xff, 0xff, 0xff, 0xfe, /* int4 -2
                                                                                          */
                                         0xff, 0xff, 0xff, 0xff};                        /* NULL */
    jm_pgcopy_t c = {0};
    jm_pgcopy_reset(&c);
    jm_pgcopy_row(&c, 4);
    jm_pgcopy_uuid(&c, "01234567-89ab-cdef-0123-456789abcdef");
    jm_pgcopy_ts_ms(&c, 946684800001LL);
    jm_pgcopy_int4(&c, -2);
    jm_pgcopy_null(&c);
    ck_assert_uint_eq(c.rows, 1);
    ck_assert_uint_eq(c.len, sizeof(want));
    ck_assert_mem_eq(c.buf, want, sizeof(want));
    jm_pgcopy_reset(&c); /* a reset keeps only the header */
    ck_assert_uint_eq(c.len, 19);
    ck_assert_uint_eq(c.rows, 0);
    jm_pgcopy_free(&c);
}
END_TEST

/* A literal that grew past 1 MiB (a large batch) does not keep its buffer after the next reset. */
START_TEST(test_pgarr_shrinks)
{
    jm_pgarr_t a = {0};
    static const char blob[4096];
    jm_pgarr_reset(&a);
    for (int i = 0; i < 200; i++)
        jm_pgarr_add_bytea(&a, blob, sizeof(blob));
    ck_assert_uint_gt(a.cap, 1024 * 1024);
    jm_pgarr_reset(&a);
    ck_assert_uint_le(a.cap, 1024);
    jm_pgarr_add_int(&a, 5);
    ck_assert_str_eq(jm_pgarr_finish(&a), "{5}");
    jm_pgarr_free(&a);
}
END_TEST

START_TEST(test_recent_expiry)
{
    jm_recent_t *r = jm_recent_new();
    ck_assert_int_eq(jm_recent_check_add(r, 7, 1000, 500), 0);
    ck_assert_int_eq(jm_recent_check_add(r, 7, 1200, 500), 1);
    ck_assert_int_eq(jm_recent_check_add(r, 8, 1200, 500), 0);
    ck_assert_uint_eq(jm_recent_count(r, 1200), 2);
    ck_assert_int_eq(jm_recent_check_add(r, 7, 1500, 500), 0); /* expired: re-armed */
    ck_assert_int_eq(jm_recent_check_add(r, 7, 1999, 500), 1);
    ck_assert_uint_eq(jm_recent_count(r, 1800), 1);
    jm_recent_destroy(r);
    jm_recent_destroy(NULL);
}
END_TEST

START_TEST(test_recent_many)
{
    jm_recent_t *r = jm_recent_new();
    for (int64_t k = 1; k <= 100000; k++)
        ck_assert_int_eq(jm_recent_check_add(r, k, k, 1000), 0);
    ck_assert_uint_eq(jm_recent_count(r, 100000), 1000);
    ck_assert_int_eq(jm_recent_check_add(r, 99999, 100000, 1000), 1);
    ck_assert_int_eq(jm_recent_check_add(r, 5, 100000, 1000), 0);
    jm_recent_destroy(r);
}
END_TEST

Suite *jm_consumer_suite(void);
Suite *jm_consumer_suite(void)
{
    Suite *s = suite_create("consumer");
    TCase *tc = tcase_create("util");
    tcase_add_test(tc, test_batch_grows_when_full);
    tcase_add_test(tc, test_batch_keeps_when_partial);
    tcase_add_test(tc, test_batch_shrinks_on_retry);
    tcase_add_test(tc, test_dead_letter_uuid);
    tcase_add_test(tc, test_uuid_valid);
    tcase_add_test(tc, test_pgarr);
    tcase_add_test(tc, test_pgarr_grows);
    tcase_add_test(tc, test_pgarr_shrinks);
    tcase_add_test(tc, test_pgcopy_encoding);
    tcase_add_test(tc, test_recent_expiry);
    tcase_add_test(tc, test_recent_many);
    suite_add_tcase(s, tc);
    return s;
}
