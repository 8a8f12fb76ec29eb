/*
 * util.c — pure helpers of the consume loop: adaptive batch sizing, the deterministic id of a
 * dead letter, PostgreSQL array literals for unnest() parameters, and the "recently published"
 * set of the reaper.  No I/O, no clock (callers pass "now"), so all of it is unit-tested.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "consumer/consumer_int.h"

/* ---- batch sizing ------------------------------------------------------------------------ */

size_t jm_batch_next_size(size_t cur, size_t got, int retried, size_t min, size_t max)
{
    JM_ASSERT(min >= 1 && min <= max);
    if (retried)
        cur /= 2; /* contention: smaller transactions conflict less */
    else if (got >= cur)
        cur *= 2; /* the batch filled up: there is lag, amortise more per commit */
    if (cur < min)
        cur = min;
    if (cur > max)
        cur = max;
    return cur;
}

/* ---- dead-letter id ---------------------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void jm_dead_letter_uuid(const char *topic, int32_t partition, int64_t offset,
                         char out[JM_UUID_STR_LEN + 1])
{
    size_t tl = strlen(topic);
    size_t n = 1 + 8 + tl + 4 + 8;
    uint8_t *buf = jm_malloc(n), d[16];
    buf[0] = 'D'; /* tag: a dead letter's position */
    put_le(buf + 1, tl, 8);
    memcpy(buf + 9, topic, tl);
    put_le(buf + 9 + tl, (uint32_t)partition, 4);
    put_le(buf + 13 + tl, (uint64_t)offset, 8);
    XXH128_hash_t h = XXH3_128bits(buf, n);
    free(buf);
    for (int i = 0; i < 8; i++) {
        d[i] = (uint8_t)(h.high64 >> (56 - 8 * i));
        d[8 + i] = (uint8_t)(h.low64 >> (56 - 8 * i));
    }
    d[6] = (uint8_t)((d[6] & 0x0f) | 0x80); /* version 8: custom (RFC 9562) */
    d[8] = (uint8_t)((d[8] & 0x3f) | 0x80); /* variant 10 */
    snprintf(out, JM_UUID_STR_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", d[0], d[1],
             d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13], d[14],
             d[15]);
}

int jm_uuid_is_valid(const char *s, size_t len)
{
    if (len != JM_UUID_STR_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* ---- PostgreSQL array literals ----------------------------------------------------------- */

static void arr_reserve(jm_pgarr_t *a, size_t more)
{
    if (a->len + more + 2 <= a->cap)
        return;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + more + 2)
        cap *= 2;
    a->buf = jm_realloc(a->buf, cap);
    a->cap = cap;
}

/* Above this a literal's buffer is not kept for the next one: a single large batch would
 * otherwise pin its high-water mark (tens of MB of hex) for the life of the process. */
#define PGARR_KEEP_MAX (1024 * 1024)

void jm_pgarr_reset(jm_pgarr_t *a)
{
    if (a->cap > PGARR_KEEP_MAX)
        jm_pgarr_free(a);
    arr_reserve(a, 1);
    a->buf[0] = '{';
    a->len = 1;
    a->n = 0;
    a->buf[a->len] = '\0';
}

static void arr_sep(jm_pgarr_t *a)
{
    if (a->n++ > 0)
        a->buf[a->len++] = ',';
}

void jm_pgarr_add_int(jm_pgarr_t *a, int64_t v)
{
    arr_reserve(a, 24);
    arr_sep(a);
    a->len += (size_t)snprintf(a->buf + a->len, 24, "%lld", (long long)v);
}

void jm_pgarr_add_null(jm_pgarr_t *a)
{
    arr_reserve(a, 6);
    arr_sep(a);
    memcpy(a->buf + a->len, "NULL", 4);
    a->len += 4;
}

void jm_pgarr_add_text(jm_pgarr_t *a, const char *s, size_t n)
{
    if (!s) {
        jm_pgarr_add_null(a);
        return;
    }
    arr_reserve(a, 2 * n + 3);
    arr_sep(a);
    a->buf[a->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            a->buf[a->len++] = '\\';
        a->buf[a->len++] = s[i];
    }
    a->buf[a->len++] = '"';
}

void jm_pgarr_add_bytea(jm_pgarr_t *a, const void *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *b = p;
    arr_reserve(a, 2 * n + 6);
    arr_sep(a);
    /* "\\x..." : the array parser turns \\ into \, bytea's input reads \x + hex */
    memcpy(a->buf + a->len, "\"\\\\x", 4);
    a->len += 4;
    for (size_t i = 0; i < n; i++) {
        a->buf[a->len++] = hex[b[i] >> 4];
        a->buf[a->len++] = hex[b[i] & 15];
    }
    a->buf[a->len++] = '"';
}

const char *jm_pgarr_finish(jm_pgarr_t *a)
{
    arr_reserve(a, 1);
    a->buf[a->len++] = '}';
    a->buf[a->len] = '\0';
    return a->buf;
}

void jm_pgarr_free(jm_pgarr_t *a)
{
    free(a->buf);
    memset(a, 0, sizeof(*a));
}

/* ---- binary COPY ------------------------------------------------------------------------- */

static const char pgcopy_sig[] = "PGCOPY\n\377\r\n"; /* + its NUL: 11 bytes */
#define PGCOPY_CHUNK    (256 * 1024)
#define PG_EPOCH_UNIX_S 946684800LL /* 2000-01-01 00:00:00 UTC, PostgreSQL's timestamp epoch */

static void copy_reserve(jm_pgcopy_t *c, size_t more)
{
    if (c->len + more <= c->cap)
        return;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + more)
        cap *= 2;
    c->buf = jm_realloc(c->buf, cap);
    c->cap = cap;
}

