/*
 * consumer.c — jobmon-fsm's consume loop: one Kafka consumer in the group, one PostgreSQL
 * connection, one transaction per polled batch.
 *
 *   poll ≤ batch_size messages → keep those of owned partitions at/after next_offset → decode
 *   → BEGIN → look the ids up in event_log (dedup) → dead letters to the DLQ → handlers
 *   (apply.h) → event_log rows with their outcomes (one COPY) → advance consumer_offset (fenced
 *   by epoch) → flush DLQ → COMMIT
 *   → Redis cache + notifications → async offset commit to Kafka (lag monitoring only)
 *
 * Retriable failures (40001, 40P01, lost connection, DLQ not acknowledged) roll back and re-apply
 * the same in-memory batch after a jittered back-off; a fenced partition is dropped and the
 * consumer rejoins the group.  It does not know what events mean (apply_*.c do), and the only
 * clock it reads is for back-off and statistics.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <librdkafka/rdkafka.h>

#include "consumer/consumer_int.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"

#define SUB            "fsm"
#define POLL_FIRST_MS  100
#define DLQ_FLUSH_MS   30000
#define RETRY_BASE_MS  20
#define RETRY_CAP_MS   5000
#define BATCH_MIN      16
#define STATS_EVERY_MS 10000
#define WATERMARK_MS   5000

/* Polled messages: the batch in flight, or the next one while it is decoded ahead. */
typedef struct {
    jm_item_t *items;
    size_t n, cap;
    size_t bytes; /* payload bytes (bounded by o.batch_max_bytes) */
    size_t binds; /* bind chunks among the items (see ahead_poll) */
    int bare;     /* the valid items' events were freed after the handlers (see ahead_main) */
} batch_t;

/* A batch transaction outcome the retry loop acts on, besides jm_rc_t values. */
enum { TXN_REDO = 1 }; /* an item was turned into a dead letter: run the batch again now */

struct jm_fsm_consumer_s {
    jm_fsm_opts_t o;
    volatile int *stop;
    rd_kafka_t *rk;
    jm_pg_t *pg;
    jm_apply_t *ap;
    jm_producer_t *dlq;
    jm_evlog_t *el;
    jm_cache_t *cache;
    jm_owned_t *owned; /* partitions assigned to us, with epoch and next_offset */
    size_t n_owned, cap_owned;
    batch_t cur;   /* the batch in flight */
    batch_t ahead; /* the next one, polled and decoded (ahead_th) while cur is applied */
    batch_t spent; /* the last one applied, freed by ahead_th (decode ahead) */
    pthread_t ahead_th;
    int ahead_due;       /* c->ahead was polled; ahead_main has not run for it yet */
    int ahead_drop;      /* ahead_main frees c->cur's events first (its handlers are done) */
    int ahead_running;   /* ahead_th is decoding ahead and must be joined */
    unsigned rebalances; /* rebalance callbacks so far (ownership may have changed) */
    int trim_due;        /* a batch was applied since the heap was last returned to the OS */
    int64_t *next;       /* scratch: next_offset per owned partition */
    size_t batch_size;
    unsigned txn_count;
    int need_rejoin;
    jm_rc_t fatal; /* set by the rebalance callback when PostgreSQL failed for good */
    jm_err_t fatal_err;
    struct {
        uint64_t applied, ignored, rejected, dup, dead, batches, retries;
        uint64_t ahead;   /* batches decoded ahead (on the second thread) */
        int64_t ahead_ms; /* time spent waiting for the second thread to finish */
    } st;
    int64_t stats_at;
};

/* ---- PostgreSQL connection ---------------------------------------------------------------- */

/* Reconnect (and re-prepare the handlers) until it works or we are asked to stop. */
static jm_rc_t pg_recover(jm_fsm_consumer_t *c)
{
    jm_err_t err;
    for (unsigned attempt = 0; !*c->stop; attempt++) {
        jm_rc_t rc = jm_pg_reconnect(c->pg, jm_time_mono_ms() + 5000, &err);
        if (rc == JM_OK)
            rc = jm_apply_reset(c->ap, c->pg, &err);
        if (rc == JM_OK) {
            jm_log(JM_LOG_INFO, SUB, "%s: reconnected to PostgreSQL", c->o.name);
            return JM_OK;
        }
        jm_log(JM_LOG_WARN, SUB, "%s: PostgreSQL reconnect failed (%s): %s", c->o.name,
               jm_rc_name(rc), err.msg);
        if (!jm_rc_is_retriable(rc))
            return rc;
        jm_time_sleep_ms(jm_backoff_ms(attempt, 200, RETRY_CAP_MS), c->stop);
    }
    return JM_ERR_UNAVAILABLE;
}

static int pg_is_bad(jm_fsm_consumer_t *c)
{
    return PQstatus(jm_pg_conn(c->pg)) != CONNECTION_OK;
}

static void pg_rollback_quietly(jm_fsm_consumer_t *c)
{
    jm_err_t err;
    if (!pg_is_bad(c) && jm_pg_rollback(c->pg, &err) != JM_OK)
        jm_log(JM_LOG_DEBUG, SUB, "%s: rollback: %s", c->o.name, err.msg);
}

/* ---- partitions (rebalance) --------------------------------------------------------------- */

static jm_owned_t *owned_find(jm_fsm_consumer_t *c, int32_t partition)
{
    for (size_t i = 0; i < c->n_owned; i++)
        if (c->owned[i].partition == partition)
            return &c->owned[i];
    return NULL;
}

