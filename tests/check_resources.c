/* Unit tests for src/fsm/resources.c: unit parsing and formatting, queue validation and coercion,
 * scaling with fallback queues, normalisation of user input. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jobmon/resources.h"

/* ---- memory ------------------------------------------------------------------------------ */

static int64_t mem_ok(const char *text)
{
    int64_t mib = -1;
    jm_err_t err;
    jm_err_clear(&err);
    ck_assert_msg(jm_res_parse_memory(text, &mib, &err) == JM_OK, "memory \"%s\": %s", text,
                  err.msg);
    return mib;
}

static void mem_bad(const char *text, const char *fragment)
{
    int64_t mib = 0;
    jm_err_t err;
    jm_err_clear(&err);
    ck_assert_int_eq(jm_res_parse_memory(text, &mib, &err), JM_ERR_INVALID);
    ck_assert_int_eq(err.rc, JM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, fragment) != NULL, "\"%s\": message \"%s\" lacks \"%s\"", text,
                  err.msg, fragment);
}

START_TEST(test_memory_good)
{
    ck_assert_int_eq(mem_ok("8G"), 8192);
    ck_assert_int_eq(mem_ok("8GB"), 8192);
    ck_assert_int_eq(mem_ok("8Gb"), 8192);
    ck_assert_int_eq(mem_ok("8gib"), 8192);
    ck_assert_int_eq(mem_ok("500M"), 500);
    ck_assert_int_eq(mem_ok("500MB"), 500);
    ck_assert_int_eq(mem_ok("200M"), 200);
    ck_assert_int_eq(mem_ok("1T"), 1048576);
    ck_assert_int_eq(mem_ok("1024K"), 1);
    ck_assert_int_eq(mem_ok("1025K"), 2); /* round up */
    ck_assert_int_eq(mem_ok("1K"), 1);
    ck_assert_int_eq(mem_ok("2"), 2048); /* bare number: GiB */
    ck_assert_int_eq(mem_ok("1.5"), 1536);
    ck_assert_int_eq(mem_ok("1.5G"), 1536);
    ck_assert_int_eq(mem_ok("1.1G"), 1127); /* 1126.4 rounds up */
    ck_assert_int_eq(mem_ok("0.5M"), 1);
    ck_assert_int_eq(mem_ok(" 4 G "), 4096);
    ck_assert_int_eq(mem_ok("0"), 0);
    ck_assert_int_eq(mem_ok(".5G"), 512);
    ck_assert_int_eq(mem_ok("7.G"), 7168);
}
END_TEST

START_TEST(test_memory_bad)
{
    mem_bad("12X", "memory \"12X\": unknown unit X, use K, M, G or T");
    mem_bad("12GX", "unknown unit GX");
    mem_bad("", "empty");
    mem_bad("   ", "empty");
    mem_bad(NULL, "empty");
    mem_bad("G", "expected a number");
    mem_bad("-1G", "must not be negative");
    mem_bad("1.2.3G", "unknown unit .3G");
    mem_bad("99999999999999999999G", "too large");
    mem_bad("9999999999999T", "too large");
    mem_bad("1.0000000001G", "too precise");
    mem_bad("1e3M", "unknown unit e3M");
}
END_TEST

/* ---- runtime ----------------------------------------------------------------------------- */

static int64_t rt_ok(const char *text)
{
    int64_t s = -1;
    jm_err_t err;
    jm_err_clear(&err);
    ck_assert_msg(jm_res_parse_runtime(text, &s, &err) == JM_OK, "runtime \"%s\": %s", text,
                  err.msg);
    return s;
}

static void rt_bad(const char *text, const char *fragment)
{
    int64_t s = 0;
    jm_err_t err;
    jm_err_clear(&err);
    ck_assert_int_eq(jm_res_parse_runtime(text, &s, &err), JM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, fragment) != NULL, "\"%s\": message \"%s\" lacks \"%s\"", text,
                  err.msg, fragment);
}

