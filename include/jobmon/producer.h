/*
 * jobmon/producer.h — the idempotent Kafka producer every publisher uses (librdkafka wrapper).
 *
 * Events are keyed by workflow_id (decimal) so one partition owns a workflow; the producer is
 * idempotent with acks=all and no compression (librdkafka 2.0.2 vs Kafka 4.x: compressed produce
 * is not proven; pass "compression.codec","lz4" in extra_props to turn it on).  Delivery reports
 * are counted; jm_producer_flush() tells whether everything sent was acknowledged.
 *
 * Threading: one producer per thread.  Delivery reports run inside send/flush/poll on the
 * calling thread.  librdkafka's log lines go to jm_log (subsystem "kafka").
 */
#ifndef JOBMON_PRODUCER_H
#define JOBMON_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "jobmon/common.h"
#include "jobmon/event.h"

typedef struct jm_producer_s jm_producer_t;

/* Settings for the use: THROUGHPUT batches (linger.ms 5: bind, the FSM's DLQ, the distributor);
 * LATENCY sends each message at once (linger.ms 0, socket.nagle.disable, small local queue) and
 * skips loading Cyrus SASL plugins unless security.protocol is sasl_*: for jobmon-worker, which
 * publishes a few events and waits for the last one before exiting.  Both are idempotent with
 * acks=all: a lost event is never traded for speed. */
typedef enum { JM_PRODUCER_THROUGHPUT = 0, JM_PRODUCER_LATENCY } jm_producer_profile_t;

/* Counters since jm_producer_new. */
typedef struct {
    uint64_t sent;   /* accepted by jm_producer_send / _send_raw */
    uint64_t acked;  /* delivery report without error */
    uint64_t failed; /* delivery report with an error (the message is lost) */
} jm_producer_stats_t;

/* A new producer for `brokers` (bootstrap.servers; may be NULL when extra_props sets it, e.g.
 * with test.mock.num.brokers).  `extra_props` are librdkafka properties as NULL-terminated
 * key, value pairs (may be NULL); they override jobmon's defaults.  Returns a new producer,
 * caller destroys; NULL with JM_ERR_INVALID in `err` for a bad property. */
jm_producer_t *jm_producer_new(const char *brokers, const char *const *extra_props, jm_err_t *err);
/* jm_producer_new with a profile's settings under extra_props (jm_producer_new is THROUGHPUT).
 * The events topic's metadata is requested at once, so the first send does not wait for it. */
jm_producer_t *jm_producer_new_profile(const char *brokers, jm_producer_profile_t profile,
                                       const char *const *extra_props, jm_err_t *err);

/* Topic jm_producer_send writes to (default JM_EVENT_TOPIC).  Copies `topic`. */
void jm_producer_set_topic(jm_producer_t *p, const char *topic);

/* The topic jm_producer_send writes to; borrowed, valid until the next set_topic or destroy. */
const char *jm_producer_topic(const jm_producer_t *p);

/* Validate, encode and enqueue `ev` (borrowed) on the events topic with key = workflow_id.
 * A full local queue is drained by polling and retried for up to 30 s.
 * JM_ERR_INVALID: the event breaks the catalogue rules (nothing sent);
 * JM_ERR_RETRY: the queue stayed full; JM_ERR_UNAVAILABLE: the producer hit a fatal error. */
jm_rc_t jm_producer_send(jm_producer_t *p, const jm_event_t *ev, jm_err_t *err) JM_WUR;

/* Enqueue raw bytes (copied) on `topic` with `key` (may be NULL) and `headers`: NULL-terminated
 * name, value string pairs (may be NULL), e.g. {"reason", "payload.ti_id: missing", NULL} for
 * the DLQ.  Errors as jm_producer_send (without validation). */
jm_rc_t jm_producer_send_raw(jm_producer_t *p, const char *topic, const char *key, const void *buf,
                             size_t len, const char *const *headers, jm_err_t *err) JM_WUR;

/* Serve delivery reports without blocking longer than timeout_ms. */
void jm_producer_poll(jm_producer_t *p, int timeout_ms);

/* Wait up to timeout_ms until every message sent so far has its delivery report.  JM_OK only
 * when all of them were acknowledged and none failed since the previous call to flush.
 * JM_ERR_UNAVAILABLE on timeout (messages still in flight) or failed deliveries; the counts
 * are in the message.  Failures are reported by one flush, then forgotten. */