/* rd_kafka_assign() the owned partitions at their next_offset (NULL list when none). */
static void kafka_assign_owned(jm_fsm_consumer_t *c)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    if (c->n_owned > 0) {
        l = rd_kafka_topic_partition_list_new((int)c->n_owned);
        for (size_t i = 0; i < c->n_owned; i++)
            rd_kafka_topic_partition_list_add(l, c->o.topic, c->owned[i].partition)->offset =
                c->owned[i].next_offset;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, l);
    if (e)
        jm_log(JM_LOG_ERROR, SUB, "%s: rd_kafka_assign: %s", c->o.name, rd_kafka_err2str(e));
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
}

/* A partition whose stored next_offset is beyond its log's end: the topic was deleted and
 * created again, or the log lost its tail (unclean leader election).  Seeking there would make
 * every new event below that offset look applied already and be skipped, so the partition is
 * rewound to the start of its log instead (stored, fenced by the epoch like any advance):
 * events already applied are known by their id in event_log, the others are applied.
 * Returns what storing the rewind returned: a retriable failure is retried with the claim; a
 * conflict (a newer owner) is left to the first batch's advance, which then drops the
 * partition. */
static jm_rc_t rewind_past_end(jm_fsm_consumer_t *c, jm_owned_t *o, jm_err_t *err)
{
    int64_t lo, hi;
    if (o->next_offset == 0)
        return JM_OK;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(c->rk, c->o.topic, o->partition, &lo, &hi, WATERMARK_MS);
    if (e) {
        jm_log(JM_LOG_WARN, SUB, "%s: %s[%d]: cannot read the log's end offset (%s)", c->o.name,
               c->o.topic, o->partition, rd_kafka_err2str(e));
        return JM_OK;
    }
    if (hi >= o->next_offset)
        return JM_OK;
    jm_log(JM_LOG_ERROR, SUB,
           "%s: %s[%d]: applied up to offset %lld but the log ends at %lld (topic re-created or "
           "truncated): rewinding to its start, %lld (events already applied are skipped by id)",
           c->o.name, c->o.topic, o->partition, (long long)o->next_offset - 1, (long long)hi,
           (long long)lo);
    jm_rc_t rc = jm_offsets_advance(c->pg, c->o.topic, o, &lo, 1, err);
    if (rc == JM_OK)
        o->next_offset = lo;
    else if (rc == JM_ERR_CONFLICT)
        jm_log(JM_LOG_ERROR, SUB, "%s: %s[%d]: rewind not stored: %s", c->o.name, c->o.topic,
               o->partition, err->msg);
    return rc == JM_ERR_CONFLICT ? JM_OK : rc;
}

static jm_rc_t claim_owned(jm_fsm_consumer_t *c, jm_err_t *err)
{
    jm_rc_t rc =
        c->n_owned ? jm_offsets_claim(c->pg, c->o.topic, c->owned, c->n_owned, err) : JM_OK;
    for (size_t i = 0; i < c->n_owned && rc == JM_OK; i++)
        rc = rewind_past_end(c, &c->owned[i], err);
    return rc;
}