START_TEST(test_runtime_good)
{
    ck_assert_int_eq(rt_ok("1h"), 3600);
    ck_assert_int_eq(rt_ok("60m"), 3600);
    ck_assert_int_eq(rt_ok("3600s"), 3600);
    ck_assert_int_eq(rt_ok("3600"), 3600);
    ck_assert_int_eq(rt_ok("1d"), 86400);
    ck_assert_int_eq(rt_ok("1H30M"), 5400);
    ck_assert_int_eq(rt_ok("1h 30m 15s"), 5415);
    ck_assert_int_eq(rt_ok("1.5h"), 5400);
    ck_assert_int_eq(rt_ok("0.1h"), 360);
    ck_assert_int_eq(rt_ok("90.5"), 91);
    ck_assert_int_eq(rt_ok("01:30:00"), 5400);
    ck_assert_int_eq(rt_ok("100:00:00"), 360000);
    ck_assert_int_eq(rt_ok("1-02:03:04"), 93784);
    ck_assert_int_eq(rt_ok(" 00:00:59 "), 59);
    ck_assert_int_eq(rt_ok("0"), 0);
}
END_TEST

START_TEST(test_runtime_bad)
{
    rt_bad("1:30", "ambiguous");
    rt_bad("1:60:00", "minutes and seconds below 60");
    rt_bad("1:00:60", "below 60");
    rt_bad("1:2:3:4", "expected HH:MM:SS");
    rt_bad("a:00:00", "digits only");
    rt_bad("1-24:00:00", "D-HH:MM:SS");
    rt_bad("1:00:-1", "HH:MM:SS");
    rt_bad("", "empty");
    rt_bad(NULL, "empty");
    rt_bad("-5", "must not be negative");
    rt_bad("5x", "runtime \"5x\": unknown unit at \"x\", use d, h, m or s");
    rt_bad("1h30", "unknown unit at \"(none)\"");
    rt_bad("h", "expected a number");
    rt_bad("99999999999999999999d", "too large");
    rt_bad("999999999999999d", "too large");
}
END_TEST

START_TEST(test_format)
{
    char buf[32];
    ck_assert_str_eq(jm_res_format_memory(1536, buf, sizeof(buf)), "1536M");
    ck_assert_str_eq(jm_res_format_memory(8192, buf, sizeof(buf)), "8G");
    ck_assert_str_eq(jm_res_format_memory(0, buf, sizeof(buf)), "0M");
    ck_assert_str_eq(jm_res_format_runtime(5400, buf, sizeof(buf)), "01:30:00");
    ck_assert_str_eq(jm_res_format_runtime(59, buf, sizeof(buf)), "00:00:59");
    ck_assert_str_eq(jm_res_format_runtime(360000, buf, sizeof(buf)), "100:00:00");
    /* round trips */
    int64_t v = 0;
    ck_assert_int_eq(jm_res_parse_memory(jm_res_format_memory(1536, buf, sizeof(buf)), &v, NULL),
                     JM_OK);
    ck_assert_int_eq(v, 1536);
    ck_assert_int_eq(jm_res_parse_runtime(jm_res_format_runtime(93784, buf, sizeof(buf)), &v, NULL),
                     JM_OK);
    ck_assert_int_eq(v, 93784);
    ck_assert_str_eq(jm_res_format_memory(1536, buf, 3), "15");
}
END_TEST

/* ---- queues ------------------------------------------------------------------------------ */

static const jm_limit_t small_limits[] = {
    {"cores", 1, 4}, {"memory", 1, 1000}, {"runtime", 60, 3600}};
static const jm_limit_t big_limits[] = {
    {"cores", 1, 16}, {"memory", 1, 4000}, {"runtime", 60, 86400}};
static const jm_limit_t huge_limits[] = {
    {"cores", 1, 64}, {"memory", 1000, 8000}, {"runtime", 60, 604800}};
static const jm_queue_t small_q = {"small.q", small_limits, 3};
static const jm_queue_t big_q = {"big.q", big_limits, 3};
static const jm_queue_t huge_q = {"huge.q", huge_limits, 3};

static json_t *res_of(const char *queue, json_int_t cores, json_int_t mem, json_int_t rt)
{
    json_t *r = json_pack("{s:s, s:I, s:I, s:I, s:s}", "queue", queue, "cores", cores, "memory",
                          mem, "runtime", rt, "project", "proj_a");
    ck_assert_ptr_nonnull(r);
    return r;
}

static json_int_t iget(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
    return json_integer_value(v);
}

