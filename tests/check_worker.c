/* Unit tests for src/worker: tail ring + UTF-8 repair, /proc parsing and process-tree RSS on a
 * fake proc tree, batch files, and whole runs of jm_worker_run with the events-file sink. */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobmon/config.h"
#include "jobmon/event.h"
#include "jobmon/jmtime.h"
#include "jobmon/producer.h"
#include "worker/batchfile.h"
#include "worker/proctree.h"
#include "worker/report.h"
#include "worker/tail.h"
#include "worker/worker.h"

START_TEST(test_tail_small)
{
    jm_tail_t t;
    jm_tail_init(&t);
    jm_tail_append(&t, "hello ", 6);
    jm_tail_append(&t, "world", 5);
    size_t n;
    char *s = jm_tail_text(&t, &n);
    ck_assert_str_eq(s, "hello world");
    ck_assert_uint_eq(n, 11);
    free(s);
}
END_TEST

START_TEST(test_tail_wraps_keeps_newest)
{
    jm_tail_t t;
    jm_tail_init(&t);
    char buf[3000];
    for (int i = 0; i < 10; i++) {
        memset(buf, 'a' + i, sizeof(buf));
        jm_tail_append(&t, buf, sizeof(buf));
    }
    size_t n;
    char *s = jm_tail_text(&t, &n);
    ck_assert_uint_eq(n, JM_TAIL_MAX);
    ck_assert_int_eq(s[n - 1], 'j');
    ck_assert_int_eq(s[0], 'g'); /* 30000 - 10000 = 20000 → inside the 7th chunk */
    free(s);
    /* one append larger than the ring */
    char *big = malloc(25000);
    memset(big, 'x', 25000);
    big[24999] = 'y';
    jm_tail_append(&t, big, 25000);
    s = jm_tail_text(&t, &n);
    ck_assert_uint_eq(n, JM_TAIL_MAX);
    ck_assert_int_eq(s[n - 1], 'y');
    free(s);
    free(big);
}
END_TEST

START_TEST(test_tail_does_not_split_utf8_at_start)
{
    jm_tail_t t;
    jm_tail_init(&t);
    /* 'λ' is CE BB: make the ring start on its second byte */
    jm_tail_append(&t, "\xce\xbb", 2);
    char buf[JM_TAIL_MAX - 1];
    memset(buf, 'z', sizeof(buf));
    jm_tail_append(&t, buf, sizeof(buf));
    size_t n;
    char *s = jm_tail_text(&t, &n);
    ck_assert_int_eq(s[0], 'z'); /* the orphan continuation byte is dropped, not replaced */
    ck_assert_uint_eq(n, JM_TAIL_MAX - 1);
    free(s);
}
END_TEST

START_TEST(test_utf8_sanitize)
{
    size_t n;
    char *s = jm_utf8_sanitize((const unsigned char *)"a\xffz", 3, 0, &n);
    ck_assert_str_eq(s, "a\xEF\xBF\xBDz");
    free(s);
    /* NUL and an overlong / surrogate / truncated sequence */
    s = jm_utf8_sanitize((const unsigned char *)"\x00\xc0\xaf\xed\xa0\x80\xe2\x82", 8, 0, &n);
    /* NUL→1, C0→1, AF→1, ED (A0 not allowed)→1, A0→1, 80→1, E2 82 truncated→1 */
    ck_assert_uint_eq(n, 7 * 3);
    free(s);
    /* a leading continuation byte is replaced unless drop_leading */
    s = jm_utf8_sanitize((const unsigned char *)"\xbbok", 3, 0, &n);
    ck_assert_str_eq(s, "\xEF\xBF\xBDok");
    free(s);
    s = jm_utf8_sanitize((const unsigned char *)"\xbbok", 3, 1, &n);
    ck_assert_str_eq(s, "ok");
    free(s);
    /* valid 4-byte emoji passes */
    s = jm_utf8_sanitize((const unsigned char *)"\xf0\x9f\x98\x80", 4, 0, &n);
    ck_assert_str_eq(s, "\xf0\x9f\x98\x80");
    free(s);
}
END_TEST

START_TEST(test_tail_replacements_stay_within_limit)
{
    jm_tail_t t;
    jm_tail_init(&t);
    char buf[JM_TAIL_MAX];
    memset(buf, 0xff, sizeof(buf));
    jm_tail_append(&t, buf, sizeof(buf));
    size_t n;
    char *s = jm_tail_text(&t, &n);
    ck_assert_uint_le(n, JM_TAIL_MAX);
    ck_assert_uint_eq(n % 3, 0); /* whole U+FFFD characters only */
    free(s);
}
END_TEST

START_TEST(test_proc_parse)
{
    ck_assert_int_eq(jm_proc_parse_vmrss("Name:\tsh\nVmPeak:\t 100 kB\nVmRSS:\t    1234 kB\n"),
                     1234);
    ck_assert_int_eq(jm_proc_parse_vmrss("Name:\tkthreadd\nState:\tS\n"), -1);
    pid_t pp, pg;
    ck_assert_int_eq(jm_proc_parse_stat("42 (a b) c) S 7 42 42 0", &pp, &pg), 0);
    ck_assert_int_eq(pp, 7);
    ck_assert_int_eq(pg, 42);
    ck_assert_int_eq(jm_proc_parse_stat("garbage", &pp, &pg), -1);
}
END_TEST

