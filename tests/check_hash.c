/* Unit tests for src/fsm/hash.c: pinned known answers, order independence, framing, ids. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "jobmon/hash.h"

static const char *const k_node_args[] = {"location_id", "sex"};
static const char *const k_task_args[] = {"release"};
static const char *const k_op_args[] = {"python"};

static jm_hash_t sample_tv(void)
{
    return jm_hash_template_version("tmpl", "{python} run {location_id} {sex} {release}",
                                    k_node_args, 2, k_task_args, 1, k_op_args, 1);
}

static jm_hash_t sample_node(void)
{
    jm_kv_t nk[] = {{"location_id", "6"}, {"sex", "1"}};
    return jm_hash_node(sample_tv(), nk, 2);
}

static jm_hash_t sample_task(void)
{
    jm_kv_t tk[] = {{"release", "16"}};
    return jm_hash_task(sample_node(), tk, 1);
}

static void ck_hex(jm_hash_t h, const char *expect)
{
    char buf[JM_HASH_HEX_LEN + 1];
    jm_hash_hex(h, buf);
    ck_assert_str_eq(buf, expect);
}

/* Two nodes "a" and "b" of the command pseudo-template, in ascending order. */
static void two_nodes(jm_hash_t *lo, jm_hash_t *hi)
{
    *lo = jm_hash_command_node("a");
    *hi = jm_hash_command_node("b");
    if (jm_hash_cmp(lo, hi) > 0) {
        jm_hash_t t = *lo;
        *lo = *hi;
        *hi = t;
    }
}

static jm_hash_t sample_dag(void)
{
    jm_hash_t a, b;
    two_nodes(&a, &b);
    jm_hash_t ds[] = {b};
    jm_dag_hasher_t *dh = jm_dag_hasher_new();
    ck_assert_int_eq(jm_dag_hasher_add(dh, a, ds, 1), JM_OK);
    ck_assert_int_eq(jm_dag_hasher_add(dh, b, NULL, 0), JM_OK);
    jm_hash_t d = jm_dag_hasher_digest(dh);
    jm_dag_hasher_destroy(dh);
    return d;
}

/* Pinned values: if any of these changes, the framing changed and every stored id breaks. */
START_TEST(test_known_answers)
{
    ck_hex(sample_tv(), "f34fa7457426e1da27db8625f2fdcb3f");
    ck_hex(sample_node(), "21f5cbd2f33a32e9aa4a2ebacc017feb");
    ck_hex(sample_task(), "4af35f5289d03d91da5df62e0c5c5365");
    ck_hex(jm_hash_command_task("echo hi"), "06b2ac12871588318ee428433184e3c2");
    ck_hex(jm_hash_workflow_args("wf-args"), "9d81a1dc000c5b68b7e31ad76d831848");
    jm_hash_t ts[] = {sample_task(), jm_hash_command_task("echo hi")};
    jm_hash_t set = jm_hash_task_set(ts, 2);
    ck_hex(set, "d07752504803f1f135f10815342d3a23");
    jm_hash_t dag = sample_dag();
    ck_hex(dag, "24b1207cca1a9befa45afdbcb4c00798");
    int64_t wf = jm_hash_workflow_id("tool", jm_hash_workflow_args("wf-args"), set, dag);
    ck_assert_int_eq(wf, 2951805931950928331LL);
    int64_t tid = jm_hash_task_id(wf, sample_task());
    ck_assert_int_eq(tid, 8665355495792398960LL);
    ck_assert_int_eq(jm_hash_array_id(wf, sample_tv()), 8327601103358154869LL);
    ck_assert_int_eq(jm_hash_ti_id(tid, 1), 4216437853826871667LL);
}
END_TEST

/* The documented framing, rebuilt by hand: tag 'A', 64-bit LE length, bytes. */
START_TEST(test_framing_by_hand)
{
    unsigned char buf[1 + 8 + 7] = {'A', 7, 0, 0, 0, 0, 0, 0, 0};
    memcpy(buf + 9, "wf-args", 7);
    XXH128_hash_t d = XXH3_128bits(buf, sizeof(buf));
    jm_hash_t h = jm_hash_workflow_args("wf-args");
    ck_assert(h.hi == d.high64 && h.lo == d.low64);
}
END_TEST