START_TEST(test_validate)
{
    jm_err_t err;
    json_t *r = res_of("small.q", 2, 500, 600);
    ck_assert_int_eq(jm_res_validate(r, &small_q, &err), JM_OK);
    json_object_set_new(r, "memory", json_integer(1001));
    ck_assert_int_eq(jm_res_validate(r, &small_q, &err), JM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "memory 1001 is above the maximum 1000 of queue \"small.q\"");
    json_object_set_new(r, "memory", json_integer(500));
    json_object_set_new(r, "runtime", json_real(30.5));
    ck_assert_int_eq(jm_res_validate(r, &small_q, &err), JM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "runtime 30.5 is below the minimum 60 of queue \"small.q\"");
    json_object_set_new(r, "runtime", json_string("1h"));
    ck_assert_int_eq(jm_res_validate(r, &small_q, &err), JM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "runtime: expected a number"));
    json_object_del(r, "runtime"); /* absent keys are not checked */
    ck_assert_int_eq(jm_res_validate(r, &small_q, &err), JM_OK);
    json_decref(r);
    ck_assert_int_eq(jm_res_validate(NULL, &small_q, NULL), JM_ERR_INVALID);
}
END_TEST

START_TEST(test_coerce)
{
    json_t *r = res_of("x.q", 0, 5000, 10);
    json_object_set_new(r, "gpus", json_integer(3));
    json_t *c = jm_res_coerce(r, &small_q);
    ck_assert_int_eq(iget(c, "cores"), 1);
    ck_assert_int_eq(iget(c, "memory"), 1000);
    ck_assert_int_eq(iget(c, "runtime"), 60);
    ck_assert_int_eq(iget(c, "gpus"), 3);
    ck_assert_str_eq(json_string_value(json_object_get(c, "queue")), "small.q");
    ck_assert_str_eq(json_string_value(json_object_get(c, "project")), "proj_a");
    ck_assert_int_eq(iget(r, "memory"), 5000); /* input untouched */
    ck_assert_int_eq(jm_res_validate(c, &small_q, NULL), JM_OK);
    json_decref(c);
    json_decref(r);
}
END_TEST

/* ---- scaling ----------------------------------------------------------------------------- */

static json_t *scale_ok(const json_t *r, const json_t *scales, int attempt, const jm_queue_t *q,
                        const jm_queue_t *fb, size_t nfb, const char **qname)
{
    json_t *out = NULL;
    jm_err_t err;
    jm_err_clear(&err);
    ck_assert_msg(jm_res_scale(r, scales, attempt, q, fb, nfb, &out, qname, &err) == JM_OK, "%s",
                  err.msg);
    ck_assert_ptr_nonnull(out);
    return out;
}

START_TEST(test_scale_cumulative)
{
    json_t *scales = jm_res_default_scales();
    json_t *r = res_of("huge.q", 2, 40, 40 * 60);
    const char *qn = NULL;
    json_t *s1 = scale_ok(r, scales, 1, &huge_q, NULL, 0, &qn);
    ck_assert_int_eq(iget(s1, "memory"), 1000); /* 60 is below huge.q's minimum: clipped up */
    json_decref(s1);
    json_decref(r);
    /* a queue without memory minimum, to see the plain arithmetic */
    static const jm_limit_t open_limits[] = {{"memory", 0, 1e9}, {"runtime", 0, 1e9}};
    static const jm_queue_t open_q = {"open.q", open_limits, 2};
    r = res_of("open.q", 2, 40, 100);
    json_t *a = scale_ok(r, scales, 1, &open_q, NULL, 0, &qn);
    ck_assert_int_eq(iget(a, "memory"), 60);
    ck_assert_int_eq(iget(a, "runtime"), 150);
    ck_assert_int_eq(iget(a, "cores"), 2); /* no scale for cores */
    ck_assert_str_eq(qn, "open.q");
    json_t *b = scale_ok(a, scales, 2, &open_q, NULL, 0, &qn);
    ck_assert_int_eq(iget(b, "memory"), 90);
    ck_assert_int_eq(iget(b, "runtime"), 225);
    json_t *c = scale_ok(b, scales, 3, &open_q, NULL, 0, &qn);
    ck_assert_int_eq(iget(c, "memory"), 135);
    ck_assert_int_eq(iget(c, "runtime"), 338); /* ceil(337.5) */
    json_decref(c);
    json_decref(b);
    json_decref(a);
    json_decref(r);
    /* 10 × 1.1 is 11, not 12 (binary rounding) */
    json_t *s = json_pack("{s:f}", "memory", 0.1);
    r = res_of("open.q", 1, 10, 100);
    a = scale_ok(r, s, 1, &open_q, NULL, 0, NULL);
    ck_assert_int_eq(iget(a, "memory"), 11);
    ck_assert_int_eq(iget(a, "runtime"), 100); /* not in these scales */
    json_decref(a);
    json_decref(r);
    json_decref(s);
    json_decref(scales);
}
END_TEST

