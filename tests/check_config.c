/* Unit tests for src/common/config.c: the four layers, type checks, file selection, masking. */
#include <check.h>
#include <ctype.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobmon/config.h"

/* JOBMON_<SECTION>_<KEY> of a key, written independently of config.c. */
static void env_name(const char *key, char *buf, size_t len)
{
    snprintf(buf, len, "JOBMON_%s", key);
    for (char *p = buf + 7; *p; p++)
        *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
}

/* Every test starts with no JOBMON_* key variables and JOBMON_CONFIG=/dev/null (no file). */
static void clean_env(void)
{
    char name[128];
    for (size_t i = 0; i < jm_config_count(); i++) {
        env_name(jm_config_key_at(i), name, sizeof(name));
        unsetenv(name);
    }
    unsetenv("JOBMON_CONFIG");
}

static void setup(void)
{
    clean_env();
    setenv("JOBMON_CONFIG", "/dev/null", 1);
}

static void teardown(void)
{
    clean_env();
}

/* A temp file holding `text`; returns its path (caller unlinks and frees). */
static char *write_temp(const char *text)
{
    char *path = jm_strdup("/tmp/jobmon-config-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static jm_config_t *load_ok(const char *path)
{
    jm_err_t err;
    jm_config_t *cfg = jm_config_new();
    jm_err_clear(&err);
    jm_rc_t rc = jm_config_load(cfg, path, &err);
    ck_assert_msg(rc == JM_OK, "load: %s", err.msg);
    return cfg;
}

START_TEST(test_defaults_only)
{
    jm_config_t *cfg = load_ok(NULL);
    size_t n = 99;
    ck_assert_str_eq(jm_config_str(cfg, "kafka.brokers"), "localhost:9092");
    ck_assert_int_eq(jm_config_source(cfg, "kafka.brokers"), JM_CONFIG_SRC_DEFAULT);
    ck_assert_ptr_null(jm_config_origin(cfg, "kafka.brokers"));
    ck_assert_str_eq(jm_config_source_name(JM_CONFIG_SRC_DEFAULT), "default");
    ck_assert_int_eq(jm_config_int(cfg, "heartbeat.workflow_run_interval"), 30);
    ck_assert_int_eq(jm_config_int(cfg, "heartbeat.task_instance_interval"), 90);
    ck_assert_double_eq_tol(jm_config_float(cfg, "heartbeat.report_by_buffer"), 3.1, 1e-9);
    ck_assert_int_eq(jm_config_int(cfg, "worker.command_interrupt_timeout"), 10);
    ck_assert_int_eq(jm_config_int(cfg, "fsm.batch_max"), 2000);
    ck_assert_int_eq(jm_config_int(cfg, "fsm.batch_max_kbytes"), 1024);
    ck_assert_str_eq(jm_config_str(cfg, "fsm.group_id"), "jobmon-fsm");
    ck_assert_int_eq(jm_config_int(cfg, "client.max_attempts"), 3);
    ck_assert_int_eq(jm_config_bool(cfg, "client.fail_fast"), 0);
    ck_assert_str_eq(jm_config_str(cfg, "log.level"), "info");
    ck_assert_str_eq(jm_config_str(cfg, "worker.spool_dir"), "");
    const char *const *props = jm_config_list(cfg, "kafka.properties", &n);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(props[0]);
    jm_config_destroy(cfg);
}
END_TEST

START_TEST(test_file_over_default)
{
    char *path = write_temp("# local stack\n"
                            "kafka { brokers = \"127.0.0.1:19092\"  topic = \"jobmon.events\"\n"
                            "        dlq_topic = \"jobmon.dlq\"  properties = {\"acks=all\", "
                            "\"linger.ms=5\"} }\n"
                            "redis { host = \"127.0.0.1\"  port = 16379 }\n"
                            "heartbeat { report_by_buffer = 2.5 }\n"
                            "client { fail_fast = true }\n");
    jm_config_t *cfg = load_ok(path);
    size_t n = 0;
    ck_assert_str_eq(jm_config_str(cfg, "kafka.brokers"), "127.0.0.1:19092");
    ck_assert_int_eq(jm_config_source(cfg, "kafka.brokers"), JM_CONFIG_SRC_FILE);
    ck_assert_str_eq(jm_config_origin(cfg, "kafka.brokers"), path);
    ck_assert_str_eq(jm_config_file(cfg), path);
    ck_assert_int_eq(jm_config_int(cfg, "redis.port"), 16379);
    ck_assert_double_eq_tol(jm_config_float(cfg, "heartbeat.report_by_buffer"), 2.5, 1e-9);
    ck_assert_int_eq(jm_config_bool(cfg, "client.fail_fast"), 1);
    const char *const *props = jm_config_list(cfg, "kafka.properties", &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(props[0], "acks=all");
    ck_assert_str_eq(props[1], "linger.ms=5");
    ck_assert_ptr_null(props[2]);
    /* untouched keys keep their defaults */
    ck_assert_int_eq(jm_config_source(cfg, "fsm.batch_max"), JM_CONFIG_SRC_DEFAULT);
    jm_config_destroy(cfg);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_env_over_file_code_over_env)
{
    char *path = write_temp("kafka { brokers = \"file:1\" }\nredis { port = 16379 }\n");
    jm_err_t err;
    setenv("JOBMON_KAFKA_BROKERS", "env:2", 1);
    setenv("JOBMON_REDIS_PORT", "26379", 1);
    setenv("JOBMON_KAFKA_PROPERTIES", "acks=all, ,linger.ms=5", 1);
    setenv("JOBMON_CLIENT_FAIL_FAST", "YES", 1);
    jm_config_t *cfg = load_ok(path);
    ck_assert_str_eq(jm_config_str(cfg, "kafka.brokers"), "env:2");
    ck_assert_int_eq(jm_config_source(cfg, "kafka.brokers"), JM_CONFIG_SRC_ENV);
    ck_assert_str_eq(jm_config_origin(cfg, "kafka.brokers"), "JOBMON_KAFKA_BROKERS");
    ck_assert_int_eq(jm_config_int(cfg, "redis.port"), 26379);
    ck_assert_int_eq(jm_config_bool(cfg, "client.fail_fast"), 1);
    size_t n = 0;
    const char *const *props = jm_config_list(cfg, "kafka.properties", &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(props[1], "linger.ms=5");

    ck_assert_int_eq(jm_config_set(cfg, "kafka.brokers", "code:3", &err), JM_OK);
    ck_assert_str_eq(jm_config_str(cfg, "kafka.brokers"), "code:3");
    ck_assert_int_eq(jm_config_source(cfg, "kafka.brokers"), JM_CONFIG_SRC_CODE);
    ck_assert_ptr_null(jm_config_origin(cfg, "kafka.brokers"));
    /* code survives a reload, and wins whatever the order */
    ck_assert_int_eq(jm_config_load(cfg, path, &err), JM_OK);
    ck_assert_str_eq(jm_config_str(cfg, "kafka.brokers"), "code:3");
    ck_assert_int_eq(jm_config_set_assignment(cfg, "redis.port=1234", &err), JM_OK);
    ck_assert_int_eq(jm_config_int(cfg, "redis.port"), 1234);
    ck_assert_int_eq(jm_config_source(cfg, "redis.port"), JM_CONFIG_SRC_CODE);
    /* env gone → file shows through again */
    unsetenv("JOBMON_KAFKA_PROPERTIES");
    ck_assert_int_eq(jm_config_load(cfg, path, &err), JM_OK);
    ck_assert_int_eq(jm_config_source(cfg, "kafka.properties"), JM_CONFIG_SRC_DEFAULT);
    jm_config_destroy(cfg);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_type_errors)
{
    jm_config_t *cfg = jm_config_new();
    jm_err_t err;

    setenv("JOBMON_REDIS_PORT", "63x79", 1);
    ck_assert_int_eq(jm_config_load(cfg, NULL, &err), JM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "JOBMON_REDIS_PORT"));
    ck_assert_ptr_nonnull(strstr(err.msg, "not an integer"));
    /* a failed load leaves the defaults */
    ck_assert_int_eq(jm_config_int(cfg, "redis.port"), 6379);
    setenv("JOBMON_REDIS_PORT", "70000", 1);
    ck_assert_int_eq(jm_config_load(cfg, NULL, &err), JM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
    setenv("JOBMON_REDIS_PORT", "", 1);
    ck_assert_int_eq(jm_config_load(cfg, NULL, &err), JM_ERR_INVALID);
    unsetenv("JOBMON_REDIS_PORT");
    setenv("JOBMON_HEARTBEAT_REPORT_BY_BUFFER", "nan", 1);
    ck_assert_int_eq(jm_config_load(cfg, NULL, &err), JM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "JOBMON_HEARTBEAT_REPORT_BY_BUFFER"));
    unsetenv("JOBMON_HEARTBEAT_REPORT_BY_BUFFER");
    setenv("JOBMON_CLIENT_FAIL_FAST", "maybe", 1);
    ck_assert_int_eq(jm_config_load(cfg, NULL, &err), JM_ERR_INVALID);
    unsetenv("JOBMON_CLIENT_FAIL_FAST");
    setenv("JOBMON_LOG_LEVEL", "loud", 1);
    ck_assert_int_eq(jm_config_load(cfg, NULL, &err), JM_ERR_INVALID);
    setenv("JOBMON_LOG_LEVEL", "DEBUG", 1);
    ck_assert_int_eq(jm_config_load(cfg, NULL, &err), JM_OK);

    ck_assert_int_eq(jm_config_set(cfg, "redis.port", "12.5", &err), JM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "redis.port"));
    ck_assert_int_eq(jm_config_source(cfg, "redis.port"), JM_CONFIG_SRC_DEFAULT);
    ck_assert_int_eq(jm_config_set(cfg, "redis.nope", "1", &err), JM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "redis.nope"));
    ck_assert_int_eq(jm_config_set_assignment(cfg, "redis.port", &err), JM_ERR_INVALID);
    ck_assert_int_eq(jm_config_set_assignment(cfg, "=1", &err), JM_ERR_INVALID);
    ck_assert_int_eq(jm_config_set(cfg, "fsm.batch_max", "0", &err), JM_ERR_INVALID);
    ck_assert_int_eq(jm_config_set(cfg, "heartbeat.report_by_buffer", "4", &err), JM_OK);
    ck_assert_double_eq_tol(jm_config_float(cfg, "heartbeat.report_by_buffer"), 4.0, 1e-9);
    jm_config_destroy(cfg);
}
END_TEST

/* A file error is JM_ERR_INVALID with "path:line: ..." and the culprit. */
static void expect_file_error(const char *text, const char *line, const char *needle)
{
    char *path = write_temp(text);
    jm_config_t *cfg = jm_config_new();
    jm_err_t err;
    jm_err_clear(&err);
    ck_assert_int_eq(jm_config_load(cfg, path, &err), JM_ERR_INVALID);
    char *where = jm_asprintf("%s:%s:", path, line);
    ck_assert_msg(strstr(err.msg, where) != NULL, "'%s' lacks '%s'", err.msg, where);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "'%s' lacks '%s'", err.msg, needle);
    ck_assert_int_eq(jm_config_source(cfg, "kafka.brokers"), JM_CONFIG_SRC_DEFAULT);
    ck_assert_ptr_null(jm_config_file(cfg));
    free(where);
    jm_config_destroy(cfg);
    unlink(path);
    free(path);
}

