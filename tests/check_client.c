/*
 * check_client.c — unit tests of the client model: templates, the workflow file (a corpus of bad
 * files with expected messages, good files and the examples), precedence of defaults, identity
 * stability, validation errors and the bind event stream (without Kafka).
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "jobmon/jobmon.h"
#include "jobmon/log.h"

#ifndef JM_EXAMPLES_DIR
#define JM_EXAMPLES_DIR JM_TEST_DATADIR "/../../examples"
#endif

static jm_workflow_t *load(const char *dir, const char *file, jm_err_t *err)
{
    char path[8192];
    snprintf(path, sizeof(path), "%.4000s/%.4000s", dir, file);
    return jm_workflow_load_file(path, err);
}

/* ---- the corpus of bad files ---- */

START_TEST(test_bad_files)
{
    char path[1024], line[4096];
    snprintf(path, sizeof(path), "%s/wf/bad/EXPECTED.tsv", JM_TEST_DATADIR);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int n = 0;
    jm_log_set_level(JM_LOG_ERROR);
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        ck_assert_ptr_nonnull(tab);
        *tab = '\0';
        const char *file = line, *frag = tab + 1;
        jm_err_t err = {0};
        jm_workflow_t *wf = load(JM_TEST_DATADIR "/wf/bad", file, &err);
        if (wf) {
            jm_rc_t rc = jm_workflow_validate(wf, &err);
            ck_assert_msg(rc == JM_ERR_INVALID, "%s: validated", file);
            jm_workflow_destroy(wf);
        }
        ck_assert_int_eq(err.rc, JM_ERR_INVALID);
        ck_assert_msg(strstr(err.msg, frag), "%s: got \"%s\", want \"%s\"", file, err.msg, frag);
        ck_assert_int_eq(jm_rc_to_exit(err.rc), JM_EXIT_USAGE);
        n++;
    }
    fclose(f);
    ck_assert_int_ge(n, 20);
    /* every bad file is listed */
    DIR *d = opendir(JM_TEST_DATADIR "/wf/bad");
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)))
        files += strstr(de->d_name, ".json") != NULL;
    closedir(d);
    ck_assert_int_eq(files, n);
}
END_TEST

static void load_validate_dir(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".json"))
            continue;
        jm_err_t err = {0};
        jm_workflow_t *wf = load(dir, de->d_name, &err);
        ck_assert_msg(wf != NULL, "%s: %s", de->d_name, err.msg);
        ck_assert_msg(jm_workflow_validate(wf, &err) == JM_OK, "%s: %s", de->d_name, err.msg);
        jm_workflow_destroy(wf);
        n++;
    }
    closedir(d);
    ck_assert_int_gt(n, 0);
}

START_TEST(test_good_files)
{
    load_validate_dir(JM_TEST_DATADIR "/wf/good");
}
END_TEST

START_TEST(test_examples)
{
    load_validate_dir(JM_EXAMPLES_DIR);
    jm_err_t err;
    struct {
        const char *file;
        size_t tasks;
    } want[] = {{"one_task.json", 1},      {"diamond.json", 4},    {"fork_join_100.json", 100},
                {"array_1000.json", 1000}, {"retry_once.json", 1}, {"memory_grow.json", 1}};
    for (size_t i = 0; i < JM_ARRAY_LEN(want); i++) {
        jm_workflow_t *wf = load(JM_EXAMPLES_DIR, want[i].file, &err);
        ck_assert_msg(wf != NULL, "%s: %s", want[i].file, err.msg);
        ck_assert_uint_eq(jm_workflow_task_count(wf), want[i].tasks);
        jm_workflow_destroy(wf);
    }
    /* memory_grow asks for 64 MiB with scale 1.0 */
    jm_workflow_t *wf = load(JM_EXAMPLES_DIR, "memory_grow.json", &err);
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_OK);
    char *res = jm_task_resources_json(jm_workflow_task(wf, 0));
    ck_assert_str_eq(res, "{\"cores\":1,\"memory\":64,\"queue\":\"null.q\",\"runtime\":300}");
    free(res);
    ck_assert_str_eq(jm_task_cluster(jm_workflow_task(wf, 0)), "multiprocess");
    jm_workflow_destroy(wf);
}
END_TEST

/* ---- templates ---- */