jm_rc_t jm_producer_flush(jm_producer_t *p, int timeout_ms, jm_err_t *err) JM_WUR;

/* Copy the counters into *out. */
void jm_producer_stats(const jm_producer_t *p, jm_producer_stats_t *out);

/* How many partitions `topic` has (from the brokers' metadata, within timeout_ms).
 * JM_ERR_NOT_FOUND when the topic does not exist, JM_ERR_UNAVAILABLE when Kafka does not answer. */
jm_rc_t jm_producer_partitions(jm_producer_t *p, const char *topic, int timeout_ms, int *n,
                               jm_err_t *err) JM_WUR;
/* The oldest offset still stored (*low) and the next offset to be written (*high) of one
 * partition, from its leader.  JM_ERR_UNAVAILABLE when Kafka does not answer in timeout_ms. */
jm_rc_t jm_producer_watermarks(jm_producer_t *p, const char *topic, int partition, int timeout_ms,
                               int64_t *low, int64_t *high, jm_err_t *err) JM_WUR;

/* Destroy without flushing (call jm_producer_flush first to keep messages).  Accepts NULL. */
void jm_producer_destroy(jm_producer_t *p);

/* Per-message delivery reports: `cb(arg, token, ok)` runs (inside send/poll/flush) for every
 * message sent with jm_producer_send_tracked, ok = 1 when Kafka acknowledged it. */
typedef void (*jm_producer_dr_fn)(void *arg, uint64_t token, int ok);
void jm_producer_set_dr_cb(jm_producer_t *p, jm_producer_dr_fn cb, void *arg);
/* jm_producer_send_raw of an encoded event on the events topic, keyed by workflow_id, whose
 * delivery report is passed to the dr callback with `token` (not 0). */
jm_rc_t jm_producer_send_tracked(jm_producer_t *p, int64_t workflow_id, const void *buf, size_t len,
                                 uint64_t token, jm_err_t *err) JM_WUR;
/* A file descriptor that becomes readable when delivery reports wait to be served by
 * jm_producer_poll (which also drains it), for a poll() loop that sleeps; -1 on failure. */
int jm_producer_wakeup_fd(jm_producer_t *p);

/* Create `topic` with `partitions` partitions (replication 1), or delete it when partitions is
 * 0, through the admin API of a client of its own (benchmarks and tests; scripts/stack creates
 * the service's topics).  JM_ERR_CONFLICT: it exists already; JM_ERR_NOT_FOUND: no such topic to
 * delete; JM_ERR_UNAVAILABLE: no answer in timeout_ms or a broker error. */
jm_rc_t jm_kafka_topic_admin(const char *brokers, const char *topic, int partitions, int timeout_ms,
                             jm_err_t *err) JM_WUR;

/* The functions above as a table: jobmon-worker does not link librdkafka (loading it and its
 * TLS/SASL/compression libraries is most of a short task's overhead) and reaches these through
 * the jobmon-kafka.so module when it has to talk to Kafka itself (worker/report.c).  Every
 * other program uses jm_producer_ops, linked in. */
typedef struct jm_producer_ops_s {
    jm_producer_t *(*new_profile)(const char *brokers, jm_producer_profile_t profile,
                                  const char *const *extra_props, jm_err_t *err);
    void (*set_topic)(jm_producer_t *p, const char *topic);
    jm_rc_t (*send)(jm_producer_t *p, const jm_event_t *ev, jm_err_t *err);
    jm_rc_t (*send_tracked)(jm_producer_t *p, int64_t workflow_id, const void *buf, size_t len,
                            uint64_t token, jm_err_t *err);
    void (*set_dr_cb)(jm_producer_t *p, jm_producer_dr_fn cb, void *arg);
    int (*wakeup_fd)(jm_producer_t *p);
    void (*poll)(jm_producer_t *p, int timeout_ms);
    jm_rc_t (*flush)(jm_producer_t *p, int timeout_ms, jm_err_t *err);
    void (*destroy)(jm_producer_t *p);
} jm_producer_ops_t;
extern const jm_producer_ops_t jm_producer_ops;

#endif
