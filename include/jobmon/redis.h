/*
 * jobmon/redis.h — a small hiredis (0.14, RESP2) connection wrapper: connect with a timeout, run a
 * command given as an argument vector, reconnect once when the connection was lost, classify
 * errors.  The cache and notification logic lives on top of it, elsewhere.
 */
#ifndef JOBMON_REDIS_H
#define JOBMON_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "jobmon/common.h"

typedef struct jm_redis_s jm_redis_t;

/* Connect to host:port over TCP; `timeout_ms` (> 0) bounds the connect and every later command.
 * Returns a new connection (caller destroys with jm_redis_destroy), or NULL with
 * JM_ERR_UNAVAILABLE and hiredis's message in err.  One attempt: callers that want to wait for
 * Redis loop with jm_backoff_ms (Redis is a cache; most callers fall back to PostgreSQL). */
JM_WUR jm_redis_t *jm_redis_connect(const char *host, int port, int timeout_ms, jm_err_t *err);

/* Close and free.  Accepts NULL. */
void jm_redis_destroy(jm_redis_t *r);

/* Run one command: argv[0..argc-1] with lengths `lens` (NULL = strlen of each).  If the
 * connection fails (I/O error, timeout, server closed it), reconnect and send the command once
 * more — so send commands that are safe to repeat (reads, versioned compare-and-set scripts).
 * On JM_OK, if `out` is not NULL it receives the reply (caller frees it with
 * jm_redis_reply_free); otherwise the reply is freed here.  On failure *out is NULL and:
 *   JM_ERR_UNAVAILABLE  the connection failed and reconnecting or resending failed too
 *   JM_ERR_RETRY        Redis answered LOADING, BUSY, TRYAGAIN, MASTERDOWN (retry later)
 *   JM_ERR_NOT_FOUND    Redis answered NOSCRIPT (EVALSHA of an unknown script: send EVAL)
 *   JM_ERR_INTERNAL     any other error reply (WRONGTYPE, ERR ...), message in err */
JM_WUR jm_rc_t jm_redis_command_argv(jm_redis_t *r, int argc, const char **argv, const size_t *lens,
                                     redisReply **out, jm_err_t *err);

/* Free a reply from jm_redis_command_argv().  Accepts NULL. */
void jm_redis_reply_free(redisReply *reply);

#endif