START_TEST(test_template_rules)
{
    jm_err_t err;
    jm_tool_t *tool = jm_tool_new("t");
    const char *node[] = {"a"}, *task[] = {"b"}, *op[] = {"c"};
    jm_template_t *tt =
        jm_template_new(tool, "ok", "x {a} {{lit}} {b} {c} {a}", node, 1, task, 1, op, 1, &err);
    ck_assert_ptr_nonnull(tt);
    ck_assert_ptr_null(jm_template_new(tool, "ok", "x", NULL, 0, NULL, 0, NULL, 0, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "already defined"));
    ck_assert_ptr_null(jm_template_new(tool, "t2", "x {a}", NULL, 0, NULL, 0, NULL, 0, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "placeholder {a} is not declared"));
    ck_assert_ptr_null(jm_template_new(tool, "t3", "x }", NULL, 0, NULL, 0, NULL, 0, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "unmatched '}'"));
    ck_assert_ptr_null(jm_template_new(tool, "t4", "x {a", node, 1, NULL, 0, NULL, 0, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "not closed"));
    ck_assert_ptr_null(jm_template_new(tool, "9t", "x", NULL, 0, NULL, 0, NULL, 0, &err));

    jm_workflow_t *wf = jm_workflow_new(tool, "args");
    jm_task_t *t =
        jm_workflow_add_task(wf, tt, (jm_kv_t[]){{"c", "-v"}, {"a", "1"}, {"b", "r/7 x"}}, 3, &err);
    ck_assert_ptr_nonnull(t);
    char *cmd = jm_task_command(t);
    ck_assert_str_eq(cmd, "x 1 {lit} r/7 x -v 1");
    free(cmd);
    ck_assert_str_eq(jm_task_name(t), "ok_a-1");
    ck_assert_ptr_null(jm_workflow_add_task(wf, tt, (jm_kv_t[]){{"a", "1"}}, 1, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "missing arg \"b\""));
    ck_assert_ptr_null(jm_workflow_add_task(
        wf, tt, (jm_kv_t[]){{"a", "1"}, {"b", "1"}, {"c", "1"}, {"d", "1"}}, 4, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown arg \"d\""));
    ck_assert_int_eq(jm_task_set_name(t, "has space", &err), JM_ERR_INVALID);
    jm_workflow_destroy(wf);
    jm_tool_destroy(tool);
}
END_TEST

