/*
 * jobmon/common.h — error codes, exit codes, allocation and logging shared by every module.
 *
 * Fallible functions return jm_rc_t and take an optional last `jm_err_t *err` which, when not
 * NULL, receives the code and a human-readable message.  Allocation failure aborts (there are
 * no ENOMEM branches).  Only main() exits; use the JM_EXIT_* codes there.
 */
#ifndef JOBMON_COMMON_H
#define JOBMON_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define JM_WUR          __attribute__((warn_unused_result))
#define JM_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Result codes.  0 is success, everything else is negative. */
typedef enum {
    JM_OK = 0,
    JM_ERR_INVALID = -1,     /* bad input (validation, malformed event, bad config) */
    JM_ERR_NOT_FOUND = -2,   /* the thing asked for does not exist */
    JM_ERR_IO = -3,          /* a local file or process operation failed */
    JM_ERR_RETRY = -4,       /* transient: roll back, back off, retry (40001, 40P01, queue full) */
    JM_ERR_CONFLICT = -5,    /* the state changed under us (stale write, fenced zombie) */
    JM_ERR_UNAVAILABLE = -6, /* a dependency (Kafka, PostgreSQL, Redis) cannot be reached */
    JM_ERR_ILLEGAL = -7,     /* an illegal state transition */
    JM_ERR_INTERNAL = -8,    /* a bug or an unexpected library answer */
} jm_rc_t;

/* Exit codes of every jobmon program (the CLI contract). */
enum {
    JM_EXIT_OK = 0,          /* done */
    JM_EXIT_FAILED = 1,      /* the workflow failed, or a runtime error */
    JM_EXIT_USAGE = 2,       /* usage error or invalid input */
    JM_EXIT_UNAVAILABLE = 3, /* Kafka, PostgreSQL or Redis unreachable */
};

#define JM_ERR_MSG_MAX 512

/* Error details.  Callers own it (usually on the stack); functions fill it on failure. */
typedef struct jm_err_s {
    jm_rc_t rc;
    char msg[JM_ERR_MSG_MAX];
} jm_err_t;

/* Fill `err` (may be NULL) and return `rc`, so that `return jm_err_set(err, rc, ...)` reads well.
 */
jm_rc_t jm_err_set(jm_err_t *err, jm_rc_t rc, const char *fmt, ...) JM_PRINTF(3, 4);
/* Reset `err` (may be NULL) to JM_OK with an empty message. */
void jm_err_clear(jm_err_t *err);
/* Static name of a result code, e.g. "JM_ERR_INVALID". Never NULL. */
const char *jm_rc_name(jm_rc_t rc);
/* 1 if an operation that failed with `rc` should be retried after a back-off. */
int jm_rc_is_retriable(jm_rc_t rc);
/* Map a result code to the exit code main() should use. */
int jm_rc_to_exit(jm_rc_t rc);

/* Allocation that aborts on failure.  Free with free(). */
void *jm_malloc(size_t n);
void *jm_calloc(size_t nmemb, size_t size);
void *jm_realloc(void *p, size_t n);
char *jm_strdup(const char *s);
char *jm_strndup(const char *s, size_t n);
/* printf into a new string, caller frees. */
char *jm_asprintf(const char *fmt, ...) JM_PRINTF(1, 2);

/* Broken invariant: log and abort. */
#define JM_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            jm_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)
void jm_assert_fail(const char *cond, const char *file, int line) __attribute__((noreturn));

#define JM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
