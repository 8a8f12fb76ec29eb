/* Unit tests for src/common/redis.c that need no server.  Commands against a live Redis are
 * integration tests. */
#include <check.h>
#include <string.h>

#include "jobmon/redis.h"

START_TEST(test_connect_refused)
{
    jm_err_t err;
    jm_err_clear(&err);
    /* Port 1 on loopback: refused at once. */
    jm_redis_t *r = jm_redis_connect("127.0.0.1", 1, 500, &err);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(err.rc, JM_ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err.msg, "127.0.0.1:1"));
    jm_redis_destroy(NULL);
    jm_redis_reply_free(NULL);
}
END_TEST

Suite *jm_redis_suite(void);
Suite *jm_redis_suite(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = tcase_create("offline");
    tcase_add_test(tc, test_connect_refused);
    suite_add_tcase(s, tc);
    return s;
}