START_TEST(test_scale_list)
{
    static const jm_limit_t open_limits[] = {{"memory", 0, 1e9}};
    static const jm_queue_t open_q = {"open.q", open_limits, 1};
    json_t *s = json_pack("{s:[i,i,i]}", "memory", 100, 200, 300);
    json_t *r = res_of("open.q", 1, 50, 100);
    static const json_int_t want[] = {100, 200, 300, 300, 300};
    for (int attempt = 1; attempt <= 5; attempt++) {
        json_t *a = scale_ok(r, s, attempt, &open_q, NULL, 0, NULL);
        ck_assert_int_eq(iget(a, "memory"), want[attempt - 1]);
        json_decref(a);
    }
    json_decref(r);
    json_decref(s);
}
END_TEST

START_TEST(test_scale_fallback_order)
{
    json_t *scales = jm_res_default_scales();
    const jm_queue_t fb[] = {big_q, huge_q};
    const char *qn = NULL;
    /* fits the current queue after scaling: stays */
    json_t *r = res_of("small.q", 2, 400, 600);
    json_t *a = scale_ok(r, scales, 1, &small_q, fb, 2, &qn);
    ck_assert_str_eq(qn, "small.q");
    ck_assert_int_eq(iget(a, "memory"), 600);
    json_decref(a);
    json_decref(r);
    /* 800 → 1200 MiB exceeds small.q: first fallback that fits is big.q (huge.q also would) */
    r = res_of("small.q", 2, 800, 600);
    a = scale_ok(r, scales, 1, &small_q, fb, 2, &qn);
    ck_assert_str_eq(qn, "big.q");
    ck_assert_str_eq(json_string_value(json_object_get(a, "queue")), "big.q");
    ck_assert_int_eq(iget(a, "memory"), 1200);
    ck_assert_int_eq(iget(a, "runtime"), 900);
    json_decref(a);
    json_decref(r);
    /* 3000 → 4500 exceeds big.q, fits huge.q */
    r = res_of("big.q", 2, 3000, 600);
    a = scale_ok(r, scales, 1, &small_q, fb, 2, &qn);
    ck_assert_str_eq(qn, "huge.q");
    ck_assert_int_eq(iget(a, "memory"), 4500);
    json_decref(a);
    json_decref(r);
    json_decref(scales);
}
END_TEST

START_TEST(test_scale_coerce_last_queue)
{
    json_t *scales = jm_res_default_scales();
    const jm_queue_t fb[] = {huge_q, big_q}; /* last tried is big.q, although huge.q is bigger */
    const char *qn = NULL;
    json_t *r = res_of("small.q", 2, 6000, 600);
    json_t *a = scale_ok(r, scales, 1, &small_q, fb, 2, &qn);
    ck_assert_str_eq(qn, "big.q");
    ck_assert_int_eq(iget(a, "memory"), 4000); /* 9000 clipped into big.q */
    ck_assert_int_eq(iget(a, "runtime"), 900);
    ck_assert_str_eq(json_string_value(json_object_get(a, "queue")), "big.q");
    json_decref(a);
    json_decref(r);
    json_decref(scales);
}
END_TEST

START_TEST(test_scale_no_fallback_clips)
{
    json_t *scales = jm_res_default_scales();
    const char *qn = NULL;
    json_t *r = res_of("small.q", 2, 800, 3000);
    json_t *a = scale_ok(r, scales, 1, &small_q, NULL, 0, &qn);
    ck_assert_str_eq(qn, "small.q");
    ck_assert_int_eq(iget(a, "memory"), 1000);
    ck_assert_int_eq(iget(a, "runtime"), 3600);
    json_t *b = scale_ok(a, scales, 2, &small_q, NULL, 0, &qn); /* stays at the maximum */
    ck_assert_int_eq(iget(b, "memory"), 1000);
    json_decref(b);
    json_decref(a);
    json_decref(r);
    json_decref(scales);
}
END_TEST

