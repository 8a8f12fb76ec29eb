/* Unit tests for src/distributors: Slurm command lines and output parsing, batching, the
 * submission journal, resources, the local process engine and the dummy plugin. */
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
#include "distributors/slurm.h"
#include "jobmon/config.h"
#include "jobmon/event.h"
#include "jobmon/jmtime.h"

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
    FILE *f = fopen(evpath, "r");
    char line[16384];
    int running = 0, done = 0;
    while (fgets(line, sizeof(line), f)) {
        running += strstr(line, "\"type\":\"ti.running\"") && strstr(line, "\"ti_id\":41");
        done += strstr(line, "\"type\":\"ti.done\"") && strstr(line, "\"ti_id\":41");
    }
    fclose(f);
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

/* The payload (new reference) of the last event `type` of instance ti_id, NULL if none;
 * *count (may be NULL) gets how many there are. */
static json_t *pool_event(pool_t *p, int64_t ti_id, const char *type, int *count)
{
    FILE *f = fopen(p->evpath, "r");
    char line[65536];
    json_t *last = NULL;
    int k = 0;
    jm_err_t err;
    while (f && fgets(line, sizeof(line), f)) {
        jm_event_t *ev = NULL;
        ck_assert_int_eq(jm_event_decode(line, strlen(line) - 1, &ev, &err), JM_OK);
        if (strcmp(jm_event_type_name(ev->type), type) == 0 &&
            jm_ev_int(ev->payload, "ti_id") == ti_id) {
            json_decref(last);
            last = json_incref(ev->payload);
            k++;
        }
        jm_event_destroy(ev);
    }
    if (f)
        fclose(f);
    if (count)
        *count = k;
    return last;
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

/* 6 instances, 2 slots: every one reported once (ti.running, ti.done), the command sees its
 * JOBMON_DISTRIBUTOR_ID, and at most 2 worker processes ran them all. */
START_TEST(test_pool_runs_instances_in_few_workers)
{
    pool_t p;
    pool_open(&p, 2, NULL);
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
    ck_assert_uint_le(npids, 2);
    pool_close(&p);
}
END_TEST

/* A pooled worker kills an instance over its memory limit (Z) and runs the next one (D), whose
 * usage is its own (a CPU burner ran first in the same worker). */
START_TEST(test_pool_memory_kill_then_next)
{
    pool_t p;
    pool_open(&p, 1, NULL);
    pool_add(&p, 200, "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done", 0);
    pool_add(&p, 201,
             "echo $PPID >&2; sh -c 'head -c 200000000 /dev/zero | tail -c 1000000000 >/dev/null'",
             40);
    pool_add(&p, 202, "echo $PPID", 0);
    ck_assert(pool_until(&p, pool_idle, 0));
    json_t *e = pool_event(&p, 201, "ti.error", NULL), *d = pool_event(&p, 202, "ti.done", NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(jm_ev_str(e, "status"), "Z");
    ck_assert_ptr_nonnull(strstr(jm_ev_str(e, "message"), "memory"));
    ck_assert_int_eq(tail_pid(e, "stderr_tail"), tail_pid(d, "stdout_tail")); /* one worker */
    ck_assert_int_eq(exit_code_of(&p, "202"), 0);
    /* the last instance's CPU time is its own, not the burner's before it (cumulative
     * RUSAGE_CHILDREN would count it) */
    json_t *b = pool_event(&p, 200, "ti.done", NULL);
    ck_assert_ptr_nonnull(b);
    int64_t burnt = jm_ev_int(jm_ev_get(b, "usage"), "cpu_ms");
    ck_assert_int_gt(burnt, 100);
    ck_assert_int_lt(jm_ev_int(jm_ev_get(d, "usage"), "cpu_ms"), burnt / 2);
    json_decref(b);
    json_decref(e);
    json_decref(d);
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
    snprintf(cmd, sizeof(cmd), "cat %s/spool/7-401-*.jmspool | grep -c '\"type\":\"ti\\.'", p.dir);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(fgets(out, sizeof(out), f));
    pclose(f);
    ck_assert_str_eq(out, "2\n"); /* ti.running and ti.error */
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
    suite_add_tcase(s, tc);
    tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pool_runs_instances_in_few_workers);
    tcase_add_test(tc, test_pool_memory_kill_then_next);
    tcase_add_test(tc, test_pool_terminate_running);
    tcase_add_test(tc, test_pool_channel_lost_spools);
    tcase_add_test(tc, test_pool_falls_back_to_one_shot);
    suite_add_tcase(s, tc);
    return s;
}
