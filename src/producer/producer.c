/*
 * producer.c — the idempotent librdkafka producer behind every jobmon publisher.
 *
 * Owns the rd_kafka_t and counts delivery reports so callers can tell when everything they sent
 * is durable.  It does not retry failed deliveries itself (librdkafka does, up to
 * message.timeout.ms) and does not decide what to do about them: callers do.
 *
 * First-send latency (librdkafka 2.0.2): a topic that first appears through rd_kafka_producev()
 * by name is created without a metadata request; unless it existed before the bootstrap
 * connection sent its first MetadataRequest, its partitions stay unknown until the 1 s topic
 * scan ("Mapped 0 partition(s)", then "refresh unavailable topics" one second later).  So the
 * events topic gets a handle from rd_kafka_topic_new() as soon as the producer exists (that
 * API queries the leader at once), and every send goes through a topic handle.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "jobmon/jmtime.h"
#include "jobmon/log.h"
#include "jobmon/producer.h"

#define QUEUE_FULL_WAIT_MS 30000

struct jm_producer_s {
    rd_kafka_t *rk;
    char *topic;
    rd_kafka_topic_t *rkt; /* handle on `topic`, held so its metadata is fetched up front */
    jm_producer_stats_t stats;
    uint64_t failed_reported; /* stats.failed already reported by a flush */
    char last_error[256];     /* of the last failed delivery */
    int closing;              /* destroy purges: do not log each dropped message */
    jm_producer_dr_fn dr_cb;  /* for messages sent with a token */
    void *dr_arg;
    int wake[2]; /* pipe librdkafka writes to when delivery reports are queued; -1 = none */
};

static const char *const default_props[] = {
    "enable.idempotence", "true",   "acks", "all", "compression.codec", "none", "linger.ms", "5",
    "client.id",          "jobmon", NULL,
};

/* JM_PRODUCER_LATENCY on top of default_props: send each message at once (a worker publishes
 * a handful of events and waits for the last one), no Nagle delay on the socket, and a small
 * local queue (limits, not preallocations: they bound memory when Kafka is down for long; a
 * worker's heartbeats expire after message.timeout.ms long before filling it). */
static const char *const latency_props[] = {
    "linger.ms",
    "0",
    "socket.nagle.disable",
    "true",
    "queue.buffering.max.messages",
    "10000",
    "queue.buffering.max.kbytes",
    "4096",
    NULL,
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    jm_producer_t *p = opaque;
    (void)rk;
    if (m->_private && p->dr_cb)
        p->dr_cb(p->dr_arg, (uint64_t)(uintptr_t)m->_private, m->err == RD_KAFKA_RESP_ERR_NO_ERROR);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->stats.acked++;
        return;
    }
    p->stats.failed++;
    snprintf(p->last_error, sizeof(p->last_error), "%s", rd_kafka_err2str(m->err));
    if (!p->closing)
        jm_log(JM_LOG_WARN, "kafka", "delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
               p->last_error);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* syslog levels; librdkafka logs connection failures at 3, which callers handle: WARN */
    jm_log_level_t l = level <= 2   ? JM_LOG_ERROR
                       : level <= 4 ? JM_LOG_WARN
                       : level <= 6 ? JM_LOG_INFO
                                    : JM_LOG_DEBUG;
    jm_log(l, "kafka", "%s %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    char fatal[256];
    (void)opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        jm_log(JM_LOG_ERROR, "kafka", "fatal producer error: %s", fatal);
        return;
    }
    /* Transport errors were already logged by on_log; keep the summary ones. */
    jm_log(code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? JM_LOG_WARN : JM_LOG_DEBUG, "kafka",
           "%s: %s", rd_kafka_err2name(code), reason);
}

