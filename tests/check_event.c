/*
 * Unit tests for the event codec: names, one good sample per type (round trip), the bad corpus
 * (tests/data/events/bad/EXPECTED.tsv: file, error kind, message fragment), construction and
 * validation, accessors, and the committed JSON Schemas against the rule table.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobmon/event.h"
#include "jobmon/jmtime.h"
#include "producer/event_int.h"

#define EVENTS_DIR  JM_TEST_DATADIR "/events"
#define SCHEMAS_DIR JM_TEST_DATADIR "/../../schemas/events"

/* Whole file into a new buffer (NUL-terminated, caller frees); NULL if absent. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap)
            buf = jm_realloc(buf, cap = (cap + 4096) * 2);
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static jm_event_t *decode_file(const char *path)
{
    size_t len;
    char *buf = slurp(path, &len);
    jm_event_t *ev = NULL;
    jm_err_t err;
    ck_assert_msg(buf != NULL, "cannot read %s", path);
    jm_rc_t rc = jm_event_decode(buf, len, &ev, &err);
    ck_assert_msg(rc == JM_OK, "%s: %s", path, err.msg);
    free(buf);
    return ev;
}

/* Names of the regular files in dir ending in `suffix`, one per call of `fn`. */
static size_t each_file(const char *dir, const char *suffix, void (*fn)(const char *name))
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0, sl = strlen(suffix);
    ck_assert_msg(d != NULL, "cannot open %s", dir);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < sl || strcmp(de->d_name + l - sl, suffix) != 0)
            continue;
        fn(de->d_name);
        n++;
    }
    closedir(d);
    return n;
}

START_TEST(test_names)
{
    jm_event_type_t t;
    jm_event_error_t k;
    jm_producer_kind_t p;
    for (int i = 0; i < JM_EV__CNT; i++) {
        ck_assert_int_eq(jm_event_specs[i].type, i);
        ck_assert_int_eq(jm_event_type_parse(jm_event_type_name(i), &t), JM_OK);
        ck_assert_int_eq(t, i);
    }
    for (int i = 0; i < JM_EVE__CNT; i++) {
        ck_assert_int_eq(jm_event_error_parse(jm_event_error_name(i), &k), JM_OK);
        ck_assert_int_eq(k, i);
    }
    for (int i = 0; i < JM_PRODUCER__CNT; i++) {
        ck_assert_int_eq(jm_producer_kind_parse(jm_producer_kind_name(i), &p), JM_OK);
        ck_assert_int_eq(p, i);
    }
    ck_assert_int_eq(jm_event_type_parse("ti.nope", &t), JM_ERR_NOT_FOUND);
    ck_assert_str_eq(jm_event_type_name(JM_EV__CNT), "?");
    ck_assert_str_eq(jm_event_type_name(JM_EV_TI_DONE), "ti.done");
}
END_TEST

START_TEST(test_good_round_trip)
{
    char path[512];
    size_t len1, len2;
    json_error_t je;
    snprintf(path, sizeof(path), "%s/good/%s.json", EVENTS_DIR, jm_event_type_name(_i));
    jm_event_t *ev = decode_file(path), *ev2 = NULL;
    ck_assert_int_eq(ev->type, _i);
    ck_assert_int_eq(ev->workflow_id, 812734612);
    ck_assert_str_eq(ev->id, "0b7c6f0e-3c1e-4d8e-9a55-2f6f1c9e7a10");
    ck_assert_int_eq(ev->ts_ms, 1795617167123LL);
    ck_assert_int_eq(ev->producer_kind, jm_event_specs[_i].publisher);

    char *s1 = jm_event_encode(ev, &len1);
    ck_assert_int_eq(jm_event_decode(s1, len1, &ev2, NULL), JM_OK);
    char *s2 = jm_event_encode(ev2, &len2);
    ck_assert_str_eq(s1, s2);
    ck_assert_uint_eq(len1, len2);

    json_t *file = json_load_file(path, 0, &je);
    ck_assert_ptr_nonnull(file);
    ck_assert(json_equal(json_object_get(file, "payload"), ev2->payload));
    json_decref(file);
    free(s1);
    free(s2);
    jm_event_destroy(ev);
    jm_event_destroy(ev2);
}
END_TEST

