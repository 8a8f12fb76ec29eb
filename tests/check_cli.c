/* Unit tests for the pure parts of the CLI: status buckets and percentages, the cache-hash
 * parser, the --json contract shape, the progress line, and the option parsers of run/submit/
 * resume, the read commands and the operator commands. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli_ops.h"
#include "client/cli_run.h"
#include "client/cli_status.h"
#include "client/cli_util.h"
#include "jobmon/status.h"

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

static jm_status_t sample(void)
{
    jm_status_t st;
    memset(&st, 0, sizeof(st));
    st.workflow_id = 42;
    st.workflow_status = 'R';
    st.run_id = 7;
    st.run_status = 'R';
    st.total = 10;
    st.n[JM_TASK_G] = 1;
    st.n[JM_TASK_Q] = 1;
    st.n[JM_TASK_E] = 1;
    st.n[JM_TASK_O] = 2;
    st.n[JM_TASK_R] = 1;
    st.n[JM_TASK_D] = 3;
    st.n[JM_TASK_F] = 1;
    return st;
}

START_TEST(pct_math)
{
    ck_assert(jm_status_pct(1, 3) == 33.3);
    ck_assert(jm_status_pct(2, 3) == 66.7);
    ck_assert(jm_status_pct(0, 0) == 0.0);
    ck_assert(jm_status_pct(5, 0) == 0.0);
    ck_assert(jm_status_pct(5, 5) == 100.0);
    ck_assert(jm_status_pct(1, 2000) == 0.1); /* 0.05 rounds up */
    ck_assert(jm_status_pct(1, 1000000) == 0.0);
    char buf[32];
    jm_status_format_count(buf, sizeof(buf), 4, 10);
    ck_assert_str_eq(buf, "4 (40.0%)");
    jm_status_format_count(buf, sizeof(buf), 0, 0);
    ck_assert_str_eq(buf, "0 (0.0%)");
}
END_TEST

START_TEST(user_buckets)
{
    const char *pending = "GQIAE";
    for (const char *c = pending; *c; c++)
        ck_assert_int_eq(jm_user_status_of_letter(*c), JM_USER_PENDING);
    ck_assert_int_eq(jm_user_status_of_letter('O'), JM_USER_SCHEDULED);
    ck_assert_int_eq(jm_user_status_of_letter('R'), JM_USER_RUNNING);
    ck_assert_int_eq(jm_user_status_of_letter('D'), JM_USER_DONE);
    ck_assert_int_eq(jm_user_status_of_letter('F'), JM_USER_FATAL);
    ck_assert_int_eq(jm_user_status_of_letter('Z'), -1);
    ck_assert_int_eq(jm_user_status_parse("fatal"), JM_USER_FATAL);
    ck_assert_int_eq(jm_user_status_parse("nope"), -1);
    jm_status_t st = sample();
    int64_t u[JM_USER__CNT];
    jm_status_user_counts(&st, u);
    ck_assert_int_eq(u[JM_USER_PENDING], 3);
    ck_assert_int_eq(u[JM_USER_SCHEDULED], 2);
    ck_assert_int_eq(u[JM_USER_RUNNING], 1);
    ck_assert_int_eq(u[JM_USER_DONE], 3);
    ck_assert_int_eq(u[JM_USER_FATAL], 1);
}
END_TEST