static jm_rc_t conf_set_pairs(rd_kafka_conf_t *conf, const char *const *kv, jm_err_t *err)
{
    char errstr[512];
    for (; kv && kv[0]; kv += 2) {
        if (!kv[1])
            return jm_err_set(err, JM_ERR_INVALID, "kafka property %s: no value", kv[0]);
        if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            return jm_err_set(err, JM_ERR_INVALID, "kafka property %s: %s", kv[0], errstr);
    }
    return JM_OK;
}

/* The value of property `key` in the NULL-terminated pairs, the last one winning; NULL if unset. */
static const char *prop_get(const char *const *kv, const char *key)
{
    const char *v = NULL;
    for (; kv && kv[0] && kv[1]; kv += 2)
        if (strcmp(kv[0], key) == 0)
            v = kv[1];
    return v;
}

static int no_sasl_plugins_path(void *context, const char **path)
{
    (void)context;
    *path = ""; /* no directory: Cyrus SASL loads no plugin */
    return 0;   /* SASL_OK */
}

/* librdkafka 2.0.2 calls Cyrus SASL's sasl_client_init(NULL) in its global init, whatever the
 * configuration; that dlopen()s every plugin in /usr/lib/<arch>/sasl2 (and Berkeley DB behind
 * sasldb): measured 7-14 ms of CPU and 0.3-0.7 MB RSS per process.  Only GSSAPI uses Cyrus (PLAIN,
 * SCRAM and OAUTHBEARER are built into librdkafka), so when the configuration cannot use it, do
 * the global init first with a plugin path that loads nothing; librdkafka's own call then only
 * counts a reference.  Looked up with dlsym (libsasl2 is librdkafka's dependency, not ours) and
 * skipped when absent.  The declarations are those of <sasl/sasl.h> (stable ABI).  Not
 * thread-safe: for the latency profile, whose users (jobmon-worker) are single-threaded. */
static void sasl_init_without_plugins(const char *const *kv)
{
    typedef struct {
        unsigned long id;
        int (*proc)(void);
        void *context;
    } sasl_callback_t;
    enum { SASL_CB_LIST_END = 0, SASL_CB_GETPATH = 3 };
    static sasl_callback_t cbs[2];
    static int done;
    const char *proto = prop_get(kv, "security.protocol");
    if (done || (proto && strncasecmp(proto, "sasl", 4) == 0))
        return;
    done = 1;
    int (*client_init)(const sasl_callback_t *);
    *(void **)(&client_init) = dlsym(RTLD_DEFAULT, "sasl_client_init");
    if (!client_init)
        return;
    cbs[0].id = SASL_CB_GETPATH;
    cbs[0].proc = (int (*)(void))(void (*)(void))no_sasl_plugins_path; /* as sasl.h does */
    cbs[1].id = SASL_CB_LIST_END;
    if (client_init(cbs) != 0)
        jm_log(JM_LOG_DEBUG, "kafka", "sasl_client_init without plugins failed");
}

jm_producer_t *jm_producer_new(const char *brokers, const char *const *extra_props, jm_err_t *err)
{
    return jm_producer_new_profile(brokers, JM_PRODUCER_THROUGHPUT, extra_props, err);
}

jm_producer_t *jm_producer_new_profile(const char *brokers, jm_producer_profile_t profile,
                                       const char *const *extra_props, jm_err_t *err)
{
    char errstr[512];
    jm_producer_t *p = jm_calloc(1, sizeof(*p));
    p->wake[0] = p->wake[1] = -1;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const boot[] = {"bootstrap.servers", brokers, NULL};

    p->topic = jm_strdup(JM_EVENT_TOPIC);
    if (conf_set_pairs(conf, default_props, err) != JM_OK ||
        (profile == JM_PRODUCER_LATENCY && conf_set_pairs(conf, latency_props, err) != JM_OK) ||
        (brokers && conf_set_pairs(conf, boot, err) != JM_OK) ||
        conf_set_pairs(conf, extra_props, err) != JM_OK)
        goto fail;
    if (profile == JM_PRODUCER_LATENCY)
        sasl_init_without_plugins(extra_props);
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p->rk) {
        jm_err_set(err, JM_ERR_INVALID, "kafka producer: %s", errstr);
        goto fail;
    }
    /* rd_kafka_new took conf; the handle starts the events topic's metadata request */
    p->rkt = rd_kafka_topic_new(p->rk, p->topic, NULL);
    return p;