static void good_is_a_type(const char *name)
{
    char type[128];
    jm_event_type_t t;
    snprintf(type, sizeof(type), "%.*s", (int)(strlen(name) - 5), name);
    ck_assert_msg(jm_event_type_parse(type, &t) == JM_OK, "good/%s is not an event type", name);
}

START_TEST(test_good_one_per_type)
{
    /* Every type has a sample (test_good_round_trip opens each) and every sample is a type. */
    ck_assert_uint_eq(each_file(EVENTS_DIR "/good", ".json", good_is_a_type), JM_EV__CNT);
}
END_TEST

static int expected_count;
static char expected_names[128][96];

static void check_bad_row(const char *file, const char *kind_name, const char *fragment)
{
    char path[1536];
    size_t len;
    jm_event_t *ev = NULL;
    jm_event_error_t kind = JM_EVE_NONE, want;
    jm_err_t err;
    snprintf(path, sizeof(path), "%s/bad/%s", EVENTS_DIR, file);
    char *buf = slurp(path, &len);
    ck_assert_msg(buf != NULL, "cannot read %s", path);
    ck_assert_msg(jm_event_error_parse(kind_name, &want) == JM_OK, "%s: kind %s", file, kind_name);
    jm_rc_t rc = jm_event_decode_ex(buf, len, &ev, &kind, &err);
    ck_assert_msg(rc == JM_ERR_INVALID, "%s: decoded", file);
    ck_assert_ptr_null(ev);
    ck_assert_msg(kind == want, "%s: kind %s, want %s (%s)", file, jm_event_error_name(kind),
                  kind_name, err.msg);
    ck_assert_msg(strstr(err.msg, fragment) != NULL, "%s: message \"%s\" lacks \"%s\"", file,
                  err.msg, fragment);
    free(buf);
}

START_TEST(test_bad_corpus)
{
    char line[1024];
    FILE *f = fopen(EVENTS_DIR "/bad/EXPECTED.tsv", "r");
    ck_assert_ptr_nonnull(f);
    expected_count = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *kind = strchr(line, '\t');
        char *frag = kind ? strchr(kind + 1, '\t') : NULL;
        ck_assert_msg(frag != NULL, "EXPECTED.tsv: bad line \"%s\"", line);
        *kind++ = '\0';
        *frag++ = '\0';
        check_bad_row(line, kind, frag);
        ck_assert_int_lt(expected_count, 128);
        snprintf(expected_names[expected_count++], sizeof(expected_names[0]), "%.95s", line);
    }
    fclose(f);
    ck_assert_int_ge(expected_count, 30);
}
END_TEST

static void bad_is_listed(const char *name)
{
    for (int i = 0; i < expected_count; i++)
        if (strcmp(expected_names[i], name) == 0)
            return;
    ck_abort_msg("bad/%s is not in EXPECTED.tsv", name);
}

START_TEST(test_bad_all_listed)
{
    /* Rebuild the list, then every file in bad/ must be in it. */
    char line[1024];
    FILE *f = fopen(EVENTS_DIR "/bad/EXPECTED.tsv", "r");
    ck_assert_ptr_nonnull(f);
    expected_count = 0;
    while (fgets(line, sizeof(line), f) && expected_count < 128)
        if (line[0] != '#')
            snprintf(expected_names[expected_count++], sizeof(expected_names[0]), "%.*s",
                     (int)strcspn(line, "\t"), line);
    fclose(f);
    ck_assert_uint_eq(each_file(EVENTS_DIR "/bad", ".json", bad_is_listed), (size_t)expected_count);
}
END_TEST

START_TEST(test_limits_in_code)
{
    /* Inputs too big to keep as files: the limits hold one byte past them. */
    jm_event_t *ev = NULL;
    jm_event_error_t kind;
    char *big = jm_calloc(1, JM_EVENT_MAX_BYTES + 2);
    memset(big, ' ', JM_EVENT_MAX_BYTES + 1);
    ck_assert_int_eq(jm_event_decode_ex(big, JM_EVENT_MAX_BYTES + 1, &ev, &kind, NULL),
                     JM_ERR_INVALID);
    ck_assert_int_eq(kind, JM_EVE_TOO_LARGE);
    ck_assert_int_eq(jm_event_decode_ex(big, 0, &ev, &kind, NULL), JM_ERR_INVALID);
    ck_assert_int_eq(kind, JM_EVE_SYNTAX);
    /* Not NUL-terminated input: decode reads only len bytes. */
    memcpy(big, "{\"v\":1}", 7);
    memset(big + 7, 'x', 16);
    ck_assert_int_eq(jm_event_decode_ex(big, 7, &ev, &kind, NULL), JM_ERR_INVALID);
    ck_assert_int_eq(kind, JM_EVE_MISSING);
    free(big);
}
END_TEST