static void on_assign(jm_fsm_consumer_t *c, const rd_kafka_topic_partition_list_t *parts)
{
    jm_err_t err;
    jm_rc_t rc;
    c->n_owned = 0;
    for (int i = 0; i < parts->cnt; i++) {
        if (strcmp(parts->elems[i].topic, c->o.topic) != 0)
            continue;
        if (c->n_owned == c->cap_owned) {
            c->cap_owned = c->cap_owned ? c->cap_owned * 2 : 16;
            c->owned = jm_realloc(c->owned, c->cap_owned * sizeof(*c->owned));
            c->next = jm_realloc(c->next, c->cap_owned * sizeof(*c->next));
        }
        c->owned[c->n_owned++] = (jm_owned_t){.partition = parts->elems[i].partition};
    }
    for (unsigned attempt = 0;; attempt++) {
        rc = claim_owned(c, &err);
        if (rc == JM_OK || !jm_rc_is_retriable(rc) || *c->stop)
            break;
        jm_log(JM_LOG_WARN, SUB, "%s: claiming partitions failed, retrying: %s", c->o.name,
               err.msg);
        jm_time_sleep_ms(jm_backoff_ms(attempt, RETRY_BASE_MS, RETRY_CAP_MS), c->stop);
        if ((rc == JM_ERR_UNAVAILABLE || pg_is_bad(c)) && pg_recover(c) != JM_OK)
            continue;
    }
    if (rc != JM_OK) {
        if (!*c->stop) {
            c->fatal = rc;
            c->fatal_err = err;
            jm_log(JM_LOG_ERROR, SUB, "%s: cannot claim partitions: %s", c->o.name, err.msg);
        }
        c->n_owned = 0;
    }
    for (size_t i = 0; i < c->n_owned; i++)
        jm_log(JM_LOG_INFO, SUB, "%s: assigned %s[%d] epoch %lld at offset %lld", c->o.name,
               c->o.topic, c->owned[i].partition, (long long)c->owned[i].epoch,
               (long long)c->owned[i].next_offset);
    kafka_assign_owned(c);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    jm_fsm_consumer_t *c = opaque;
    (void)rk;
    c->rebalances++;
    /* The rows apply kept from our last transaction may be changed by the partitions' next
     * owner from now on (no transaction is open here: callbacks run inside poll, also the
     * decode-ahead poll, which runs before a batch's transaction). */
    jm_apply_rollback(c->ap);
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(c, parts);
        return;
    }
    /* Revoke: no transaction is open here (callbacks run inside poll, between batches). */
    jm_log(JM_LOG_INFO, SUB, "%s: %d partition(s) revoked", c->o.name, parts->cnt);
    c->n_owned = 0;
    kafka_assign_owned(c);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    jm_log_level_t l = level <= 3 ? JM_LOG_ERROR : level == 4 ? JM_LOG_WARN : JM_LOG_DEBUG;
    jm_log(l, "kafka", "%s %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

/* ---- the batch -------------------------------------------------------------------------- */

static void item_free(jm_item_t *it)
{
    free(it->reason);
    jm_event_destroy(it->ev);
    rd_kafka_message_destroy(it->msg);
    memset(it, 0, sizeof(*it));
}

static void batch_clear(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        item_free(&b->items[i]);
    b->n = 0;
    b->bytes = 0;
    b->binds = 0;
    b->bare = 0;
    /* One large batch must not pin its high-water mark: give a big array back. */
    if (b->cap > 4096) {
        free(b->items);
        b->items = NULL;
        b->cap = 0;
    }
}

#define REASON_MAX 512 /* bytes of an item's reason, with its NUL */

static char *reason_buf(jm_item_t *it)
{
    if (!it->reason)
        it->reason = jm_malloc(REASON_MAX);
    return it->reason;
}

/* The handler's outcome, and its reason (as the handler wrote it) unless applied. */
static void keep_outcome(jm_item_t *it, const jm_apply_result_t *res)
{
    it->outcome = res->outcome;
    if (res->outcome != JM_OUTCOME_APPLIED)
        snprintf(reason_buf(it), REASON_MAX, "%s", res->reason);
}

/* Printable ASCII only: reasons go to a Kafka header, a log line and a text column. */
static void set_reason(jm_item_t *it, const char *fmt, const char *a, const char *b)
{
    if (snprintf(reason_buf(it), REASON_MAX, fmt, a, b) >= REASON_MAX)
        memcpy(it->reason + REASON_MAX - 4, "...", 4); /* truncated */
    for (char *p = it->reason; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
}

static int key_matches(const jm_item_t *it)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%lld", (long long)it->ev->workflow_id);
    return it->key && it->key_len == (size_t)n && memcmp(it->key, buf, (size_t)n) == 0;
}

/* Touches only *it (and reads topic): the decode-ahead thread runs it on the next batch. */
static void item_decode(const char *topic, jm_item_t *it)
{
    jm_err_t err;
    jm_event_error_t kind = JM_EVE_NONE;
    if (it->raw_len == 0) {
        set_reason(it, "%s%s", "empty message", "");
    } else if (jm_event_decode_ex(it->raw, it->raw_len, &it->ev, &kind, &err) != JM_OK) {
        set_reason(it, "%s: %s", jm_event_error_name(kind), err.msg);
    } else if (!key_matches(it)) {
        set_reason(it, "%s%s", "message key is not the event's workflow_id", "");
    } else {
        memcpy(it->id, it->ev->id, sizeof(it->id));
        it->workflow_id = it->ev->workflow_id;
        it->ts_ms = it->ev->ts_ms;
        snprintf(it->type, sizeof(it->type), "%s", jm_event_type_name(it->ev->type));
        return;
    }
    it->dead = 1;
    jm_event_destroy(it->ev);
    it->ev = NULL;
    jm_evlog_inspect_dead(it, topic);
}

static int is_bind_chunk(const void *raw, size_t len)
{
    static const char tag[] = "\"type\":\"workflow.bind_tasks\"";
    return raw && memmem(raw, len < JM_FSM_TYPE_PEEK ? len : JM_FSM_TYPE_PEEK, tag,
                         sizeof(tag) - 1) != NULL;
}

/* Take a polled message into batch b (filtering happens once polling is over). */
static void batch_take(jm_fsm_consumer_t *c, batch_t *b, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            jm_log(JM_LOG_WARN, SUB, "%s: consume: %s", c->o.name, rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return;
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->items = jm_realloc(b->items, b->cap * sizeof(*b->items));
    }
    jm_item_t *it = &b->items[b->n++];
    memset(it, 0, sizeof(*it));
    it->msg = m;
    it->partition = m->partition;
    it->offset = m->offset;
    it->raw = m->payload;
    it->raw_len = m->payload ? m->len : 0;
    it->key = m->key;
    it->key_len = m->key_len;
    size_t bytes = it->raw_len + it->key_len;
    int bind = is_bind_chunk(it->raw, it->raw_len);
    b->bytes += bind ? 2 * bytes : bytes;
    b->binds += (size_t)bind;
}

/* 1 when batch b may take no more messages: bounded by count and by bytes (a decoded event
 * takes several times its size — jansson tree, hex in event_log's array, libpq's send buffer —
 * and bind chunks are large, so a count-only batch of them needed hundreds of MB). */
static int batch_full(const jm_fsm_consumer_t *c, const batch_t *b)
{
    return b->n >= c->batch_size || b->bytes >= c->o.batch_max_bytes || *c->stop;
}

/* Keep, per partition we own now, the messages at/after next_offset in strictly increasing
 * offset order: a rebalance inside poll may have taken partitions away, or restarted a fetch
 * (the same offsets delivered twice).  A gap is allowed (compaction, control records) but
 * logged.  Then decode what is kept, unless `decode` is 0 (decoded already). */
static void batch_filter(jm_fsm_consumer_t *c, int decode)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n_owned; i++)
        c->next[i] = c->owned[i].next_offset;
    for (size_t i = 0; i < c->cur.n; i++) {
        jm_item_t *it = &c->cur.items[i];
        const jm_owned_t *o = owned_find(c, it->partition);
        rd_kafka_message_t *m = it->msg;
        if (!o || strcmp(rd_kafka_topic_name(m->rkt), c->o.topic) != 0 ||
            it->offset < c->next[o - c->owned]) {
            item_free(it);
            continue;
        }
        if (it->offset > c->next[o - c->owned])
            jm_log(JM_LOG_WARN, SUB, "%s: %s[%d]: offsets %lld..%lld absent from the log",
                   c->o.name, c->o.topic, it->partition, (long long)c->next[o - c->owned],
                   (long long)it->offset - 1);
        c->next[o - c->owned] = it->offset + 1;
        c->cur.items[k++] = *it;
        if (decode)
            item_decode(c->o.topic, &c->cur.items[k - 1]);
    }
    c->cur.n = k;
}

