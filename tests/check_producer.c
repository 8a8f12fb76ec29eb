/*
 * Unit tests for the Kafka producer against librdkafka's in-process mock cluster
 * (test.mock.num.brokers): every message sent is acknowledged by flush, raw sends with headers
 * work, invalid events are refused, and an unreachable broker makes flush fail within its
 * timeout.  The real broker is exercised by the integration tests.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jobmon/jmtime.h"
#include "jobmon/producer.h"

static const char *const mock_props[] = {"test.mock.num.brokers", "1", NULL};

static jm_event_t *heartbeat(int64_t workflow_id, int64_t ti_id)
{
    return jm_event_new(JM_EV_TI_HEARTBEAT, workflow_id,
                        json_pack("{s:I, s:i}", "ti_id", (json_int_t)ti_id, "next_report_s", 90));
}

START_TEST(test_mock_send_flush_acks)
{
    jm_err_t err;
    jm_producer_stats_t st;
    jm_producer_t *p = jm_producer_new(NULL, mock_props, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    for (int i = 0; i < 200; i++) {
        jm_event_t *ev = heartbeat(1 + i % 7, 1000 + i);
        ck_assert_msg(jm_producer_send(p, ev, &err) == JM_OK, "%s", err.msg);
        jm_event_destroy(ev);
    }
    const char *const hdrs[] = {"reason", "payload.ti_id: missing", NULL};
    ck_assert_int_eq(jm_producer_send_raw(p, JM_EVENT_DLQ_TOPIC, "7", "{}", 2, hdrs, &err), JM_OK);
    ck_assert_msg(jm_producer_flush(p, 10000, &err) == JM_OK, "%s", err.msg);
    jm_producer_stats(p, &st);
    ck_assert_uint_eq(st.sent, 201);
    ck_assert_uint_eq(st.acked, 201);
    ck_assert_uint_eq(st.failed, 0);
    jm_producer_destroy(p);
    jm_producer_destroy(NULL);
}
END_TEST

START_TEST(test_queue_full_is_retried)
{
    /* A 5-message local queue: sends hit QUEUE_FULL and must poll their way through. */
    const char *const props[] = {"test.mock.num.brokers", "1", "queue.buffering.max.messages", "5",
                                 NULL};
    jm_err_t err;
    jm_producer_stats_t st;
    jm_producer_t *p = jm_producer_new(NULL, props, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    for (int i = 0; i < 50; i++) {
        jm_event_t *ev = heartbeat(11, 2000 + i);
        ck_assert_msg(jm_producer_send(p, ev, &err) == JM_OK, "%s", err.msg);
        jm_event_destroy(ev);
    }
    ck_assert_msg(jm_producer_flush(p, 10000, &err) == JM_OK, "%s", err.msg);
    jm_producer_stats(p, &st);
    ck_assert_uint_eq(st.acked, 50);
    jm_producer_destroy(p);
}
END_TEST

START_TEST(test_invalid_event_refused)
{
    jm_err_t err;
    jm_producer_stats_t st;
    jm_producer_t *p = jm_producer_new(NULL, mock_props, &err);
    ck_assert_ptr_nonnull(p);
    jm_event_t *ev = heartbeat(0, 5); /* workflow_id 0 is out of range */
    ck_assert_int_eq(jm_producer_send(p, ev, &err), JM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "workflow_id: 0 out of range 1..9223372036854775807");
    jm_producer_stats(p, &st);
    ck_assert_uint_eq(st.sent, 0);
    jm_event_destroy(ev);
    jm_producer_destroy(p);
}
END_TEST

START_TEST(test_bad_property)
{
    jm_err_t err;
    const char *const bad[] = {"no.such.property", "1", NULL};
    ck_assert_ptr_null(jm_producer_new("127.0.0.1:1", bad, &err));
    ck_assert_int_eq(err.rc, JM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "no.such.property"));
}
END_TEST