fail:
    rd_kafka_conf_destroy(conf);
    jm_producer_destroy(p);
    return NULL;
}

void jm_producer_set_topic(jm_producer_t *p, const char *topic)
{
    if (strcmp(p->topic, topic) == 0)
        return;
    free(p->topic);
    p->topic = jm_strdup(topic);
    if (p->rkt)
        rd_kafka_topic_destroy(p->rkt);
    p->rkt = rd_kafka_topic_new(p->rk, p->topic, NULL);
}

static rd_kafka_headers_t *make_headers(const char *const *kv)
{
    if (!kv || !kv[0])
        return NULL;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(4);
    for (; kv[0] && kv[1]; kv += 2)
        rd_kafka_header_add(hdrs, kv[0], -1, kv[1], -1);
    return hdrs;
}

static jm_rc_t produce_once(jm_producer_t *p, const char *topic, const char *key, const void *buf,
                            size_t len, const char *const *headers, uint64_t token,
                            rd_kafka_resp_err_t *kerr)
{
    /* A handle, never the topic's name: a topic first seen by name waits up to 1 s for its
     * metadata (see the header comment).  topic_new on a known topic is a lookup. */
    rd_kafka_topic_t *rkt =
        p->rkt && strcmp(topic, p->topic) == 0 ? p->rkt : rd_kafka_topic_new(p->rk, topic, NULL);
    if (!rkt) {
        *kerr = rd_kafka_last_error();
        return JM_ERR_INVALID;
    }
    rd_kafka_headers_t *hdrs = make_headers(headers);
    *kerr = rd_kafka_producev(
        p->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)token), RD_KAFKA_V_END);
    if (rkt != p->rkt)
        rd_kafka_topic_destroy(rkt);
    if (*kerr == RD_KAFKA_RESP_ERR_NO_ERROR)
        return JM_OK; /* librdkafka owns hdrs now */
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    return JM_ERR_RETRY;
}

static jm_rc_t send_raw_token(jm_producer_t *p, const char *topic, const char *key, const void *buf,
                              size_t len, const char *const *headers, uint64_t token, jm_err_t *err)
{
    rd_kafka_resp_err_t kerr;
    int64_t deadline = jm_time_mono_ms() + QUEUE_FULL_WAIT_MS;
    while (produce_once(p, topic, key, buf, len, headers, token, &kerr) != JM_OK) {
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            jm_rc_t rc = kerr == RD_KAFKA_RESP_ERR__FATAL ? JM_ERR_UNAVAILABLE : JM_ERR_INVALID;
            return jm_err_set(err, rc, "produce to %s: %s", topic, rd_kafka_err2str(kerr));
        }
        if (jm_time_mono_ms() > deadline)
            return jm_err_set(err, JM_ERR_RETRY, "produce to %s: local queue full for %d ms", topic,
                              QUEUE_FULL_WAIT_MS);
        rd_kafka_poll(p->rk, 100);
    }
    p->stats.sent++;
    rd_kafka_poll(p->rk, 0);
    return JM_OK;
}

jm_rc_t jm_producer_send_raw(jm_producer_t *p, const char *topic, const char *key, const void *buf,
                             size_t len, const char *const *headers, jm_err_t *err)
{
    return send_raw_token(p, topic, key, buf, len, headers, 0, err);
}

jm_rc_t jm_producer_send_tracked(jm_producer_t *p, int64_t workflow_id, const void *buf, size_t len,
                                 uint64_t token, jm_err_t *err)
{
    char key[24];
    snprintf(key, sizeof(key), "%" PRId64, workflow_id);
    return send_raw_token(p, p->topic, key, buf, len, NULL, token, err);
}