static void batch_poll(jm_fsm_consumer_t *c)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, POLL_FIRST_MS);
    /* A trickle of events (a run in progress: each commit queues work that comes back as a few
     * events) would otherwise make one transaction per event or two; lingering a few ms after
     * the first message lets the batch gather what is in flight, and the fixed cost of a
     * transaction (dedup read, COPY, flush, offsets, COMMIT, cache) is shared. */
    int64_t until = jm_time_mono_ms() + c->o.batch_linger_ms;
    while (m) {
        batch_take(c, &c->cur, m);
        if (batch_full(c, &c->cur))
            break;
        int64_t left = until - jm_time_mono_ms();
        m = rd_kafka_consumer_poll(c->rk, left > 0 ? (int)left : 0);
    }
    batch_filter(c, 1);
}

/* ---- decode ahead ----------------------------------------------------------------------------
 * While batch N's transaction writes (this thread mostly waits for PostgreSQL), a second thread
 * decodes batch N+1 — the messages already fetched — on the other core: decoding (jansson) is
 * most of the loop's own CPU.  Only decoding moves: polling (and so the rebalance callbacks),
 * filtering by ownership and offset, and applying stay on this thread and in this order, and
 * decoding a message depends on nothing else, so what is applied is what it was without.
 * The thread starts once batch N's handlers are done with its events (ahead_kick): it frees
 * them first, so one batch of decoded events is in memory at a time, not two (the trees are
 * ~5x the messages' bytes).  Should batch N's transaction run again, batch_decoded decodes its
 * events anew from the messages, which are kept until the batch is retired.  A batch with bind
 * chunks is the exception: the thread starts at once and leaves its events alone (ahead_poll). */

/* Free the events of b's valid items (their messages stay: batch_decoded rebuilds them). */
static void batch_drop_events(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        jm_event_destroy(b->items[i].ev);
        b->items[i].ev = NULL;
    }
    b->bare = b->n > 0;
}

static void *ahead_main(void *arg)
{
    jm_fsm_consumer_t *c = arg;
    batch_clear(&c->spent); /* the trees were allocated here (this thread's malloc arena) */
    if (c->ahead_drop)
        batch_drop_events(&c->cur);
#if defined(__GLIBC__)
    malloc_trim(0); /* give back what the last batch's trees held before decoding the next */
#endif
    for (size_t i = 0; i < c->ahead.n; i++)
        item_decode(c->o.topic, &c->ahead.items[i]);
    return NULL;
}

static void ahead_join(jm_fsm_consumer_t *c)
{
    if (!c->ahead_running)
        return;
    int64_t t0 = jm_time_mono_ms();
    JM_ASSERT(pthread_join(c->ahead_th, NULL) == 0);
    c->st.ahead_ms += jm_time_mono_ms() - t0;
    c->ahead_running = 0;
}

/* Decode c->ahead on the second thread (here if there is none); drop_cur: c->cur's handlers
 * are done with its events, which are freed first. */
static void ahead_kick(jm_fsm_consumer_t *c, int drop_cur)
{
    if (!c->ahead_due)
        return;
    c->ahead_due = 0;
    c->ahead_drop = drop_cur;
    if (pthread_create(&c->ahead_th, NULL, ahead_main, c) == 0)
        c->ahead_running = 1;
    else
        ahead_main(c);
}

/* Before applying c->cur: take what is already fetched (no wait, so a trickle gains no latency)
 * into c->ahead, to be decoded by ahead_kick.  A rebalance served by this poll may have changed
 * ownership: c->cur is then filtered again (it was filtered under the old one). */
static void ahead_poll(jm_fsm_consumer_t *c)
{
    unsigned gen = c->rebalances;
    rd_kafka_message_t *m;
    while (!batch_full(c, &c->ahead) && (m = rd_kafka_consumer_poll(c->rk, 0)) != NULL)
        batch_take(c, &c->ahead, m);
    if (gen != c->rebalances)
        batch_filter(c, 0);
    if (c->ahead.n == 0) {
        batch_clear(&c->spent);
        return;
    }
    c->st.ahead++;
    c->ahead_due = 1;
    /* A bind's handlers stream its tasks to PostgreSQL (COPY) and its flush is short, so decoding
     * the next chunks after them would add their decoding to every transaction: decoded now,
     * while c->cur's own events are still in use (bind chunks count twice against the bytes). */
    if (c->cur.binds > 0)
        ahead_kick(c, 0);
}