START_TEST(test_unreachable_flush_times_out)
{
    jm_err_t err;
    /* Port 1 on loopback refuses connections: nothing can be acknowledged. */
    jm_producer_t *p = jm_producer_new("127.0.0.1:1", NULL, &err);
    ck_assert_ptr_nonnull(p);
    jm_event_t *ev = heartbeat(3, 9);
    ck_assert_int_eq(jm_producer_send(p, ev, &err), JM_OK);
    int64_t t0 = jm_time_mono_ms();
    ck_assert_int_eq(jm_producer_flush(p, 1000, &err), JM_ERR_UNAVAILABLE);
    int64_t took = jm_time_mono_ms() - t0;
    ck_assert_int_ge(took, 900);
    ck_assert_int_lt(took, 3000);
    ck_assert_ptr_nonnull(strstr(err.msg, "1 message(s) not delivered"));
    jm_event_destroy(ev);
    jm_producer_destroy(p);
}
END_TEST

/* librdkafka 2.0.2 leaves a topic first named in a produce call after the connection is up
 * without metadata until its 1 s topic scan: sends go through topic handles, whose creation
 * asks for the leader at once.  Both profiles, the events topic and another one (the DLQ). */
START_TEST(test_first_send_not_delayed)
{
    jm_err_t err;
    const char *topics[] = {JM_EVENT_TOPIC, "jobmon.test.first_send"};
    for (int profile = JM_PRODUCER_THROUGHPUT; profile <= JM_PRODUCER_LATENCY; profile++) {
        jm_producer_t *p = jm_producer_new_profile(NULL, profile, mock_props, &err);
        ck_assert_msg(p != NULL, "%s", err.msg);
        jm_producer_poll(p, 300); /* connected, first metadata reply in */
        for (size_t i = 0; i < 2; i++) {
            int64_t t0 = jm_time_mono_ms();
            ck_assert_int_eq(jm_producer_send_raw(p, topics[i], "1", "{}", 2, NULL, &err), JM_OK);
            ck_assert_msg(jm_producer_flush(p, 5000, &err) == JM_OK, "%s", err.msg);
            int64_t took = jm_time_mono_ms() - t0;
            ck_assert_msg(took < 600, "profile %d, %s: first send acknowledged after %lld ms",
                          profile, topics[i], (long long)took);
        }
        jm_producer_destroy(p);
    }
}
END_TEST

START_TEST(test_latency_profile_overridable)
{
    /* extra_props still win over the profile; a bad one is still refused */
    jm_err_t err;
    const char *const props[] = {"test.mock.num.brokers", "1", "linger.ms", "2", NULL};
    jm_producer_t *p = jm_producer_new_profile(NULL, JM_PRODUCER_LATENCY, props, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    jm_event_t *ev = heartbeat(5, 6);
    ck_assert_int_eq(jm_producer_send(p, ev, &err), JM_OK);
    ck_assert_msg(jm_producer_flush(p, 5000, &err) == JM_OK, "%s", err.msg);
    jm_event_destroy(ev);
    jm_producer_destroy(p);
    const char *const bad[] = {"linger.ms", "-3", NULL};
    ck_assert_ptr_null(jm_producer_new_profile("127.0.0.1:1", JM_PRODUCER_LATENCY, bad, &err));
    ck_assert_int_eq(err.rc, JM_ERR_INVALID);
}
END_TEST

Suite *jm_producer_suite(void);
Suite *jm_producer_suite(void)
{
    Suite *s = suite_create("producer");
    TCase *tc = tcase_create("mock");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_mock_send_flush_acks);
    tcase_add_test(tc, test_queue_full_is_retried);
    tcase_add_test(tc, test_invalid_event_refused);
    tcase_add_test(tc, test_bad_property);
    tcase_add_test(tc, test_unreachable_flush_times_out);
    tcase_add_test(tc, test_first_send_not_delayed);
    tcase_add_test(tc, test_latency_profile_overridable);
    suite_add_tcase(s, tc);
    return s;
}
