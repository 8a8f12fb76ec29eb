/*
 * it_kafka.c — Kafka plumbing: events produced by an idempotent producer (acks=all) come back
 * through a consumer group, for every compression codec, against the real broker of
 * `scripts/stack up`.  This is the evidence for the pinned broker version (README.md).
 *
 * Each test creates its own topic with the admin API (the broker has auto-create off) and deletes
 * it afterwards.  The broker tests use librdkafka directly; test_wrapper_round_trip sends through
 * jobmon's producer (jobmon/producer.h) with its defaults, raw payloads (not the event codec).
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "it.h"
#include "jobmon/producer.h"

#define IT_MSGS       30
#define IT_KEYS       3
#define IT_PARTITIONS 3
#define IT_TIMEOUT_MS 30000

static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};

struct delivery {
    int ok;
    int failed;
    char first_error[256];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct delivery *d = opaque;
    if (m->err) {
        if (!d->failed++)
            snprintf(d->first_error, sizeof(d->first_error), "%s", rd_kafka_err2str(m->err));
    } else {
        d->ok++;
    }
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char errstr[256];
    ck_assert_msg(rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK,
                  "rd_kafka_conf_set(%s=%s): %s", k, v, errstr);
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[256];
    conf_set(conf, "bootstrap.servers", it_env("JOBMON_KAFKA_BROKERS"));
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    ck_assert_msg(rk != NULL, "rd_kafka_new: %s", errstr);
    return rk;
}

/* Produce IT_MSGS events keyed by IT_KEYS workflow ids; every delivery report must be OK. */
static void produce_all(const char *topic, const char *codec, const char *tag)
{
    struct delivery d = {0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "enable.idempotence", "true");
    conf_set(conf, "acks", "all");
    conf_set(conf, "compression.codec", codec);
    conf_set(conf, "linger.ms", "5");
    conf_set(conf, "message.timeout.ms", "20000");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &d);
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, conf);

    for (int i = 0; i < IT_MSGS; i++) {
        char key[32], val[128];
        snprintf(key, sizeof(key), "wf-%d", i % IT_KEYS);
        snprintf(val, sizeof(val), "{\"tag\":\"%s\",\"seq\":%d}", tag, i);
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE(val, strlen(val)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        ck_assert_msg(err == RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(err));
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, IT_TIMEOUT_MS);
    ck_assert_msg(err == RD_KAFKA_RESP_ERR_NO_ERROR, "flush: %s", rd_kafka_err2str(err));
    ck_assert_msg(d.failed == 0, "%d deliveries failed, first: %s", d.failed, d.first_error);
    ck_assert_int_eq(d.ok, IT_MSGS);
    rd_kafka_destroy(rk);
}

/* Consume with a fresh consumer group until every event of `tag` was seen once, in per-key order.
 */
