/* Unit tests for src/distributors: Slurm command lines and output parsing, batching, the
 * submission journal, resources, the local process engine, the report relay and the dummy
 * plugin. */
#include <arpa/inet.h>
#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "distributors/distributor.h"
#include "distributors/localproc.h"
#include "distributors/plugin.h"
#include "distributors/relay.h"
#include "distributors/reportsrv.h"
#include "distributors/slurm.h"
#include "jobmon/config.h"
#include "jobmon/event.h"
#include "jobmon/jmtime.h"
#include "jobmon/producer.h"

/* The worker reports one events-file line stands for, as a JSON array of {type, payload}: the
 * event itself, or for a ti.reports each item's ti.running then ti.done / ti.error. */
static json_t *line_reports(const char *line)
{
    jm_event_t *ev = NULL;
    jm_err_t err;
    ck_assert_int_eq(jm_event_decode(line, strlen(line) - 1, &ev, &err), JM_OK);
    json_t *out = json_array();
    if (ev->type != JM_EV_TI_REPORTS) {
        json_array_append_new(out, json_pack("{ss sO}", "type", jm_event_type_name(ev->type),
                                             "payload", ev->payload));
        jm_event_destroy(ev);
        return out;
    }
    json_t *items = json_object_get(ev->payload, "items"), *it;
    size_t i;
    json_array_foreach(items, i, it)
    {
        json_t *ti = json_object_get(it, "ti_id"), *run = json_object_get(it, "running"),
               *res = json_object_get(it, "result");
        if (json_is_object(run)) {
            json_t *pl = json_deep_copy(run);
            json_object_set(pl, "ti_id", ti);
            json_array_append_new(out, json_pack("{ss so}", "type", "ti.running", "payload", pl));
        }
        if (json_is_object(res)) {
            json_t *pl = json_deep_copy(res);
            json_object_set(pl, "ti_id", ti);
            const char *type = strcmp(jm_ev_str(res, "status"), "D") == 0 ? "ti.done" : "ti.error";
            json_array_append_new(out, json_pack("{ss so}", "type", type, "payload", pl));
        }
    }
    jm_event_destroy(ev);
    return out;
}

/* The payload (new reference) of the last report `type` of instance ti_id in events file
 * `path`, NULL if none; *count (may be NULL) gets how many there are. */
static json_t *file_report(const char *path, int64_t ti_id, const char *type, int *count)
{
    FILE *f = fopen(path, "r");
    char line[65536];
    json_t *last = NULL, *e;
    int k = 0;
    size_t i;
    while (f && fgets(line, sizeof(line), f)) {
        json_t *reps = line_reports(line);
        json_array_foreach(reps, i, e)
        {
            json_t *pl = json_object_get(e, "payload");
            if (strcmp(jm_ev_str(e, "type"), type) == 0 && jm_ev_int(pl, "ti_id") == ti_id) {
                json_decref(last);
                last = json_incref(pl);
                k++;
            }
        }
        json_decref(reps);
    }
    if (f)
        fclose(f);
    if (count)
        *count = k;
    return last;
}

static int has_arg(char **argv, const char *a)
{
    for (size_t i = 0; argv[i]; i++)
        if (strcmp(argv[i], a) == 0)
            return 1;
    return 0;
}

START_TEST(test_sbatch_argv)
{
    jm_slurm_req_t req = {.job_name = "t1",
                          .partition = "debug",
                          .memory_mb = 1536,
                          .runtime_s = 61,
                          .cores = 2,
                          .array_n = 5,
                          .out_path = "/l/%A_%a.o",
                          .err_path = "/l/%A_%a.e",
                          .wrap = "exec w --array-batch f"};
    char **v = jm_slurm_sbatch_argv(&req);
    ck_assert_str_eq(v[0], "sbatch");
    ck_assert(has_arg(v, "--parsable"));
    ck_assert(has_arg(v, "--job-name=t1"));
    ck_assert(has_arg(v, "--partition=debug"));
    ck_assert(has_arg(v, "--mem=1536M"));
    ck_assert(has_arg(v, "--time=2")); /* 61 s → 2 minutes, rounded up */
    ck_assert(has_arg(v, "--cpus-per-task=2"));
    ck_assert(has_arg(v, "--array=1-5"));
    ck_assert(has_arg(v, "--output=/l/%A_%a.o"));
    ck_assert(has_arg(v, "--wrap=exec w --array-batch f"));
    jm_plugin_argv_free(v);
    jm_slurm_req_t one = {.wrap = "true", .runtime_s = 60};
    v = jm_slurm_sbatch_argv(&one);
    ck_assert(has_arg(v, "--time=1"));
    ck_assert(has_arg(v, "--cpus-per-task=1"));
    for (size_t i = 0; v[i]; i++) {
        ck_assert(strncmp(v[i], "--array", 7) != 0);
        ck_assert(strncmp(v[i], "--mem", 5) != 0);
        ck_assert(strncmp(v[i], "--partition", 11) != 0);
    }
    jm_plugin_argv_free(v);
}
END_TEST

START_TEST(test_sbatch_output)
{
    char id[32];
    ck_assert_int_eq(jm_slurm_parse_sbatch("1234\n", id, sizeof(id)), JM_OK);
    ck_assert_str_eq(id, "1234");
    ck_assert_int_eq(jm_slurm_parse_sbatch("77;cluster\n", id, sizeof(id)), JM_OK);
    ck_assert_str_eq(id, "77");
    ck_assert_int_eq(jm_slurm_parse_sbatch("sbatch: error: x\n", id, sizeof(id)), JM_ERR_INVALID);
    ck_assert_int_eq(jm_slurm_parse_sbatch("", id, sizeof(id)), JM_ERR_INVALID);
}
END_TEST

/* Real lines captured from Slurm 22.05 (scripts/slurm-stack). */
static const char SCONTROL_OOM[] =
    "JobId=3 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901757 "
    "Nice=0 Account=(null) QOS=(null) JobState=OUT_OF_MEMORY Reason=OutOfMemory "
    "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:125 RunTime=00:00:00";
static const char SCONTROL_FAILED[] =
    "JobId=2 ArrayJobId=2 ArrayTaskId=2 JobName=wrap JobState=FAILED Reason=NonZeroExitCode "
    "Dependency=(null) ExitCode=3:0 RunTime=00:00:00";
static const char SCONTROL_RUNNING[] = "JobId=9 JobName=wrap JobState=RUNNING Reason=None "
                                       "ExitCode=0:0";
static const char JOBCOMP_TIMEOUT[] =
    "JobId=12 UserId=root(0) GroupId=root(0) Name=wrap JobState=TIMEOUT Partition=debug "
    "TimeLimit=1 StartTime=2026-11-25T14:49:12 EndTime=2026-11-25T14:50:40 NodeList=localhost "
    "NodeCnt=1 ProcCnt=1 WorkDir=/tmp ReservationName= Tres=cpu=1,mem=512M,node=1,billing=1 "
    "Account= QOS= WcKey= Cluster=unknown DerivedExitCode=0:0 ExitCode=0:0 \n";
static const char JOBCOMP_NOCGROUP_KILL[] =
    "JobId=13 UserId=root(0) GroupId=root(0) Name=wrap JobState=FAILED Partition=debug "
    "TimeLimit=UNLIMITED NodeList=localhost DerivedExitCode=0:0 ExitCode=0:9 \n";
static const char JOBCOMP_ARRAY[] =
    "JobId=4 UserId=root(0) GroupId=root(0) Name=wrap JobState=CANCELLED Partition=debug "
    "ArrayJobId=2 ArrayTaskId=1 DerivedExitCode=0:0 ExitCode=0:0 \n";

START_TEST(test_slurm_exit_mapping)
{
    char st = 0, msg[256];
    ck_assert_int_eq(jm_slurm_map_line(SCONTROL_OOM, &st, msg, sizeof(msg)), JM_OK);
    ck_assert_int_eq(st, 'Z');
    ck_assert_ptr_nonnull(strstr(msg, "OUT_OF_MEMORY"));
    ck_assert_int_eq(jm_slurm_map_line(SCONTROL_FAILED, &st, msg, sizeof(msg)), JM_OK);
    ck_assert_int_eq(st, 'E');
    ck_assert_ptr_nonnull(strstr(msg, "exit code 3"));
    ck_assert_int_eq(jm_slurm_map_line(SCONTROL_RUNNING, &st, msg, sizeof(msg)), JM_ERR_RETRY);
    ck_assert_int_eq(jm_slurm_map_line(JOBCOMP_TIMEOUT, &st, msg, sizeof(msg)), JM_OK);
    ck_assert_int_eq(st, 'Z');
    ck_assert_ptr_nonnull(strstr(msg, "TIMEOUT"));
    ck_assert_int_eq(jm_slurm_map_line(JOBCOMP_NOCGROUP_KILL, &st, msg, sizeof(msg)), JM_OK);
    ck_assert_int_eq(st, 'Z');
    ck_assert_ptr_nonnull(strstr(msg, "0:9"));
    ck_assert_int_eq(jm_slurm_map_line(JOBCOMP_ARRAY, &st, msg, sizeof(msg)), JM_OK);
    ck_assert_int_eq(st, 'U');
    ck_assert_int_eq(
        jm_slurm_map_line("slurm_load_jobs error: Invalid job id specified", &st, msg, sizeof(msg)),
        JM_ERR_NOT_FOUND);
    ck_assert_int_eq(jm_slurm_map_exit("NODE_FAIL", "0:0", NULL, &st, msg, sizeof(msg)), JM_OK);
    ck_assert_int_eq(st, 'U');
    ck_assert_int_eq(jm_slurm_map_exit("COMPLETED", "0:0", NULL, &st, msg, sizeof(msg)), JM_OK);
    ck_assert_int_eq(st, 'U');
    ck_assert_int_eq(jm_slurm_map_exit("PENDING", "0:0", NULL, &st, msg, sizeof(msg)),
                     JM_ERR_RETRY);
}
END_TEST

