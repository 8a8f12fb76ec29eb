/*
 * error.c — result codes, error details and aborting allocation.
 * Does not log: whoever handles an error logs it, once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobmon/common.h"

jm_rc_t jm_err_set(jm_err_t *err, jm_rc_t rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->rc = rc;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return rc;
}

void jm_err_clear(jm_err_t *err)
{
    if (err) {
        err->rc = JM_OK;
        err->msg[0] = '\0';
    }
}

const char *jm_rc_name(jm_rc_t rc)
{
    switch (rc) {
    case JM_OK: return "JM_OK";
    case JM_ERR_INVALID: return "JM_ERR_INVALID";
    case JM_ERR_NOT_FOUND: return "JM_ERR_NOT_FOUND";
    case JM_ERR_IO: return "JM_ERR_IO";
    case JM_ERR_RETRY: return "JM_ERR_RETRY";
    case JM_ERR_CONFLICT: return "JM_ERR_CONFLICT";
    case JM_ERR_UNAVAILABLE: return "JM_ERR_UNAVAILABLE";
    case JM_ERR_ILLEGAL: return "JM_ERR_ILLEGAL";
    case JM_ERR_INTERNAL: return "JM_ERR_INTERNAL";
    }
    return "JM_ERR_UNKNOWN";
}

int jm_rc_is_retriable(jm_rc_t rc)
{
    return rc == JM_ERR_RETRY || rc == JM_ERR_UNAVAILABLE;
}

int jm_rc_to_exit(jm_rc_t rc)
{
    switch (rc) {
    case JM_OK: return JM_EXIT_OK;
    case JM_ERR_INVALID:
    case JM_ERR_NOT_FOUND: return JM_EXIT_USAGE;
    case JM_ERR_UNAVAILABLE: return JM_EXIT_UNAVAILABLE;
    default: return JM_EXIT_FAILED;
    }
}

static void *oom(size_t n)
{
    fprintf(stderr, "jobmon: out of memory allocating %zu bytes\n", n);
    abort();
}

void *jm_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : oom(n);
}

void *jm_calloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    return p ? p : oom(nmemb * size);
}

void *jm_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom(n);
}

char *jm_strdup(const char *s)
{
    return jm_strndup(s, strlen(s));
}

char *jm_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = jm_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *jm_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    JM_ASSERT(n >= 0);
    char *p = jm_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void jm_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "jobmon: assertion failed: %s (%s:%d)\n", cond, file, line);
    abort();
}