START_TEST(test_default_names)
{
    jm_err_t err;
    jm_tool_t *tool = jm_tool_new("t");
    const char *node[] = {"loc", "path"};
    jm_template_t *tt =
        jm_template_new(tool, "tt", "x {loc} {path}", node, 2, NULL, 0, NULL, 0, &err);
    jm_workflow_t *wf = jm_workflow_new(tool, "a");
    char longv[600];
    memset(longv, 'v', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    jm_task_t *t =
        jm_workflow_add_task(wf, tt, (jm_kv_t[]){{"loc", "a b"}, {"path", "/x/'y\""}}, 2, &err);
    ck_assert_str_eq(jm_task_name(t), "tt_loc-a_b_path-_x__y_");
    t = jm_workflow_add_task(wf, tt, (jm_kv_t[]){{"loc", "2"}, {"path", longv}}, 2, &err);
    ck_assert_uint_eq(strlen(jm_task_name(t)), JM_TASK_NAME_DEFAULT_MAX);
    ck_assert_ptr_eq(jm_workflow_find_task(wf, "tt_loc-a_b_path-_x__y_"), jm_workflow_task(wf, 0));
    jm_workflow_destroy(wf);
    jm_tool_destroy(tool);
}
END_TEST

/* ---- identity ---- */

typedef struct {
    jm_tool_t *tool;
    jm_workflow_t *wf;
} built_t;

/* A small DAG: prep -> array(loc 1..3) -> join, with task and op args; `rev` reverses the order
 * of creation, of args and of edges; `op` changes the op arg value. */
static built_t build(int rev, const char *op)
{
    jm_err_t err;
    built_t b;
    b.tool = jm_tool_new("idtool");
    const char *node[] = {"loc"}, *task[] = {"rel"}, *ops[] = {"v"};
    jm_template_t *tt =
        jm_template_new(b.tool, "work", "w {loc} {rel} {v}", node, 1, task, 1, ops, 1, &err);
    ck_assert_ptr_nonnull(tt);
    b.wf = jm_workflow_new(b.tool, "same-args");
    jm_task_t *prep = NULL, *join = NULL, *w[3];
    const char *locs[] = {"1", "2", "3"};
    if (!rev)
        prep = jm_workflow_add_command(b.wf, "prep", &err);
    for (int k = 0; k < 3; k++) {
        int i = rev ? 2 - k : k;
        jm_kv_t a[] = {{"loc", locs[i]}, {"rel", "7"}, {"v", op}};
        jm_kv_t r[] = {{"v", op}, {"rel", "7"}, {"loc", locs[i]}};
        w[i] = jm_workflow_add_task(b.wf, tt, rev ? r : a, 3, &err);
        ck_assert_ptr_nonnull(w[i]);
    }
    join = jm_workflow_add_command(b.wf, "join", &err);
    if (rev)
        prep = jm_workflow_add_command(b.wf, "prep", &err);
    for (int k = 0; k < 3; k++) {
        int i = rev ? 2 - k : k;
        if (rev) {
            ck_assert_int_eq(jm_task_add_downstream(w[i], join, &err), JM_OK);
            ck_assert_int_eq(jm_task_add_downstream(prep, w[i], &err), JM_OK);
        } else {
            ck_assert_int_eq(jm_task_add_upstream(w[i], prep, &err), JM_OK);
            ck_assert_int_eq(jm_task_add_upstream(join, w[i], &err), JM_OK);
        }
    }
    ck_assert_int_eq(jm_workflow_validate(b.wf, &err), JM_OK);
    return b;
}

static void unbuild(built_t b)
{
    jm_workflow_destroy(b.wf);
    jm_tool_destroy(b.tool);
}

static int64_t id_of(jm_workflow_t *wf, const char *name)
{
    jm_task_t *t = jm_workflow_find_task(wf, name);
    ck_assert_ptr_nonnull(t);
    return jm_task_id(t);
}

START_TEST(test_identity_stable)
{
    built_t a = build(0, "-v"), b = build(0, "-v"), c = build(1, "-v"), d = build(0, "-q");
    ck_assert_int_eq(jm_workflow_id(a.wf), jm_workflow_id(b.wf));
    ck_assert_int_eq(jm_workflow_id(a.wf), jm_workflow_id(c.wf)); /* re-ordered */
    ck_assert_int_eq(jm_workflow_id(a.wf), jm_workflow_id(d.wf)); /* op arg changed */
    ck_assert(jm_hash_eq(jm_workflow_dag_hash(a.wf), jm_workflow_dag_hash(c.wf)));
    const char *names[] = {"work_loc-1", "work_loc-2", "work_loc-3"};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(id_of(a.wf, names[i]), id_of(c.wf, names[i]));
        ck_assert_int_eq(id_of(a.wf, names[i]), id_of(d.wf, names[i]));
        char *ca = jm_task_command(jm_workflow_find_task(a.wf, names[i]));
        char *cd = jm_task_command(jm_workflow_find_task(d.wf, names[i]));
        ck_assert_str_ne(ca, cd);
        free(ca);
        free(cd);
    }
    jm_template_t *ta = jm_tool_template(a.tool, "work"), *tc = jm_tool_template(c.tool, "work");
    ck_assert_int_eq(jm_workflow_array_id(a.wf, ta), jm_workflow_array_id(c.wf, tc));
    /* different workflow args: different workflow and task ids, same dag */
    jm_workflow_t *wf2 = jm_workflow_new(a.tool, NULL);
    jm_err_t err;
    jm_task_t *x = jm_workflow_add_command(wf2, "prep", &err);
    ck_assert_int_eq(jm_workflow_validate(wf2, &err), JM_OK);
    ck_assert_int_ne(jm_workflow_id(wf2), jm_workflow_id(a.wf));
    ck_assert_int_ne(jm_task_id(x), id_of(a.wf, jm_task_name(x)));
    jm_workflow_destroy(wf2);
    /* file: same file twice = same ids */
    jm_workflow_t *f1 = load(JM_TEST_DATADIR "/wf/good", "all_keys.json", &err);
    jm_workflow_t *f2 = load(JM_TEST_DATADIR "/wf/good", "all_keys.json", &err);
    ck_assert_int_eq(jm_workflow_validate(f1, &err), JM_OK);
    ck_assert_int_eq(jm_workflow_validate(f2, &err), JM_OK);
    ck_assert_int_eq(jm_workflow_id(f1), jm_workflow_id(f2));
    for (size_t i = 0; i < jm_workflow_task_count(f1); i++)
        ck_assert_int_eq(jm_task_id(jm_workflow_task(f1, i)), jm_task_id(jm_workflow_task(f2, i)));
    jm_workflow_destroy(f1);
    jm_workflow_destroy(f2);
    unbuild(a);
    unbuild(b);
    unbuild(c);
    unbuild(d);
}
END_TEST

START_TEST(test_changed_edges_change_dag)
{
    built_t a = build(0, "-v");
    jm_err_t err;
    int64_t before = jm_workflow_id(a.wf);
    jm_hash_t tasks = jm_workflow_task_hash(a.wf);
    jm_task_add_upstream(jm_workflow_find_task(a.wf, "work_loc-2"),
                         jm_workflow_find_task(a.wf, "work_loc-1"), &err);
    ck_assert_int_eq(jm_workflow_validate(a.wf, &err), JM_OK);
    ck_assert_int_ne(jm_workflow_id(a.wf), before);
    ck_assert(jm_hash_eq(jm_workflow_task_hash(a.wf), tasks));
    unbuild(a);
}
END_TEST

