/*
 * tail.c — ring buffer of the last JM_TAIL_MAX bytes of a stream, and UTF-8 repair.
 *
 * Does not read files or pipes; the worker feeds it whatever it read.  Validation follows the
 * Unicode "maximal subpart" rule (RFC 3629 ranges: no overlongs, no surrogates, <= U+10FFFF).
 */
#include <string.h>

#include "jobmon/common.h"
#include "worker/tail.h"

void jm_tail_init(jm_tail_t *t)
{
    t->start = 0;
    t->len = 0;
    t->total = 0;
}

void jm_tail_append(jm_tail_t *t, const void *data, size_t n)
{
    const unsigned char *p = data;
    t->total += n;
    if (n >= JM_TAIL_MAX) {
        memcpy(t->buf, p + n - JM_TAIL_MAX, JM_TAIL_MAX);
        t->start = 0;
        t->len = JM_TAIL_MAX;
        return;
    }
    size_t end = (t->start + t->len) % JM_TAIL_MAX;
    size_t first = JM_TAIL_MAX - end < n ? JM_TAIL_MAX - end : n;
    memcpy(t->buf + end, p, first);
    memcpy(t->buf, p + first, n - first);
    if (t->len + n > JM_TAIL_MAX) {
        size_t drop = t->len + n - JM_TAIL_MAX;
        t->start = (t->start + drop) % JM_TAIL_MAX;
        t->len = JM_TAIL_MAX;
    } else {
        t->len += n;
    }
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid; *consumed receives the
 * length of the maximal invalid subpart (>= 1) when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *consumed)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
        if (c == 0) {
            *consumed = 1;
            return 0;
        }
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *consumed = 1;
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
        if (i >= n || s[i] < min || s[i] > max) {
            *consumed = i;
            return 0;
        }
    }
    return need + 1;
}

char *jm_utf8_sanitize(const unsigned char *s, size_t n, int drop_leading, size_t *out_len)
{
    size_t i = 0;
    if (drop_leading)
        while (i < n && i < 3 && (s[i] & 0xC0) == 0x80)
            i++;
    char *out = jm_malloc((n - i) * 3 + 1);
    size_t o = 0;
    while (i < n) {
        size_t bad = 0, k = utf8_seq(s + i, n - i, &bad);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += bad;
        }
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

char *jm_tail_text(const jm_tail_t *t, size_t *len)
{
    unsigned char lin[JM_TAIL_MAX];
    size_t first = JM_TAIL_MAX - t->start < t->len ? JM_TAIL_MAX - t->start : t->len;
    memcpy(lin, t->buf + t->start, first);
    memcpy(lin + first, t->buf, t->len - first);
    size_t n = 0;
    char *s = jm_utf8_sanitize(lin, t->len, t->total > t->len, &n);
    if (n > JM_TAIL_MAX) {
        /* replacements grew the text: keep the newest JM_TAIL_MAX bytes, at a char boundary */
        size_t cut = n - JM_TAIL_MAX;
        while (cut < n && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut++;
        memmove(s, s + cut, n - cut + 1);
        n -= cut;
    }
    if (len)
        *len = n;
    return s;
}