START_TEST(test_arg_order_irrelevant)
{
    const char *const nodes_rev[] = {"sex", "location_id"};
    jm_hash_t tv2 = jm_hash_template_version("tmpl", "{python} run {location_id} {sex} {release}",
                                             nodes_rev, 2, k_task_args, 1, k_op_args, 1);
    ck_assert(jm_hash_eq(sample_tv(), tv2));
    jm_kv_t rev[] = {{"sex", "1"}, {"location_id", "6"}};
    ck_assert(jm_hash_eq(sample_node(), jm_hash_node(sample_tv(), rev, 2)));
    jm_kv_t t1[] = {{"a", "1"}, {"b", "2"}};
    jm_kv_t t2[] = {{"b", "2"}, {"a", "1"}};
    ck_assert(jm_hash_eq(jm_hash_task(sample_node(), t1, 2), jm_hash_task(sample_node(), t2, 2)));
    /* the caller's arrays are not reordered */
    ck_assert_str_eq(rev[0].name, "sex");
    ck_assert_str_eq(nodes_rev[0], "sex");
}
END_TEST

START_TEST(test_task_order_irrelevant)
{
    jm_hash_t a[] = {jm_hash_command_task("x"), jm_hash_command_task("y"),
                     jm_hash_command_task("z")};
    jm_hash_t b[] = {a[2], a[0], a[1]};
    ck_assert(jm_hash_eq(jm_hash_task_set(a, 3), jm_hash_task_set(b, 3)));
    ck_assert(!jm_hash_eq(jm_hash_task_set(a, 3), jm_hash_task_set(a, 2)));
}
END_TEST

START_TEST(test_framing_separates_fields)
{
    jm_kv_t ab_c[] = {{"ab", "c"}};
    jm_kv_t a_bc[] = {{"a", "bc"}};
    jm_hash_t n = sample_node();
    ck_assert(!jm_hash_eq(jm_hash_task(n, ab_c, 1), jm_hash_task(n, a_bc, 1)));
    const char *const l1[] = {"ab", "c"};
    const char *const l2[] = {"a", "bc"};
    ck_assert(!jm_hash_eq(jm_hash_template_version("t", "c", l1, 2, NULL, 0, NULL, 0),
                          jm_hash_template_version("t", "c", l2, 2, NULL, 0, NULL, 0)));
    /* same names, moved from node args to task args: a different template version */
    ck_assert(!jm_hash_eq(jm_hash_template_version("t", "c", l1, 2, NULL, 0, NULL, 0),
                          jm_hash_template_version("t", "c", l1, 1, l1 + 1, 1, NULL, 0)));
    ck_assert(!jm_hash_eq(jm_hash_template_version("ab", "c", NULL, 0, NULL, 0, NULL, 0),
                          jm_hash_template_version("a", "bc", NULL, 0, NULL, 0, NULL, 0)));
    /* same bytes, different kind of hash */
    ck_assert(!jm_hash_eq(jm_hash_node(n, NULL, 0), jm_hash_task(n, NULL, 0)));
    ck_assert(!jm_hash_eq(jm_hash_command_task("a"), jm_hash_command_task("b")));
}
END_TEST

START_TEST(test_op_args_change_template_version)
{
    /* op args enter the template version only (nodes and tasks hash the version) */
    const char *const other_op[] = {"python3"};
    jm_hash_t tv2 = jm_hash_template_version("tmpl", "{python} run {location_id} {sex} {release}",
                                             k_node_args, 2, k_task_args, 1, other_op, 1);
    ck_assert(!jm_hash_eq(sample_tv(), tv2));
}
END_TEST

START_TEST(test_ids_positive)
{
    ck_assert_int_eq(jm_hash_to_id((jm_hash_t){0, 0}), 1);
    ck_assert_int_eq(jm_hash_to_id((jm_hash_t){0, 1ULL << 63}), 1);
    ck_assert_int_eq(jm_hash_to_id((jm_hash_t){0, UINT64_MAX}), INT64_MAX);
    int64_t tid = jm_hash_task_id(42, sample_task());
    for (int attempt = 1; attempt <= 200; attempt++) {
        ck_assert_int_gt(jm_hash_ti_id(tid, attempt), 0);
        ck_assert_int_gt(jm_hash_task_id(attempt, sample_task()), 0);
    }
    ck_assert_int_ne(jm_hash_ti_id(tid, 1), jm_hash_ti_id(tid, 2));
}
END_TEST