static void copy_be(jm_pgcopy_t *c, uint64_t v, int bytes)
{
    copy_reserve(c, (size_t)bytes);
    for (int i = bytes - 1; i >= 0; i--)
        c->buf[c->len++] = (char)((v >> (8 * i)) & 0xff);
}

/* As jm_pgarr_reset: a large batch's buffer is not pinned for the life of the process. */
static void copy_trim(jm_pgcopy_t *c)
{
    if (c->cap > PGARR_KEEP_MAX)
        jm_pgcopy_free(c);
}

void jm_pgcopy_reset(jm_pgcopy_t *c)
{
    copy_trim(c);
    c->len = 0;
    c->rows = 0;
    copy_reserve(c, sizeof(pgcopy_sig));
    memcpy(c->buf, pgcopy_sig, sizeof(pgcopy_sig)); /* signature with its NUL */
    c->len = sizeof(pgcopy_sig);
    copy_be(c, 0, 4); /* flags */
    copy_be(c, 0, 4); /* header extension length */
}

void jm_pgcopy_row(jm_pgcopy_t *c, int nfields)
{
    copy_be(c, (uint64_t)nfields, 2);
    c->rows++;
}

void jm_pgcopy_null(jm_pgcopy_t *c)
{
    copy_be(c, 0xffffffffu, 4);
}

void jm_pgcopy_int4(jm_pgcopy_t *c, int32_t v)
{
    copy_be(c, 4, 4);
    copy_be(c, (uint32_t)v, 4);
}

void jm_pgcopy_int8(jm_pgcopy_t *c, int64_t v)
{
    copy_be(c, 8, 4);
    copy_be(c, (uint64_t)v, 8);
}

void jm_pgcopy_bytes(jm_pgcopy_t *c, const void *p, size_t n)
{
    JM_ASSERT(n < 0x7fffffffu);
    copy_be(c, n, 4);
    copy_reserve(c, n);
    if (n)
        memcpy(c->buf + c->len, p, n);
    c->len += n;
}

void jm_pgcopy_jsonb(jm_pgcopy_t *c, const char *s, size_t n)
{
    JM_ASSERT(n < 0x7ffffffeu);
    copy_be(c, n + 1, 4);
    copy_be(c, 1, 1); /* jsonb binary format version 1, then the JSON text */
    copy_reserve(c, n);
    if (n)
        memcpy(c->buf + c->len, s, n);
    c->len += n;
}

size_t jm_pgcopy_array_begin(jm_pgcopy_t *c, size_t n, uint32_t elem_oid)
{
    size_t mark = c->len;
    copy_be(c, 0, 4);         /* the field's length, set by jm_pgcopy_array_end */
    copy_be(c, n ? 1 : 0, 4); /* dimensions (an empty array has none) */
    copy_be(c, 0, 4);         /* flags: no NULL elements */
    copy_be(c, elem_oid, 4);
    if (n) {
        copy_be(c, n, 4); /* size of the dimension */
        copy_be(c, 1, 4); /* its lower bound */
    }
    return mark;
}

void jm_pgcopy_array_end(jm_pgcopy_t *c, size_t mark)
{
    size_t n = c->len - mark - 4;
    JM_ASSERT(n < 0x7fffffffu);
    for (int i = 0; i < 4; i++)
        c->buf[mark + (size_t)i] = (char)((n >> (8 * (3 - i))) & 0xff);
}

static int hexval(char ch)
{
    return ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
}

void jm_pgcopy_uuid(jm_pgcopy_t *c, const char *s)
{
    copy_be(c, 16, 4);
    copy_reserve(c, 16);
    for (int k = 0; k < 16; s++) {
        if (*s == '-')
            continue;
        c->buf[c->len++] = (char)(hexval(s[0]) << 4 | hexval(s[1]));
        s++;
        k++;
    }
}

void jm_pgcopy_ts_ms(jm_pgcopy_t *c, int64_t ms)
{
    jm_pgcopy_int8(c, (ms - PG_EPOCH_UNIX_S * 1000) * 1000); /* microseconds since 2000 */
}