START_TEST(test_scale_errors)
{
    jm_err_t err;
    json_t *out = (json_t *)1;
    json_t *r = res_of("small.q", 2, 800, 3000);
    json_t *bad = json_pack("{s:s}", "memory", "double");
    ck_assert_int_eq(jm_res_scale(r, bad, 1, &small_q, NULL, 0, &out, NULL, &err), JM_ERR_INVALID);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(err.msg, "scale for memory"));
    json_decref(bad);
    bad = json_pack("{s:[]}", "memory");
    ck_assert_int_eq(jm_res_scale(r, bad, 1, &small_q, NULL, 0, &out, NULL, &err), JM_ERR_INVALID);
    json_decref(bad);
    bad = json_pack("{s:f}", "memory", -0.5);
    ck_assert_int_eq(jm_res_scale(r, bad, 1, &small_q, NULL, 0, &out, NULL, &err), JM_ERR_INVALID);
    json_decref(bad);
    bad = json_pack("{s:f}", "project", 0.5); /* a string value cannot be scaled */
    ck_assert_int_eq(jm_res_scale(r, bad, 1, &small_q, NULL, 0, &out, NULL, &err), JM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "project: expected a number to scale");
    json_decref(bad);
    json_t *scales = jm_res_default_scales();
    ck_assert_int_eq(jm_res_scale(r, scales, 0, &small_q, NULL, 0, &out, NULL, &err),
                     JM_ERR_INVALID);
    ck_assert_int_eq(jm_res_scale(r, NULL, 1, &small_q, NULL, 0, &out, NULL, &err), JM_ERR_INVALID);
    json_decref(scales);
    json_decref(r);
}
END_TEST

/* ---- normalisation ----------------------------------------------------------------------- */

START_TEST(test_normalise)
{
    jm_err_t err;
    json_t *out = NULL;
    json_t *in = json_pack("{s:s, s:s, s:s, s:s, s:{s:i}}", "queue", "all.q", "memory", "1.5G",
                           "runtime", "01:30:00", "cores", "4", "extra", "k", 1);
    ck_assert_int_eq(jm_res_normalise(in, &out, &err), JM_OK);
    ck_assert_int_eq(iget(out, "memory"), 1536);
    ck_assert_int_eq(iget(out, "runtime"), 5400);
    ck_assert_int_eq(iget(out, "cores"), 4);
    ck_assert_str_eq(json_string_value(json_object_get(out, "queue")), "all.q");
    ck_assert(json_equal(json_object_get(out, "extra"), json_object_get(in, "extra")));
    json_decref(out);
    json_decref(in);
    /* bare numbers: memory in GiB, runtime in seconds; integral real cores */
    in = json_pack("{s:i, s:f, s:f}", "memory", 2, "runtime", 59.5, "cores", 2.0);
    ck_assert_int_eq(jm_res_normalise(in, &out, &err), JM_OK);
    ck_assert_int_eq(iget(out, "memory"), 2048);
    ck_assert_int_eq(iget(out, "runtime"), 60);
    ck_assert_int_eq(iget(out, "cores"), 2);
    json_decref(out);
    json_decref(in);
}
END_TEST

static void norm_bad(const char *json, const char *fragment)
{
    jm_err_t err;
    json_t *out = (json_t *)1;
    json_t *in = json_loads(json, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(in);
    ck_assert_int_eq(jm_res_normalise(in, &out, &err), JM_ERR_INVALID);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err.msg, fragment) != NULL, "%s: \"%s\" lacks \"%s\"", json, err.msg,
                  fragment);
    json_decref(in);
}

START_TEST(test_normalise_bad)
{
    norm_bad("{\"memory\": \"12X\"}", "memory \"12X\": unknown unit X");
    norm_bad("{\"memory\": -1}", "memory: expected");
    norm_bad("{\"memory\": true}", "memory: expected");
    norm_bad("{\"runtime\": \"1:30\"}", "ambiguous");
    norm_bad("{\"runtime\": -3}", "runtime: expected");
    norm_bad("{\"cores\": 1.5}", "cores: expected a whole number");
    norm_bad("{\"cores\": \"four\"}", "cores: expected a whole number");
    norm_bad("{\"queue\": 3}", "queue: expected a string");
    norm_bad("[1]", "resources: expected an object");
}
END_TEST

Suite *jm_resources_suite(void);
Suite *jm_resources_suite(void)
{
    Suite *s = suite_create("resources");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_memory_good);
    tcase_add_test(tc, test_memory_bad);
    tcase_add_test(tc, test_runtime_good);
    tcase_add_test(tc, test_runtime_bad);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_validate);
    tcase_add_test(tc, test_coerce);
    tcase_add_test(tc, test_scale_cumulative);
    tcase_add_test(tc, test_scale_list);
    tcase_add_test(tc, test_scale_fallback_order);
    tcase_add_test(tc, test_scale_coerce_last_queue);
    tcase_add_test(tc, test_scale_no_fallback_clips);
    tcase_add_test(tc, test_scale_errors);
    tcase_add_test(tc, test_normalise);
    tcase_add_test(tc, test_normalise_bad);
    suite_add_tcase(s, tc);
    return s;
}