static void fake_proc(const char *root, int pid, int ppid, long rss)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%d", root, pid);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%d/stat", root, pid);
    FILE *f = fopen(path, "w");
    fprintf(f, "%d (proc %d) S %d %d 0 0\n", pid, pid, ppid, pid);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%d/status", root, pid);
    f = fopen(path, "w");
    if (rss >= 0)
        fprintf(f, "Name:\tx\nVmRSS:\t%ld kB\n", rss);
    else
        fprintf(f, "Name:\tx\n");
    fclose(f);
}

START_TEST(test_proc_tree_rss)
{
    char root[] = "/tmp/jm-fakeproc-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(root));
    fake_proc(root, 1, 0, 100);    /* init: not in the tree */
    fake_proc(root, 10, 1, 1000);  /* the command */
    fake_proc(root, 11, 10, 200);  /* child */
    fake_proc(root, 12, 11, 30);   /* grandchild */
    fake_proc(root, 13, 12, -1);   /* zombie: no VmRSS */
    fake_proc(root, 20, 1, 5000);  /* unrelated */
    fake_proc(root, 21, 20, 5000); /* unrelated child */
    int n = 0;
    ck_assert_int_eq(jm_proc_tree_rss_kb(root, 10, &n), 1230);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(jm_proc_tree_rss_kb(root, 12, &n), 30);
    ck_assert_int_eq(jm_proc_tree_rss_kb(root, 99, &n), -1);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    ck_assert_int_eq(system(cmd), 0);
    /* the real /proc: our own process has a positive RSS */
    ck_assert_int_gt(jm_proc_tree_rss_kb("/proc", getpid(), NULL), 0);
}
END_TEST

START_TEST(test_batchfile_round_trip)
{
    char path[] = "/tmp/jm-batch-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    jm_batch_item_t items[2] = {
        {.step = 1,
         .ti_id = 100,
         .task_id = 10,
         .name = "a",
         .command = "echo 'a b'",
         .memory_mb = 512,
         .runtime_s = 60},
        {.step = 2,
         .ti_id = 200,
         .task_id = 20,
         .name = "b",
         .command = "true",
         .stdout_path = "/tmp/o"},
    };
    jm_err_t err;
    ck_assert_int_eq(jm_batchfile_write(path, 7, 9, items, 2, &err), JM_OK);
    jm_batch_item_t it;
    int64_t wf = 0, run = 0;
    ck_assert_int_eq(jm_batchfile_read_step(path, 2, &wf, &run, &it, &err), JM_OK);
    ck_assert_int_eq(wf, 7);
    ck_assert_int_eq(run, 9);
    ck_assert_int_eq(it.ti_id, 200);
    ck_assert_str_eq(it.command, "true");
    ck_assert_str_eq(it.stdout_path, "/tmp/o");
    ck_assert_ptr_null(it.stderr_path);
    jm_batch_item_clear(&it);
    ck_assert_int_eq(jm_batchfile_read_step(path, 1, &wf, &run, &it, &err), JM_OK);
    ck_assert_str_eq(it.command, "echo 'a b'");
    ck_assert_int_eq(it.memory_mb, 512);
    jm_batch_item_clear(&it);
    ck_assert_int_eq(jm_batchfile_read_step(path, 3, &wf, &run, &it, &err), JM_ERR_NOT_FOUND);
    unlink(path);
}
END_TEST

START_TEST(test_array_step_env)
{
    unsetenv("SLURM_ARRAY_TASK_ID");
    unsetenv("JOBMON_ARRAY_STEP_ID");
    ck_assert_int_eq(jm_worker_array_step(-1), -1);
    setenv("JOBMON_ARRAY_STEP_ID", "4", 1);
    ck_assert_int_eq(jm_worker_array_step(-1), 4);
    setenv("SLURM_ARRAY_TASK_ID", "7", 1);
    ck_assert_int_eq(jm_worker_array_step(-1), 7);
    ck_assert_int_eq(jm_worker_array_step(2), 2);
    setenv("SLURM_ARRAY_TASK_ID", "x", 1);
    ck_assert_int_eq(jm_worker_array_step(-1), -1);
    unsetenv("JOBMON_DISTRIBUTOR_ID");
    unsetenv("SLURM_JOB_ID");
    setenv("SLURM_ARRAY_JOB_ID", "55", 1);
    setenv("SLURM_ARRAY_TASK_ID", "3", 1);
    char *d = jm_worker_distributor_id_from_env();
    ck_assert_str_eq(d, "55_3");
    free(d);
    setenv("JOBMON_DISTRIBUTOR_ID", "abc", 1);
    d = jm_worker_distributor_id_from_env();
    ck_assert_str_eq(d, "abc");
    free(d);
}
END_TEST

/* The options of the tests' instance: ti 5 of task 11, workflow 7, run 9. */
static jm_worker_opts_t test_opts(const char *cmd, const char *logs)
{
    return (jm_worker_opts_t){.ti_id = 5,
                              .workflow_id = 7,
                              .run_id = 9,
                              .task_id = 11,
                              .command = cmd,
                              .logs_dir = logs,
                              .hb_interval_s = 90,
                              .report_by_buffer = 3.1,
                              .interrupt_timeout_s = 1};
}

/* Run a command through jm_worker_run with the events-file sink; return the events file's
 * lines decoded (caller destroys each) and the result. */
