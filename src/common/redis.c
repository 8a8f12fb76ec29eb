/*
 * redis.c — one Redis connection (hiredis 0.14, blocking, RESP2).  Owns the redisContext and is
 * the one place that calls freeReplyObject.  It does not pipeline, subscribe or know any key:
 * the cache writer and notify code build on jm_redis_command_argv().
 */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "jobmon/log.h"
#include "jobmon/redis.h"

struct jm_redis_s {
    redisContext *c;
    char *host;
    int port;
    struct timeval tv;
};

jm_redis_t *jm_redis_connect(const char *host, int port, int timeout_ms, jm_err_t *err)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = NULL;
    jm_redis_t *r = NULL;

    JM_ASSERT(host != NULL && timeout_ms > 0);
    c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        jm_err_set(err, JM_ERR_UNAVAILABLE, "cannot connect to Redis at %s:%d: %s", host, port,
                   c ? c->errstr : "out of memory");
        goto out;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        jm_err_set(err, JM_ERR_UNAVAILABLE, "Redis at %s:%d: cannot set timeout: %s", host, port,
                   c->errstr);
        goto out;
    }
    r = jm_calloc(1, sizeof(*r));
    r->c = c;
    c = NULL;
    r->host = jm_strdup(host);
    r->port = port;
    r->tv = tv;
out:
    if (c)
        redisFree(c);
    return r;
}

void jm_redis_destroy(jm_redis_t *r)
{
    if (!r)
        return;
    if (r->c)
        redisFree(r->c);
    free(r->host);
    free(r);
}

void jm_redis_reply_free(redisReply *reply)
{
    if (reply)
        freeReplyObject(reply);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* rc for an error reply. */
static jm_rc_t error_reply_rc(const redisReply *reply)
{
    const char *s = reply->str ? reply->str : "";
    if (starts_with(s, "LOADING") || starts_with(s, "BUSY") || starts_with(s, "TRYAGAIN") ||
        starts_with(s, "MASTERDOWN"))
        return JM_ERR_RETRY;
    if (starts_with(s, "NOSCRIPT"))
        return JM_ERR_NOT_FOUND;
    return JM_ERR_INTERNAL;
}

static jm_rc_t reconnect(jm_redis_t *r, jm_err_t *err)
{
    if (redisReconnect(r->c) != REDIS_OK || redisSetTimeout(r->c, r->tv) != REDIS_OK)
        return jm_err_set(err, JM_ERR_UNAVAILABLE, "cannot reconnect to Redis at %s:%d: %s",
                          r->host, r->port, r->c->errstr);
    return JM_OK;
}

jm_rc_t jm_redis_command_argv(jm_redis_t *r, int argc, const char **argv, const size_t *lens,
                              redisReply **out, jm_err_t *err)
{
    redisReply *reply = NULL;
    jm_rc_t rc = JM_OK;

    if (out)
        *out = NULL;
    /* A context with an error is unusable in hiredis: reconnect before the first try too. */
    if (r->c->err && (rc = reconnect(r, err)) != JM_OK)
        goto out;
    reply = redisCommandArgv(r->c, argc, argv, lens);
    if (!reply) {
        jm_log(JM_LOG_WARN, "redis", "%s:%d: %s; reconnecting", r->host, r->port, r->c->errstr);
        if ((rc = reconnect(r, err)) != JM_OK)
            goto out;
        reply = redisCommandArgv(r->c, argc, argv, lens);
        if (!reply) {
            rc = jm_err_set(err, JM_ERR_UNAVAILABLE, "Redis at %s:%d: %s", r->host, r->port,
                            r->c->errstr);
            goto out;
        }
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        int n = argc > 0 ? (int)(lens ? lens[0] : strlen(argv[0])) : 0;
        rc = jm_err_set(err, error_reply_rc(reply), "Redis %.*s: %s", n, argc > 0 ? argv[0] : "",
                        reply->str ? reply->str : "");
        goto out;
    }
    if (out) {
        *out = reply;
        reply = NULL;
    }
out:
    jm_redis_reply_free(reply);
    return rc;
}