START_TEST(hash_parse)
{
    const char *f[] = {"workflow_status", "run_id", "run_status", "total", "n_G", "n_D", "n_F",
                       "version",         "n_X"};
    const char *v[] = {"R", "99", "R", "5", "2", "2", "1", "1234", "7"};
    jm_status_t st;
    ck_assert_int_eq(jm_status_from_hash(3, f, v, 9, &st), JM_OK);
    ck_assert_int_eq(st.workflow_id, 3);
    ck_assert_int_eq(st.workflow_status, 'R');
    ck_assert_int_eq(st.run_id, 99);
    ck_assert_int_eq(st.run_status, 'R');
    ck_assert_int_eq(st.total, 5);
    ck_assert_int_eq(st.n[JM_TASK_G], 2);
    ck_assert_int_eq(st.n[JM_TASK_D], 2);
    ck_assert_int_eq(st.n[JM_TASK_F], 1);
    ck_assert_int_eq(st.version, 1234);
    ck_assert_int_eq(st.source, JM_STATUS_SRC_REDIS);

    const char *v2[] = {"G", "", "", "5", "5", "0", "0", "1", "0"};
    ck_assert_int_eq(jm_status_from_hash(3, f, v2, 9, &st), JM_OK);
    ck_assert_int_eq(st.run_id, 0);
    ck_assert_int_eq(st.run_status, 0);

    ck_assert_int_eq(jm_status_from_hash(3, f + 1, v + 1, 3, &st), JM_ERR_NOT_FOUND);
    ck_assert_int_eq(jm_status_from_hash(3, NULL, NULL, 0, &st), JM_ERR_NOT_FOUND);
    const char *v3[] = {"R", "x9", "R", "5", "2", "2", "1", "1", "0"};
    ck_assert_int_eq(jm_status_from_hash(3, f, v3, 9, &st), JM_ERR_INVALID);
    const char *v4[] = {"Z", "9", "R", "5", "2", "2", "1", "1", "0"};
    ck_assert_int_eq(jm_status_from_hash(3, f, v4, 9, &st), JM_ERR_INVALID);
}
END_TEST

START_TEST(json_shape)
{
    jm_status_t st = sample();
    json_t *j = jm_status_json(&st);
    ck_assert_int_eq(json_object_size(j), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "workflow_id")), 42);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "workflow_run_id")), 7);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "R");
    json_t *t = json_object_get(j, "tasks");
    ck_assert_int_eq(json_object_size(t), 6);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "total")), 10);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "PENDING")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "SCHEDULED")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "RUNNING")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "DONE")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "FATAL")), 1);
    json_decref(j);
    st.run_id = 0;
    j = jm_status_json(&st);
    ck_assert(json_is_null(json_object_get(j, "workflow_run_id")));
    json_decref(j);
}
END_TEST

START_TEST(progress_line)
{
    jm_status_t st = sample();
    char buf[512];
    size_t n = jm_status_format_progress(buf, sizeof(buf), &st, 3723.0, 2.5, 200, 1);
    ck_assert_uint_eq(n, strlen(buf));
    ck_assert_ptr_nonnull(strstr(buf, "30.0%"));
    ck_assert_ptr_nonnull(strstr(buf, "PENDING 3"));
    ck_assert_ptr_nonnull(strstr(buf, "SCHEDULED 2"));
    ck_assert_ptr_nonnull(strstr(buf, "DONE 3"));
    ck_assert_ptr_nonnull(strstr(buf, "FATAL 1 / 10"));
    ck_assert_ptr_nonnull(strstr(buf, "2.5 t/s"));
    ck_assert_ptr_nonnull(strstr(buf, "01:02:03"));
    ck_assert_int_eq(buf[0], '[');
    /* 40 cells max: 3/10 done = 12 '#', 1/10 fatal = 4 'x' */
    ck_assert(strncmp(buf, "[############xxxx....", 21) == 0);
    /* narrow terminal: never wider than asked */
    n = jm_status_format_progress(buf, sizeof(buf), &st, 1, 1, 60, 1);
    ck_assert_uint_le(n, 60);
    ck_assert_uint_eq(strlen(buf), n);
    /* plain form: no bar */
    jm_status_format_progress(buf, sizeof(buf), &st, 1, 1, 80, 0);
    ck_assert_int_ne(buf[0], '[');
    /* an empty workflow does not divide by zero */
    jm_status_t z;
    memset(&z, 0, sizeof(z));
    jm_status_format_progress(buf, sizeof(buf), &z, 0, 0, 80, 1);
    ck_assert_ptr_nonnull(strstr(buf, "0.0%"));
    /* tiny buffer: truncated, terminated */
    n = jm_status_format_progress(buf, 8, &st, 1, 1, 80, 1);
    ck_assert_uint_eq(n, 7);
    ck_assert_uint_eq(strlen(buf), 7);
}
END_TEST