static void consume_all(const char *topic, const char *tag)
{
    char group[128];
    snprintf(group, sizeof(group), "jobmon-it-%s", it_unique());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "group.id", group);
    conf_set(conf, "auto.offset.reset", "earliest");
    conf_set(conf, "enable.partition.eof", "false");
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(rk);

    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, subs);
    ck_assert_msg(err == RD_KAFKA_RESP_ERR_NO_ERROR, "subscribe: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(subs);

    int seen[IT_MSGS] = {0};
    int last_seq[IT_KEYS];
    for (int k = 0; k < IT_KEYS; k++)
        last_seq[k] = -1;
    int got = 0;
    long long deadline = mono_ms() + IT_TIMEOUT_MS;
    while (got < IT_MSGS && mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        ck_assert_msg(!m->err, "consume: %s", rd_kafka_message_errstr(m));
        char val[128] = "", want[128];
        int seq = -1, key = -1;
        snprintf(val, sizeof(val), "%.*s", (int)m->len, (const char *)m->payload);
        ck_assert_msg(m->key_len > 3 && sscanf((const char *)m->key + 3, "%d", &key) == 1,
                      "bad key");
        ck_assert_msg(sscanf(val, "{\"tag\":\"%*[^\"]\",\"seq\":%d}", &seq) == 1, "bad value %s",
                      val);
        snprintf(want, sizeof(want), "{\"tag\":\"%s\",\"seq\":%d}", tag, seq);
        ck_assert_str_eq(val, want);
        ck_assert_int_ge(seq, 0);
        ck_assert_int_lt(seq, IT_MSGS);
        ck_assert_int_eq(seq % IT_KEYS, key);
        ck_assert_msg(!seen[seq], "event %d delivered twice", seq);
        ck_assert_msg(seq > last_seq[key], "key wf-%d out of order: %d after %d", key, seq,
                      last_seq[key]);
        last_seq[key] = seq;
        seen[seq] = 1;
        got++;
        rd_kafka_message_destroy(m);
    }
    ck_assert_msg(got == IT_MSGS, "consumed %d of %d events within %d ms", got, IT_MSGS,
                  IT_TIMEOUT_MS);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

START_TEST(test_produce_consume_round_trip)
{
    const char *codec = codecs[_i];
    char topic[160], tag[96];
    snprintf(tag, sizeof(tag), "%s", it_unique());
    snprintf(topic, sizeof(topic), "jobmon.it.%s.%s", codec, tag);

    it_create_topic(topic, IT_PARTITIONS);
    produce_all(topic, codec, tag);
    consume_all(topic, tag);
    it_delete_topic(topic);
}
END_TEST

/* The same round trip, produced through jobmon's producer wrapper (idempotent, acks=all). */
START_TEST(test_wrapper_round_trip)
{
    const char *codec = codecs[_i];
    char topic[160], tag[96];
    snprintf(tag, sizeof(tag), "%s", it_unique());
    snprintf(topic, sizeof(topic), "jobmon.it.wrapper.%s.%s", codec, tag);

    it_create_topic(topic, IT_PARTITIONS);

    jm_err_t err;
    const char *props[] = {"compression.codec", codec, NULL};
    jm_producer_t *p = jm_producer_new(it_env("JOBMON_KAFKA_BROKERS"), props, &err);
    ck_assert_msg(p != NULL, "jm_producer_new: %s", err.msg);
    for (int i = 0; i < IT_MSGS; i++) {
        char key[32], val[128];
        snprintf(key, sizeof(key), "wf-%d", i % IT_KEYS);
        snprintf(val, sizeof(val), "{\"tag\":\"%s\",\"seq\":%d}", tag, i);
        jm_rc_t rc = jm_producer_send_raw(p, topic, key, val, strlen(val), NULL, &err);
        ck_assert_msg(rc == JM_OK, "jm_producer_send_raw: %s", err.msg);
    }
    jm_rc_t rc = jm_producer_flush(p, IT_TIMEOUT_MS, &err);
    ck_assert_msg(rc == JM_OK, "jm_producer_flush: %s", err.msg);
    jm_producer_stats_t st;
    jm_producer_stats(p, &st);
    ck_assert_uint_eq(st.acked, IT_MSGS);
    ck_assert_uint_eq(st.failed, 0);
    jm_producer_destroy(p);

    consume_all(topic, tag);
    it_delete_topic(topic);
}
END_TEST

/* The stack's own topics exist with the expected shape. */
START_TEST(test_stack_topics)
{
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, IT_TIMEOUT_MS);
    ck_assert_msg(err == RD_KAFKA_RESP_ERR_NO_ERROR, "metadata from %s: %s",
                  it_env("JOBMON_KAFKA_BROKERS"), rd_kafka_err2str(err));
    int events = 0, dlq = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, it_env("JOBMON_KAFKA_TOPIC")) == 0)
            events = md->topics[i].partition_cnt;
        if (strcmp(md->topics[i].topic, it_env("JOBMON_KAFKA_DLQ_TOPIC")) == 0)
            dlq = md->topics[i].partition_cnt;
    }
    ck_assert_int_gt(events, 0);
    ck_assert_int_eq(dlq, 1);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
}
END_TEST

Suite *it_kafka_suite(void)
{
    Suite *s = suite_create("kafka");
    TCase *tc = tcase_create("plumbing");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_stack_topics);
    tcase_add_loop_test(tc, test_produce_consume_round_trip, 0, (int)JM_ARRAY_LEN(codecs));
    tcase_add_loop_test(tc, test_wrapper_round_trip, 0, (int)JM_ARRAY_LEN(codecs));
    suite_add_tcase(s, tc);
    return s;
}