/* ---- validation ---- */

START_TEST(test_cycle_message)
{
    jm_err_t err;
    jm_tool_t *tool = jm_tool_new("t");
    const char *node[] = {"i"};
    jm_template_t *a = jm_template_new(tool, "a", "a {i}", node, 1, NULL, 0, NULL, 0, &err);
    jm_template_t *b = jm_template_new(tool, "b", "b {i}", node, 1, NULL, 0, NULL, 0, &err);
    jm_template_t *c = jm_template_new(tool, "c", "c {i}", node, 1, NULL, 0, NULL, 0, &err);
    jm_workflow_t *wf = jm_workflow_new(tool, "x");
    jm_task_t *a2 = jm_workflow_add_task(wf, a, (jm_kv_t[]){{"i", "2"}}, 1, &err);
    jm_task_t *b2 = jm_workflow_add_task(wf, b, (jm_kv_t[]){{"i", "2"}}, 1, &err);
    jm_task_t *c2 = jm_workflow_add_task(wf, c, (jm_kv_t[]){{"i", "2"}}, 1, &err);
    jm_task_set_name(b2, "b_2", &err);
    jm_task_set_name(c2, "c_2", &err);
    jm_task_add_upstream(b2, a2, &err);
    jm_task_add_upstream(b2, c2, &err);
    jm_task_add_upstream(c2, b2, &err);
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "task \"b_2\": depends on itself through \"c_2\" -> \"b_2\"");
    jm_task_add_upstream(a2, a2, &err);
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "task \"a_i-2\": depends on itself");
    jm_workflow_destroy(wf);
    /* empty */
    wf = jm_workflow_new(tool, "y");
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "the workflow has no tasks");
    jm_workflow_destroy(wf);
    jm_tool_destroy(tool);
}
END_TEST

/* A 300k-task chain and a long cycle: no recursion anywhere. */
START_TEST(test_long_chain)
{
    jm_err_t err;
    jm_tool_t *tool = jm_tool_new("t");
    const char *node[] = {"i"};
    jm_template_t *tt = jm_template_new(tool, "s", "s {i}", node, 1, NULL, 0, NULL, 0, &err);
    jm_workflow_t *wf = jm_workflow_new(tool, "chain");
    enum { N = 300000 };
    jm_task_t *prev = NULL;
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        jm_task_t *t = jm_workflow_add_task(wf, tt, (jm_kv_t[]){{"i", v}}, 1, &err);
        if (prev)
            jm_task_add_upstream(t, prev, &err);
        prev = t;
    }
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_OK);
    jm_task_add_upstream(jm_workflow_task(wf, 0), prev, &err);
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "depends on itself through"));
    ck_assert_ptr_nonnull(strstr(err.msg, "more)"));
    jm_workflow_destroy(wf);
    jm_tool_destroy(tool);
}
END_TEST

/* ---- precedence ---- */

static char *res_of(jm_workflow_t *wf, const char *task)
{
    return jm_task_resources_json(jm_workflow_find_task(wf, task));
}