START_TEST(test_slurm_kv_and_matching)
{
    char v[64];
    ck_assert(jm_slurm_kv(SCONTROL_OOM, "JobState", v, sizeof(v)));
    ck_assert_str_eq(v, "OUT_OF_MEMORY");
    ck_assert(jm_slurm_kv(SCONTROL_OOM, "JobId", v, sizeof(v)));
    ck_assert_str_eq(v, "3");
    ck_assert(!jm_slurm_kv(SCONTROL_OOM, "State", v, sizeof(v))); /* no suffix matches */
    ck_assert(jm_slurm_jobcomp_match(JOBCOMP_TIMEOUT, "12"));
    ck_assert(!jm_slurm_jobcomp_match(JOBCOMP_TIMEOUT, "1"));
    ck_assert(jm_slurm_jobcomp_match(JOBCOMP_ARRAY, "2_1"));
    ck_assert(!jm_slurm_jobcomp_match(JOBCOMP_ARRAY, "2_11"));
    ck_assert(!jm_slurm_jobcomp_match(JOBCOMP_ARRAY, "22_1"));
    char id[32], st[32];
    ck_assert_int_eq(jm_slurm_squeue_line("2_1|RUNNING", id, sizeof(id), st, sizeof(st)), 0);
    ck_assert_str_eq(id, "2_1");
    ck_assert_str_eq(st, "RUNNING");
    ck_assert(jm_slurm_state_alive(st));
    ck_assert(!jm_slurm_state_alive("COMPLETED"));
    ck_assert_int_ne(jm_slurm_squeue_line("garbage", id, sizeof(id), st, sizeof(st)), 0);
}
END_TEST

static jm_dist_ti_t *mk(int64_t id, int64_t array, int batch, const char *res)
{
    jm_dist_ti_t *t = jm_calloc(1, sizeof(*t));
    t->ti_id = id;
    t->array_id = array;
    t->batch_num = batch;
    t->resources = jm_strdup(res);
    t->name = jm_strdup("n");
    t->command = jm_strdup("true");
    return t;
}

START_TEST(test_batches)
{
    jm_dist_ti_t *v[7] = {mk(1, 0, 1, "{}"),
                          mk(2, 5, 1, "{\"memory\": 1}"),
                          mk(3, 5, 1, "{\"memory\": 1}"),
                          mk(4, 5, 1, "{\"memory\": 2}"),
                          mk(5, 5, 2, "{\"memory\": 2}"),
                          mk(6, 5, 2, "{\"memory\": 2}"),
                          mk(7, 5, 2, "{\"memory\": 2}")};
    size_t starts[8];
    size_t nb = jm_dist_batches(v, 7, 1000, starts);
    ck_assert_uint_eq(nb, 4);
    ck_assert_uint_eq(starts[0], 0);
    ck_assert_uint_eq(starts[1], 1);
    ck_assert_uint_eq(starts[2], 3);
    ck_assert_uint_eq(starts[3], 4);
    ck_assert_uint_eq(starts[4], 7);
    nb = jm_dist_batches(v, 7, 2, starts); /* size cap splits the last batch */
    ck_assert_uint_eq(nb, 5);
    ck_assert_uint_eq(starts[3], 4);
    ck_assert_uint_eq(starts[4], 6);
    ck_assert_uint_eq(jm_dist_batches(v, 0, 10, starts), 0);
    for (int i = 0; i < 7; i++)
        jm_dist_ti_free(v[i]);
}
END_TEST

START_TEST(test_resources)
{
    jm_dist_ti_t *t = mk(9, 0, 1,
                         "{\"memory\": 2048, \"runtime\": 90, \"cores\": 3, \"queue\": \"all.q\", "
                         "\"stdout\": \"/logs\"}");
    jm_dist_ti_parse_resources(t);
    ck_assert_int_eq(t->memory_mb, 2048);
    ck_assert_int_eq(t->runtime_s, 90);
    ck_assert_int_eq(t->cores, 3);
    ck_assert_str_eq(t->queue, "all.q");
    ck_assert_str_eq(t->stdout_path, "/logs/n.o9");
    ck_assert_ptr_null(t->stderr_path);
    jm_plugin_env_t env = {.workflow_id = 7, .run_id = 8, .worker_path = "/w"};
    char **argv = jm_plugin_worker_argv(&env, t);
    ck_assert_str_eq(argv[0], "/w");
    ck_assert(has_arg(argv, "--memory-mb"));
    ck_assert(has_arg(argv, "2048"));
    ck_assert(has_arg(argv, "--runtime-s"));
    ck_assert(!has_arg(argv, "--config"));
    jm_plugin_argv_free(argv);
    jm_dist_ti_free(t);
}
END_TEST

START_TEST(test_journal_survives_reopen)
{
    char path[] = "/tmp/jm-journal-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    jm_err_t err;
    jm_journal_t *j = jm_journal_open(path, &err);
    ck_assert_ptr_nonnull(j);
    for (int64_t i = 1; i <= 3000; i++)
        jm_journal_add(j, JM_JR_INSTANTIATED, i, NULL);
    jm_journal_add(j, JM_JR_SUBMITTED, 2, "123_2");
    ck_assert_int_eq(jm_journal_state(j, 2, NULL), JM_JR_SUBMITTED);
    ck_assert_int_eq(jm_journal_sync(j, &err), JM_OK);
    jm_journal_destroy(j);
    /* a torn last record is ignored */
    FILE *f = fopen(path, "a");
    fputs("S 3 99", f);
    fclose(f);
    j = jm_journal_open(path, &err);
    const char *did = NULL;
    ck_assert_int_eq(jm_journal_state(j, 2, &did), JM_JR_SUBMITTED);
    ck_assert_str_eq(did, "123_2");
    ck_assert_int_eq(jm_journal_state(j, 3, NULL), JM_JR_INSTANTIATED);
    ck_assert_int_eq(jm_journal_state(j, 2999, NULL), JM_JR_INSTANTIATED);
    ck_assert_int_eq(jm_journal_state(j, 4000, NULL), JM_JR_NONE);
    jm_journal_destroy(j);
    unlink(path);
}
END_TEST

START_TEST(test_localproc)
{
    /* /bin/true stands in for jobmon-worker (it ignores the arguments) */
    jm_plugin_env_t env = {.workflow_id = 7, .run_id = 8, .worker_path = "/bin/true"};
    jm_localproc_t *lp = jm_localproc_new(&env, 1, 0);
    jm_dist_ti_t *a = mk(1, 0, 1, "{}"), *b = mk(2, 0, 1, "{}");
    jm_localproc_enqueue(lp, a, "1");
    jm_localproc_enqueue(lp, b, "2");
    jm_localproc_poll(lp); /* starts "1" only: one slot */
    ck_assert(jm_localproc_alive(lp, "1"));
    ck_assert(jm_localproc_alive(lp, "2"));
    jm_localproc_terminate(lp, "2"); /* queued: dropped */
    ck_assert(!jm_localproc_alive(lp, "2"));
    while (jm_localproc_busy(lp) > 0) {
        siginfo_t si;
        ck_assert_int_eq(waitid(P_ALL, 0, &si, WEXITED | WNOWAIT), 0); /* block, don't reap */
        jm_localproc_poll(lp);
    }
    int code = -1;
    ck_assert_int_eq(jm_localproc_exit_code(lp, "1", &code), JM_OK);
    ck_assert_int_eq(code, 0);
    ck_assert_int_eq(jm_localproc_exit_code(lp, "2", &code), JM_OK);
    ck_assert_int_eq(code, 128 + 15);
    ck_assert_int_eq(jm_localproc_exit_code(lp, "3", &code), JM_ERR_NOT_FOUND);
    jm_localproc_destroy(lp);
    jm_dist_ti_free(a);
    jm_dist_ti_free(b);
}
END_TEST