START_TEST(test_file_errors)
{
    expect_file_error("kafka { brokers = \"x\" }\nkafka { nope = 1 }\n", "2", "nope");
    expect_file_error("\n\nmystery { a = 1 }\n", "3", "mystery");
    expect_file_error("redis {\n port = \"abc\"\n}\n", "2", "port");
    expect_file_error("redis {\n port = 70000\n}\n", "2", "redis.port");
    expect_file_error("log { level = \"loud\" }\n", "1", "log.level");
    expect_file_error("kafka { brokers = \n", "2", "");
}
END_TEST

START_TEST(test_file_selection)
{
    char *a = write_temp("kafka { brokers = \"a:1\" }\n");
    char *b = write_temp("kafka { brokers = \"b:1\" }\n");
    jm_config_t *cfg;
    jm_err_t err;

    setenv("JOBMON_CONFIG", a, 1);
    cfg = load_ok(NULL);
    ck_assert_str_eq(jm_config_str(cfg, "kafka.brokers"), "a:1");
    ck_assert_str_eq(jm_config_origin(cfg, "kafka.brokers"), a);
    jm_config_destroy(cfg);

    cfg = load_ok(b); /* explicit path beats JOBMON_CONFIG */
    ck_assert_str_eq(jm_config_str(cfg, "kafka.brokers"), "b:1");
    ck_assert_int_eq(jm_config_load(cfg, "/nonexistent/jobmon.conf", &err), JM_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/jobmon.conf"));
    ck_assert_int_eq(jm_config_source(cfg, "kafka.brokers"), JM_CONFIG_SRC_DEFAULT);
    ck_assert_int_eq(jm_config_load(cfg, "/tmp", &err), JM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "directory"));
    setenv("JOBMON_CONFIG", "/nonexistent/env.conf", 1);
    ck_assert_int_eq(jm_config_load(cfg, NULL, &err), JM_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "JOBMON_CONFIG"));
    jm_config_destroy(cfg);

    /* no JOBMON_CONFIG: the user file under $HOME */
    char home[] = "/tmp/jobmon-home-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(home));
    char *dir1 = jm_asprintf("%s/.config", home);
    char *dir2 = jm_asprintf("%s/.config/jobmon", home);
    char *user = jm_asprintf("%s/.config/jobmon/jobmon.conf", home);
    ck_assert_int_eq(mkdir(dir1, 0700), 0);
    ck_assert_int_eq(mkdir(dir2, 0700), 0);
    ck_assert_int_eq(rename(a, user), 0);
    char *old_home = getenv("HOME") ? jm_strdup(getenv("HOME")) : NULL;
    setenv("HOME", home, 1);
    unsetenv("JOBMON_CONFIG");
    cfg = load_ok(NULL);
    ck_assert_str_eq(jm_config_str(cfg, "kafka.brokers"), "a:1");
    ck_assert_str_eq(jm_config_file(cfg), user);
    jm_config_destroy(cfg);
    if (old_home)
        setenv("HOME", old_home, 1);
    else
        unsetenv("HOME");

    free(old_home);
    unlink(user);
    rmdir(dir2);
    rmdir(dir1);
    rmdir(home);
    unlink(b);
    free(user);
    free(dir2);
    free(dir1);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_masking)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"host=db user=u password=s3cret dbname=jobmon",
         "host=db user=u password=*** dbname=jobmon"},
        {"password = 'a b\\' c' host=db", "password=*** host=db"},
        {"PASSWORD=x", "password=***"},
        {"postgresql://u:s3cret@db:5432/jobmon?sslmode=require&password=zz",
         "postgresql://u:***@db:5432/jobmon?sslmode=require&password=***"},
        {"postgres://u@db/jobmon", "postgres://u@db/jobmon"},
        {"host=db passwordfile=/x", "host=db passwordfile=/x"},
        {"", ""},
    };
    jm_config_t *cfg = jm_config_new();
    jm_err_t err;
    for (size_t i = 0; i < JM_ARRAY_LEN(cases); i++) {
        ck_assert_int_eq(jm_config_set(cfg, "postgres.conninfo", cases[i].in, &err), JM_OK);
        char *shown = jm_config_display(cfg, "postgres.conninfo");
        ck_assert_str_eq(shown, cases[i].out);
        free(shown);
        /* the getter gives the real value */
        ck_assert_str_eq(jm_config_str(cfg, "postgres.conninfo"), cases[i].in);
    }
    ck_assert_int_eq(jm_config_set(cfg, "kafka.properties",
                                   "sasl.password=p1,acks=all,sasl.oauthbearer.client.secret=p2",
                                   &err),
                     JM_OK);
    char *props = jm_config_display(cfg, "kafka.properties");
    ck_assert_str_eq(props, "sasl.password=***,acks=all,sasl.oauthbearer.client.secret=***");
    free(props);

    /* and nothing leaks through show, text or JSON */
    ck_assert_int_eq(jm_config_set(cfg, "postgres.reader_conninfo", "user=r password=p3", &err),
                     JM_OK);
    for (int json = 0; json <= 1; json++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        ck_assert_int_eq(jm_config_show(cfg, out, json, &err), JM_OK);
        fclose(out);
        ck_assert_ptr_null(strstr(buf, "p1"));
        ck_assert_ptr_null(strstr(buf, "p2"));
        ck_assert_ptr_null(strstr(buf, "p3"));
        ck_assert_ptr_nonnull(strstr(buf, "password=***"));
        free(buf);
    }
    jm_config_destroy(cfg);
}
END_TEST