/* c->cur's events, decoded again if ahead_main freed them (its transaction runs again). */
static void batch_decoded(jm_fsm_consumer_t *c)
{
    if (c->ahead_drop)
        ahead_join(c); /* it may be freeing them (kicked early, it leaves them alone) */
    if (!c->cur.bare)
        return;
    for (size_t i = 0; i < c->cur.n; i++)
        if (!c->cur.items[i].dead)
            item_decode(c->o.topic, &c->cur.items[i]);
    c->cur.bare = 0;
    jm_log(JM_LOG_INFO, SUB, "%s: batch of %zu runs again: its events decoded again", c->o.name,
           c->cur.n);
}

/* The applied batch: freed now, or with decode ahead handed to the next ahead_main (which is
 * joined first: it frees c->spent). */
static void batch_retire(jm_fsm_consumer_t *c)
{
    ahead_join(c);
    if (!c->o.decode_ahead || c->spent.n > 0) {
        batch_clear(&c->cur);
        return;
    }
    batch_t t = c->spent;
    c->spent = c->cur;
    c->cur = t;
}

/* After applying c->cur: the decoded next batch becomes c->cur, filtered by the offsets just
 * committed.  Returns 0 when there is none (poll then).  After a fenced partition the next batch
 * is dropped instead: the partitions are re-fetched from their committed offsets on rejoin. */
static int ahead_adopt(jm_fsm_consumer_t *c)
{
    ahead_join(c);
    if (c->ahead.n == 0)
        return 0;
    if (c->need_rejoin) {
        c->ahead_due = 0;
        batch_clear(&c->ahead);
        return 0;
    }
    if (c->ahead_due) { /* polled, but cur's transaction ended before its handlers were done */
        c->ahead_due = 0;
        c->ahead_drop = 0;
        ahead_main(c);
    }
    batch_t t = c->cur;
    c->cur = c->ahead;
    c->ahead = t;
    batch_filter(c, 0);
    return 1;
}

/* Remove the items of fenced partitions, forget those partitions, and ask to rejoin. */
static void drop_fenced(jm_fsm_consumer_t *c)
{
    ahead_join(c); /* it may be freeing c->cur's events */
    size_t k = 0;
    for (size_t i = 0; i < c->cur.n; i++) {
        const jm_owned_t *o = owned_find(c, c->cur.items[i].partition);
        if (o && !o->fenced)
            c->cur.items[k++] = c->cur.items[i];
        else
            item_free(&c->cur.items[i]);
    }
    c->cur.n = k;
    k = 0;
    for (size_t i = 0; i < c->n_owned; i++) {
        if (c->owned[i].fenced)
            jm_log(JM_LOG_ERROR, SUB,
                   "%s: ZOMBIE: %s[%d] was claimed by a newer owner (our epoch %lld); batch "
                   "rolled back, partition dropped, rejoining the group",
                   c->o.name, c->o.topic, c->owned[i].partition, (long long)c->owned[i].epoch);
        else
            c->owned[k++] = c->owned[i];
    }
    c->n_owned = k;
    kafka_assign_owned(c);
    c->need_rejoin = 1;
}

/* ---- one transaction ---------------------------------------------------------------------- */

static jm_rc_t txn_inject(jm_fsm_consumer_t *c, jm_err_t *err)
{
    if (c->o.inject_40001 == 0 || c->txn_count != c->o.inject_40001)
        return JM_OK;
    jm_log(JM_LOG_WARN, SUB, "%s: injecting a serialization failure into batch transaction %u",
           c->o.name, c->txn_count);
    return jm_pg_exec(c->pg,
                      "DO $$BEGIN RAISE EXCEPTION 'jobmon-fsm: injected serialization failure'"
                      " USING ERRCODE = '40001'; END$$",
                      0, NULL, NULL, err);
}

static jm_rc_t txn_dead_letters(jm_fsm_consumer_t *c, size_t *n_dead, jm_err_t *err)
{
    *n_dead = 0;
    for (size_t i = 0; i < c->cur.n; i++) {
        const jm_item_t *it = &c->cur.items[i];
        if (!it->is_new || !it->dead)
            continue;
        jm_rc_t rc = jm_dlq_send(c->dlq, c->o.dlq_topic, c->o.topic, it, err);
        if (rc != JM_OK)
            return rc == JM_ERR_INVALID ? JM_ERR_INTERNAL : JM_ERR_RETRY;
        (*n_dead)++;
    }
    return JM_OK;
}

static void log_outcome(jm_fsm_consumer_t *c, const jm_item_t *it)
{
    if (it->outcome == JM_OUTCOME_APPLIED)
        return;
    jm_log(it->outcome == JM_OUTCOME_REJECTED ? JM_LOG_WARN : JM_LOG_INFO, SUB,
           "%s: event %s (%s, workflow %lld, %s[%d]@%lld) %s: %s", c->o.name, it->id, it->type,
           (long long)it->workflow_id, c->o.topic, it->partition, (long long)it->offset,
           jm_outcome_name(it->outcome), it->reason);
}

static jm_rc_t txn_apply(jm_fsm_consumer_t *c, jm_err_t *err)
{
    for (size_t i = 0; i < c->cur.n; i++) /* lets the handlers read their rows in one go */
        if (c->cur.items[i].is_new && !c->cur.items[i].dead)
            jm_apply_hint(c->ap, c->cur.items[i].ev);
    for (size_t i = 0; i < c->cur.n; i++) {
        jm_item_t *it = &c->cur.items[i];
        if (!it->is_new || it->dead)
            continue;
        jm_apply_result_t res;
        jm_rc_t rc = jm_apply_event(c->ap, it->ev, it->offset, &res, err);
        if (rc == JM_OK)
            keep_outcome(it, &res);
        if (rc == JM_ERR_INVALID || rc == JM_ERR_CONFLICT) {
            /* the handler's statement failed on this event's data: dead-letter it, redo */
            jm_log(JM_LOG_ERROR, SUB, "%s: event %s (%s) failed to apply (%s): %s", c->o.name,
                   it->id, it->type, jm_rc_name(rc), err->msg);
            set_reason(it, "apply failed: %s: %s", jm_rc_name(rc), err->msg);
            it->dead = 1;
            return (jm_rc_t)TXN_REDO;
        }
        if (rc != JM_OK)
            return rc;
    }
    return JM_OK;
}