START_TEST(test_new_validate_encode)
{
    jm_err_t err;
    jm_event_error_t kind;
    jm_event_t *back = NULL;
    size_t len;
    int64_t before = jm_time_wall_ms();
    jm_event_set_producer(JM_PRODUCER_WORKER);
    jm_event_t *ev =
        jm_event_new(JM_EV_TI_HEARTBEAT, 42,
                     json_pack("{s:I, s:i}", "ti_id", (json_int_t)7, "next_report_s", 90));
    ck_assert_int_eq(strlen(ev->id), 36);
    ck_assert_int_ge(ev->ts_ms, before);
    ck_assert_int_eq(ev->producer_kind, JM_PRODUCER_WORKER);
    ck_assert_int_eq(jm_event_validate(ev, &kind, &err), JM_OK);
    char *s = jm_event_encode(ev, &len);
    ck_assert_int_eq(jm_event_decode(s, len, &back, &err), JM_OK);
    ck_assert_str_eq(back->id, ev->id);
    ck_assert_int_eq(back->ts_ms, ev->ts_ms);
    ck_assert_int_eq(back->producer_pid, ev->producer_pid);
    ck_assert_str_eq(back->producer_host, ev->producer_host);
    ck_assert_int_eq(jm_ev_int(back->payload, "ti_id"), 7);
    free(s);
    jm_event_destroy(back);

    json_object_del(ev->payload, "next_report_s");
    ck_assert_int_eq(jm_event_validate(ev, &kind, &err), JM_ERR_INVALID);
    ck_assert_int_eq(kind, JM_EVE_MISSING);
    ck_assert_str_eq(err.msg, "payload.next_report_s: missing");
    ev->workflow_id = 0;
    ck_assert_int_eq(jm_event_validate(ev, &kind, &err), JM_ERR_INVALID);
    ck_assert_int_eq(kind, JM_EVE_RANGE);
    jm_event_destroy(ev);
    jm_event_destroy(NULL);

    ev = jm_event_new(JM_EV_RUN_STOP, 1, NULL); /* NULL payload = {} */
    ck_assert_int_eq(jm_event_validate(ev, &kind, &err), JM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "payload.run_id: missing");
    jm_event_destroy(ev);
}
END_TEST

/* New ids are UUID version 7: the event's time in ms, then random bits; ids never decrease. */
START_TEST(test_new_ids_time_ordered)
{
    char prefix[32];
    jm_event_t *a = jm_event_new(JM_EV_RUN_STOP, 1, NULL),
               *b = jm_event_new(JM_EV_RUN_STOP, 1, NULL);
    for (int k = 0; k < 2; k++) {
        const jm_event_t *ev = k ? b : a;
        ck_assert_int_eq(ev->id[14], '7');
        ck_assert_ptr_nonnull(strchr("89ab", ev->id[19]));
        snprintf(prefix, sizeof(prefix), "%08llx-%04llx", (unsigned long long)ev->ts_ms >> 16,
                 (unsigned long long)ev->ts_ms & 0xffff);
        ck_assert_int_eq(strncmp(ev->id, prefix, 13), 0);
    }
    ck_assert_str_ne(a->id, b->id);
    ck_assert_int_le(strncmp(a->id, b->id, 13), 0);
    jm_event_destroy(a);
    jm_event_destroy(b);
}
END_TEST