void jm_producer_set_dr_cb(jm_producer_t *p, jm_producer_dr_fn cb, void *arg)
{
    p->dr_cb = cb;
    p->dr_arg = arg;
}

int jm_producer_wakeup_fd(jm_producer_t *p)
{
    if (p->wake[0] >= 0)
        return p->wake[0];
    if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        p->wake[0] = p->wake[1] = -1;
        return -1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_io_event_enable(q, p->wake[1], "1", 1);
    rd_kafka_queue_destroy(q);
    return p->wake[0];
}

jm_rc_t jm_producer_send(jm_producer_t *p, const jm_event_t *ev, jm_err_t *err)
{
    char key[24];
    size_t len;
    jm_rc_t rc = jm_event_validate(ev, NULL, err);
    if (rc != JM_OK)
        return rc;
    char *buf = jm_event_encode(ev, &len);
    snprintf(key, sizeof(key), "%" PRId64, ev->workflow_id);
    rc = jm_producer_send_raw(p, p->topic, key, buf, len, NULL, err);
    free(buf);
    return rc;
}

const char *jm_producer_topic(const jm_producer_t *p)
{
    return p->topic;
}

void jm_producer_poll(jm_producer_t *p, int timeout_ms)
{
    char buf[256];
    /* drain before serving: a report queued after the serve writes the pipe again */
    while (p->wake[0] >= 0 && read(p->wake[0], buf, sizeof(buf)) > 0)
        ;
    rd_kafka_poll(p->rk, timeout_ms);
}

jm_rc_t jm_producer_flush(jm_producer_t *p, int timeout_ms, jm_err_t *err)
{
    rd_kafka_flush(p->rk, timeout_ms);
    int in_flight = rd_kafka_outq_len(p->rk);
    uint64_t new_failed = p->stats.failed - p->failed_reported;
    p->failed_reported = p->stats.failed;
    if (in_flight > 0)
        return jm_err_set(err, JM_ERR_UNAVAILABLE,
                          "kafka: %d message(s) not delivered after %d ms (%" PRIu64
                          " sent, %" PRIu64 " acked, %" PRIu64 " failed)",
                          in_flight, timeout_ms, p->stats.sent, p->stats.acked, p->stats.failed);
    if (new_failed > 0)
        return jm_err_set(err, JM_ERR_UNAVAILABLE,
                          "kafka: %" PRIu64 " message(s) failed (last: %s; %" PRIu64
                          " sent, %" PRIu64 " acked)",
                          new_failed, p->last_error, p->stats.sent, p->stats.acked);
    return JM_OK;
}

jm_rc_t jm_producer_partitions(jm_producer_t *p, const char *topic, int timeout_ms, int *n,
                               jm_err_t *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, topic, NULL);
    if (!rkt)
        return jm_err_set(err, JM_ERR_INVALID, "kafka: topic %s: %s", topic,
                          rd_kafka_err2str(rd_kafka_last_error()));
    rd_kafka_resp_err_t e = rd_kafka_metadata(p->rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return jm_err_set(err, JM_ERR_UNAVAILABLE, "kafka: metadata of %s: %s", topic,
                          rd_kafka_err2str(e));
    jm_rc_t rc = JM_OK;
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = jm_err_set(err, JM_ERR_NOT_FOUND, "kafka: topic %s: %s", topic,
                        md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "no metadata");
    else
        *n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return rc;
}