static size_t run_cmd(const char *cmd, int64_t mem_mb, jm_worker_result_t *res, jm_event_t **evs,
                      size_t max)
{
    char evpath[] = "/tmp/jm-wev-XXXXXX", logs[] = "/tmp/jm-wlog-XXXXXX";
    int fd = mkstemp(evpath);
    close(fd);
    ck_assert_ptr_nonnull(mkdtemp(logs));
    jm_config_t *cfg = jm_config_new();
    jm_err_t err;
    jm_event_set_producer(JM_PRODUCER_WORKER);
    jm_report_t *r = jm_report_new(cfg, evpath, 0, &err);
    ck_assert_ptr_nonnull(r);
    jm_worker_opts_t o = test_opts(cmd, logs);
    o.memory_mb = mem_mb;
    o.distributor_id = "d-1";
    ck_assert_int_eq(jm_worker_run(&o, r, res, &err), JM_OK);
    jm_report_destroy(r);
    jm_config_destroy(cfg);
    FILE *f = fopen(evpath, "r");
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    while (n < max && (len = getline(&line, &cap, f)) > 0) {
        ck_assert_int_eq(jm_event_decode(line, (size_t)len - 1, &evs[n], &err), JM_OK);
        n++;
    }
    free(line);
    fclose(f);
    unlink(evpath);
    char rm[128];
    snprintf(rm, sizeof(rm), "rm -rf %s", logs);
    ck_assert_int_eq(system(rm), 0);
    return n;
}

START_TEST(test_worker_done_env_and_tails)
{
    jm_worker_result_t res;
    jm_event_t *evs[4];
    size_t n = run_cmd("echo $JOBMON_WORKFLOW_ID $JOBMON_WORKFLOW_RUN_ID $JOBMON_TASK_ID "
                       "$JOBMON_TASK_INSTANCE_ID; echo oops >&2",
                       0, &res, evs, 4);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(res.exit_code, 0);
    ck_assert_int_eq(res.status, 'D');
    ck_assert_int_eq(evs[0]->type, JM_EV_TI_RUNNING);
    ck_assert_str_eq(jm_ev_str(evs[0]->payload, "distributor_id"), "d-1");
    ck_assert_int_eq(jm_ev_int(evs[0]->payload, "next_report_s"), 279);
    ck_assert_int_eq(evs[1]->type, JM_EV_TI_DONE);
    ck_assert_str_eq(jm_ev_str(evs[1]->payload, "stdout_tail"), "7 9 11 5\n");
    ck_assert_str_eq(jm_ev_str(evs[1]->payload, "stderr_tail"), "oops\n");
    for (size_t i = 0; i < n; i++)
        jm_event_destroy(evs[i]);
}
END_TEST

/* The mask of signals a /proc/PID/status line "Name:\t<hex>" of `tail` has set, 0 if absent. */
static unsigned long long status_mask(const char *tail, const char *name)
{
    const char *l = strstr(tail, name);
    return l ? strtoull(l + strlen(name) + 2, NULL, 16) : 0;
}

/* The command's environment has the instance's JOBMON_* values, each once, even when the
 * worker's own environment has others, and the rest of it; it runs in its own process group
 * with SIGPIPE, SIGINT, SIGTERM, SIGHUP and SIGCHLD neither blocked nor ignored (the worker
 * blocks and ignores some of them). */
START_TEST(test_worker_command_env_group_signals)
{
    setenv("JOBMON_TASK_ID", "999", 1);
    setenv("JOBMON_DISTRIBUTOR_ID", "old", 1);
    setenv("JM_TEST_KEEP", "kept", 1);
    jm_worker_result_t res;
    jm_event_t *evs[4];
    size_t n = run_cmd("echo $JOBMON_TASK_ID $JOBMON_DISTRIBUTOR_ID $JM_TEST_KEEP; "
                       "env | grep -c '^JOBMON_TASK_ID='; env | grep -c '^JOBMON_DISTRIBUTOR_ID='; "
                       "echo $$ $(cut -d' ' -f5 /proc/$$/stat); "
                       /* builtins only: dash blocks every signal around its forks, so a
                        * forked reader could see that transient mask */
                       "while read k v; do case $k in Sig[BI]*) echo $k $v;; esac; done "
                       "</proc/$$/status",
                       0, &res, evs, 4);
    unsetenv("JOBMON_TASK_ID");
    unsetenv("JOBMON_DISTRIBUTOR_ID");
    unsetenv("JM_TEST_KEEP");
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(res.status, 'D');
    const char *out = jm_ev_str(evs[1]->payload, "stdout_tail");
    ck_assert_ptr_nonnull(strstr(out, "11 d-1 kept\n1\n1\n"));
    long pid = 0, pgrp = -1;
    const char *ids = strchr(strchr(strchr(out, '\n') + 1, '\n') + 1, '\n') + 1;
    ck_assert_int_eq(sscanf(ids, "%ld %ld", &pid, &pgrp), 2);
    ck_assert_int_eq(pid, pgrp);
    ck_assert_int_eq(pid, jm_ev_int(evs[0]->payload, "pid"));
    unsigned long long want = 0;
    int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        want |= 1ULL << (sigs[i] - 1);
    ck_assert_ptr_nonnull(strstr(out, "SigBlk:"));
    ck_assert_uint_eq(status_mask(out, "SigBlk:") & want, 0);
    ck_assert_uint_eq(status_mask(out, "SigIgn:") & want, 0);
    for (size_t i = 0; i < n; i++)
        jm_event_destroy(evs[i]);
}
END_TEST