START_TEST(test_show)
{
    char *path = write_temp("kafka { brokers = \"127.0.0.1:19092\" }\n");
    setenv("JOBMON_REDIS_PORT", "16379", 1);
    jm_config_t *cfg = load_ok(path);
    jm_err_t err;
    char *buf = NULL;
    size_t len = 0;

    ck_assert_int_eq(jm_config_set(cfg, "fsm.consumers", "4", &err), JM_OK);
    FILE *out = open_memstream(&buf, &len);
    ck_assert_int_eq(jm_config_show(cfg, out, 0, &err), JM_OK);
    fclose(out);
    char *line = jm_asprintf("kafka.brokers = 127.0.0.1:19092  (file %s)\n", path);
    ck_assert_ptr_nonnull(strstr(buf, line));
    ck_assert_ptr_nonnull(strstr(buf, "redis.port = 16379  (env JOBMON_REDIS_PORT)\n"));
    ck_assert_ptr_nonnull(strstr(buf, "fsm.consumers = 4  (code)\n"));
    ck_assert_ptr_nonnull(strstr(buf, "heartbeat.report_by_buffer = 3.1  (default)\n"));
    ck_assert_ptr_nonnull(strstr(buf, "worker.spool_dir = \"\"  (default)\n"));
    free(line);
    free(buf);

    buf = NULL;
    out = open_memstream(&buf, &len);
    ck_assert_int_eq(jm_config_show(cfg, out, 1, &err), JM_OK);
    fclose(out);
    json_error_t jerr;
    json_t *root = json_loads(buf, 0, &jerr);
    ck_assert_ptr_nonnull(root);
    ck_assert_uint_eq(json_object_size(root), jm_config_count());
    json_t *e = json_object_get(root, "kafka.brokers");
    ck_assert_str_eq(json_string_value(json_object_get(e, "value")), "127.0.0.1:19092");
    ck_assert_str_eq(json_string_value(json_object_get(e, "source")), "file");
    ck_assert_str_eq(json_string_value(json_object_get(e, "origin")), path);
    e = json_object_get(root, "redis.port");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "value")), 16379);
    ck_assert_str_eq(json_string_value(json_object_get(e, "source")), "env");
    e = json_object_get(root, "heartbeat.report_by_buffer");
    ck_assert_double_eq_tol(json_real_value(json_object_get(e, "value")), 3.1, 1e-9);
    ck_assert(json_is_false(json_object_get(json_object_get(root, "client.fail_fast"), "value")));
    ck_assert(json_is_array(json_object_get(json_object_get(root, "kafka.properties"), "value")));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(root, "fsm.consumers"), "source")),
        "code");
    json_decref(root);
    free(buf);
    jm_config_destroy(cfg);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_table)
{
    for (size_t i = 0; i < jm_config_count(); i++) {
        const char *key = jm_config_key_at(i);
        ck_assert_ptr_nonnull(strchr(key, '.'));
        ck_assert_ptr_nonnull(jm_config_help(key));
        ck_assert_str_ne(jm_config_type_name(jm_config_type(key)), "?");
    }
    ck_assert_str_eq(jm_config_type_name(jm_config_type("kafka.properties")), "list");
}
END_TEST