START_TEST(test_dummy_plugin_reports_after_poll)
{
    char evpath[] = "/tmp/jm-dummy-XXXXXX";
    int fd = mkstemp(evpath);
    close(fd);
    jm_err_t err;
    jm_config_t *cfg = jm_config_new();
    jm_event_set_producer(JM_PRODUCER_DISTRIBUTOR);
    jm_report_t *r = jm_report_new(cfg, evpath, 0, &err);
    jm_plugin_env_t env = {.workflow_id = 7, .run_id = 8, .report = r, .next_report_s = 279};
    jm_plugin_t *pl = jm_plugin_new("dummy", &env, &err);
    ck_assert_ptr_nonnull(pl);
    ck_assert_int_eq(pl->start(pl, &err), JM_OK);
    jm_dist_ti_t *a = mk(11, 0, 1, "{}"), *b = mk(12, 0, 1, "{}");
    char *ida = NULL, *idb = NULL;
    ck_assert_int_eq(pl->submit(pl, a, &ida, &err), JM_OK);
    ck_assert_int_eq(pl->submit(pl, b, &idb, &err), JM_OK);
    ck_assert_str_ne(ida, idb);
    ck_assert_int_eq(atoll(ida) % 2, 0);
    char st = 0, msg[128];
    ck_assert_int_eq(pl->get_remote_exit_info(pl, ida, &st, msg, sizeof(msg), &err), JM_OK);
    ck_assert_int_eq(st, 'U');
    FILE *f = fopen(evpath, "r");
    fseek(f, 0, SEEK_END);
    ck_assert_int_eq(ftell(f), 0); /* nothing before poll (the distributor launches first) */
    pl->poll(pl);
    jm_report_destroy(r);
    rewind(f);
    char line[4096];
    /* one ti.reports event: both instances, each R (with its distributor id) then D */
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    jm_event_t *ev = NULL;
    ck_assert_int_eq(jm_event_decode(line, strlen(line) - 1, &ev, &err), JM_OK);
    ck_assert_int_eq(ev->type, JM_EV_TI_REPORTS);
    ck_assert_int_eq(ev->workflow_id, 7);
    ck_assert_int_eq(json_integer_value(json_object_get(ev->payload, "run_id")), 8);
    json_t *items = json_object_get(ev->payload, "items");
    ck_assert_uint_eq(json_array_size(items), 2);
    const char *dids[] = {ida, idb};
    for (size_t i = 0; i < 2; i++) {
        json_t *it = json_array_get(items, i);
        ck_assert_int_eq(json_integer_value(json_object_get(it, "ti_id")), 11 + (int)i);
        json_t *run = json_object_get(it, "running"), *res = json_object_get(it, "result");
        ck_assert_str_eq(json_string_value(json_object_get(run, "distributor_id")), dids[i]);
        ck_assert_int_eq(json_integer_value(json_object_get(run, "next_report_s")), 279);
        ck_assert_str_eq(json_string_value(json_object_get(res, "status")), "D");
    }
    jm_event_destroy(ev);
    ck_assert_ptr_null(fgets(line, sizeof(line), f)); /* nothing else */
    fclose(f);
    pl->stop(pl);
    pl->destroy(pl);
    free(ida);
    free(idb);
    jm_dist_ti_free(a);
    jm_dist_ti_free(b);
    jm_config_destroy(cfg);
    unlink(evpath);
}
END_TEST

/* The real jobmon-worker started by localproc with a report channel: its events arrive through
 * the distributor's report (an events file here, which acknowledges at once) and it exits 0
 * without ever using Kafka (its brokers point at a closed port). */
START_TEST(test_localproc_report_channel)
{
    char evpath[] = "/tmp/jm-lpch-XXXXXX", logs[] = "/tmp/jm-lpchl-XXXXXX";
    int fd = mkstemp(evpath);
    close(fd);
    ck_assert_ptr_nonnull(mkdtemp(logs));
    setenv("JOBMON_LOGS_DIR", logs, 1);
    setenv("JOBMON_KAFKA_BROKERS", "127.0.0.1:1", 1);
    setenv("JOBMON_WORKER_KAFKA_RETRY_TIMEOUT", "30", 1);
    jm_err_t err;
    jm_config_t *cfg = jm_config_new();
    jm_report_t *r = jm_report_new(cfg, evpath, 0, &err);
    ck_assert_ptr_nonnull(r);
    jm_plugin_env_t env = {.workflow_id = 7,
                           .run_id = 8,
                           .worker_path = JM_TEST_BUILDDIR "/jobmon-worker",
                           .report = r};
    jm_localproc_t *lp = jm_localproc_new(&env, 1, 0);
    jm_dist_ti_t *a = mk(41, 0, 1, "{}");
    jm_localproc_enqueue(lp, a, "1");
    int64_t t0 = jm_time_mono_ms();
    jm_localproc_poll(lp);
    while (jm_localproc_busy(lp) > 0 && jm_time_mono_ms() - t0 < 20000) {
        struct pollfd pfd[4];
        size_t n = jm_localproc_pollfds(lp, pfd, 4);
        (void)poll(pfd, (nfds_t)n, 20); /* SIGCHLD is not watched here: short timeout */
        jm_localproc_poll(lp);
    }
    ck_assert_int_eq(jm_localproc_busy(lp), 0);
    ck_assert_int_lt(jm_time_mono_ms() - t0, 10000); /* not the 30 s Kafka retry */
    int code = -1;
    ck_assert_int_eq(jm_localproc_exit_code(lp, "1", &code), JM_OK);
    ck_assert_int_eq(code, 0);
    jm_localproc_destroy(lp);
    jm_report_destroy(r);
    jm_config_destroy(cfg);
    unsetenv("JOBMON_KAFKA_BROKERS");
    unsetenv("JOBMON_WORKER_KAFKA_RETRY_TIMEOUT");
    unsetenv("JOBMON_LOGS_DIR");
    int running = 0, done = 0;
    json_decref(file_report(evpath, 41, "ti.running", &running));
    json_decref(file_report(evpath, 41, "ti.done", &done));
    ck_assert_int_eq(running, 1);
    ck_assert_int_eq(done, 1);
    jm_dist_ti_free(a);
    unlink(evpath);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", logs);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- pooled workers (jobmon-worker --serve): the real worker, its events through an events
 * file (acknowledged at once), Kafka at a closed port, logs and spool in a temp dir ---- */
typedef struct {
    char evpath[32], dir[32];
    jm_config_t *cfg;
    jm_report_t *r;
    jm_plugin_env_t env;
    jm_localproc_t *lp;
} pool_t;

static void pool_open(pool_t *p, int slots, const char *worker)
{
    jm_err_t err;
    memset(p, 0, sizeof(*p));
    snprintf(p->evpath, sizeof(p->evpath), "/tmp/jm-pool-XXXXXX");
    snprintf(p->dir, sizeof(p->dir), "/tmp/jm-poold-XXXXXX");
    int fd = mkstemp(p->evpath);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_ptr_nonnull(mkdtemp(p->dir));
    char *spool = jm_asprintf("%s/spool", p->dir);
    setenv("JOBMON_LOGS_DIR", p->dir, 1);
    setenv("JOBMON_WORKER_SPOOL_DIR", spool, 1);
    setenv("JOBMON_KAFKA_BROKERS", "127.0.0.1:1", 1);
    setenv("JOBMON_WORKER_KAFKA_RETRY_TIMEOUT", "1", 1);
    setenv("JOBMON_WORKER_COMMAND_INTERRUPT_TIMEOUT", "2", 1);
    free(spool);
    p->cfg = jm_config_new();
    p->r = jm_report_new(p->cfg, p->evpath, 0, &err);
    ck_assert_ptr_nonnull(p->r);
    p->env = (jm_plugin_env_t){.workflow_id = 7,
                               .run_id = 8,
                               .worker_path = worker ? worker : JM_TEST_BUILDDIR "/jobmon-worker",
                               .report = p->r};
    p->lp = jm_localproc_new(&p->env, slots, 1);
}

/* Enqueue instance ti_id (distributor id "<ti_id>") running `cmd`, memory limit mem MB. */
static void pool_add(pool_t *p, int64_t ti_id, const char *cmd, int64_t mem)
{
    jm_dist_ti_t *t = mk(ti_id, 0, 1, "{}");
    free(t->command);
    t->command = jm_strdup(cmd);
    t->memory_mb = mem;
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)ti_id);
    jm_localproc_enqueue(p->lp, t, id);
    jm_dist_ti_free(t);
}

/* Poll the engine like the distributor until `done` holds or 20 s passed. */
static int pool_until(pool_t *p, int (*done)(pool_t *, int64_t), int64_t arg)
{
    int64_t t0 = jm_time_mono_ms();
    for (;;) {
        jm_localproc_poll(p->lp);
        if (done(p, arg))
            return 1;
        if (jm_time_mono_ms() - t0 > 20000)
            return 0;
        struct pollfd pfd[8];
        size_t n = jm_localproc_pollfds(p->lp, pfd, 8);
        (void)poll(pfd, (nfds_t)(n < 8 ? n : 8), 20); /* SIGCHLD is not watched: short timeout */
    }
}

static int pool_idle(pool_t *p, int64_t unused)
{
    (void)unused;
    return jm_localproc_busy(p->lp) == 0;
}

/* The payload (new reference) of the last report `type` of instance ti_id, NULL if none;
 * *count (may be NULL) gets how many there are. */
static json_t *pool_event(pool_t *p, int64_t ti_id, const char *type, int *count)
{
    return file_report(p->evpath, ti_id, type, count);
}

static int pool_running(pool_t *p, int64_t ti_id)
{
    json_t *e = pool_event(p, ti_id, "ti.running", NULL);
    json_decref(e);
    return e != NULL;
}