/* Run `cmd` as ti 5 with its logs in `logs` (events file sink); jm_worker_run's return code. */
static jm_rc_t run_logged(const char *cmd, const char *logs)
{
    char evpath[] = "/tmp/jm-wev-XXXXXX";
    int fd = mkstemp(evpath);
    close(fd);
    jm_config_t *cfg = jm_config_new();
    jm_err_t err;
    jm_worker_result_t res;
    jm_event_set_producer(JM_PRODUCER_WORKER);
    jm_report_t *r = jm_report_new(cfg, evpath, 0, &err);
    ck_assert_ptr_nonnull(r);
    jm_worker_opts_t o = test_opts(cmd, logs);
    jm_rc_t rc = jm_worker_run(&o, r, &res, &err);
    jm_report_destroy(r);
    jm_config_destroy(cfg);
    unlink(evpath);
    return rc;
}

/* The content of file dir/name ("" when empty), or NULL when it does not exist (caller frees). */
static char *file_text(const char *dir, const char *name)
{
    char path[256], buf[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return jm_strdup(buf);
}

/* A log file is made at the command's first output on it: a silent command leaves none, a
 * missing log directory is created, an unusable one fails the instance before its command. */
START_TEST(test_worker_log_files_on_output)
{
    char base[] = "/tmp/jm-wlogs-XXXXXX", logs[128], bad[160];
    ck_assert_ptr_nonnull(mkdtemp(base));
    snprintf(logs, sizeof(logs), "%s/a/b", base);
    ck_assert_int_eq(run_logged("true", logs), JM_OK);
    ck_assert_int_eq(access(logs, W_OK), 0); /* the directory exists */
    ck_assert_ptr_null(file_text(logs, "5.stdout"));
    ck_assert_ptr_null(file_text(logs, "5.stderr"));
    ck_assert_int_eq(run_logged("echo out; echo err >&2", logs), JM_OK);
    char *o = file_text(logs, "5.stdout"), *e = file_text(logs, "5.stderr");
    ck_assert_str_eq(o, "out\n");
    ck_assert_str_eq(e, "err\n");
    free(o);
    free(e);
    ck_assert_int_eq(run_logged("echo more", logs), JM_OK); /* appended, stderr still none */
    o = file_text(logs, "5.stdout");
    ck_assert_str_eq(o, "out\nmore\n");
    free(o);
    snprintf(bad, sizeof(bad), "%s/5.stdout/x", logs); /* below a regular file */
    snprintf(logs, sizeof(logs), "%s/ran", base);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "touch %s", logs);
    ck_assert_int_ne(run_logged(cmd, bad), JM_OK);
    ck_assert_int_ne(access(logs, F_OK), 0); /* the command did not run */
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_worker_error_and_signal)
{
    jm_worker_result_t res;
    jm_event_t *evs[4];
    size_t n = run_cmd("exit 7", 0, &res, evs, 4);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(res.exit_code, 7);
    ck_assert_int_eq(evs[1]->type, JM_EV_TI_ERROR);
    ck_assert_str_eq(jm_ev_str(evs[1]->payload, "status"), "E");
    ck_assert_int_eq(jm_ev_int(evs[1]->payload, "exit_code"), 7);
    for (size_t i = 0; i < n; i++)
        jm_event_destroy(evs[i]);
    n = run_cmd("kill -TERM $$", 0, &res, evs, 4);
    ck_assert_int_eq(res.exit_code, 128 + 15);
    ck_assert_str_eq(jm_ev_str(evs[1]->payload, "status"), "E");
    ck_assert_int_eq(jm_ev_int(evs[1]->payload, "exit_code"), -15);
    for (size_t i = 0; i < n; i++)
        jm_event_destroy(evs[i]);
}
END_TEST

START_TEST(test_worker_memory_kill)
{
    jm_worker_result_t res;
    jm_event_t *evs[4];
    /* a tree: sh → sh → the hog; allocates 200 MB and touches it, limit 40 MB */
    size_t n = run_cmd("sh -c 'head -c 200000000 /dev/zero | tail -c 1000000000 >/dev/null'", 40,
                       &res, evs, 4);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(res.why, JM_WKILL_MEMORY);
    ck_assert_str_eq(jm_ev_str(evs[1]->payload, "status"), "Z");
    ck_assert_ptr_nonnull(strstr(jm_ev_str(evs[1]->payload, "message"), "memory"));
    ck_assert_int_gt(jm_ev_int(jm_ev_get(evs[1]->payload, "usage"), "maxrss_kb"), 40 * 1024);
    for (size_t i = 0; i < n; i++)
        jm_event_destroy(evs[i]);
}
END_TEST