START_TEST(run_args)
{
    jm_cli_run_opts_t o;
    char msg[256];
    ck_assert_int_eq(jm_cli_run_parse(ARGC("run", "f.json"), ARGV("run", "f.json"), JM_CLI_RUN, &o,
                                      msg, sizeof(msg)),
                     0);
    ck_assert_str_eq(o.file, "f.json");
    ck_assert_int_eq(o.detach, 0);
    ck_assert_int_eq(o.timeout_s, 36000);
    ck_assert_int_eq(o.max_concurrent, -1);
    ck_assert_int_eq(o.startup_timeout_s, 180);
    ck_assert_str_eq(o.mode, "none");

    ck_assert_int_eq(jm_cli_run_parse(ARGC("submit", "f.json"), ARGV("submit", "f.json"),
                                      JM_CLI_SUBMIT, &o, msg, sizeof(msg)),
                     0);
    ck_assert_int_eq(o.detach, 1);

    ck_assert_int_eq(
        jm_cli_run_parse(ARGC("run", "--resume", "--fail-fast", "--timeout", "60",
                              "--max-concurrent", "0", "--cluster", "slurm", "--json", "f.json"),
                         ARGV("run", "--resume", "--fail-fast", "--timeout", "60",
                              "--max-concurrent", "0", "--cluster", "slurm", "--json", "f.json"),
                         JM_CLI_RUN, &o, msg, sizeof(msg)),
        0);
    ck_assert_str_eq(o.mode, "cold"); /* workflow.run(resume=True) resets running jobs */
    ck_assert_int_eq(o.fail_fast, 1);
    ck_assert_int_eq(o.timeout_s, 60);
    ck_assert_int_eq(o.max_concurrent, 0);
    ck_assert_str_eq(o.cluster, "slurm");
    ck_assert_int_eq(o.json, 1);

    ck_assert_int_eq(jm_cli_run_parse(ARGC("run", "--resume", "--hot", "f"),
                                      ARGV("run", "--resume", "--hot", "f"), JM_CLI_RUN, &o, msg,
                                      sizeof(msg)),
                     0);
    ck_assert_str_eq(o.mode, "hot");

    ck_assert_int_eq(jm_cli_run_parse(ARGC("resume", "123"), ARGV("resume", "123"), JM_CLI_RESUME,
                                      &o, msg, sizeof(msg)),
                     0);
    ck_assert_int_eq(o.wf_id, 123);
    ck_assert_str_eq(o.mode, "hot"); /* the CLI default, as in Jobmon */
    ck_assert_int_eq(jm_cli_run_parse(ARGC("resume", "--cold", "123"),
                                      ARGV("resume", "--cold", "123"), JM_CLI_RESUME, &o, msg,
                                      sizeof(msg)),
                     0);
    ck_assert_str_eq(o.mode, "cold");

    /* errors */
    ck_assert_int_eq(jm_cli_run_parse(ARGC("run"), ARGV("run"), JM_CLI_RUN, &o, msg, sizeof(msg)),
                     -1);
    ck_assert_ptr_nonnull(strstr(msg, "missing FILE"));
    ck_assert_int_eq(jm_cli_run_parse(ARGC("run", "--hot", "f"), ARGV("run", "--hot", "f"),
                                      JM_CLI_RUN, &o, msg, sizeof(msg)),
                     -1);
    ck_assert_int_eq(jm_cli_run_parse(ARGC("run", "--resume", "--cold", "--hot", "f"),
                                      ARGV("run", "--resume", "--cold", "--hot", "f"), JM_CLI_RUN,
                                      &o, msg, sizeof(msg)),
                     -1);
    ck_assert_int_eq(jm_cli_run_parse(ARGC("run", "--timeout", "-1", "f"),
                                      ARGV("run", "--timeout", "-1", "f"), JM_CLI_RUN, &o, msg,
                                      sizeof(msg)),
                     -1);
    ck_assert_int_eq(jm_cli_run_parse(ARGC("run", "--max-concurrent", "x", "f"),
                                      ARGV("run", "--max-concurrent", "x", "f"), JM_CLI_RUN, &o,
                                      msg, sizeof(msg)),
                     -1);
    ck_assert_int_eq(jm_cli_run_parse(ARGC("run", "a", "b"), ARGV("run", "a", "b"), JM_CLI_RUN, &o,
                                      msg, sizeof(msg)),
                     -1);
    ck_assert_int_eq(jm_cli_run_parse(ARGC("run", "--bogus", "f"), ARGV("run", "--bogus", "f"),
                                      JM_CLI_RUN, &o, msg, sizeof(msg)),
                     -1);
    ck_assert_int_eq(jm_cli_run_parse(ARGC("resume", "0"), ARGV("resume", "0"), JM_CLI_RESUME, &o,
                                      msg, sizeof(msg)),
                     -1);
    ck_assert_int_eq(jm_cli_run_parse(ARGC("resume", "--resume", "5"),
                                      ARGV("resume", "--resume", "5"), JM_CLI_RESUME, &o, msg,
                                      sizeof(msg)),
                     -1);
    ck_assert_int_eq(jm_cli_run_parse(ARGC("run", "--help"), ARGV("run", "--help"), JM_CLI_RUN, &o,
                                      msg, sizeof(msg)),
                     1);
}
END_TEST