jm_rc_t jm_producer_watermarks(jm_producer_t *p, const char *topic, int partition, int timeout_ms,
                               int64_t *low, int64_t *high, jm_err_t *err)
{
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(p->rk, topic, partition, low, high, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return jm_err_set(err, JM_ERR_UNAVAILABLE, "kafka: offsets of %s[%d]: %s", topic, partition,
                          rd_kafka_err2str(e));
    return JM_OK;
}

void jm_producer_stats(const jm_producer_t *p, jm_producer_stats_t *out)
{
    *out = p->stats;
}

void jm_producer_destroy(jm_producer_t *p)
{
    if (!p)
        return;
    if (p->rk) {
        /* Drop what is still queued so destroy does not wait on an unreachable broker. */
        int left = rd_kafka_outq_len(p->rk);
        if (left > 0)
            jm_log(JM_LOG_WARN, "kafka", "producer closed with %d undelivered message(s)", left);
        p->closing = 1;
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0);
        if (p->rkt)
            rd_kafka_topic_destroy(p->rkt);
        if (p->wake[1] >= 0) {
            rd_kafka_queue_t *q = rd_kafka_queue_get_main(p->rk);
            rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
            rd_kafka_queue_destroy(q);
        }
        rd_kafka_destroy(p->rk);
    }
    for (int i = 0; i < 2; i++)
        if (p->wake[i] >= 0)
            close(p->wake[i]);
    free(p->topic);
    free(p);
}

/* ---- topics (benchmarks and tests; scripts/stack creates the service's own) ---------------- */

static jm_rc_t topic_result(rd_kafka_event_t *ev, int create, const char *topic, jm_err_t *err)
{
    size_t n = 0;
    const rd_kafka_CreateTopics_result_t *cr =
        create ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    const rd_kafka_DeleteTopics_result_t *dr =
        create ? NULL : rd_kafka_event_DeleteTopics_result(ev);
    const rd_kafka_topic_result_t **tr = cr   ? rd_kafka_CreateTopics_result_topics(cr, &n)
                                         : dr ? rd_kafka_DeleteTopics_result_topics(dr, &n)
                                              : NULL;
    if (n != 1)
        return jm_err_set(err, JM_ERR_INTERNAL, "topic %s: %s", topic,
                          rd_kafka_event_error_string(ev) ? rd_kafka_event_error_string(ev)
                                                          : "no result");
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[0]);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return JM_OK;
    jm_rc_t rc = e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS    ? JM_ERR_CONFLICT
                 : e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? JM_ERR_NOT_FOUND
                                                                : JM_ERR_UNAVAILABLE;
    return jm_err_set(err, rc, "%s topic %s: %s", create ? "create" : "delete", topic,
                      rd_kafka_topic_result_error_string(tr[0]));
}

jm_rc_t jm_kafka_topic_admin(const char *brokers, const char *topic, int partitions, int timeout_ms,
                             jm_err_t *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return jm_err_set(err, JM_ERR_INVALID, "bootstrap.servers: %s", errstr);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return jm_err_set(err, JM_ERR_UNAVAILABLE, "kafka: %s", errstr);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_DeleteTopic_t *dt = NULL;
    rd_kafka_event_t *ev = NULL;
    jm_rc_t rc;
    if (partitions > 0) {
        nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
        if (nt)
            rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    } else {
        dt = rd_kafka_DeleteTopic_new(topic);
        rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    }
    if (!nt && !dt)
        rc = jm_err_set(err, JM_ERR_INVALID, "topic %s: %s", topic, errstr);
    else if (!(ev = rd_kafka_queue_poll(q, timeout_ms)))
        rc = jm_err_set(err, JM_ERR_UNAVAILABLE, "topic %s: no answer in %d ms", topic, timeout_ms);
    else
        rc = topic_result(ev, nt != NULL, topic, err);
    if (ev)
        rd_kafka_event_destroy(ev);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    if (dt)
        rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

const jm_producer_ops_t jm_producer_ops = {
    .new_profile = jm_producer_new_profile,
    .set_topic = jm_producer_set_topic,
    .send = jm_producer_send,
    .send_tracked = jm_producer_send_tracked,
    .set_dr_cb = jm_producer_set_dr_cb,
    .wakeup_fd = jm_producer_wakeup_fd,
    .poll = jm_producer_poll,
    .flush = jm_producer_flush,
    .destroy = jm_producer_destroy,
};
