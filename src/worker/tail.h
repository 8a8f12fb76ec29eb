/*
 * tail.h — the last N bytes of a stream, handed out as safe UTF-8 text.
 *
 * The worker keeps the last 10,000 bytes of the command's stdout and stderr for the
 * ti.done/ti.error events.  Bytes are stored raw in a ring; jm_tail_text() repairs them:
 * invalid sequences (and NUL, which PostgreSQL text refuses) become U+FFFD, a sequence cut by
 * the ring's start is dropped, and the result never exceeds the ring's capacity in bytes.
 * Pure: no I/O, no allocation outside jm_tail_text / jm_utf8_sanitize results.
 */
#ifndef JOBMON_WORKER_TAIL_H
#define JOBMON_WORKER_TAIL_H

#include <stddef.h>
#include <stdint.h>

#define JM_TAIL_MAX 10000

typedef struct jm_tail_s {
    unsigned char buf[JM_TAIL_MAX];
    size_t start;   /* index of the oldest byte */
    size_t len;     /* bytes held, <= JM_TAIL_MAX */
    uint64_t total; /* bytes ever appended */
} jm_tail_t;

void jm_tail_init(jm_tail_t *t);
void jm_tail_append(jm_tail_t *t, const void *data, size_t n);
/* The held bytes as valid UTF-8 of at most JM_TAIL_MAX bytes (the newest text is kept).
 * Returns a new NUL-terminated string, caller frees; *len (may be NULL) gets its length. */
char *jm_tail_text(const jm_tail_t *t, size_t *len);

/* Repair n bytes into valid UTF-8 without NUL: each maximal invalid subpart (and each NUL)
 * becomes U+FFFD.  With drop_leading, up to 3 leading continuation bytes (a sequence cut off
 * at the start) are dropped instead of replaced.  Returns a new string, caller frees. */
char *jm_utf8_sanitize(const unsigned char *s, size_t n, int drop_leading, size_t *out_len);

#endif