START_TEST(read_args)
{
    jm_cli_read_opts_t o;
    char msg[256], letters[16];
    ck_assert_int_eq(jm_cli_read_parse(ARGC("status"), ARGV("status"), &o, msg, sizeof(msg)), 0);
    ck_assert_int_eq(o.nargs, 0);
    ck_assert_int_eq(o.limit, 5);
    ck_assert_int_eq(jm_cli_read_parse(ARGC("status", "1", "2", "--json"),
                                       ARGV("status", "1", "2", "--json"), &o, msg, sizeof(msg)),
                     0);
    ck_assert_int_eq(o.nargs, 2);
    ck_assert_int_eq(o.json, 1);
    ck_assert_int_eq(
        jm_cli_read_parse(ARGC("status", "abc"), ARGV("status", "abc"), &o, msg, sizeof(msg)), -1);
    ck_assert_int_eq(jm_cli_read_parse(ARGC("status", "--source", "pg", "1"),
                                       ARGV("status", "--source", "pg", "1"), &o, msg, sizeof(msg)),
                     0);
    ck_assert_str_eq(o.source, "pg");
    ck_assert_int_eq(jm_cli_read_parse(ARGC("tasks"), ARGV("tasks"), &o, msg, sizeof(msg)), -1);
    ck_assert_int_eq(jm_cli_read_parse(ARGC("tasks", "9", "--status", "PENDING,F"),
                                       ARGV("tasks", "9", "--status", "PENDING,F"), &o, msg,
                                       sizeof(msg)),
                     0);
    ck_assert_int_eq(jm_cli_read_parse(ARGC("tasks", "9", "--status", "BOGUS"),
                                       ARGV("tasks", "9", "--status", "BOGUS"), &o, msg,
                                       sizeof(msg)),
                     -1);
    ck_assert_int_eq(jm_cli_read_parse(ARGC("events", "--task", "5"), ARGV("events", "--task", "5"),
                                       &o, msg, sizeof(msg)),
                     0);
    ck_assert_int_eq(o.task, 5);
    ck_assert_int_eq(jm_cli_read_parse(ARGC("events"), ARGV("events"), &o, msg, sizeof(msg)), -1);
    ck_assert_int_eq(jm_cli_read_parse(ARGC("events", "--task", "5", "6"),
                                       ARGV("events", "--task", "5", "6"), &o, msg, sizeof(msg)),
                     -1);
    ck_assert_int_eq(jm_cli_read_parse(ARGC("task", "--status", "D", "5"),
                                       ARGV("task", "--status", "D", "5"), &o, msg, sizeof(msg)),
                     -1);

    ck_assert_int_eq(jm_cli_task_status_filter("PENDING", letters, sizeof(letters)), 0);
    ck_assert_str_eq(letters, "GQIAE");
    ck_assert_int_eq(jm_cli_task_status_filter("done,F,R", letters, sizeof(letters)), 0);
    ck_assert_str_eq(letters, "DFR");
    ck_assert_int_eq(jm_cli_task_status_filter("GQ,Q", letters, sizeof(letters)), 0);
    ck_assert_str_eq(letters, "GQ");
    ck_assert_int_eq(jm_cli_task_status_filter("Z", letters, sizeof(letters)), -1);
    ck_assert_int_eq(jm_cli_task_status_filter(",", letters, sizeof(letters)), -1);
}
END_TEST