START_TEST(test_spool_write_and_replay_to_file)
{
    char dir[] = "/tmp/jm-spool-XXXXXX", evpath[] = "/tmp/jm-spev-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int fd = mkstemp(evpath);
    close(fd);
    jm_event_set_producer(JM_PRODUCER_WORKER);
    jm_event_t *ev = jm_event_new(JM_EV_TI_HEARTBEAT, 7,
                                  json_pack("{sI si}", "ti_id", (json_int_t)5, "next_report_s", 3));
    char *lines[1] = {jm_event_encode(ev, NULL)};
    jm_err_t err;
    char *path = NULL;
    ck_assert_int_eq(jm_spool_write(dir, 7, 5, lines, 1, &path, &err), JM_OK);
    ck_assert_int_eq(access(path, F_OK), 0);
    jm_config_t *cfg = jm_config_new();
    jm_report_t *r = jm_report_new(cfg, evpath, 0, &err);
    int files = 0;
    ck_assert_int_eq(jm_spool_replay(r, dir, 8, &files, &err), JM_OK); /* other workflow */
    ck_assert_int_eq(files, 0);
    ck_assert_int_eq(jm_spool_replay(r, dir, 7, &files, &err), JM_OK);
    ck_assert_int_eq(files, 1);
    ck_assert_int_ne(access(path, F_OK), 0); /* deleted after delivery */
    jm_report_destroy(r);
    jm_config_destroy(cfg);
    FILE *f = fopen(evpath, "r");
    char buf[4096] = "";
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, ev->id));
    free(lines[0]);
    free(path);
    jm_event_destroy(ev);
    unlink(evpath);
    rmdir(dir);
}
END_TEST

/* ---- the local report channel (worker end; the distributor end is played here) ---- */
static jm_event_t *ev_running(void)
{
    return jm_event_new(JM_EV_TI_RUNNING, 7,
                        json_pack("{sI ss si ss si ss ss}", "ti_id", (json_int_t)5, "host", "h",
                                  "pid", 42, "distributor_id", "1", "next_report_s", 9,
                                  "stdout_path", "/o", "stderr_path", "/e"));
}

static jm_event_t *ev_heartbeat(void)
{
    return jm_event_new(JM_EV_TI_HEARTBEAT, 7,
                        json_pack("{sI si}", "ti_id", (json_int_t)5, "next_report_s", 9));
}

static jm_event_t *ev_done(void)
{
    return jm_event_new(JM_EV_TI_DONE, 7,
                        json_pack("{sI ss ss s{sI sI sI}}", "ti_id", (json_int_t)5, "stdout_tail",
                                  "out", "stderr_tail", "", "usage", "wall_ms", (json_int_t)1,
                                  "cpu_ms", (json_int_t)0, "maxrss_kb", (json_int_t)1000));
}

/* The distributor's side: receive one message, check it is an event of `type`. */
static void expect_datagram(jm_chan_t *c, jm_event_type_t type)
{
    char *buf = NULL;
    size_t len = 0;
    jm_event_t *ev = NULL;
    jm_err_t err;
    struct pollfd pfd = {.fd = jm_chan_fd(c), .events = POLLIN};
    int got;
    int64_t t0 = jm_time_mono_ms();
    while ((got = jm_chan_recv(c, &buf, &len)) == 0 && jm_time_mono_ms() - t0 < 5000)
        (void)poll(&pfd, 1, 100); /* a stream may bring it in pieces */
    ck_assert_int_eq(got, 1);
    ck_assert_int_eq(jm_event_decode(buf, len, &ev, &err), JM_OK);
    ck_assert_int_eq(ev->type, type);
    jm_event_destroy(ev);
    free(buf);
}

/* A listening TCP socket on 127.0.0.1, its address in addr. */
static int tcp_listener(char *addr, size_t sz)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(addr, sz, "127.0.0.1:%d", ntohs(sa.sin_port));
    return fd;
}

/* A worker's publisher over a report channel whose distributor end (*dist) the test plays:
 * tcp = 0: a socketpair (--report-fd); 1: a TCP connection, the token already checked. */
static jm_report_t *channel_pair(const jm_config_t *cfg, int tcp, int retry_s, jm_chan_t **dist)
{
    jm_err_t err;
    if (!tcp) {
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        *dist = jm_chan_new(sv[0], 0);
        return jm_report_new_channel(cfg, sv[1], retry_s, JM_PRODUCER_LATENCY, &err);
    }
    char addr[64], *buf = NULL;
    size_t len = 0;
    int lfd = tcp_listener(addr, sizeof(addr));
    jm_report_t *r = jm_report_new_remote(cfg, addr, "s3cret", 1000, retry_s, JM_PRODUCER_LATENCY);
    ck_assert_int_ge(jm_report_chan_fd(r), 0);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    close(lfd);
    *dist = jm_chan_new(fd, 1);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    (void)poll(&pfd, 1, 5000);
    ck_assert_int_eq(jm_chan_recv(*dist, &buf, &len), 1);
    ck_assert_str_eq(buf, "T s3cret"); /* the token first */
    free(buf);
    return r;
}

/* _i: 0 = socketpair, 1 = TCP. */
START_TEST(test_channel_acknowledged)
{
    jm_err_t err;
    jm_chan_t *d = NULL;
    jm_config_t *cfg = jm_config_new();
    jm_event_set_producer(JM_PRODUCER_WORKER);
    jm_report_t *r = channel_pair(cfg, _i, 30, &d);
    ck_assert_int_eq(jm_report_send(r, ev_running(), 1, &err), JM_OK);
    ck_assert_int_eq(jm_report_send(r, ev_heartbeat(), 0, &err), JM_OK);
    ck_assert_int_eq(jm_report_send(r, ev_done(), 1, &err), JM_OK);
    expect_datagram(d, JM_EV_TI_RUNNING);
    expect_datagram(d, JM_EV_TI_HEARTBEAT);
    expect_datagram(d, JM_EV_TI_DONE);
    char *buf = NULL;
    size_t len;
    ck_assert_int_eq(jm_chan_recv(d, &buf, &len), 0); /* nothing more */
    ck_assert_int_eq(jm_report_chan_ack(d, 1, 1), 0);
    ck_assert_int_eq(jm_report_chan_ack(d, 2, 1), 0); /* the heartbeat: not kept, answered anyway */
    ck_assert_int_eq(jm_report_chan_ack(d, 3, 1), 0);
    int64_t t0 = jm_time_mono_ms();
    ck_assert_int_eq(jm_report_finish(r, 30, NULL, 7, 5, &err), JM_OK);
    ck_assert_int_lt(jm_time_mono_ms() - t0, 1000);
    jm_report_destroy(r);
    /* the worker's end is closed with the report: the distributor sees the end */
    ck_assert_int_eq(jm_chan_recv(d, &buf, &len), -1);
    jm_chan_free(d);
    jm_config_destroy(cfg);
}
END_TEST

