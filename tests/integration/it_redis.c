/*
 * it_redis.c — Redis plumbing against `scripts/stack up`: a hash written with HSET comes back
 * with HGETALL through hiredis 0.14 (RESP2).  It does not test jobmon's cache writer.
 */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "it.h"

static redisContext *connect_env(void)
{
    const char *host = it_env("JOBMON_REDIS_HOST");
    int port = atoi(it_env("JOBMON_REDIS_PORT"));
    struct timeval tv = {5, 0};
    redisContext *rc = redisConnectWithTimeout(host, port, tv);
    ck_assert_msg(rc != NULL && !rc->err, "connect to redis %s:%d: %s", host, port,
                  rc ? rc->errstr : "out of memory");
    return rc;
}

static redisReply *command(redisContext *rc, int want_type, const char *fmt, const char *key)
{
    redisReply *r = redisCommand(rc, fmt, key);
    ck_assert_msg(r != NULL, "redis %s: %s", fmt, rc->errstr);
    ck_assert_msg((int)r->type == want_type, "redis %s: reply type %d (%s)", fmt, r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    return r;
}

START_TEST(test_hash_round_trip)
{
    redisContext *rc = connect_env();
    char key[128];
    snprintf(key, sizeof(key), "jm:it:%s", it_unique());

    redisReply *r = command(rc, REDIS_REPLY_INTEGER, "HSET %s status R version 7 name it", key);
    ck_assert_int_eq(r->integer, 3);
    freeReplyObject(r);
    r = command(rc, REDIS_REPLY_INTEGER, "EXPIRE %s 60", key);
    freeReplyObject(r);

    r = command(rc, REDIS_REPLY_ARRAY, "HGETALL %s", key);
    ck_assert_uint_eq(r->elements, 6);
    int found = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str, *v = r->element[i + 1]->str;
        if (strcmp(f, "status") == 0 && strcmp(v, "R") == 0)
            found |= 1;
        else if (strcmp(f, "version") == 0 && strcmp(v, "7") == 0)
            found |= 2;
        else if (strcmp(f, "name") == 0 && strcmp(v, "it") == 0)
            found |= 4;
    }
    ck_assert_int_eq(found, 7);
    freeReplyObject(r);

    r = command(rc, REDIS_REPLY_INTEGER, "DEL %s", key);
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    redisFree(rc);
}
END_TEST

Suite *it_redis_suite(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = tcase_create("plumbing");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_hash_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