START_TEST(test_precedence)
{
    jm_err_t err;
    jm_log_set_level(JM_LOG_ERROR);
    jm_tool_t *tool = jm_tool_new("t");
    const char *node[] = {"i"};
    jm_template_t *tt = jm_template_new(tool, "s", "s {i}", node, 1, NULL, 0, NULL, 0, &err);
    jm_workflow_t *wf = jm_workflow_new(tool, "p");
    jm_task_t *plain = jm_workflow_add_command(wf, "plain", &err);
    jm_task_set_name(plain, "plain", &err);
    jm_task_t *single = jm_workflow_add_task(wf, tt, (jm_kv_t[]){{"i", "0"}}, 1, &err);
    const char *vals[] = {"1", "2"};
    jm_array_t *arr =
        jm_workflow_add_array(wf, tt, (jm_arg_values_t[]){{"i", vals, 2}}, 1, NULL, &err);
    ck_assert_ptr_nonnull(arr);
    ck_assert_uint_eq(jm_array_task_count(arr), 2);
    jm_task_t *own = jm_array_task(arr, 1);

    /* built-in */
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_OK);
    ck_assert_int_eq(jm_task_max_attempts(plain), 3);
    ck_assert_str_eq(jm_task_cluster(plain), "dummy");
    char *r = res_of(wf, "plain");
    ck_assert_str_eq(r, "{\"queue\":\"null.q\"}");
    free(r);

    /* tool < workflow < template < array < task */
    jm_defaults_set_resource(jm_tool_defaults(tool), "memory", "1G");
    jm_defaults_set_resource(jm_tool_defaults(tool), "runtime", "1h");
    ck_assert_int_eq(jm_defaults_set_max_attempts(jm_tool_defaults(tool), 2, &err), JM_OK);
    jm_defaults_set_resource(jm_workflow_defaults(wf), "cores", "2");
    ck_assert_int_eq(jm_defaults_set_max_attempts(jm_workflow_defaults(wf), 4, &err), JM_OK);
    jm_defaults_set_cluster(jm_workflow_defaults(wf), "sequential");
    jm_defaults_set_resource(jm_template_defaults(tt), "memory", "2G");
    ck_assert_int_eq(jm_defaults_set_max_attempts(jm_template_defaults(tt), 5, &err), JM_OK);
    jm_defaults_set_resource(jm_array_defaults(arr), "runtime", "30m");
    ck_assert_int_eq(jm_defaults_set_max_attempts(jm_array_defaults(arr), 6, &err), JM_OK);
    jm_defaults_set_resource_int(jm_task_defaults(own), "cores", 99); /* coerced to 20 */
    ck_assert_int_eq(jm_defaults_set_max_attempts(jm_task_defaults(own), 7, &err), JM_OK);
    ck_assert_int_eq(jm_defaults_set_scale(jm_task_defaults(own), "memory", 1.0, &err), JM_OK);
    jm_defaults_add_fallback_queue(jm_task_defaults(own), "null.q");
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_OK);

    ck_assert_int_eq(jm_task_max_attempts(plain), 4);
    ck_assert_int_eq(jm_task_max_attempts(single), 5);
    ck_assert_int_eq(jm_task_max_attempts(jm_array_task(arr, 0)), 6);
    ck_assert_int_eq(jm_task_max_attempts(own), 7);
    ck_assert_str_eq(jm_task_cluster(own), "sequential");
    r = res_of(wf, "plain");
    ck_assert_str_eq(r, "{\"cores\":2,\"memory\":1024,\"queue\":\"null.q\",\"runtime\":3600}");
    free(r);
    r = jm_task_resources_json(single);
    ck_assert_str_eq(r, "{\"cores\":2,\"memory\":2048,\"queue\":\"null.q\",\"runtime\":3600}");
    free(r);
    r = jm_task_resources_json(jm_array_task(arr, 0));
    ck_assert_str_eq(r, "{\"cores\":2,\"memory\":2048,\"queue\":\"null.q\",\"runtime\":1800}");
    free(r);
    r = jm_task_resources_json(own);
    ck_assert_str_eq(r, "{\"cores\":20,\"memory\":2048,\"queue\":\"null.q\",\"runtime\":1800}");
    free(r);
    jm_settings_t *s = &wf->settings[own->settings];
    ck_assert_double_eq(json_real_value(json_object_get(s->scales, "memory")), 1.0);
    ck_assert_double_eq(json_real_value(json_object_get(s->scales, "runtime")), 0.5);
    ck_assert_uint_eq(json_array_size(s->fallback_queues), 1);

    /* unknown queue at the task level is an error naming the task */
    jm_defaults_set_resource(jm_task_defaults(own), "queue", "all.q");
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "task \"s_i-2\": unknown queue \"all.q\""));
    jm_workflow_destroy(wf);
    jm_tool_destroy(tool);
}
END_TEST

/* ---- bind events ---- */

/* The fast encoder (jm_bind_next_encoded, what jm_workflow_bind sends) gives the same events as
 * the reference iterator: same types, equal payloads, and every one decodes (= the consumer's
 * full validation of the actual bytes). */
static void check_encoded_equal(jm_workflow_t *wf)
{
    jm_err_t err;
    jm_bind_iter_t *ref = jm_bind_iter_new(wf, "tester"), *fast = jm_bind_iter_new(wf, "tester");
    for (size_t k = 0;; k++) {
        jm_event_t *ev = NULL, *dec = NULL;
        char *buf = NULL;
        size_t len = 0;
        jm_event_type_t type;
        ck_assert_int_eq(jm_bind_next_event(ref, &ev, &err), JM_OK);
        ck_assert_msg(jm_bind_next_encoded(fast, &buf, &len, &type, &err) == JM_OK, "%s", err.msg);
        if (!ev) {
            ck_assert_ptr_null(buf);
            break;
        }
        ck_assert_ptr_nonnull(buf);
        ck_assert_uint_eq(strlen(buf), len);
        ck_assert_int_eq(type, ev->type);
        ck_assert_msg(jm_event_decode(buf, len, &dec, &err) == JM_OK, "event %zu: %s", k, err.msg);
        ck_assert_int_eq(dec->type, ev->type);
        ck_assert_int_eq(dec->workflow_id, ev->workflow_id);
        ck_assert_msg(json_equal(dec->payload, ev->payload), "event %zu: payloads differ", k);
        if (ev->type == JM_EV_WORKFLOW_BIND_TASKS) { /* byte for byte, as jansson dumps it */
            char *a = json_dumps(ev->payload, JSON_COMPACT),
                 *b = json_dumps(dec->payload, JSON_COMPACT);
            ck_assert_str_eq(a, b);
            ck_assert_ptr_nonnull(strstr(buf, a));
            free(a);
            free(b);
        }
        jm_event_destroy(dec);
        jm_event_destroy(ev);
        free(buf);
    }
    jm_bind_iter_destroy(ref);
    jm_bind_iter_destroy(fast);
}