/* Next offsets of the partitions present in the batch, in c->owned order (0 = absent). */
static size_t txn_next_offsets(jm_fsm_consumer_t *c, jm_owned_t *parts)
{
    size_t n = 0;
    for (size_t p = 0; p < c->n_owned; p++) {
        int64_t last = -1;
        for (size_t i = 0; i < c->cur.n; i++)
            if (c->cur.items[i].partition == c->owned[p].partition && c->cur.items[i].offset > last)
                last = c->cur.items[i].offset;
        if (last < 0)
            continue;
        parts[n] = c->owned[p];
        c->next[n++] = last + 1;
    }
    return n;
}

static jm_rc_t txn_run(jm_fsm_consumer_t *c, jm_owned_t *parts, size_t *n_parts, jm_err_t *err)
{
    size_t n_dead = 0;
    *n_parts = 0;
    batch_decoded(c);
    jm_rc_t rc = jm_pg_begin(c->pg, err);
    if (rc == JM_OK)
        rc = jm_evlog_claim(c->el, c->pg, c->o.topic, c->cur.items, c->cur.n, err);
    if (rc == JM_OK)
        rc = txn_dead_letters(c, &n_dead, err);
    if (rc == JM_OK)
        rc = txn_apply(c, err);
    if (rc == JM_OK)
        ahead_kick(c, 1); /* the handlers are done with the events */
    if (rc == JM_OK)
        rc = jm_apply_flush(c->ap, err); /* the handlers' pending per-transaction writes */
    if (rc == JM_OK)
        rc = txn_inject(c, err); /* late, so that the batch's events were freed (decode ahead) */
    if (rc == JM_OK)
        rc = jm_evlog_record(c->el, c->pg, c->o.topic, c->cur.items, c->cur.n, err);
    if (rc == JM_OK) {
        *n_parts = txn_next_offsets(c, parts);
        rc = jm_offsets_advance(c->pg, c->o.topic, parts, c->next, *n_parts, err);
    }
    if (rc == JM_OK && n_dead > 0 && jm_producer_flush(c->dlq, DLQ_FLUSH_MS, err) != JM_OK)
        rc = JM_ERR_RETRY; /* not acknowledged: the offsets must not pass them */
    if (rc == JM_OK)
        rc = jm_pg_commit(c->pg, err);
    return rc;
}

/* ---- after commit --------------------------------------------------------------------------- */

static void after_commit(jm_fsm_consumer_t *c, const jm_owned_t *parts, size_t n_parts)
{
    jm_err_t err;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n_parts);
    for (size_t i = 0; i < n_parts; i++) {
        jm_owned_t *o = owned_find(c, parts[i].partition);
        o->next_offset = c->next[i];
        rd_kafka_topic_partition_list_add(l, c->o.topic, o->partition)->offset = o->next_offset;
    }
    if (n_parts > 0)
        rd_kafka_commit(c->rk, l, 1); /* async, for lag monitoring only */
    rd_kafka_topic_partition_list_destroy(l);
    for (size_t i = 0; i < c->cur.n; i++) {
        const jm_item_t *it = &c->cur.items[i];
        if (!it->is_new) {
            c->st.dup++;
            jm_log(JM_LOG_DEBUG, SUB, "%s: event %s seen before, skipped", c->o.name, it->id);
        } else if (it->dead) {
            c->st.dead++;
            jm_log(JM_LOG_WARN, SUB, "%s: event %s (%s[%d]@%lld) dead-lettered: %s", c->o.name,
                   it->id, c->o.topic, it->partition, (long long)it->offset, it->reason);
        } else {
            c->st.applied += it->outcome == JM_OUTCOME_APPLIED;
            c->st.ignored += it->outcome == JM_OUTCOME_IGNORED;
            c->st.rejected += it->outcome == JM_OUTCOME_REJECTED;
            log_outcome(c, it);
        }
    }
    const int64_t *wfs, *runs;
    size_t n_wf = jm_apply_touched(c->ap, &wfs), n_runs = jm_apply_touched_runs(c->ap, &runs);
    if ((n_wf || n_runs || jm_cache_dirty(c->cache)) &&
        jm_cache_update(c->cache, c->pg, wfs, n_wf, runs, n_runs, &err) != JM_OK)
        jm_log(JM_LOG_WARN, SUB, "%s: cache refresh skipped: %s", c->o.name, err.msg);
    jm_apply_clear_touched(c->ap);
    c->st.batches++;
}

/* ---- the retry loop ------------------------------------------------------------------------ */

/* Copy the fenced flags of a failed advance to the owned partitions; 1 if any is fenced. */
static int any_fenced(jm_fsm_consumer_t *c, const jm_owned_t *parts, size_t n_parts)
{
    int any = 0;
    for (size_t i = 0; i < n_parts; i++) {
        owned_find(c, parts[i].partition)->fenced = parts[i].fenced;
        any |= parts[i].fenced;
    }
    return any;
}