/* Run `cmd` in a child process through jm_worker_run over a report channel (never answered);
 * *t_running / *t_done: ms after the start at which ti.running / ti.done arrived. */
static void channel_run_times(const char *cmd, int64_t *t_running, int64_t *t_done)
{
    int sv[2];
    char logs[] = "/tmp/jm-wcht-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(logs));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    int64_t t0 = jm_time_mono_ms();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        jm_err_t err;
        jm_worker_result_t res;
        jm_config_t *cfg = jm_config_new();
        jm_event_set_producer(JM_PRODUCER_WORKER);
        jm_report_t *r = jm_report_new_channel(cfg, sv[1], 30, JM_PRODUCER_LATENCY, &err);
        jm_worker_opts_t o = test_opts(cmd, logs);
        int ok = r && jm_worker_run(&o, r, &res, &err) == JM_OK;
        jm_report_destroy(r); /* no leak for valgrind in the child either */
        jm_config_destroy(cfg);
        _exit(ok ? 0 : 1);
    }
    close(sv[1]);
    jm_chan_t *d = jm_chan_new(sv[0], 0);
    *t_running = *t_done = -1;
    while (*t_done < 0 && jm_time_mono_ms() - t0 < 10000) {
        struct pollfd pfd = {.fd = sv[0], .events = POLLIN};
        (void)poll(&pfd, 1, 100);
        char *buf = NULL;
        size_t len = 0;
        jm_event_t *ev = NULL;
        jm_err_t err;
        if (jm_chan_recv(d, &buf, &len) != 1)
            continue;
        ck_assert_int_eq(jm_event_decode(buf, len, &ev, &err), JM_OK);
        int64_t *t = ev->type == JM_EV_TI_RUNNING ? t_running : t_done;
        ck_assert_int_lt(*t, 0); /* once each */
        *t = jm_time_mono_ms() - t0;
        if (ev->type == JM_EV_TI_DONE)
            ck_assert_int_ge(*t_running, 0); /* ti.running first */
        jm_event_destroy(ev);
        free(buf);
    }
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    jm_chan_free(d);
    char rm[64];
    snprintf(rm, sizeof(rm), "rm -rf %s", logs);
    ck_assert_int_eq(system(rm), 0);
}

/* Over the channel, ti.running waits a few ms for the result (one datagram less for a short
 * command), but a longer command's ti.running goes while it runs, and always before the
 * result. */
START_TEST(test_channel_running_deferred)
{
    int64_t tr, td;
    channel_run_times("sleep 2", &tr, &td);
    ck_assert_int_ge(tr, 10);   /* not at once */
    ck_assert_int_lt(tr, 1500); /* while the command runs */
    ck_assert_int_ge(td, 2000);
    channel_run_times("true", &tr, &td);
    ck_assert_int_ge(tr, 0);
    ck_assert_int_ge(td, tr);
}
END_TEST