static void check_bind(jm_workflow_t *wf, size_t *chunks_out, size_t *max_bytes)
{
    jm_err_t err;
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_OK);
    size_t n = jm_workflow_task_count(wf);
    /* task id -> position in the stream */
    int64_t *ids = malloc(n * sizeof(*ids));
    long *seen = calloc(n, sizeof(*seen));
    for (size_t i = 0; i < n; i++)
        ids[i] = jm_task_id(jm_workflow_task(wf, i));
    jm_bind_iter_t *it = jm_bind_iter_new(wf, "tester");
    jm_event_t *ev;
    size_t k = 0, chunks = 0, order = 0, total = 0;
    *max_bytes = 0;
    for (;; k++) {
        ck_assert_int_eq(jm_bind_next_event(it, &ev, &err), JM_OK);
        if (!ev)
            break;
        ck_assert_msg(jm_event_validate(ev, NULL, &err) == JM_OK, "event %zu: %s", k, err.msg);
        size_t len;
        char *enc = jm_event_encode(ev, &len);
        free(enc);
        ck_assert_uint_lt(len, 900000);
        if (len > *max_bytes)
            *max_bytes = len;
        ck_assert_int_eq(ev->workflow_id, jm_workflow_id(wf));
        if (k == 0) {
            ck_assert_int_eq(ev->type, JM_EV_WORKFLOW_BIND);
            ck_assert_int_eq(jm_ev_int(ev->payload, "total_tasks"), (int64_t)n);
        } else if (ev->type == JM_EV_WORKFLOW_BIND_TASKS) {
            json_t *tasks = jm_ev_get(ev->payload, "tasks");
            ck_assert_int_eq(jm_ev_int(ev->payload, "chunk"), (int64_t)chunks);
            ck_assert_uint_le(json_array_size(tasks), JM_BIND_CHUNK_TASKS);
            size_t i;
            json_t *t;
            json_array_foreach(tasks, i, t)
            {
                int64_t id = jm_ev_int(t, "task_id");
                size_t pos = 0;
                while (pos < n && ids[pos] != id)
                    pos++;
                ck_assert_uint_lt(pos, n);
                ck_assert_int_eq(seen[pos], 0);
                seen[pos] = (long)++order;
                /* upstream ids are exactly the task's upstreams, all bound before it */
                jm_task_t *task = jm_workflow_task(wf, pos);
                json_t *up = jm_ev_get(t, "upstream");
                ck_assert_uint_eq(json_array_size(up),
                                  wf->up_off[task->idx + 1] - wf->up_off[task->idx]);
                size_t j;
                json_t *u;
                json_array_foreach(up, j, u)
                {
                    size_t q = 0;
                    while (q < n && ids[q] != json_integer_value(u))
                        q++;
                    ck_assert_uint_lt(q, n);
                    ck_assert_int_gt(seen[q], 0);
                    ck_assert_int_lt(seen[q], seen[pos]);
                }
                char *cmd = jm_task_command(task);
                ck_assert_str_eq(jm_ev_str(t, "command"), cmd);
                free(cmd);
                total++;
            }
            chunks++;
        } else {
            ck_assert_int_eq(ev->type, JM_EV_WORKFLOW_BOUND);
            ck_assert_int_eq(jm_ev_int(ev->payload, "chunks"), (int64_t)chunks);
            ck_assert_int_eq(jm_ev_int(ev->payload, "total_tasks"), (int64_t)n);
        }
        jm_event_destroy(ev);
    }
    ck_assert_uint_eq(total, n);
    ck_assert_uint_eq(k, chunks + 2);
    jm_bind_iter_destroy(it);
    check_encoded_equal(wf);
    free(ids);
    free(seen);
    *chunks_out = chunks;
}