static jm_rc_t batch_apply(jm_fsm_consumer_t *c, jm_err_t *err)
{
    jm_owned_t *parts = jm_malloc((c->n_owned ? c->n_owned : 1) * sizeof(*parts));
    size_t n_parts = 0;
    int retried = 0;
    jm_rc_t rc = JM_OK;
    for (unsigned attempt = 0; c->cur.n > 0; attempt++) {
        jm_apply_clear_touched(c->ap);
        c->txn_count++;
        int64_t t0 = jm_time_mono_ms();
        rc = txn_run(c, parts, &n_parts, err);
        if (rc == JM_OK) {
            int64_t t1 = jm_time_mono_ms();
            after_commit(c, parts, n_parts);
            jm_log(JM_LOG_DEBUG, SUB, "%s: batch of %zu: transaction %lld ms, after commit %lld ms",
                   c->o.name, c->cur.n, (long long)(t1 - t0), (long long)(jm_time_mono_ms() - t1));
            break;
        }
        pg_rollback_quietly(c);
        jm_apply_rollback(c->ap);
        if (rc == (jm_rc_t)TXN_REDO) {
            rc = JM_OK;
            continue;
        }
        if (rc == JM_ERR_CONFLICT && any_fenced(c, parts, n_parts)) {
            drop_fenced(c);
            rc = JM_OK;
            continue;
        }
        if (!jm_rc_is_retriable(rc)) {
            jm_log(JM_LOG_ERROR, SUB, "%s: batch of %zu failed (%s): %s", c->o.name, c->cur.n,
                   jm_rc_name(rc), err->msg);
            break;
        }
        retried = 1;
        c->st.retries++;
        jm_log(JM_LOG_WARN, SUB, "%s: batch of %zu rolled back (%s: %s), retry %u", c->o.name,
               c->cur.n, jm_rc_name(rc), err->msg, attempt + 1);
        jm_time_sleep_ms(jm_backoff_ms(attempt, RETRY_BASE_MS, RETRY_CAP_MS), c->stop);
        if (*c->stop) {
            jm_log(JM_LOG_INFO, SUB, "%s: stopping: batch rolled back, not applied", c->o.name);
            rc = JM_OK;
            break;
        }
        if ((rc == JM_ERR_UNAVAILABLE || pg_is_bad(c)) && pg_recover(c) != JM_OK && *c->stop)
            break;
        rc = JM_OK;
    }
    size_t got = c->cur.n;
    batch_retire(c);
    c->batch_size =
        jm_batch_next_size(c->batch_size, got, retried,
                           BATCH_MIN < c->o.batch_max ? BATCH_MIN : c->o.batch_max, c->o.batch_max);
    free(parts);
    return rc;
}

static void stats_log(jm_fsm_consumer_t *c, int now_anyway)
{
    int64_t now = jm_time_mono_ms();
    if (now - c->stats_at < STATS_EVERY_MS && !now_anyway)
        return;
    c->stats_at = now;
    jm_log(JM_LOG_INFO, SUB,
           "%s: %zu partition(s); applied %llu ignored %llu rejected %llu duplicate %llu "
           "dead %llu; %llu batches (%llu decoded ahead, %lld ms waited for), %llu retries, "
           "batch size %zu",
           c->o.name, c->n_owned, (unsigned long long)c->st.applied,
           (unsigned long long)c->st.ignored, (unsigned long long)c->st.rejected,
           (unsigned long long)c->st.dup, (unsigned long long)c->st.dead,
           (unsigned long long)c->st.batches, (unsigned long long)c->st.ahead,
           (long long)c->st.ahead_ms, (unsigned long long)c->st.retries, c->batch_size);
}

/* Nothing to apply: let the cache reconnect / rebuild meanwhile, and hand the memory freed by
 * the last batches back to the OS (glibc keeps freed chunks of each thread's arena resident;
 * the decoded events of a batch are many small allocations that fragment it). */
static void consumer_idle(jm_fsm_consumer_t *c)
{
    jm_err_t err;
    if (jm_cache_dirty(c->cache) &&
        jm_cache_update(c->cache, c->pg, NULL, 0, NULL, 0, &err) != JM_OK)
        jm_log(JM_LOG_WARN, SUB, "%s: cache rebuild: %s", c->o.name, err.msg);
    if (c->trim_due) {
        c->trim_due = 0;
#if defined(__GLIBC__)
        malloc_trim(0);
#endif
    }
}