/* The spool of dir holds one file for ti 5 of workflow 7 with both kept events; dir removed. */
static void expect_spooled_and_clean(const char *dir)
{
    char cmd[256], out[64] = "";
    snprintf(cmd, sizeof(cmd), "cat %s/7-5-*.jmspool | grep -c '\"type\":\"ti\\.'", dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(fgets(out, sizeof(out), p));
    pclose(p);
    ck_assert_str_eq(out, "2\n");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Kept events the distributor does not confirm go to Kafka (here unreachable), then to the
 * spool.  _i % 4: 0 = the distributor closes the channel, 1 = it refuses ti.done, 2 = it stays
 * silent past the retry time, 3 = it closes the channel and the Kafka module cannot be found
 * (ti.done is kept for the spool all the same); _i / 4: 0 = socketpair, 1 = TCP. */
START_TEST(test_channel_failure_falls_back)
{
    int mode = _i % 4;
    jm_err_t err;
    jm_chan_t *d = NULL;
    char dir[] = "/tmp/jm-chsp-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    jm_config_t *cfg = jm_config_new();
    ck_assert_int_eq(jm_config_set(cfg, "kafka.brokers", "127.0.0.1:1", &err), JM_OK);
    jm_report_set_producer_ops(mode == 3 ? NULL : &jm_producer_ops);
    if (mode == 3)
        setenv("JOBMON_KAFKA_MODULE", "/nonexistent/jobmon-kafka.so", 1);
    jm_event_set_producer(JM_PRODUCER_WORKER);
    jm_report_t *r = channel_pair(cfg, _i / 4, 1, &d);
    ck_assert_int_eq(jm_report_send(r, ev_running(), 1, &err), JM_OK);
    expect_datagram(d, JM_EV_TI_RUNNING);
    ck_assert_int_eq(jm_report_chan_ack(d, 1, 1), 0);
    if (mode == 0 || mode == 3) {
        jm_chan_free(d);
        d = NULL;
    }
    ck_assert_int_eq(jm_report_send(r, ev_done(), 1, &err), JM_OK);
    if (mode == 1) {
        expect_datagram(d, JM_EV_TI_DONE);
        ck_assert_int_eq(jm_report_chan_ack(d, 2, 0), 0);
    }
    int64_t t0 = jm_time_mono_ms();
    ck_assert_int_eq(jm_report_finish(r, 1, dir, 7, 5, &err), JM_ERR_UNAVAILABLE);
    ck_assert_int_lt(jm_time_mono_ms() - t0, 10000);
    jm_report_destroy(r);
    jm_chan_free(d);
    unsetenv("JOBMON_KAFKA_MODULE");
    jm_report_set_producer_ops(NULL);
    jm_config_destroy(cfg);
    expect_spooled_and_clean(dir);
}
END_TEST

/* ---- a producer that records the types it was given, in order ---- */
static struct {
    jm_event_type_t type[8];
    size_t n;
} g_rec;
static int g_rec_producer;
static jm_producer_t *rec_new(const char *brokers, jm_producer_profile_t profile,
                              const char *const *props, jm_err_t *err)
{
    (void)brokers, (void)profile, (void)props, (void)err;
    return (jm_producer_t *)&g_rec_producer;
}
static void rec_set_topic(jm_producer_t *p, const char *topic)
{
    (void)p, (void)topic;
}
static jm_rc_t rec_send(jm_producer_t *p, const jm_event_t *ev, jm_err_t *err)
{
    (void)p, (void)err;
    ck_assert_uint_lt(g_rec.n, JM_ARRAY_LEN(g_rec.type));
    g_rec.type[g_rec.n++] = ev->type;
    return JM_OK;
}
static jm_rc_t rec_flush(jm_producer_t *p, int timeout_ms, jm_err_t *err)
{
    (void)p, (void)timeout_ms, (void)err;
    return JM_OK;
}
static void rec_poll(jm_producer_t *p, int timeout_ms)
{
    (void)p, (void)timeout_ms;
}
static void rec_destroy(jm_producer_t *p)
{
    (void)p;
}
static const jm_producer_ops_t rec_ops = {.new_profile = rec_new,
                                          .set_topic = rec_set_topic,
                                          .send = rec_send,
                                          .poll = rec_poll,
                                          .flush = rec_flush,
                                          .destroy = rec_destroy};

/* The distributor dies with ti.running taken but not acknowledged: ti.done, which can no longer
 * go over the channel, goes to Kafka after ti.running, not before (the FSM refuses a done for an
 * instance it still sees launched: the instance stayed R after a resume), and each once.
 * _i: 0 = socketpair, 1 = TCP. */
START_TEST(test_channel_lost_keeps_report_order)
{
    jm_err_t err;
    jm_chan_t *d = NULL;
    jm_config_t *cfg = jm_config_new();
    memset(&g_rec, 0, sizeof(g_rec));
    jm_report_set_producer_ops(&rec_ops);
    jm_event_set_producer(JM_PRODUCER_WORKER);
    jm_report_t *r = channel_pair(cfg, _i, 1, &d);
    ck_assert_int_eq(jm_report_send(r, ev_running(), 1, &err), JM_OK);
    expect_datagram(d, JM_EV_TI_RUNNING);
    jm_chan_free(d); /* SIGKILLed before its answer */
    ck_assert_int_eq(jm_report_send(r, ev_done(), 1, &err), JM_OK);
    ck_assert_int_eq(jm_report_finish(r, 1, NULL, 7, 5, &err), JM_OK);
    jm_report_destroy(r);
    jm_report_set_producer_ops(NULL);
    jm_config_destroy(cfg);
    ck_assert_uint_eq(g_rec.n, 2);
    ck_assert_int_eq(g_rec.type[0], JM_EV_TI_RUNNING);
    ck_assert_int_eq(g_rec.type[1], JM_EV_TI_DONE);
}
END_TEST

/* Nothing listens at the report address (or the token is refused: the connection closed at
 * once): the worker publishes to Kafka (here unreachable), then spools.  _i: 0 = connection
 * refused, 1 = accepted then closed (a wrong token). */
START_TEST(test_remote_channel_unreachable_falls_back)
{
    jm_err_t err;
    char dir[] = "/tmp/jm-rmsp-XXXXXX", addr[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int lfd = tcp_listener(addr, sizeof(addr));
    if (_i == 0)
        close(lfd); /* the port is closed now */
    jm_config_t *cfg = jm_config_new();
    ck_assert_int_eq(jm_config_set(cfg, "kafka.brokers", "127.0.0.1:1", &err), JM_OK);
    jm_report_set_producer_ops(&jm_producer_ops);
    jm_event_set_producer(JM_PRODUCER_WORKER);
    int64_t t0 = jm_time_mono_ms();
    jm_report_t *r = jm_report_new_remote(cfg, addr, "s3cret", 1000, 1, JM_PRODUCER_LATENCY);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_lt(jm_time_mono_ms() - t0, 1500);
    if (_i == 1) {
        ck_assert_int_ge(jm_report_chan_fd(r), 0);
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        close(fd); /* as the distributor does with a wrong token */
        close(lfd);
    } else {
        ck_assert_int_eq(jm_report_chan_fd(r), -1);
    }
    ck_assert_int_eq(jm_report_send(r, ev_running(), 1, &err), JM_OK);
    ck_assert_int_eq(jm_report_send(r, ev_done(), 1, &err), JM_OK);
    ck_assert_int_eq(jm_report_finish(r, 1, dir, 7, 5, &err), JM_ERR_UNAVAILABLE);
    ck_assert_int_lt(jm_time_mono_ms() - t0, 10000);
    jm_report_destroy(r);
    jm_report_set_producer_ops(NULL);
    jm_config_destroy(cfg);
    expect_spooled_and_clean(dir);
}
END_TEST

/* Stream framing: a message that arrives in pieces is returned once whole, two in one read
 * come out one by one, a zero or oversized length breaks the channel. */
START_TEST(test_chan_stream_framing)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    jm_chan_t *w = jm_chan_new(sv[0], 1), *d = jm_chan_new(sv[1], 1);
    char *buf = NULL;
    size_t len = 0;
    const char frame[] = "\0\0\0\5hello";
    for (size_t i = 0; i < sizeof(frame) - 1; i++) {
        ck_assert_int_eq(jm_chan_recv(d, &buf, &len), 0);
        ck_assert_int_eq(write(sv[0], frame + i, 1), 1);
    }
    ck_assert_int_eq(jm_chan_recv(d, &buf, &len), 1);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(buf, "hello");
    free(buf);
    ck_assert_int_eq(jm_chan_send(w, "one", 3, 1000), 0);
    ck_assert_int_eq(jm_chan_send(w, "two!", 4, 1000), 0);
    ck_assert_int_eq(jm_chan_recv(d, &buf, &len), 1);
    ck_assert_str_eq(buf, "one");
    free(buf);
    ck_assert_int_eq(jm_chan_recv(d, &buf, &len), 1);
    ck_assert_str_eq(buf, "two!");
    free(buf);
    ck_assert_int_eq(jm_chan_recv(d, &buf, &len), 0);
    ck_assert_int_eq(jm_chan_send(w, "", 0, 1000), -1); /* an empty message is never sent */
    ck_assert_int_eq(write(sv[0], "\x7f\0\0\0", 4), 4); /* 2 GiB: refused */
    ck_assert_int_eq(jm_chan_recv(d, &buf, &len), -1);
    jm_chan_free(w);
    jm_chan_free(d);
}
END_TEST

/* The worker takes JOBMON_REPORT_ADDR/TOKEN out of the command's environment: the command
 * never sees the distributor's secret. */
START_TEST(test_worker_hides_report_token)
{
    char dir[] = "/tmp/jm-tok-XXXXXX", cmd[1024], line[4096];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd),
             "JOBMON_REPORT_ADDR=127.0.0.1:1 JOBMON_REPORT_TOKEN=s3cret %s/jobmon-worker "
             "--ti-id 5 --workflow-id 7 --run-id 8 --task-id 9 --no-kill-check --logs-dir %s "
             "--events-file %s/ev --command 'echo tok=${JOBMON_REPORT_TOKEN:-none} "
             "addr=${JOBMON_REPORT_ADDR:-none}' >/dev/null 2>&1",
             JM_TEST_BUILDDIR, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/ev", dir);
    FILE *f = fopen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    int seen = 0;
    while (fgets(line, sizeof(line), f))
        seen += strstr(line, "tok=none addr=none") != NULL;
    fclose(f);
    ck_assert_int_eq(seen, 1); /* in ti.done's stdout tail */
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *jm_worker_suite(void);
Suite *jm_worker_suite(void)
{
    Suite *s = suite_create("worker");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, test_tail_small);
    tcase_add_test(tc, test_tail_wraps_keeps_newest);
    tcase_add_test(tc, test_tail_does_not_split_utf8_at_start);
    tcase_add_test(tc, test_utf8_sanitize);
    tcase_add_test(tc, test_tail_replacements_stay_within_limit);
    tcase_add_test(tc, test_proc_parse);
    tcase_add_test(tc, test_proc_tree_rss);
    tcase_add_test(tc, test_batchfile_round_trip);
    tcase_add_test(tc, test_array_step_env);
    tcase_add_test(tc, test_chan_stream_framing);
    suite_add_tcase(s, tc);
    tc = tcase_create("run");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_worker_command_env_group_signals);
    tcase_add_test(tc, test_worker_done_env_and_tails);
    tcase_add_test(tc, test_worker_error_and_signal);
    tcase_add_test(tc, test_worker_log_files_on_output);
    tcase_add_test(tc, test_worker_memory_kill);
    tcase_add_test(tc, test_spool_write_and_replay_to_file);
    tcase_add_loop_test(tc, test_channel_acknowledged, 0, 2);
    tcase_add_test(tc, test_channel_running_deferred);
    tcase_add_loop_test(tc, test_channel_failure_falls_back, 0, 8);
    tcase_add_loop_test(tc, test_channel_lost_keeps_report_order, 0, 2);
    tcase_add_loop_test(tc, test_remote_channel_unreachable_falls_back, 0, 2);
    tcase_add_test(tc, test_worker_hides_report_token);
    suite_add_tcase(s, tc);
    return s;
}