START_TEST(test_bind_events_examples)
{
    jm_err_t err;
    size_t chunks, max;
    jm_workflow_t *wf = load(JM_EXAMPLES_DIR, "diamond.json", &err);
    check_bind(wf, &chunks, &max);
    ck_assert_uint_eq(chunks, 1);
    jm_workflow_destroy(wf);
    wf = load(JM_EXAMPLES_DIR, "array_1000.json", &err);
    check_bind(wf, &chunks, &max);
    ck_assert_uint_eq(chunks, 2); /* 500 + 500 */
    jm_workflow_destroy(wf);
    wf = load(JM_EXAMPLES_DIR, "fork_join_100.json", &err);
    check_bind(wf, &chunks, &max);
    jm_workflow_destroy(wf);
}
END_TEST

START_TEST(test_bind_long_commands)
{
    jm_err_t err;
    jm_tool_t *tool = jm_tool_new("big");
    const char *node[] = {"i"}, *op[] = {"pad"};
    jm_template_t *tt =
        jm_template_new(tool, "big", "run {i} {pad}", node, 1, NULL, 0, op, 1, &err);
    jm_workflow_t *wf = jm_workflow_new(tool, "big");
    char pad[2001];
    memset(pad, '"', 2000); /* escapes to 4000 bytes */
    pad[2000] = '\0';
    jm_task_t *root = jm_workflow_add_command(wf, "root", &err);
    for (int i = 0; i < 1200; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        jm_task_t *t = jm_workflow_add_task(wf, tt, (jm_kv_t[]){{"i", v}, {"pad", pad}}, 2, &err);
        jm_task_add_upstream(t, root, &err);
    }
    size_t chunks, max;
    check_bind(wf, &chunks, &max);
    ck_assert_uint_gt(chunks, 5); /* size, not count, limited the chunks */
    ck_assert_uint_gt(max, 600000);
    jm_workflow_destroy(wf);
    jm_tool_destroy(tool);
}
END_TEST

/* Strings that need escaping, non-ASCII text, several settings sets; invalid UTF-8 is refused
 * by the fast encoder with a message naming the task (the reference path would abort). */
START_TEST(test_bind_encoded_escapes)
{
    jm_err_t err;
    jm_tool_t *tool = jm_tool_new("esc");
    const char *node[] = {"v"};
    jm_template_t *tt =
        jm_template_new(tool, "e", "printf '%s' {v}", node, 1, NULL, 0, NULL, 0, &err);
    ck_assert_ptr_nonnull(tt);
    jm_workflow_t *wf = jm_workflow_new(tool, "esc");
    const char *vals[] = {"quote\"back\\slash", "tab\tnl\nff\fbs\bcr\r", "ctl\x01\x1f\x7f",
                          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "/slash/"};
    jm_task_t *prev = NULL;
    for (size_t i = 0; i < sizeof(vals) / sizeof(*vals); i++) {
        jm_task_t *t = jm_workflow_add_task(wf, tt, (jm_kv_t[]){{"v", vals[i]}}, 1, &err);
        ck_assert_ptr_nonnull(t);
        if (i % 2)
            jm_defaults_set_resource(jm_task_defaults(t), "memory", "3G");
        if (prev)
            ck_assert_int_eq(jm_task_add_upstream(t, prev, &err), JM_OK);
        prev = t;
    }
    ck_assert_ptr_nonnull(jm_workflow_add_command(wf, "echo \"plain\"", &err));
    size_t chunks, max;
    check_bind(wf, &chunks, &max); /* includes check_encoded_equal */

    jm_task_t *bad = jm_workflow_add_task(wf, tt, (jm_kv_t[]){{"v", "bad\xff\xfe"}}, 1, &err);
    ck_assert_ptr_nonnull(bad);
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_OK);
    jm_bind_iter_t *it = jm_bind_iter_new(wf, "tester");
    char *buf = NULL;
    size_t len;
    jm_event_type_t type;
    jm_rc_t rc = JM_OK;
    for (int k = 0; k < 5 && rc == JM_OK; k++) {
        rc = jm_bind_next_encoded(it, &buf, &len, &type, &err);
        free(buf);
        buf = NULL;
    }
    ck_assert_int_eq(rc, JM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "not valid UTF-8"));
    jm_bind_iter_destroy(it);
    jm_workflow_destroy(wf);
    jm_tool_destroy(tool);
}
END_TEST

/* ---- a file large enough for the parser and lookup threads of wffile.c ---- */

#define BIG_N 6000

/* BIG_N tasks t0 … t<N-1>, each but the first upstream of the one before; task `at` written
 * with `bad` instead of its usual text (NULL: none). */