#define READ(...) jm_cli_read_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), &o, msg, sizeof(msg))
START_TEST(usage_args)
{
    jm_cli_read_opts_t o;
    char msg[256];
    ck_assert_int_eq(READ("usage"), -1);
    ck_assert_str_eq(msg, "missing argument");
    ck_assert_int_eq(READ("usage", "7", "8"), 0);
    ck_assert_int_eq(o.nargs, 2);
    ck_assert_int_eq(o.headroom, 20);
    ck_assert_ptr_null(o.tmpl);
    ck_assert_int_eq(READ("usage", "7", "--template", "step", "--headroom", "0", "--json"), 0);
    ck_assert_str_eq(o.tmpl, "step");
    ck_assert_int_eq(o.headroom, 0);
    ck_assert_int_eq(o.json, 1);
    ck_assert_int_eq(READ("usage", "7", "--headroom", "-5"), -1);
    ck_assert_str_eq(msg, "--headroom: a percentage 0 to 1000, not '-5'");
    ck_assert_int_eq(READ("usage", "7", "--headroom", "1001"), -1);
    ck_assert_int_eq(READ("tasks", "7", "--template", "step"), -1); /* usage's own options */
    ck_assert_int_eq(READ("logs", "7", "--headroom", "5"), -1);

    int64_t mib, sec;
    jm_cli_usage_suggest(117632, 718, 20, &mib, &sec); /* 114.9M, 0.7 s measured */
    ck_assert_int_eq(mib, 138);                        /* 137.85 rounded up */
    ck_assert_int_eq(sec, 1);
    jm_cli_usage_suggest(1024 * 1024, 60000, 0, &mib, &sec);
    ck_assert_int_eq(mib, 1024);
    ck_assert_int_eq(sec, 60);
    jm_cli_usage_suggest(1024 * 1024, 3600000, 50, &mib, &sec);
    ck_assert_int_eq(mib, 1536);
    ck_assert_int_eq(sec, 5400);
    jm_cli_usage_suggest(0, -1, 20, &mib, &sec); /* nothing measured: no suggestion */
    ck_assert_int_eq(mib, 0);
    ck_assert_int_eq(sec, 0);
}
END_TEST