static void rejoin(jm_fsm_consumer_t *c)
{
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, c->o.topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_unsubscribe(c->rk);
    if (!e)
        e = rd_kafka_subscribe(c->rk, t);
    if (e)
        jm_log(JM_LOG_ERROR, SUB, "%s: rejoin: %s", c->o.name, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(t);
    c->need_rejoin = 0;
}

jm_rc_t jm_fsm_consumer_run(jm_fsm_consumer_t *c, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    while (!*c->stop && rc == JM_OK) {
        if (!ahead_adopt(c))
            batch_poll(c);
        if (c->fatal != JM_OK || *c->stop) /* fatal: PostgreSQL failed in a rebalance */
            break;
        if (c->cur.n == 0)
            consumer_idle(c);
        else
            c->trim_due = 1;
        if (c->cur.n > 0 && c->o.decode_ahead)
            ahead_poll(c);
        if (c->fatal != JM_OK) /* the same, in ahead_poll's poll */
            break;
        rc = batch_apply(c, err);
        if (c->need_rejoin)
            rejoin(c);
        stats_log(c, 0);
    }
    stats_log(c, 1);
    if (rc == JM_OK && c->fatal != JM_OK) {
        *err = c->fatal_err;
        rc = c->fatal;
    }
    ahead_join(c);
    batch_clear(&c->spent);
    batch_clear(&c->ahead);
    batch_clear(&c->cur);
    return rc;
}

/* ---- construction ---------------------------------------------------------------------------- */

static rd_kafka_t *kafka_new(jm_fsm_consumer_t *c, jm_err_t *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The queued.* and fetch.* values bound librdkafka's prefetch (its defaults: 64 MB queued,
     * 100k messages per partition, 50 MB per fetch response); the batch in flight is bounded
     * by fsm.batch_max_kbytes.  kafka.properties overrides any of them. */
    const char *defaults[] = {"bootstrap.servers",
                              c->o.brokers,
                              "group.id",
                              c->o.group_id,
                              "client.id",
                              c->o.name,
                              "enable.auto.commit",
                              "false",
                              "enable.auto.offset.store",
                              "false",
                              "auto.offset.reset",
                              "earliest",
                              "partition.assignment.strategy",
                              "range",
                              "session.timeout.ms",
                              "10000",
                              "heartbeat.interval.ms",
                              "1000",
                              "fetch.wait.max.ms",
                              "50",
                              "queued.max.messages.kbytes",
                              "16384",
                              "queued.min.messages",
                              "10000",
                              "fetch.max.bytes",
                              "2097152",
                              "max.partition.fetch.bytes",
                              "1048576",
                              NULL};
    for (int pass = 0; pass < 2; pass++) {
        const char *const *kv = pass == 0 ? defaults : c->o.kafka_props;
        for (; kv && kv[0] && kv[1]; kv += 2) {
            if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(conf);
                jm_err_set(err, JM_ERR_INVALID, "kafka property %s: %s", kv[0], errstr);
                return NULL;
            }
        }
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it only on success */
        jm_err_set(err, JM_ERR_INVALID, "rd_kafka_new: %s", errstr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Wait until the broker answers a metadata request for our topic (start-up check). */
static jm_rc_t kafka_wait(jm_fsm_consumer_t *c, jm_err_t *err)
{
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TRANSPORT;
    for (unsigned attempt = 0; !*c->stop; attempt++) {
        const struct rd_kafka_metadata *md = NULL;
        e = rd_kafka_metadata(c->rk, 0, NULL, &md, 2000);
        if (md)
            rd_kafka_metadata_destroy(md);
        if (!e)
            return JM_OK;
        if (jm_time_mono_ms() >= c->o.start_deadline_ms)
            break;
        jm_time_sleep_ms(jm_backoff_ms(attempt, 200, 2000), c->stop);
    }
    return jm_err_set(err, JM_ERR_UNAVAILABLE, "Kafka %s unreachable: %s", c->o.brokers,
                      rd_kafka_err2str(e));
}

static jm_rc_t kafka_subscribe(jm_fsm_consumer_t *c, jm_err_t *err)
{
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, c->o.topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    if (e)
        return jm_err_set(err, JM_ERR_UNAVAILABLE, "subscribe %s: %s", c->o.topic,
                          rd_kafka_err2str(e));
    return JM_OK;
}

jm_fsm_consumer_t *jm_fsm_consumer_new(const jm_fsm_opts_t *o, volatile int *stop, jm_err_t *err)
{
    jm_fsm_consumer_t *c = jm_calloc(1, sizeof(*c));
    c->o = *o;
    if (c->o.batch_max_bytes == 0)
        c->o.batch_max_bytes = JM_FSM_BATCH_BYTES_DEFAULT;
    c->stop = stop;
    c->batch_size = o->batch_max < 256 ? o->batch_max : 256;
    c->stats_at = jm_time_mono_ms();
    c->el = jm_evlog_new();
    c->pg = jm_pg_connect(o->conninfo, o->start_deadline_ms, err);
    if (!c->pg)
        goto fail;
    c->ap = jm_apply_new(c->pg, err);
    if (!c->ap)
        goto fail;
    c->dlq = jm_producer_new(o->brokers, o->kafka_props, err);
    if (!c->dlq)
        goto fail;
    c->rk = kafka_new(c, err);
    if (!c->rk || kafka_wait(c, err) != JM_OK || kafka_subscribe(c, err) != JM_OK)
        goto fail;
    c->cache = jm_cache_new(o->redis_host, o->redis_port);
    return c;
fail:
    jm_fsm_consumer_destroy(c);
    return NULL;
}

void jm_fsm_consumer_destroy(jm_fsm_consumer_t *c)
{
    jm_err_t err;
    if (!c)
        return;
    ahead_join(c);
    batch_clear(&c->spent);
    batch_clear(&c->ahead);
    batch_clear(&c->cur);
    if (c->rk) {
        rd_kafka_resp_err_t e = rd_kafka_consumer_close(c->rk); /* revokes: leaves the group */
        if (e)
            jm_log(JM_LOG_WARN, SUB, "%s: consumer close: %s", c->o.name, rd_kafka_err2str(e));
        rd_kafka_destroy(c->rk);
    }
    if (c->dlq && jm_producer_flush(c->dlq, 10000, &err) != JM_OK)
        jm_log(JM_LOG_WARN, SUB, "%s: DLQ flush at exit: %s", c->o.name, err.msg);
    jm_producer_destroy(c->dlq);
    jm_cache_destroy(c->cache);
    jm_apply_destroy(c->ap);
    jm_pg_destroy(c->pg);
    jm_evlog_destroy(c->el);
    free(c->owned);
    free(c->next);
    free(c->cur.items);
    free(c->ahead.items);
    free(c->spent.items);
    free(c);
}