START_TEST(test_accessors)
{
    jm_event_t *ev = decode_file(EVENTS_DIR "/good/workflow.bind_tasks.json");
    json_t *tasks = jm_ev_get(ev->payload, "tasks");
    json_t *t0 = json_array_get(tasks, 0), *t1 = json_array_get(tasks, 1);
    ck_assert_int_eq(jm_ev_int(t0, "task_id"), 101);
    ck_assert_str_eq(jm_ev_str(t0, "template"), "model");
    ck_assert_ptr_null(jm_ev_str(t1, "template"));
    ck_assert_int_eq(jm_ev_int_or0(t1, "array_id"), 0);
    ck_assert_int_eq(jm_ev_int_or0(t0, "array_id"), 4411);
    jm_event_destroy(ev);
    ev = decode_file(EVENTS_DIR "/good/run.start.json");
    ck_assert_int_eq(jm_ev_bool(ev->payload, "fail_fast"), 0);
    jm_event_destroy(ev);
}
END_TEST

/* The operator events carry the operator's user name (reference §3.11 ownership checks). */
START_TEST(test_operator_user)
{
    jm_err_t err;
    jm_event_error_t kind;
    jm_event_t *ev = decode_file(EVENTS_DIR "/good/workflow.reset.json");
    ck_assert_str_eq(jm_ev_str(ev->payload, "user"), "alice");
    jm_event_destroy(ev);
    ev = decode_file(EVENTS_DIR "/good/task.set_status.json");
    ck_assert_str_eq(jm_ev_str(ev->payload, "user"), "alice");
    jm_event_destroy(ev);

    /* as the CLI builds them: without the user they do not validate */
    ev = jm_event_new(JM_EV_WORKFLOW_RESET, 42, json_pack("{s:b}", "partial", 0));
    ck_assert_int_eq(jm_event_validate(ev, &kind, &err), JM_ERR_INVALID);
    ck_assert_int_eq(kind, JM_EVE_MISSING);
    ck_assert_str_eq(err.msg, "payload.user: missing");
    json_object_set_new(ev->payload, "user", json_string("alice"));
    ck_assert_int_eq(jm_event_validate(ev, &kind, &err), JM_OK);
    jm_event_destroy(ev);
    ev = jm_event_new(
        JM_EV_TASK_SET_STATUS, 42,
        json_pack("{s:[i],s:s,s:b,s:s}", "task_ids", 7, "status", "G", "recursive", 0, "user", ""));
    ck_assert_int_eq(jm_event_validate(ev, &kind, &err), JM_ERR_INVALID);
    ck_assert_int_eq(kind, JM_EVE_TOO_SHORT);
    ck_assert_str_eq(err.msg, "payload.user: string of 0 bytes under 1");
    jm_event_destroy(ev);
}
END_TEST

static json_t *required_of(const json_t *obj)
{
    return json_object_get(obj, "required");
}

START_TEST(test_schema_files_match_table)
{
    char path[512];
    json_error_t je;
    snprintf(path, sizeof(path), "%s/%s.json", SCHEMAS_DIR, jm_event_type_name(_i));
    json_t *file = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    ck_assert_msg(file != NULL, "%s: %s (run `make schemas`)", path, je.text);
    json_t *gen = jm_event_schema(_i);
    /* The payload's required list equals the table ... */
    json_t *payload = json_object_get(json_object_get(file, "properties"), "payload");
    json_t *req = required_of(payload);
    const jm_field_spec_t *f = jm_event_specs[_i].payload;
    ck_assert_uint_eq(json_array_size(req), jm_field_count(f));
    for (size_t k = 0; k < json_array_size(req); k++)
        ck_assert_str_eq(json_string_value(json_array_get(req, k)), f[k].name);
    /* ... and the whole file equals what the table generates today. */
    ck_assert_msg(json_equal(file, gen), "%s is stale: run `make schemas`", path);
    json_decref(gen);
    json_decref(file);
}
END_TEST

Suite *jm_event_suite(void);
Suite *jm_event_suite(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, test_names);
    tcase_add_loop_test(tc, test_good_round_trip, 0, JM_EV__CNT);
    tcase_add_test(tc, test_good_one_per_type);
    tcase_add_test(tc, test_bad_corpus);
    tcase_add_test(tc, test_bad_all_listed);
    tcase_add_test(tc, test_limits_in_code);
    tcase_add_test(tc, test_new_validate_encode);
    tcase_add_test(tc, test_new_ids_time_ordered);
    tcase_add_test(tc, test_accessors);
    tcase_add_test(tc, test_operator_user);
    tcase_add_loop_test(tc, test_schema_files_match_table, 0, JM_EV__CNT);
    suite_add_tcase(s, tc);
    return s;
}