START_TEST(errors_args)
{
    jm_cli_read_opts_t o;
    char msg[256];
    ck_assert_int_eq(READ("errors"), -1);
    ck_assert_int_eq(READ("errors", "5"), 0);
    ck_assert_int_eq(o.all, 0);
    ck_assert_int_eq(o.lines, 5);
    ck_assert_int_eq(o.limit, 1000);
    ck_assert_int_eq(READ("errors", "5", "--all", "--lines", "0", "--json"), 0);
    ck_assert_int_eq(o.all, 1);
    ck_assert_int_eq(o.lines, 0);
    ck_assert_int_eq(READ("errors", "5", "--lines", "-1"), -1);
    ck_assert_str_eq(msg, "--lines: not a count: '-1'");
    ck_assert_int_eq(READ("tasks", "5", "--all"), -1); /* errors' own options */
    ck_assert_str_eq(msg, "--all is an option of jobmon errors");
    ck_assert_int_eq(READ("usage", "5", "--lines", "2"), -1);
    /* status: whose workflows */
    ck_assert_int_eq(READ("status", "--all-users", "--active"), 0);
    ck_assert_int_eq(o.all_users, 1);
    ck_assert_int_eq(o.active, 1);
    ck_assert_int_eq(READ("status", "--all-users", "--user", "u"), -1);
    ck_assert_str_eq(msg, "give --user U or --all-users, not both");
    ck_assert_int_eq(READ("status", "7", "--active"), -1);
    ck_assert_int_eq(READ("tasks", "7", "--active"), -1);

    const char *t = "one\ntwo\nthree\n";
    ck_assert_str_eq(jm_cli_tail_lines(t, 2), "two\nthree\n");
    ck_assert_str_eq(jm_cli_tail_lines(t, 1), "three\n");
    ck_assert_str_eq(jm_cli_tail_lines(t, 3), t);
    ck_assert_str_eq(jm_cli_tail_lines(t, 9), t);
    ck_assert_str_eq(jm_cli_tail_lines(t, 0), t);
    ck_assert_str_eq(jm_cli_tail_lines("a\nb", 1), "b"); /* no final newline */
    ck_assert_str_eq(jm_cli_tail_lines("", 3), "");
    ck_assert_str_eq(jm_cli_tail_lines("\n\nx\n", 2), "\nx\n"); /* an empty line counts */
}
END_TEST
#undef READ

START_TEST(lag_args)
{
    jm_cli_lag_opts_t o;
    char msg[256];
    ck_assert_int_eq(jm_cli_lag_parse(ARGC("lag"), ARGV("lag"), &o, msg, sizeof(msg)), 0);
    ck_assert_int_eq(o.max_lag, -1);
    ck_assert_int_eq(o.json, 0);
    ck_assert_int_eq(jm_cli_lag_parse(ARGC("lag", "--max-lag", "0", "--json"),
                                      ARGV("lag", "--max-lag", "0", "--json"), &o, msg,
                                      sizeof(msg)),
                     0);
    ck_assert_int_eq(o.max_lag, 0);
    ck_assert_int_eq(o.json, 1);
    ck_assert_int_eq(jm_cli_lag_parse(ARGC("lag", "--max-lag", "x"), ARGV("lag", "--max-lag", "x"),
                                      &o, msg, sizeof(msg)),
                     -1);
    ck_assert_str_eq(msg, "--max-lag: not a count: 'x'");
    ck_assert_int_eq(jm_cli_lag_parse(ARGC("lag", "7"), ARGV("lag", "7"), &o, msg, sizeof(msg)),
                     -1);
    ck_assert_str_eq(msg, "unexpected argument '7'");
    ck_assert_int_eq(
        jm_cli_lag_parse(ARGC("lag", "--help"), ARGV("lag", "--help"), &o, msg, sizeof(msg)), 1);
}
END_TEST