START_TEST(test_hex_round_trip)
{
    char buf[JM_HASH_HEX_LEN + 1];
    jm_hash_t h = sample_task(), back = {0, 0};
    jm_hash_hex(h, buf);
    ck_assert_int_eq(strlen(buf), 32);
    ck_assert_int_eq(jm_hash_parse_hex(buf, &back), JM_OK);
    ck_assert(jm_hash_eq(h, back));
    ck_assert_int_eq(jm_hash_parse_hex("0123456789ABCDEF0123456789abcdef", &back), JM_OK);
    ck_assert(back.hi == 0x0123456789abcdefULL && back.lo == 0x0123456789abcdefULL);
    ck_assert_int_eq(jm_hash_parse_hex("0123", &back), JM_ERR_INVALID);
    ck_assert_int_eq(jm_hash_parse_hex("0123456789abcdef0123456789abcdeg", &back), JM_ERR_INVALID);
    ck_assert_int_eq(jm_hash_parse_hex("0123456789abcdef0123456789abcdef0", &back), JM_ERR_INVALID);
    ck_assert_int_eq(jm_hash_parse_hex(NULL, &back), JM_ERR_INVALID);
}
END_TEST

START_TEST(test_cmp_order)
{
    jm_hash_t a = {1, 5}, b = {1, 6}, c = {2, 0};
    ck_assert_int_lt(jm_hash_cmp(&a, &b), 0);
    ck_assert_int_lt(jm_hash_cmp(&b, &c), 0);
    ck_assert_int_gt(jm_hash_cmp(&c, &a), 0);
    ck_assert_int_eq(jm_hash_cmp(&a, &a), 0);
}
END_TEST

START_TEST(test_dag_rejects_out_of_order)
{
    jm_hash_t a, b;
    two_nodes(&a, &b);
    jm_dag_hasher_t *dh = jm_dag_hasher_new();
    ck_assert_int_eq(jm_dag_hasher_add(dh, b, NULL, 0), JM_OK);
    ck_assert_int_eq(jm_dag_hasher_add(dh, a, NULL, 0), JM_ERR_INVALID);
    ck_assert_int_eq(jm_dag_hasher_add(dh, b, NULL, 0), JM_ERR_INVALID); /* duplicate */
    jm_dag_hasher_destroy(dh);
    jm_dag_hasher_destroy(NULL);
}
END_TEST

START_TEST(test_dag_downstream_order_and_shape)
{
    jm_hash_t a, b;
    two_nodes(&a, &b);
    jm_hash_t c = jm_hash_command_node("c"), d = jm_hash_command_node("d");
    jm_hash_t ds1[] = {c, d}, ds2[] = {d, c};
    jm_dag_hasher_t *h1 = jm_dag_hasher_new(), *h2 = jm_dag_hasher_new();
    ck_assert_int_eq(jm_dag_hasher_add(h1, a, ds1, 2), JM_OK);
    ck_assert_int_eq(jm_dag_hasher_add(h2, a, ds2, 2), JM_OK);
    ck_assert(jm_hash_eq(jm_dag_hasher_digest(h1), jm_dag_hasher_digest(h2)));
    /* an edge moved from a to b changes the dag */
    jm_dag_hasher_t *h3 = jm_dag_hasher_new(), *h4 = jm_dag_hasher_new();
    jm_hash_t e1[] = {c}, e2[] = {c};
    ck_assert_int_eq(jm_dag_hasher_add(h3, a, e1, 1), JM_OK);
    ck_assert_int_eq(jm_dag_hasher_add(h3, b, NULL, 0), JM_OK);
    ck_assert_int_eq(jm_dag_hasher_add(h4, a, NULL, 0), JM_OK);
    ck_assert_int_eq(jm_dag_hasher_add(h4, b, e2, 1), JM_OK);
    ck_assert(!jm_hash_eq(jm_dag_hasher_digest(h3), jm_dag_hasher_digest(h4)));
    jm_dag_hasher_destroy(h1);
    jm_dag_hasher_destroy(h2);
    jm_dag_hasher_destroy(h3);
    jm_dag_hasher_destroy(h4);
}
END_TEST

Suite *jm_hash_suite(void);
Suite *jm_hash_suite(void)
{
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_known_answers);
    tcase_add_test(tc, test_framing_by_hand);
    tcase_add_test(tc, test_arg_order_irrelevant);
    tcase_add_test(tc, test_task_order_irrelevant);
    tcase_add_test(tc, test_framing_separates_fields);
    tcase_add_test(tc, test_op_args_change_template_version);
    tcase_add_test(tc, test_ids_positive);
    tcase_add_test(tc, test_hex_round_trip);
    tcase_add_test(tc, test_cmp_order);
    tcase_add_test(tc, test_dag_rejects_out_of_order);
    tcase_add_test(tc, test_dag_downstream_order_and_shape);
    suite_add_tcase(s, tc);
    return s;
}