static void pool_close(pool_t *p)
{
    jm_localproc_destroy(p->lp);
    jm_report_destroy(p->r);
    jm_config_destroy(p->cfg);
    const char *vars[] = {"JOBMON_LOGS_DIR", "JOBMON_WORKER_SPOOL_DIR", "JOBMON_KAFKA_BROKERS",
                          "JOBMON_WORKER_KAFKA_RETRY_TIMEOUT",
                          "JOBMON_WORKER_COMMAND_INTERRUPT_TIMEOUT"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    unlink(p->evpath);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", p->dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int exit_code_of(pool_t *p, const char *id)
{
    int code = -1;
    ck_assert_int_eq(jm_localproc_exit_code(p->lp, id, &code), JM_OK);
    return code;
}

/* The first word of a stdout/stderr tail: the worker's pid ($PPID of the command). */
static long tail_pid(json_t *pl, const char *key)
{
    const char *t = jm_ev_str(pl, key);
    return t ? atol(t) : 0;
}

/* 6 instances, 2 slots, 2 spare workers: every one reported once (ti.running, ti.done), the
 * command sees its JOBMON_DISTRIBUTOR_ID, and at most 4 worker processes ran them all (2
 * running commands, and up to 2 waiting for the acknowledgement of their reports). */
START_TEST(test_pool_runs_instances_in_few_workers)
{
    pool_t p;
    setenv("JOBMON_POOL_SPARE", "2", 1);
    pool_open(&p, 2, NULL);
    unsetenv("JOBMON_POOL_SPARE");
    for (int64_t i = 1; i <= 6; i++)
        pool_add(&p, 100 + i, "echo $PPID $JOBMON_DISTRIBUTOR_ID", 0);
    ck_assert(pool_until(&p, pool_idle, 0));
    long pids[6];
    size_t npids = 0;
    for (int64_t i = 1; i <= 6; i++) {
        int nr = 0, nd = 0;
        json_decref(pool_event(&p, 100 + i, "ti.running", &nr));
        json_t *d = pool_event(&p, 100 + i, "ti.done", &nd);
        ck_assert_int_eq(nr, 1);
        ck_assert_int_eq(nd, 1);
        char want[48], id[32];
        snprintf(id, sizeof(id), "%lld", (long long)(100 + i));
        snprintf(want, sizeof(want), " %s\n", id);
        ck_assert_ptr_nonnull(strstr(jm_ev_str(d, "stdout_tail"), want));
        ck_assert_int_eq(exit_code_of(&p, id), 0);
        long w = tail_pid(d, "stdout_tail");
        size_t k = 0;
        while (k < npids && pids[k] != w)
            k++;
        if (k == npids)
            pids[npids++] = w;
        json_decref(d);
    }
    ck_assert_uint_le(npids, 4);
    pool_close(&p);
}
END_TEST

/* Lines (events) of type `type` in the events file. */
static int file_events(const char *path, const char *type)
{
    FILE *f = fopen(path, "r");
    char line[65536], want[64];
    int k = 0;
    snprintf(want, sizeof(want), "\"type\":\"%s\"", type);
    while (f && fgets(line, sizeof(line), f))
        k += strstr(line, want) != NULL;
    if (f)
        fclose(f);
    return k;
}

static size_t g_max_procs; /* most worker processes seen by pool_count_procs */

static int pool_count_procs(pool_t *p, int64_t unused)
{
    (void)unused;
    struct pollfd pfd[64];
    size_t n = jm_localproc_pollfds(p->lp, pfd, 64);
    if (n > g_max_procs)
        g_max_procs = n;
    return jm_localproc_busy(p->lp) == 0;
}

/* With spare workers and a linger, results of several instances travel in one ti.reports
 * (each instance still reported once), and the pool never exceeds slots + spare processes. */
START_TEST(test_pool_batches_results_with_spares)
{
    pool_t p;
    setenv("JOBMON_POOL_SPARE", "4", 1);
    setenv("JOBMON_RELAY_LINGER_MS", "15", 1);
    pool_open(&p, 2, NULL);
    unsetenv("JOBMON_POOL_SPARE");
    unsetenv("JOBMON_RELAY_LINGER_MS");
    for (int64_t i = 1; i <= 16; i++)
        pool_add(&p, 800 + i, "echo $PPID", 0);
    g_max_procs = 0;
    ck_assert(pool_until(&p, pool_count_procs, 0));
    ck_assert_uint_le(g_max_procs, 6);
    for (int64_t i = 1; i <= 16; i++) {
        int nr = 0, nd = 0;
        json_decref(pool_event(&p, 800 + i, "ti.running", &nr));
        json_decref(pool_event(&p, 800 + i, "ti.done", &nd));
        ck_assert_int_eq(nr, 1);
        ck_assert_int_eq(nd, 1);
    }
    int nrep = file_events(p.evpath, "ti.reports");
    ck_assert_int_gt(nrep, 0);
    ck_assert_int_lt(nrep, 12); /* one per instance without the linger */
    pool_close(&p);
}
END_TEST

/* Pre-started pooled workers are up before anything is queued and run what comes later. */
START_TEST(test_pool_prestart)
{
    pool_t p;
    pool_open(&p, 2, NULL);
    jm_localproc_prestart(p.lp);
    struct pollfd pfd[4];
    ck_assert_uint_eq(jm_localproc_pollfds(p.lp, pfd, 4), 2); /* two workers, no instance */
    ck_assert_uint_eq(jm_localproc_busy(p.lp), 0);
    for (int64_t i = 1; i <= 3; i++)
        pool_add(&p, 700 + i, "echo $PPID", 0);
    ck_assert(pool_until(&p, pool_idle, 0));
    ck_assert_uint_le(jm_localproc_pollfds(p.lp, pfd, 4), 4); /* + up to 2 spares */
    for (int64_t i = 1; i <= 3; i++) {
        int nd = 0;
        json_decref(pool_event(&p, 700 + i, "ti.done", &nd));
        ck_assert_int_eq(nd, 1);
    }
    pool_close(&p);
}
END_TEST

/* A pooled worker kills an instance over its memory limit (Z), the next ones (D) run, and the
 * usage of those that ran in the worker of a CPU burner is their own, not cumulative (with one
 * slot, 2 workers alternate: one runs while the other waits for its acknowledgement). */
START_TEST(test_pool_memory_kill_then_next)
{
    pool_t p;
    pool_open(&p, 1, NULL);
    pool_add(&p, 200, "echo $PPID; i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done", 0);
    pool_add(&p, 201, "sh -c 'head -c 200000000 /dev/zero | tail -c 1000000000 >/dev/null'", 40);
    for (int64_t i = 202; i <= 207; i++)
        pool_add(&p, i, "echo $PPID", 0);
    ck_assert(pool_until(&p, pool_idle, 0));
    json_t *e = pool_event(&p, 201, "ti.error", NULL), *b = pool_event(&p, 200, "ti.done", NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(jm_ev_str(e, "status"), "Z");
    ck_assert_ptr_nonnull(strstr(jm_ev_str(e, "message"), "memory"));
    int64_t burnt = jm_ev_int(jm_ev_get(b, "usage"), "cpu_ms");
    ck_assert_int_gt(burnt, 100);
    int after_burner = 0;
    for (int64_t i = 202; i <= 207; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%lld", (long long)i);
        ck_assert_int_eq(exit_code_of(&p, id), 0);
        json_t *d = pool_event(&p, i, "ti.done", NULL);
        ck_assert_ptr_nonnull(d);
        if (tail_pid(d, "stdout_tail") == tail_pid(b, "stdout_tail")) {
            after_burner++; /* RUSAGE_CHILDREN would count the burner's CPU here */
            ck_assert_int_lt(jm_ev_int(jm_ev_get(d, "usage"), "cpu_ms"), burnt / 2);
        }
        json_decref(d);
    }
    ck_assert_int_gt(after_burner, 0);
    json_decref(b);
    json_decref(e);
    pool_close(&p);
}
END_TEST

/* Terminating a pooled instance (K, cancel): its command is interrupted, the worker reports U
 * and ends; the next instance gets a new worker. */
START_TEST(test_pool_terminate_running)
{
    pool_t p;
    pool_open(&p, 1, NULL);
    pool_add(&p, 301, "echo $PPID; sleep 30", 0);
    pool_add(&p, 302, "echo $PPID", 0);
    ck_assert(pool_until(&p, pool_running, 301));
    int64_t t0 = jm_time_mono_ms();
    jm_localproc_terminate(p.lp, "301");
    ck_assert(pool_until(&p, pool_idle, 0));
    ck_assert_int_lt(jm_time_mono_ms() - t0, 10000);
    json_t *e = pool_event(&p, 301, "ti.error", NULL), *d = pool_event(&p, 302, "ti.done", NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(jm_ev_str(e, "status"), "U");
    ck_assert_int_ne(tail_pid(e, "stdout_tail"), tail_pid(d, "stdout_tail"));
    /* SIGINT, or SIGKILL after the 2 s grace when the SIGINT came while sh was forking (sh
     * swallows it then) */
    int code = exit_code_of(&p, "301");
    ck_assert(code == 128 + 2 || code == 128 + 9);
    ck_assert_int_eq(exit_code_of(&p, "302"), 0);
    json_decref(e);
    json_decref(d);
    pool_close(&p);
}
END_TEST

/* The distributor goes away while a pooled instance runs: the worker reports to Kafka itself
 * (unreachable here), then to the spool. */
START_TEST(test_pool_channel_lost_spools)
{
    pool_t p;
    pool_open(&p, 1, NULL);
    pool_add(&p, 401, "sleep 30", 0);
    ck_assert(pool_until(&p, pool_running, 401));
    jm_localproc_destroy(p.lp); /* closes the channels, SIGTERMs and waits */
    p.lp = jm_localproc_new(&p.env, 1, 1);
    char cmd[128], out[16] = "";
    snprintf(cmd, sizeof(cmd), "cat %s/spool/7-401-*.jmspool | grep -c '\"type\":\"ti\\.error'",
             p.dir);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(fgets(out, sizeof(out), f));
    pclose(f);
    /* the result is spooled; ti.running was acknowledged (published) before the channel ended */
    ck_assert_str_eq(out, "1\n");
    ck_assert(pool_running(&p, 401));
    pool_close(&p);
}
END_TEST

/* A worker without --serve (here /bin/true, which ends at once): pooling turns off and the
 * instances get one-shot workers. */
START_TEST(test_pool_falls_back_to_one_shot)
{
    pool_t p;
    pool_open(&p, 2, "/bin/true");
    for (int64_t i = 1; i <= 3; i++)
        pool_add(&p, 500 + i, "true", 0);
    ck_assert(pool_until(&p, pool_idle, 0));
    ck_assert_int_eq(exit_code_of(&p, "501"), 0);
    ck_assert_int_eq(exit_code_of(&p, "503"), 0);
    pool_close(&p);
}
END_TEST

#define TP_MAX 256 /* messages a test producer keeps */
/* ---- the report relay over a producer of the test's own: it keeps what is sent and delivers
 * when the test says so (Kafka's delivery reports at a time the test decides) ---- */
typedef struct {
    char *buf[TP_MAX];
    uint64_t token[TP_MAX];
    size_t n;
    int refuse_reports; /* send_tracked of a ti.reports fails */
    jm_producer_dr_fn cb;
    void *arg;
} tprod_t;
static tprod_t g_tp;

static jm_producer_t *tp_new(const char *brokers, jm_producer_profile_t profile,
                             const char *const *props, jm_err_t *err)
{
    (void)brokers, (void)profile, (void)props, (void)err;
    return (jm_producer_t *)&g_tp;
}
static void tp_set_topic(jm_producer_t *p, const char *topic)
{
    (void)p, (void)topic;
}
static jm_rc_t tp_send(jm_producer_t *p, const jm_event_t *ev, jm_err_t *err)
{
    (void)p, (void)ev;
    return jm_err_set(err, JM_ERR_INVALID, "untracked send in a relay test");
}
static jm_rc_t tp_send_tracked(jm_producer_t *p, int64_t wf, const void *buf, size_t len,
                               uint64_t token, jm_err_t *err)
{
    (void)p, (void)wf;
    ck_assert_uint_lt(g_tp.n, TP_MAX);
    if (g_tp.refuse_reports && strstr(buf, "\"type\":\"ti.reports\""))
        return jm_err_set(err, JM_ERR_UNAVAILABLE, "queue full");
    g_tp.buf[g_tp.n] = jm_strndup(buf, len);
    g_tp.token[g_tp.n++] = token;
    return JM_OK;
}
static void tp_set_dr_cb(jm_producer_t *p, jm_producer_dr_fn cb, void *arg)
{
    (void)p;
    g_tp.cb = cb;
    g_tp.arg = arg;
}
static int tp_wakeup_fd(jm_producer_t *p)
{
    (void)p;
    return -1;
}
static void tp_poll(jm_producer_t *p, int timeout_ms)
{
    (void)p, (void)timeout_ms;
}
static jm_rc_t tp_flush(jm_producer_t *p, int timeout_ms, jm_err_t *err)
{
    (void)p, (void)timeout_ms, (void)err;
    return JM_OK;
}
static void tp_destroy(jm_producer_t *p)
{
    (void)p;
    for (size_t i = 0; i < g_tp.n; i++)
        free(g_tp.buf[i]);
    memset(&g_tp, 0, sizeof(g_tp));
}
static const jm_producer_ops_t tp_ops = {tp_new,          tp_set_topic, tp_send,
                                         tp_send_tracked, tp_set_dr_cb, tp_wakeup_fd,
                                         tp_poll,         tp_flush,     tp_destroy};

/* The answers the relay gave, in order. */
typedef struct {
    uint64_t token[16];
    int ok[16];
    size_t n;
} answers_t;

static void answer(void *arg, uint64_t token, int ok)
{
    answers_t *a = arg;
    ck_assert_uint_lt(a->n, 16);
    a->token[a->n] = token;
    a->ok[a->n++] = ok;
}

static int answered(const answers_t *a, uint64_t token)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->token[i] == token)
            return a->ok[i] ? 1 : -1;
    return 0;
}

/* A worker's event (encoded, caller frees): ti.running, ti.done, ti.error (status E) or
 * ti.heartbeat of ti_id. */
static char *report_msg(jm_event_type_t type, int64_t ti_id, size_t *len)
{
    json_t *pl;
    json_t *usage = json_pack("{si si si}", "wall_ms", 5, "cpu_ms", 1, "maxrss_kb", 900);
    if (type == JM_EV_TI_RUNNING)
        pl = json_pack("{sI ss si ss si ss ss}", "ti_id", (json_int_t)ti_id, "host", "h", "pid", 42,
                       "distributor_id", "1_1", "next_report_s", 90, "stdout_path", "/o",
                       "stderr_path", "/e");
    else if (type == JM_EV_TI_DONE)
        pl = json_pack("{sI ss ss sO}", "ti_id", (json_int_t)ti_id, "stdout_tail", "out",
                       "stderr_tail", "", "usage", usage);
    else if (type == JM_EV_TI_ERROR)
        pl = json_pack("{sI ss si ss ss ss sO}", "ti_id", (json_int_t)ti_id, "status", "E",
                       "exit_code", 3, "message", "exit 3", "stdout_tail", "", "stderr_tail", "err",
                       "usage", usage);
    else
        pl = json_pack("{sI si}", "ti_id", (json_int_t)ti_id, "next_report_s", 90);
    json_decref(usage);
    jm_event_t *ev = jm_event_new(type, 7, pl);
    char *buf = jm_event_encode(ev, len);
    jm_event_destroy(ev);
    return buf;
}

/* A worker's datagram (report_msg) taken by the relay. */
static jm_rc_t take(jm_relay_t *rl, jm_event_type_t type, int64_t ti_id, uint64_t token)
{
    size_t len;
    char *buf = report_msg(type, ti_id, &len);
    jm_err_t err;
    jm_rc_t rc = jm_relay_take(rl, buf, len, token, NULL, &err);
    free(buf);
    return rc;
}

/* Sent message i decoded (caller destroys). */
static jm_event_t *sent(size_t i)
{
    jm_event_t *ev = NULL;
    jm_err_t err;
    ck_assert_uint_lt(i, g_tp.n);
    ck_assert_int_eq(jm_event_decode(g_tp.buf[i], strlen(g_tp.buf[i]), &ev, &err), JM_OK);
    return ev;
}

static jm_report_t *tp_report(void)
{
    jm_err_t err;
    jm_config_t *cfg = jm_config_new();
    memset(&g_tp, 0, sizeof(g_tp));
    jm_report_set_producer_ops(&tp_ops);
    jm_report_t *r = jm_report_new(cfg, NULL, 0, &err);
    ck_assert_ptr_nonnull(r);
    jm_config_destroy(cfg);
    return r;
}

/* A relay test's end: the relay, its report channel and the test producer table. */
static void tp_end(jm_relay_t *rl, jm_report_t *r)
{
    jm_relay_destroy(rl);
    jm_report_destroy(r);
    jm_report_set_producer_ops(NULL);
}

#define TOK(worker, n) ((uint64_t)(worker) << 32 | (n))

/* ---- pooled workers over the test producer: Kafka's delivery reports come when the test
 * delivers them (pool_deliver) ---- */

/* pool_open, then the test producer instead of the events file (the engine is made again). */
static void pool_open_tp(pool_t *p, int slots)
{
    pool_open(p, slots, NULL);
    jm_localproc_destroy(p->lp);
    jm_report_destroy(p->r);
    p->r = tp_report();
    p->env.report = p->r;
    p->lp = jm_localproc_new(&p->env, slots, 1);
}

/* Deliver (ok) or fail every event published so far and not yet delivered. */
static void pool_deliver(size_t *done, int ok)
{
    for (; *done < g_tp.n; (*done)++)
        g_tp.cb(g_tp.arg, g_tp.token[*done], ok);
}

/* Results (ti.reports items with a result) published through the test producer. */
static int tp_results(void)
{
    int k = 0;
    for (size_t i = 0; i < g_tp.n; i++) {
        jm_event_t *ev = sent(i);
        json_t *it;
        size_t j;
        json_array_foreach(json_object_get(ev->payload, "items"), j, it) k +=
            json_is_object(json_object_get(it, "result"));
        jm_event_destroy(ev);
    }
    return k;
}

/* Spool files in the pool's spool dir whose name has `part` (e.g. "7-901-"). */
static int spool_files(const pool_t *p, const char *part)
{
    char cmd[160], out[16] = "";
    snprintf(cmd, sizeof(cmd), "ls %s/spool 2>/dev/null | grep -c -- '%s'", p->dir, part);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    if (!fgets(out, sizeof(out), f))
        out[0] = '\0';
    pclose(f);
    return atoi(out);
}

static void pool_close_tp(pool_t *p)
{
    pool_close(p);
    jm_report_set_producer_ops(NULL);
}

/* A pooled worker takes its next instance without waiting for the answers to the reports of
 * the previous ones: with no delivery report at all, 6 instances run on one slot in at most 2
 * worker processes; once delivered, the workers end with nothing spooled. */
START_TEST(test_pool_worker_goes_on_before_answers)
{
    pool_t p;
    size_t done = 0;
    setenv("JOBMON_POOL_SPARE", "0", 1);
    pool_open_tp(&p, 1);
    unsetenv("JOBMON_POOL_SPARE");
    setenv("JOBMON_WORKER_KAFKA_RETRY_TIMEOUT", "30", 1); /* no fallback while we wait */
    for (int64_t i = 1; i <= 6; i++)
        pool_add(&p, 900 + i, "echo $PPID", 0);
    g_max_procs = 0;
    ck_assert(pool_until(&p, pool_count_procs, 0)); /* every instance ended (R) */
    ck_assert_uint_le(g_max_procs, 2);
    ck_assert_int_eq(tp_results(), 6);
    pool_deliver(&done, 1);
    jm_localproc_destroy(p.lp); /* the workers read their answers and end */
    p.lp = jm_localproc_new(&p.env, 1, 1);
    ck_assert_int_eq(spool_files(&p, ".jmspool"), 0);
    pool_close_tp(&p);
}
END_TEST

/* Reports refused by the distributor after the worker went on: each instance's events go to
 * Kafka (unreachable here), then to a spool file of their own instance. */
START_TEST(test_pool_refused_later_spools_per_instance)
{
    pool_t p;
    size_t done = 0;
    pool_open_tp(&p, 1);
    setenv("JOBMON_WORKER_KAFKA_RETRY_TIMEOUT", "30", 1);
    for (int64_t i = 1; i <= 3; i++)
        pool_add(&p, 910 + i, "echo $PPID", 0);
    ck_assert(pool_until(&p, pool_idle, 0));
    ck_assert_int_eq(tp_results(), 3);
    setenv("JOBMON_WORKER_KAFKA_RETRY_TIMEOUT", "1", 1);
    pool_deliver(&done, 0); /* "N" to every datagram */
    jm_localproc_destroy(p.lp);
    p.lp = jm_localproc_new(&p.env, 1, 1);
    ck_assert_int_eq(spool_files(&p, "7-911-"), 1);
    ck_assert_int_eq(spool_files(&p, "7-912-"), 1);
    ck_assert_int_eq(spool_files(&p, "7-913-"), 1);
    char cmd[160], out[16] = "";
    snprintf(cmd, sizeof(cmd), "cat %s/spool/7-912-*.jmspool | grep -c '\"ti_id\":912'", p.dir);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(fgets(out, sizeof(out), f));
    pclose(f);
    ck_assert_str_eq(out, "2\n"); /* its ti.running and ti.done, nothing of the others */
    pool_close_tp(&p);
}
END_TEST

/* Reports are held, go out as one ti.reports when a result arrives (an instance's R and D in
 * one item), and each datagram is answered only once that event's delivery is reported. */
START_TEST(test_relay_batches_and_acks_after_delivery)
{
    jm_report_t *r = tp_report();
    answers_t a = {0};
    jm_relay_t *rl = jm_relay_new(r, 7, 8, 0, answer, &a);
    ck_assert_int_eq(take(rl, JM_EV_TI_RUNNING, 11, TOK(1, 1)), JM_OK);
    ck_assert_int_eq(take(rl, JM_EV_TI_RUNNING, 12, TOK(2, 1)), JM_OK);
    jm_relay_flush(rl, 0);
    ck_assert_uint_eq(g_tp.n, 0); /* a ti.running alone waits for its result */
    ck_assert_uint_eq(jm_relay_held(rl), 2);
    ck_assert_int_eq(take(rl, JM_EV_TI_DONE, 11, TOK(1, 2)), JM_OK);
    ck_assert_int_eq(take(rl, JM_EV_TI_ERROR, 12, TOK(2, 2)), JM_OK);
    jm_relay_flush(rl, 0);
    ck_assert_uint_eq(g_tp.n, 1);
    ck_assert_uint_eq(jm_relay_in_flight(rl), 1);
    ck_assert_uint_eq(a.n, 0); /* nothing answered before the delivery report */
    jm_event_t *ev = sent(0);
    ck_assert_int_eq(ev->type, JM_EV_TI_REPORTS);
    ck_assert_int_eq(ev->workflow_id, 7);
    ck_assert_int_eq(jm_ev_int(ev->payload, "run_id"), 8);
    json_t *items = json_object_get(ev->payload, "items");
    ck_assert_uint_eq(json_array_size(items), 2);
    json_t *i0 = json_array_get(items, 0), *i1 = json_array_get(items, 1);
    ck_assert_int_eq(jm_ev_int(i0, "ti_id"), 11);
    ck_assert_str_eq(jm_ev_str(jm_ev_get(i0, "running"), "distributor_id"), "1_1");
    ck_assert_str_eq(jm_ev_str(jm_ev_get(i0, "result"), "status"), "D");
    ck_assert_str_eq(jm_ev_str(jm_ev_get(i0, "result"), "stdout_tail"), "out");
    ck_assert_int_eq(jm_ev_int(jm_ev_get(jm_ev_get(i0, "result"), "usage"), "maxrss_kb"), 900);
    ck_assert_int_eq(jm_ev_int(i1, "ti_id"), 12);
    ck_assert_str_eq(jm_ev_str(jm_ev_get(i1, "result"), "status"), "E");
    ck_assert_int_eq(jm_ev_int(jm_ev_get(i1, "result"), "exit_code"), 3);
    jm_event_destroy(ev);
    g_tp.cb(g_tp.arg, g_tp.token[0], 1);
    ck_assert_uint_eq(a.n, 4);
    ck_assert_int_eq(answered(&a, TOK(1, 1)), 1);
    ck_assert_int_eq(answered(&a, TOK(1, 2)), 1);
    ck_assert_int_eq(answered(&a, TOK(2, 1)), 1);
    ck_assert_int_eq(answered(&a, TOK(2, 2)), 1);
    ck_assert_uint_eq(jm_relay_in_flight(rl), 0);
    tp_end(rl, r);
}
END_TEST

/* With a linger, results wait for each other (in flight or not) and go together once the
 * oldest has waited that long or on a forced flush; a failed delivery refuses every datagram it
 * carried (the workers then publish themselves); a ti.running held too long goes alone. */
START_TEST(test_relay_linger_and_failed_delivery)
{
    jm_report_t *r = tp_report();
    answers_t a = {0};
    jm_relay_t *rl = jm_relay_new(r, 7, 8, 60000, answer, &a);
    ck_assert_int_eq(take(rl, JM_EV_TI_DONE, 21, TOK(1, 1)), JM_OK);
    jm_relay_flush(rl, 0);
    ck_assert_uint_eq(g_tp.n, 0); /* nothing in flight, but it lingers */
    jm_relay_flush(rl, 1);
    ck_assert_uint_eq(g_tp.n, 1);
    ck_assert_int_eq(take(rl, JM_EV_TI_DONE, 22, TOK(2, 1)), JM_OK);
    ck_assert_int_eq(take(rl, JM_EV_TI_DONE, 23, TOK(3, 1)), JM_OK);
    jm_relay_flush(rl, 0);
    ck_assert_uint_eq(g_tp.n, 1);
    g_tp.cb(g_tp.arg, g_tp.token[0], 0);
    ck_assert_int_eq(answered(&a, TOK(1, 1)), -1);
    ck_assert_uint_eq(a.n, 1);
    jm_relay_flush(rl, 0);
    ck_assert_uint_eq(g_tp.n, 1); /* a delivery does not end the linger */
    jm_relay_flush(rl, 1);
    ck_assert_uint_eq(g_tp.n, 2);
    jm_event_t *ev = sent(1);
    ck_assert_uint_eq(json_array_size(json_object_get(ev->payload, "items")), 2);
    jm_event_destroy(ev);
    g_tp.cb(g_tp.arg, g_tp.token[1], 1);
    ck_assert_int_eq(answered(&a, TOK(2, 1)), 1);
    ck_assert_int_eq(answered(&a, TOK(3, 1)), 1);
    /* a late or repeated delivery report of a finished event answers nothing more */
    g_tp.cb(g_tp.arg, g_tp.token[1], 1);
    ck_assert_uint_eq(a.n, 3);
    ck_assert_int_eq(take(rl, JM_EV_TI_RUNNING, 24, TOK(4, 1)), JM_OK);
    int64_t t0 = jm_time_mono_ms();
    while (g_tp.n == 2 && jm_time_mono_ms() - t0 < 5000) {
        jm_relay_flush(rl, 0);
        (void)poll(NULL, 0, 5);
    }
    ck_assert_uint_eq(g_tp.n, 3);
    ck_assert_int_ge(jm_time_mono_ms() - t0, JM_RELAY_RUNNING_HOLD_MS - 1);
    tp_end(rl, r);
}
END_TEST

/* A short linger (below JM_RELAY_RUNNING_HOLD_MS, which bounds any hold): two results go
 * together once it has passed, not before. */
START_TEST(test_relay_linger_expires)
{
    jm_report_t *r = tp_report();
    answers_t a = {0};
    jm_relay_t *rl = jm_relay_new(r, 7, 8, 10, answer, &a);
    int64_t t0 = jm_time_mono_ms();
    ck_assert_int_eq(take(rl, JM_EV_TI_DONE, 41, TOK(1, 1)), JM_OK);
    ck_assert_int_eq(take(rl, JM_EV_TI_DONE, 42, TOK(2, 1)), JM_OK);
    jm_relay_flush(rl, 0);
    ck_assert(g_tp.n == 0 || jm_time_mono_ms() - t0 >= 10); /* a slow machine may pass it */
    while (g_tp.n == 0 && jm_time_mono_ms() - t0 < 5000) {
        jm_relay_flush(rl, 0);
        (void)poll(NULL, 0, 2);
    }
    ck_assert_uint_eq(g_tp.n, 1);
    ck_assert_int_ge(jm_time_mono_ms() - t0, 10);
    jm_event_t *ev = sent(0);
    ck_assert_uint_eq(json_array_size(json_object_get(ev->payload, "items")), 2);
    jm_event_destroy(ev);
    g_tp.cb(g_tp.arg, g_tp.token[0], 1);
    ck_assert_uint_eq(a.n, 2);
    tp_end(rl, r);
}
END_TEST

/* Any other event (a heartbeat) publishes what is held first, then goes alone and is answered
 * on its own delivery; a ti.reports that cannot be published goes one datagram at a time; a
 * datagram that does not decode is refused without a send. */
START_TEST(test_relay_order_and_fallback)
{
    jm_report_t *r = tp_report();
    answers_t a = {0};
    jm_relay_t *rl = jm_relay_new(r, 7, 8, 0, answer, &a);
    ck_assert_int_eq(take(rl, JM_EV_TI_RUNNING, 31, TOK(1, 1)), JM_OK);
    ck_assert_int_eq(take(rl, JM_EV_TI_HEARTBEAT, 31, TOK(1, 2)), JM_OK);
    ck_assert_uint_eq(g_tp.n, 2);
    jm_event_t *e0 = sent(0), *e1 = sent(1);
    ck_assert_int_eq(e0->type, JM_EV_TI_REPORTS);
    ck_assert_int_eq(e1->type, JM_EV_TI_HEARTBEAT);
    ck_assert_uint_eq(g_tp.token[1], TOK(1, 2));
    jm_event_destroy(e0);
    jm_event_destroy(e1);
    g_tp.cb(g_tp.arg, g_tp.token[1], 1);
    ck_assert_int_eq(answered(&a, TOK(1, 2)), 1);
    ck_assert_int_eq(answered(&a, TOK(1, 1)), 0); /* its ti.reports is not delivered yet */
    g_tp.cb(g_tp.arg, g_tp.token[0], 1);
    ck_assert_int_eq(answered(&a, TOK(1, 1)), 1);
    g_tp.refuse_reports = 1;
    ck_assert_int_eq(take(rl, JM_EV_TI_RUNNING, 32, TOK(2, 1)), JM_OK);
    ck_assert_int_eq(take(rl, JM_EV_TI_DONE, 32, TOK(2, 2)), JM_OK);
    jm_relay_flush(rl, 0);
    ck_assert_uint_eq(g_tp.n, 4); /* the worker's own two events */
    ck_assert_uint_eq(g_tp.token[2], TOK(2, 1));
    ck_assert_uint_eq(g_tp.token[3], TOK(2, 2));
    ck_assert_uint_eq(jm_relay_in_flight(rl), 0);
    g_tp.cb(g_tp.arg, g_tp.token[2], 1);
    g_tp.cb(g_tp.arg, g_tp.token[3], 1);
    ck_assert_int_eq(answered(&a, TOK(2, 2)), 1);
    jm_err_t err;
    int result = -1;
    ck_assert_int_eq(jm_relay_take(rl, "{\"v\":1}", 7, TOK(3, 1), &result, &err), JM_ERR_INVALID);
    ck_assert_int_eq(result, 0);
    ck_assert_uint_eq(g_tp.n, 4);
    ck_assert_uint_eq(jm_relay_held(rl), 0);
    tp_end(rl, r);
}
END_TEST

/* ---- the TCP report channel (reportsrv.h), workers played by the test ---- */
/* The end of a reportsrv test: the server, the tp_report publisher and the producer table. */
static void srv_end(jm_reportsrv_t *s, jm_report_t *r)
{
    jm_reportsrv_destroy(s);
    jm_report_destroy(r);
    jm_report_set_producer_ops(NULL);
}

static jm_reportsrv_t *srv_new(jm_report_t *r, size_t max_conns)
{
    jm_err_t err;
    jm_reportsrv_t *s = jm_reportsrv_new(r, 7, 8, "127.0.0.1", max_conns, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(strncmp(jm_reportsrv_addr(s), "127.0.0.1:", 10), 0);
    ck_assert_uint_eq(strlen(jm_reportsrv_token(s)), 32);
    return s;
}

/* A worker's connection to s (no token sent yet). */
static jm_chan_t *srv_client(jm_reportsrv_t *s)
{
    jm_err_t err;
    int fd = jm_chan_connect(jm_reportsrv_addr(s), 1000, &err);
    ck_assert_int_ge(fd, 0);
    return jm_chan_new(fd, 1);
}

static void client_send(jm_chan_t *c, const char *msg, size_t len)
{
    ck_assert_int_eq(jm_chan_send(c, msg, len, 1000), 0);
}

/* Conditions srv_pump waits for. */
static int published(jm_reportsrv_t *s)
{
    (void)s;
    return g_tp.n > 0;
}
#define STAT_PRED(name, expr)                                                                      \
    static int name(jm_reportsrv_t *s)                                                             \
    {                                                                                              \
        jm_reportsrv_stats_t st;                                                                   \
        jm_reportsrv_stats(s, &st);                                                                \
        return expr;                                                                               \
    }
STAT_PRED(none_open, st.open == 0)
STAT_PRED(refused, st.bad_token > 0)
STAT_PRED(over_cap, st.over_cap > 0)
STAT_PRED(accepted, st.accepted > 0)

/* Poll s until done(s) (ms at most); done(s). */
static int srv_pump(jm_reportsrv_t *s, int (*done)(jm_reportsrv_t *), int ms)
{
    int64_t t0 = jm_time_mono_ms();
    while (!done(s) && jm_time_mono_ms() - t0 < ms) {
        struct pollfd pfd[8];
        size_t n = jm_reportsrv_pollfds(s, pfd, 8);
        (void)poll(pfd, (nfds_t)(n < 8 ? n : 8), 20);
        jm_reportsrv_poll(s);
    }
    return done(s);
}

/* What the client receives next: 1 and the message, 0 (nothing within ms), -1 (closed). */
static int client_recv(jm_chan_t *c, int ms, char **buf)
{
    size_t len;
    int64_t t0 = jm_time_mono_ms();
    int got;
    while ((got = jm_chan_recv(c, buf, &len)) == 0 && jm_time_mono_ms() - t0 < ms) {
        struct pollfd pfd = {.fd = jm_chan_fd(c), .events = POLLIN};
        (void)poll(&pfd, 1, 20);
    }
    return got;
}

static void expect_answer(jm_chan_t *c, const char *want)
{
    char *buf = NULL;
    ck_assert_int_eq(client_recv(c, 5000, &buf), 1);
    ck_assert_str_eq(buf, want);
    free(buf);
}

/* The token, then a worker's ti.running and ti.done: one ti.reports, and the worker's answers
 * only once Kafka's delivery report for it came. */
START_TEST(test_reportsrv_relays_and_acks_after_delivery)
{
    jm_report_t *r = tp_report();
    jm_reportsrv_t *s = srv_new(r, 4);
    jm_chan_t *c = srv_client(s);
    char *hello = jm_asprintf("T %s", jm_reportsrv_token(s)), *buf = NULL;
    size_t len;
    client_send(c, hello, strlen(hello));
    free(hello);
    char *m = report_msg(JM_EV_TI_RUNNING, 11, &len);
    client_send(c, m, len);
    free(m);
    m = report_msg(JM_EV_TI_DONE, 11, &len);
    client_send(c, m, len);
    free(m);
    ck_assert(srv_pump(s, published, 3000));
    ck_assert_uint_eq(g_tp.n, 1);
    jm_event_t *ev = sent(0);
    ck_assert_int_eq(ev->type, JM_EV_TI_REPORTS);
    jm_event_destroy(ev);
    ck_assert_int_eq(client_recv(c, 100, &buf), 0); /* not delivered yet: no answer */
    g_tp.cb(g_tp.arg, g_tp.token[0], 1);
    expect_answer(c, "A 1");
    expect_answer(c, "A 2");
    jm_reportsrv_stats_t st;
    jm_reportsrv_stats(s, &st);
    ck_assert_uint_eq(st.accepted, 1);
    ck_assert_uint_eq(st.events, 2);
    ck_assert_uint_eq(st.bad_token, 0);
    ck_assert_uint_eq(st.open, 1);
    jm_chan_free(c); /* the worker is done: its connection goes */
    ck_assert(srv_pump(s, none_open, 3000));
    srv_end(s, r);
}
END_TEST

/* A connection that starts with a wrong token (_i = 0), with an event instead of the token
 * (1) or with a bad length (2) is closed, and nothing it sent is published. */
START_TEST(test_reportsrv_refuses_bad_token)
{
    jm_report_t *r = tp_report();
    jm_reportsrv_t *s = srv_new(r, 4);
    jm_chan_t *c = srv_client(s);
    size_t len;
    char *m = report_msg(JM_EV_TI_HEARTBEAT, 11, &len), *buf = NULL;
    if (_i == 0)
        client_send(c, "T 00000000000000000000000000000000", 34);
    else if (_i == 1)
        client_send(c, m, len);
    else
        ck_assert_int_eq(write(jm_chan_fd(c), "\0\0\0\0", 4), 4);
    ck_assert(srv_pump(s, refused, 3000));
    ck_assert_int_eq(client_recv(c, 3000, &buf), -1); /* closed by the distributor */
    (void)jm_chan_send(c, m, len, 0);                 /* too late */
    ck_assert(!srv_pump(s, published, 200));
    free(m);
    jm_chan_free(c);
    srv_end(s, r);
}
END_TEST

/* The token and an event written a few bytes at a time: each message is taken once whole. */
START_TEST(test_reportsrv_frames_split_across_reads)
{
    jm_report_t *r = tp_report();
    jm_reportsrv_t *s = srv_new(r, 4);
    jm_chan_t *c = srv_client(s);
    size_t len, tl = strlen(jm_reportsrv_token(s)) + 2;
    char *m = report_msg(JM_EV_TI_HEARTBEAT, 11, &len);
    char *bytes = jm_malloc(8 + tl + len);
    uint32_t n1 = htonl((uint32_t)tl), n2 = htonl((uint32_t)len);
    memcpy(bytes, &n1, 4);
    snprintf(bytes + 4, tl + 1, "T %s", jm_reportsrv_token(s));
    memcpy(bytes + 4 + tl, &n2, 4);
    memcpy(bytes + 8 + tl, m, len);
    for (size_t off = 0; off < 8 + tl + len; off += 7) {
        size_t k = 8 + tl + len - off < 7 ? 8 + tl + len - off : 7;
        ck_assert_int_eq(write(jm_chan_fd(c), bytes + off, k), (ssize_t)k);
        if (off + k == 8 + tl + len)
            break;
        (void)srv_pump(s, published, 5); /* reads what is there: a piece */
        ck_assert_uint_eq(g_tp.n, 0);
    }
    ck_assert(srv_pump(s, published, 3000)); /* the heartbeat, forwarded alone */
    ck_assert_uint_eq(g_tp.token[0] & 0xffffffffu, 1);
    g_tp.cb(g_tp.arg, g_tp.token[0], 1);
    expect_answer(c, "A 1");
    free(m);
    free(bytes);
    jm_chan_free(c);
    srv_end(s, r);
}
END_TEST

/* Beyond max_conns a new connection is closed at once; the open ones keep working. */
START_TEST(test_reportsrv_connection_cap)
{
    jm_report_t *r = tp_report();
    jm_reportsrv_t *s = srv_new(r, 1);
    jm_chan_t *a = srv_client(s), *b = NULL;
    ck_assert(srv_pump(s, accepted, 3000));
    b = srv_client(s);
    ck_assert(srv_pump(s, over_cap, 3000));
    char *buf = NULL;
    ck_assert_int_eq(client_recv(b, 3000, &buf), -1);
    char *hello = jm_asprintf("T %s", jm_reportsrv_token(s));
    size_t len;
    char *m = report_msg(JM_EV_TI_HEARTBEAT, 11, &len);
    client_send(a, hello, strlen(hello));
    client_send(a, m, len);
    ck_assert(srv_pump(s, published, 3000));
    g_tp.cb(g_tp.arg, g_tp.token[0], 0); /* Kafka failed: refused */
    expect_answer(a, "N 1");
    free(hello);
    free(m);
    jm_chan_free(a);
    jm_chan_free(b);
    srv_end(s, r);
}
END_TEST

/* Many workers at once (an array job's steps): each connects on its own, every report is
 * relayed, every worker gets its answers. */
#define MANY 200
START_TEST(test_reportsrv_many_connections)
{
    jm_report_t *r = tp_report();
    jm_reportsrv_t *s = srv_new(r, MANY);
    jm_chan_t **c = jm_calloc(MANY, sizeof(*c));
    char *hello = jm_asprintf("T %s", jm_reportsrv_token(s));
    for (size_t i = 0; i < MANY; i++) {
        size_t len;
        c[i] = srv_client(s);
        client_send(c[i], hello, strlen(hello));
        char *m = report_msg(JM_EV_TI_RUNNING, 1000 + (int64_t)i, &len);
        client_send(c[i], m, len);
        free(m);
        m = report_msg(JM_EV_TI_DONE, 1000 + (int64_t)i, &len);
        client_send(c[i], m, len);
        free(m);
        if (i % 50 == 49)
            jm_reportsrv_poll(s); /* the backlog drains while more connect */
    }
    free(hello);
    size_t items = 0, done = 0;
    int64_t t0 = jm_time_mono_ms();
    while (items < MANY && jm_time_mono_ms() - t0 < 10000) {
        (void)srv_pump(s, published, 20);
        for (; done < g_tp.n; done++) { /* Kafka acknowledges each ti.reports */
            jm_event_t *ev = sent(done);
            ck_assert_int_eq(ev->type, JM_EV_TI_REPORTS);
            items += json_array_size(json_object_get(ev->payload, "items"));
            jm_event_destroy(ev);
            g_tp.cb(g_tp.arg, g_tp.token[done], 1);
        }
    }
    ck_assert_uint_eq(items, MANY); /* one item (R and D) per worker */
    for (size_t i = 0; i < MANY; i++) {
        expect_answer(c[i], "A 1");
        expect_answer(c[i], "A 2");
        jm_chan_free(c[i]);
    }
    free(c);
    jm_reportsrv_stats_t st;
    jm_reportsrv_stats(s, &st);
    ck_assert_uint_eq(st.accepted, MANY);
    ck_assert_uint_eq(st.events, 2 * MANY);
    ck_assert_uint_eq(st.over_cap, 0);
    srv_end(s, r);
}
END_TEST

/* distributor.report_listen forms: the advertised address follows. */
START_TEST(test_reportsrv_listen_specs)
{
    jm_err_t err;
    char name[256] = "";
    ck_assert_int_eq(gethostname(name, sizeof(name) - 1), 0);
    jm_report_t *r = tp_report();
    const char *specs[] = {"127.0.0.1:0", ":0", ""};
    for (size_t i = 0; i < 3; i++) {
        jm_reportsrv_t *s = jm_reportsrv_new(r, 7, 8, specs[i], 4, &err);
        ck_assert_ptr_nonnull(s);
        const char *a = jm_reportsrv_addr(s), *colon = strrchr(a, ':');
        ck_assert_ptr_nonnull(colon);
        ck_assert_int_gt(atoi(colon + 1), 0); /* the ephemeral port it got */
        if (i == 0)
            ck_assert_int_eq(strncmp(a, "127.0.0.1:", 10), 0);
        if (i == 1) /* every address: advertised by host name */
            ck_assert_int_eq(strncmp(a, name, strlen(name)), 0);
        int fd = jm_chan_connect(a, 1000, &err); /* reachable as advertised */
        ck_assert_int_ge(fd, 0);
        close(fd);
        jm_reportsrv_destroy(s);
    }
    ck_assert_ptr_null(jm_reportsrv_new(r, 7, 8, "256.1.1.1:0", 4, &err));
    jm_report_destroy(r);
    jm_report_set_producer_ops(NULL);
}
END_TEST

Suite *jm_distributor_suite(void);
Suite *jm_distributor_suite(void)
{
    Suite *s = suite_create("distributor");
    TCase *tc = tcase_create("slurm");
    tcase_add_test(tc, test_sbatch_argv);
    tcase_add_test(tc, test_sbatch_output);
    tcase_add_test(tc, test_slurm_exit_mapping);
    tcase_add_test(tc, test_slurm_kv_and_matching);
    suite_add_tcase(s, tc);
    tc = tcase_create("core");
    tcase_add_test(tc, test_batches);
    tcase_add_test(tc, test_resources);
    tcase_add_test(tc, test_journal_survives_reopen);
    tcase_add_test(tc, test_localproc);
    tcase_add_test(tc, test_localproc_report_channel);
    tcase_add_test(tc, test_dummy_plugin_reports_after_poll);
    tcase_add_test(tc, test_relay_batches_and_acks_after_delivery);
    tcase_add_test(tc, test_relay_linger_and_failed_delivery);
    tcase_add_test(tc, test_relay_linger_expires);
    tcase_add_test(tc, test_relay_order_and_fallback);
    suite_add_tcase(s, tc);
    tc = tcase_create("reportsrv");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_reportsrv_relays_and_acks_after_delivery);
    tcase_add_loop_test(tc, test_reportsrv_refuses_bad_token, 0, 3);
    tcase_add_test(tc, test_reportsrv_frames_split_across_reads);
    tcase_add_test(tc, test_reportsrv_connection_cap);
    tcase_add_test(tc, test_reportsrv_listen_specs);
    tcase_add_test(tc, test_reportsrv_many_connections);
    suite_add_tcase(s, tc);
    tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pool_runs_instances_in_few_workers);
    tcase_add_test(tc, test_pool_prestart);
    tcase_add_test(tc, test_pool_batches_results_with_spares);
    tcase_add_test(tc, test_pool_memory_kill_then_next);
    tcase_add_test(tc, test_pool_terminate_running);
    tcase_add_test(tc, test_pool_channel_lost_spools);
    tcase_add_test(tc, test_pool_falls_back_to_one_shot);
    tcase_add_test(tc, test_pool_worker_goes_on_before_answers);
    tcase_add_test(tc, test_pool_refused_later_spools_per_instance);
    suite_add_tcase(s, tc);
    return s;
}