START_TEST(prune_args)
{
    jm_cli_prune_opts_t o;
    char msg[256];
    int64_t ms, now = 10LL * 86400000;
    ck_assert_int_eq(jm_cli_parse_age("90d", &ms), 0);
    ck_assert_int_eq(ms, 90LL * 86400000);
    ck_assert_int_eq(jm_cli_parse_age("12h", &ms), 0);
    ck_assert_int_eq(ms, 12LL * 3600000);
    ck_assert_int_eq(jm_cli_parse_age("0s", &ms), 0);
    ck_assert_int_eq(ms, 0);
    ck_assert_int_eq(jm_cli_parse_age("2w", &ms), 0);
    ck_assert_int_eq(ms, 14LL * 86400000);
    ck_assert_int_eq(jm_cli_parse_age("30", &ms), -1);
    ck_assert_int_eq(jm_cli_parse_age("d", &ms), -1);
    ck_assert_int_eq(jm_cli_parse_age("5dd", &ms), -1);
    ck_assert_int_eq(jm_cli_parse_age("-1d", &ms), -1);

    ck_assert_int_eq(
        jm_cli_prune_parse(
            ARGC("prune", "--older-than", "2d", "--workflow", "7", "--workflow", "9", "--dry-run"),
            ARGV("prune", "--older-than", "2d", "--workflow", "7", "--workflow", "9", "--dry-run"),
            now, &o, msg, sizeof(msg)),
        0);
    ck_assert_int_eq(o.cutoff_ms, 8LL * 86400000);
    ck_assert_uint_eq(o.n_wf, 2);
    ck_assert_int_eq(o.wf[1], 9);
    ck_assert_int_eq(o.dry_run, 1);
    ck_assert_int_eq(o.rows, 50000);
    jm_cli_prune_opts_free(&o);

    ck_assert_int_eq(jm_cli_prune_parse(ARGC("prune", "--before", "1970-01-03", "--rows", "10"),
                                        ARGV("prune", "--before", "1970-01-03", "--rows", "10"),
                                        now, &o, msg, sizeof(msg)),
                     0);
    ck_assert_int_eq(o.cutoff_ms, 2LL * 86400000);
    ck_assert_int_eq(o.rows, 10);
    jm_cli_prune_opts_free(&o);
    ck_assert_int_eq(jm_cli_prune_parse(ARGC("prune", "--before", "1970-01-01T00:00:05Z"),
                                        ARGV("prune", "--before", "1970-01-01T00:00:05Z"), now, &o,
                                        msg, sizeof(msg)),
                     0);
    ck_assert_int_eq(o.cutoff_ms, 5000);
    jm_cli_prune_opts_free(&o);

    /* exactly one cutoff; bad values name the option */
    ck_assert_int_eq(jm_cli_prune_parse(ARGC("prune"), ARGV("prune"), now, &o, msg, sizeof(msg)),
                     -1);
    ck_assert_ptr_nonnull(strstr(msg, "--older-than"));
    jm_cli_prune_opts_free(&o);
    ck_assert_int_eq(
        jm_cli_prune_parse(ARGC("prune", "--older-than", "1d", "--before", "2026-01-01"),
                           ARGV("prune", "--older-than", "1d", "--before", "2026-01-01"), now, &o,
                           msg, sizeof(msg)),
        -1);
    jm_cli_prune_opts_free(&o);
    ck_assert_int_eq(jm_cli_prune_parse(ARGC("prune", "--before", "yesterday"),
                                        ARGV("prune", "--before", "yesterday"), now, &o, msg,
                                        sizeof(msg)),
                     -1);
    ck_assert_ptr_nonnull(strstr(msg, "--before"));
    jm_cli_prune_opts_free(&o);
    ck_assert_int_eq(jm_cli_prune_parse(ARGC("prune", "--older-than", "1d", "--rows", "0"),
                                        ARGV("prune", "--older-than", "1d", "--rows", "0"), now, &o,
                                        msg, sizeof(msg)),
                     -1);
    ck_assert_ptr_nonnull(strstr(msg, "--rows"));
    jm_cli_prune_opts_free(&o);
    ck_assert_int_eq(jm_cli_prune_parse(ARGC("prune", "--older-than", "1d", "--workflow", "x"),
                                        ARGV("prune", "--older-than", "1d", "--workflow", "x"), now,
                                        &o, msg, sizeof(msg)),
                     -1);
    jm_cli_prune_opts_free(&o);
    ck_assert_int_eq(jm_cli_prune_parse(ARGC("prune", "--older-than", "1d", "7"),
                                        ARGV("prune", "--older-than", "1d", "7"), now, &o, msg,
                                        sizeof(msg)),
                     -1);
    ck_assert_ptr_nonnull(strstr(msg, "unexpected"));
    jm_cli_prune_opts_free(&o);
}
END_TEST