static char *big_file(size_t at, const char *bad)
{
    size_t cap = (size_t)BIG_N * 128 + 4096, len = 0;
    char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    len += (size_t)snprintf(b + len, cap - len,
                            "{\"tool\": \"t\", \"workflow_args\": \"big\", \"task_templates\": "
                            "[{\"name\": \"s\", \"command_template\": \"s {i}\", "
                            "\"node_args\": [\"i\"]}],\n\"tasks\": [\n");
    for (size_t i = 0; i < BIG_N; i++) {
        const char *sep = i + 1 < BIG_N ? ",\n" : "\n";
        if (bad && i == at)
            len += (size_t)snprintf(b + len, cap - len, "%s%s", bad, sep);
        else if (i == 0)
            len += (size_t)snprintf(
                b + len, cap - len,
                "{\"name\": \"t0\", \"template\": \"s\", \"args\": {\"i\": 0}}%s", sep);
        else
            len += (size_t)snprintf(b + len, cap - len,
                                    "{\"name\": \"t%zu\", \"template\": \"s\", \"args\": {\"i\": "
                                    "%zu}, \"upstream\": [\"t%zu\"]}%s",
                                    i, i, i - 1, sep);
    }
    snprintf(b + len, cap - len, "]}\n");
    return b;
}

static void big_fails(size_t at, const char *bad, const char *want)
{
    char *b = big_file(at, bad);
    jm_err_t err = {0};
    jm_workflow_t *wf = jm_workflow_load_buffer(b, strlen(b), &err);
    ck_assert_ptr_null(wf);
    ck_assert_int_eq(err.rc, JM_ERR_INVALID);
    ck_assert_msg(strcmp(err.msg, want) == 0, "got \"%s\", want \"%s\"", err.msg, want);
    free(b);
}

START_TEST(test_big_file)
{
    char *b = big_file(0, NULL);
    jm_err_t err = {0};
    jm_workflow_t *wf = jm_workflow_load_buffer(b, strlen(b), &err);
    ck_assert_ptr_nonnull(wf);
    free(b);
    ck_assert_uint_eq(jm_workflow_task_count(wf), BIG_N);
    ck_assert_uint_eq(wf->n_edges, BIG_N - 1);
    for (uint32_t e = 0; e < wf->n_edges; e++) {
        ck_assert_uint_eq(wf->edges[2 * e], e + 1);
        ck_assert_uint_eq(wf->edges[2 * e + 1], e);
    }
    ck_assert_str_eq(jm_task_name(jm_workflow_task(wf, BIG_N - 1)), "t5999");
    ck_assert_int_eq(jm_workflow_validate(wf, &err), JM_OK);
    jm_workflow_destroy(wf);
    /* errors late in the file read as for a small one */
    big_fails(5000, "{\"name\": \"t5000\", \"template\": \"s\", \"args\": {\"i\": 1, \"j\": 2}}",
              "tasks[5000].args.j: template \"s\" has no placeholder {j}");
    big_fails(5001, "{\"name\": \"t3\", \"template\": \"s\", \"args\": {\"i\": 5001}}",
              "tasks[3].name: another task is also named \"t3\"");
    big_fails(5002,
              "{\"name\": \"t5002\", \"template\": \"s\", \"args\": {\"i\": 5002}, "
              "\"upstream\": [\"t1\", \"nope\"]}",
              "tasks[5002].upstream[1]: no task named \"nope\"");
    big_fails(5003,
              "{\"name\": \"t5003\", \"template\": \"s\", \"args\": {\"i\": 5003}, "
              "\"upstream\": [\"t5003\"]}",
              "tasks[5003].upstream[0]: task \"t5003\" cannot depend on itself");
    big_fails(5004, "{\"name\": \"9x\", \"template\": \"s\", \"args\": {\"i\": 5004}}",
              "tasks[5004].name: task: name \"9x\" starts with a digit");
    big_fails(5005, "{\"name\": \"t5005\", \"template\": \"s\", \"args\": {\"i\": 5005}, \"x\": }",
              "line 5008 column 62: unexpected token near '}'");
}
END_TEST

Suite *jm_client_suite(void);
Suite *jm_client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("client");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_good_files);
    tcase_add_test(tc, test_examples);
    tcase_add_test(tc, test_template_rules);
    tcase_add_test(tc, test_default_names);
    tcase_add_test(tc, test_identity_stable);
    tcase_add_test(tc, test_changed_edges_change_dag);
    tcase_add_test(tc, test_cycle_message);
    tcase_add_test(tc, test_long_chain);
    tcase_add_test(tc, test_big_file);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_bind_events_examples);
    tcase_add_test(tc, test_bind_long_commands);
    tcase_add_test(tc, test_bind_encoded_escapes);
    suite_add_tcase(s, tc);
    return s;
}