static jm_rc_t copy_fail(PGconn *conn, PGresult *r, const char *what, jm_err_t *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    jm_rc_t rc = jm_pg_classify(r, conn);
    if (rc == JM_OK)
        rc = JM_ERR_INTERNAL;
    if (state && strcmp(state, "23505") == 0)
        rc = JM_ERR_RETRY;
    return jm_err_set(err, rc, "COPY %s: %s %s", what, state ? state : "",
                      r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
}

jm_rc_t jm_pgcopy_send(jm_pgcopy_t *c, PGconn *conn, const char *sql, jm_err_t *err)
{
    PGresult *r = PQexec(conn, sql);
    if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
        jm_rc_t rc = copy_fail(conn, r, "start", err);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    copy_be(c, 0xffff, 2); /* trailer: field count -1 */
    int ok = 1;
    for (size_t off = 0; ok && off < c->len; off += PGCOPY_CHUNK) {
        size_t n = c->len - off < PGCOPY_CHUNK ? c->len - off : PGCOPY_CHUNK;
        ok = PQputCopyData(conn, c->buf + off, (int)n) == 1;
    }
    c->len -= 2;
    /* on a send failure end the COPY with an error so that the connection is usable again */
    if (PQputCopyEnd(conn, ok ? NULL : "jobmon-fsm: send failed") != 1)
        ok = 0;
    jm_rc_t rc = JM_OK;
    while ((r = PQgetResult(conn)) != NULL) {
        if (rc == JM_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = copy_fail(conn, r, "end", err);
        else if (rc == JM_OK && strtoull(PQcmdTuples(r), NULL, 10) != c->rows)
            rc = jm_err_set(err, JM_ERR_INTERNAL, "COPY: %zu rows sent, %s copied", c->rows,
                            PQcmdTuples(r));
        PQclear(r);
    }
    if (rc == JM_OK && !ok)
        rc = copy_fail(conn, NULL, "send", err);
    copy_trim(c); /* now, not only at the next reset: the flush's transition_log and
                   * event_log COPYs are then never in memory together */
    return rc;
}

void jm_pgcopy_free(jm_pgcopy_t *c)
{
    free(c->buf);
    memset(c, 0, sizeof(*c));
}

/* ---- recently published claims ----------------------------------------------------------- */

struct jm_recent_s {
    struct recent_slot {
        int64_t key; /* 0 = empty */
        int64_t expires_ms;
    } * slots;
    size_t cap, used; /* used counts live + tombstoned slots */
};

static size_t recent_hash(int64_t key, size_t cap)
{
    return (size_t)(XXH3_64bits(&key, sizeof(key)) & (cap - 1));
}

jm_recent_t *jm_recent_new(void)
{
    jm_recent_t *r = jm_calloc(1, sizeof(*r));
    r->cap = 1024;
    r->slots = jm_calloc(r->cap, sizeof(*r->slots));
    return r;
}

void jm_recent_destroy(jm_recent_t *r)
{
    if (!r)
        return;
    free(r->slots);
    free(r);
}

static void recent_insert(jm_recent_t *r, int64_t key, int64_t expires_ms)
{
    size_t i = recent_hash(key, r->cap);
    while (r->slots[i].key != 0 && r->slots[i].key != key)
        i = (i + 1) & (r->cap - 1);
    if (r->slots[i].key == 0)
        r->used++;
    r->slots[i].key = key;
    r->slots[i].expires_ms = expires_ms;
}

/* Rebuild without expired entries; double the table if it stays more than half full. */
static void recent_rehash(jm_recent_t *r, int64_t now_ms)
{
    struct recent_slot *old = r->slots;
    size_t old_cap = r->cap, live = 0;
    for (size_t i = 0; i < old_cap; i++)
        live += old[i].key != 0 && old[i].expires_ms > now_ms;
    while (live * 2 >= r->cap)
        r->cap *= 2;
    r->slots = jm_calloc(r->cap, sizeof(*r->slots));
    r->used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key != 0 && old[i].expires_ms > now_ms)
            recent_insert(r, old[i].key, old[i].expires_ms);
    free(old);
}

int jm_recent_check_add(jm_recent_t *r, int64_t key, int64_t now_ms, int64_t ttl_ms)
{
    JM_ASSERT(key != 0);
    size_t i = recent_hash(key, r->cap);
    while (r->slots[i].key != 0) {
        if (r->slots[i].key == key) {
            if (r->slots[i].expires_ms > now_ms)
                return 1;
            r->slots[i].expires_ms = now_ms + ttl_ms;
            return 0;
        }
        i = (i + 1) & (r->cap - 1);
    }
    if ((r->used + 1) * 4 >= r->cap * 3)
        recent_rehash(r, now_ms);
    recent_insert(r, key, now_ms + ttl_ms);
    return 0;
}

size_t jm_recent_count(const jm_recent_t *r, int64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < r->cap; i++)
        n += r->slots[i].key != 0 && r->slots[i].expires_ms > now_ms;
    return n;
}

int jm_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int jm_cmp_idx_by_i64(const void *a, const void *b, void *ids)
{
    const int64_t *v = ids;
    return jm_cmp_i64(&v[*(const size_t *)a], &v[*(const size_t *)b]);
}

size_t jm_i64_sort_unique(int64_t *v, size_t n)
{
    size_t k = 0;
    if (n < 2) /* and qsort's base must not be NULL, even for 0 elements (UBSan) */
        return n;
    qsort(v, n, sizeof(*v), jm_cmp_i64);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || v[k - 1] != v[i])
            v[k++] = v[i];
    return k;
}