START_TEST(ops_args)
{
    jm_cli_ops_opts_t o;
    char msg[256];
    ck_assert_int_eq(jm_cli_ops_parse(ARGC("stop", "7", "--wait"), ARGV("stop", "7", "--wait"), &o,
                                      msg, sizeof(msg)),
                     0);
    ck_assert_int_eq(o.wf_id, 7);
    ck_assert_int_eq(o.wait, 1);
    ck_assert_int_eq(o.timeout_s, 60);
    jm_cli_ops_opts_free(&o);

    ck_assert_int_eq(jm_cli_ops_parse(ARGC("reset", "--partial", "7"),
                                      ARGV("reset", "--partial", "7"), &o, msg, sizeof(msg)),
                     0);
    ck_assert_int_eq(o.partial, 1);
    jm_cli_ops_opts_free(&o);
    ck_assert_int_eq(jm_cli_ops_parse(ARGC("stop", "--partial", "7"),
                                      ARGV("stop", "--partial", "7"), &o, msg, sizeof(msg)),
                     -1);
    jm_cli_ops_opts_free(&o);

    ck_assert_int_eq(jm_cli_ops_parse(ARGC("task-update", "1", "2", "--status", "G", "--recursive"),
                                      ARGV("task-update", "1", "2", "--status", "G", "--recursive"),
                                      &o, msg, sizeof(msg)),
                     0);
    ck_assert_uint_eq(o.n_tasks, 2);
    ck_assert_int_eq(o.tasks[1], 2);
    ck_assert_str_eq(o.status, "G");
    ck_assert_int_eq(o.recursive, 1);
    jm_cli_ops_opts_free(&o);
    ck_assert_int_eq(
        jm_cli_ops_parse(ARGC("task-update", "1"), ARGV("task-update", "1"), &o, msg, sizeof(msg)),
        -1);
    ck_assert_ptr_nonnull(strstr(msg, "--status"));
    jm_cli_ops_opts_free(&o);
    ck_assert_int_eq(jm_cli_ops_parse(ARGC("task-update", "1", "--status", "F"),
                                      ARGV("task-update", "1", "--status", "F"), &o, msg,
                                      sizeof(msg)),
                     -1);
    jm_cli_ops_opts_free(&o);

    ck_assert_int_eq(jm_cli_ops_parse(ARGC("concurrency", "7", "0", "--template", "t"),
                                      ARGV("concurrency", "7", "0", "--template", "t"), &o, msg,
                                      sizeof(msg)),
                     0);
    ck_assert_int_eq(o.max_concurrent, 0);
    ck_assert_str_eq(o.template_name, "t");
    jm_cli_ops_opts_free(&o);
    ck_assert_int_eq(
        jm_cli_ops_parse(ARGC("concurrency", "7"), ARGV("concurrency", "7"), &o, msg, sizeof(msg)),
        -1);
    jm_cli_ops_opts_free(&o);
    ck_assert_int_eq(jm_cli_ops_parse(ARGC("concurrency", "7", "-3"),
                                      ARGV("concurrency", "7", "-3"), &o, msg, sizeof(msg)),
                     -1);
    jm_cli_ops_opts_free(&o);
}
END_TEST

Suite *jm_cli_suite(void); /* tests/suites.def */
Suite *jm_cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, pct_math);
    tcase_add_test(tc, user_buckets);
    tcase_add_test(tc, hash_parse);
    tcase_add_test(tc, json_shape);
    tcase_add_test(tc, progress_line);
    tcase_add_test(tc, run_args);
    tcase_add_test(tc, read_args);
    tcase_add_test(tc, ops_args);
    tcase_add_test(tc, usage_args);
    tcase_add_test(tc, errors_args);
    tcase_add_test(tc, lag_args);
    tcase_add_test(tc, prune_args);
    suite_add_tcase(s, tc);
    return s;
}