START_TEST(test_unknown_key_asserts)
{
    jm_config_t *cfg = jm_config_new();
    (void)jm_config_str(cfg, "kafka.nope");
}
END_TEST

START_TEST(test_wrong_type_asserts)
{
    jm_config_t *cfg = jm_config_new();
    (void)jm_config_int(cfg, "kafka.brokers");
}
END_TEST

Suite *jm_config_suite(void);
Suite *jm_config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("layers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults_only);
    tcase_add_test(tc, test_file_over_default);
    tcase_add_test(tc, test_env_over_file_code_over_env);
    tcase_add_test(tc, test_type_errors);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_file_selection);
    tcase_add_test(tc, test_masking);
    tcase_add_test(tc, test_show);
    tcase_add_test(tc, test_table);
    suite_add_tcase(s, tc);

    /* abort() on a programming error; only meaningful in fork mode */
    const char *fork_env = getenv("CK_FORK");
    if (!fork_env || strcmp(fork_env, "no") != 0) {
        TCase *tc_abort = tcase_create("asserts");
        tcase_add_test_raise_signal(tc_abort, test_unknown_key_asserts, SIGABRT);
        tcase_add_test_raise_signal(tc_abort, test_wrong_type_asserts, SIGABRT);
        suite_add_tcase(s, tc_abort);
    }
    return s;
}
