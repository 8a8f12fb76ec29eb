/*
 * worker_main.c — jobmon-worker: options, configuration and wiring around jm_worker_run().
 *
 * KILL_SELF is learned by reading the instance's status from PostgreSQL (reader role,
 * postgres.reader_conninfo) at each heartbeat, with a connection opened for that query only
 * (libpq is dlopen()ed at the first check, see pq_load):
 * short commands never touch PostgreSQL (latency goal), long ones cost one query per
 * heartbeat interval, and a database outage only delays the kill (the distributor also
 * terminates K instances through the cluster).  Redis is not used by the worker.
 *
 * Events go through the distributor's report channel when it gives one (--report-fd for the
 * local plugins, JOBMON_REPORT_ADDR/JOBMON_REPORT_TOKEN over TCP for Slurm jobs; see
 * worker/report.h), else to Kafka through jobmon-kafka.so, loaded on demand: the worker does
 * not link librdkafka.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/progmain.h"
#include "config.h" /* autoconf: PACKAGE_VERSION */
#include "jobmon/config.h"
#include "jobmon/event.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"
#include "worker/batchfile.h"
#include "worker/report.h"
#include "worker/worker.h"

/* exit code of a worker whose version is not the distributor's (Jobmon's) */
#define EXIT_VERSION_MISMATCH 198

static void usage(FILE *f)
{
    fprintf(f,
            "usage: jobmon-worker --ti-id N --workflow-id W --run-id R --task-id T --command CMD\n"
            "       jobmon-worker --array-batch FILE [--step S]   (step from SLURM_ARRAY_TASK_ID\n"
            "                                                      or JOBMON_ARRAY_STEP_ID)\n"
            "options: --memory-mb M  --runtime-s S  --stdout PATH  --stderr PATH  --logs-dir DIR\n"
            "         --distributor-id ID  --config FILE  --set key=value  --events-file FILE\n"
            "         --no-kill-check  --report-fd N\n"
            "       jobmon-worker --serve --report-fd N [--config FILE]   (a pooled worker: runs\n"
            "                     the instances its distributor sends, one after another)\n"
            "Exits with the command's exit code (128+signal when it was killed).\n");
}

/* libpq is loaded on first use: linking it would pull GnuTLS, Kerberos and LDAP into every
 * worker start (~3.5 ms measured), and most commands end before their first heartbeat.  This is
 * the only libpq use in the worker, so it bypasses jobmon/pg.h on purpose. */
typedef struct {
    int tried;
    PGconn *(*connectdb_params)(const char *const *, const char *const *, int);
    ConnStatusType (*status)(const PGconn *);
    char *(*error_message)(const PGconn *);
    PGresult *(*exec_params)(PGconn *, const char *, int, const Oid *, const char *const *,
                             const int *, const int *, int);
    ExecStatusType (*result_status)(const PGresult *);
    int (*ntuples)(const PGresult *);
    char *(*getvalue)(const PGresult *, int, int);
    void (*clear)(PGresult *);
    void (*finish)(PGconn *);
} pqlib_t;

static pqlib_t pq;

static int pq_load(void)
{
    if (pq.tried)
        return pq.finish != NULL;
    pq.tried = 1;
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        jm_log(JM_LOG_WARN, "worker", "KILL_SELF checks off: %s", dlerror());
        return 0;
    }
#define SYM(f, n) *(void **)(&pq.f) = dlsym(h, n)
    SYM(connectdb_params, "PQconnectdbParams");
    SYM(status, "PQstatus");
    SYM(error_message, "PQerrorMessage");
    SYM(exec_params, "PQexecParams");
    SYM(result_status, "PQresultStatus");
    SYM(ntuples, "PQntuples");
    SYM(getvalue, "PQgetvalue");
    SYM(clear, "PQclear");
    SYM(finish, "PQfinish");
#undef SYM
    if (!pq.connectdb_params || !pq.status || !pq.error_message || !pq.exec_params ||
        !pq.result_status || !pq.ntuples || !pq.getvalue || !pq.clear) {
        pq.finish = NULL;
        return 0;
    }
    return pq.finish != NULL;
}

/* The instance's status from PostgreSQL (reader role), with a connection for this query only. */
static char status_from_pg(void *arg, int64_t ti_id)
{
    const char *conninfo = arg;
    char id[32], s = 0;
    if (!pq_load())
        return 0;
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *vals[] = {conninfo, "5", NULL};
    PGconn *conn = pq.connectdb_params(keys, vals, 1);
    if (!conn || pq.status(conn) != CONNECTION_OK) {
        jm_log(JM_LOG_WARN, "worker", "ti %lld: status check: %s", (long long)ti_id,
               conn ? pq.error_message(conn) : "out of memory");
        goto out;
    }
    snprintf(id, sizeof(id), "%lld", (long long)ti_id);
    const char *params[] = {id};
    PGresult *res = pq.exec_params(conn, "SELECT status FROM task_instance WHERE id = $1", 1, NULL,
                                   params, NULL, NULL, 0);
    if (res && pq.result_status(res) == PGRES_TUPLES_OK && pq.ntuples(res) == 1)
        s = pq.getvalue(res, 0, 0)[0];
    else
        jm_log(JM_LOG_WARN, "worker", "ti %lld: status check: %s", (long long)ti_id,
               pq.error_message(conn));
    pq.clear(res);
out:
    if (conn)
        pq.finish(conn);
    return s;
}

/* The distributor's report channel (--report-fd), made close-on-exec so the command does not
 * inherit it; -1 when there is none or it is not a SOCK_SEQPACKET socket (left alone), or when
 * worker.local_report is off or events go to a file (closed: the distributor sees the channel
 * end, and the worker publishes itself). */
static int open_channel(const jm_config_t *cfg, int64_t fd, int events_file)
{
    int type = 0;
    socklen_t len = sizeof(type);
    if (fd < 0 || fd > INT32_MAX || getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        type != SOCK_SEQPACKET)
        return -1;
    if (events_file || !jm_config_bool(cfg, "worker.local_report") ||
        fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0) {
        close((int)fd);
        return -1;
    }
    return (int)fd;
}

/* The publisher: over the --report-fd channel, the TCP channel of JOBMON_REPORT_ADDR (both
 * variables are removed from the environment either way: the command never sees the token),
 * else Kafka or the events file. */
static jm_report_t *open_report(const jm_config_t *cfg, int64_t report_fd, const char *events_file,
                                int retry_s, jm_err_t *err)
{
    const char *a = getenv("JOBMON_REPORT_ADDR"), *t = getenv("JOBMON_REPORT_TOKEN");
    char *addr = a && *a ? jm_strdup(a) : NULL, *token = t && *t ? jm_strdup(t) : NULL;
    unsetenv("JOBMON_REPORT_ADDR");
    unsetenv("JOBMON_REPORT_TOKEN");
    int chan = open_channel(cfg, report_fd, events_file != NULL);
    jm_report_t *r;
    if (chan >= 0)
        r = jm_report_new_channel(cfg, chan, retry_s, JM_PRODUCER_LATENCY, err);
    else if (addr && token && !events_file && jm_config_bool(cfg, "worker.local_report"))
        r = jm_report_new_remote(cfg, addr, token,
                                 (int)jm_config_int(cfg, "worker.report_connect_timeout_ms"),
                                 retry_s, JM_PRODUCER_LATENCY);
    else
        r = jm_report_new_profile(cfg, events_file, retry_s, JM_PRODUCER_LATENCY, err);
    free(addr);
    free(token);
    return r;
}

/* kept events of finished instances that may wait for their answers while the next runs */
#define POOL_MAX_KEPT 256

/* Run one instance and make sure its report is delivered (or spooled).  Returns the exit code
 * for it; *why says whether a signal to the worker ended it.  pooled: its events may wait for
 * their answers while the next instance runs (jm_report_defer), unless they must be settled
 * now. */
static int run_instance(const jm_config_t *cfg, jm_report_t *r, const jm_worker_opts_t *o,
                        int retry_s, int pooled, jm_worker_kill_t *why, int *delivered)
{
    jm_worker_result_t res;
    jm_err_t err;
    const char *spool = jm_config_str(cfg, "worker.spool_dir");
    *why = JM_WKILL_NONE;
    *delivered = 0;
    if (jm_worker_run(o, r, &res, &err) != JM_OK) {
        jm_log(JM_LOG_ERROR, "worker", "ti %lld: %s", (long long)o->ti_id, err.msg);
        /* still deliver ti.running if it went out, so the instance does not hang in R */
        if (jm_report_finish(r, retry_s, spool, o->workflow_id, o->ti_id, &err) == JM_ERR_IO)
            jm_log(JM_LOG_ERROR, "worker", "ti %lld: %s", (long long)o->ti_id, err.msg);
        jm_report_next(r);
        return JM_EXIT_FAILED;
    }
    *why = res.why;
    if (pooled && jm_report_defer(r, o->workflow_id, o->ti_id, retry_s, POOL_MAX_KEPT) == JM_OK)
        return res.exit_code;
    int64_t tf = jm_time_mono_ms();
    jm_rc_t rc = jm_report_finish(r, retry_s, spool, o->workflow_id, o->ti_id, &err);
    if (rc == JM_ERR_IO)
        jm_log(JM_LOG_ERROR, "worker", "ti %lld: RESULT LOST: %s", (long long)o->ti_id, err.msg);
    jm_log(JM_LOG_DEBUG, "worker", "ti %lld: delivery confirmed in %lld ms", (long long)o->ti_id,
           (long long)(jm_time_mono_ms() - tf));
    *delivered = rc == JM_OK;
    jm_report_next(r);
    return res.exit_code;
}

/* ---- version pinning (reference §3.5) ---- */

/* The distributor exports JOBMON_EXPECT_VERSION (its own version); a worker of another version
 * (a node with another jobmon installed) must not run the command under a reporter the FSM may
 * not understand.  1 with the message when the versions differ. */
static int version_mismatch(char *msg, size_t len)
{
    const char *want = getenv("JOBMON_EXPECT_VERSION");
    if (!want || !*want || strcmp(want, PACKAGE_VERSION) == 0)
        return 0;
    snprintf(msg, len, "environment mismatch: jobmon-worker %s, the distributor expects %s",
             PACKAGE_VERSION, want);
    return 1;
}

/* The instance fails as F (no retry: the next attempt would land on the same install) with
 * EXIT_VERSION_MISMATCH, without running its command. */
static int fail_mismatch(const jm_config_t *cfg, jm_report_t *r, const jm_worker_opts_t *o,
                         const char *msg, int retry_s)
{
    jm_err_t err;
    json_t *pl =
        json_pack("{sI ss si ss ss ss s{si si si}}", "ti_id", (json_int_t)o->ti_id, "status", "F",
                  "exit_code", EXIT_VERSION_MISMATCH, "message", msg, "stdout_tail", "",
                  "stderr_tail", "", "usage", "wall_ms", 0, "cpu_ms", 0, "maxrss_kb", 0);
    jm_rc_t rc = jm_report_send(r, jm_event_new(JM_EV_TI_ERROR, o->workflow_id, pl), 1, &err);
    if (rc == JM_OK)
        rc = jm_report_finish(r, retry_s, jm_config_str(cfg, "worker.spool_dir"), o->workflow_id,
                              o->ti_id, &err);
    if (rc != JM_OK)
        jm_log(JM_LOG_ERROR, "worker", "ti %lld: %s", (long long)o->ti_id, err.msg);
    return EXIT_VERSION_MISMATCH;
}

/* ---- --serve: the pooled worker (protocol in worker/report.h) ---- */

/* Tell the distributor we wait for an instance ("R"), after one that ended with `code`. */
static int send_ready(jm_report_t *r, int code)
{
    char buf[32];
    int len = code < 0 ? snprintf(buf, sizeof(buf), "R") : snprintf(buf, sizeof(buf), "R %d", code);
    jm_chan_t *c = jm_report_chan(r);
    return c && jm_chan_send(c, buf, (size_t)len, 1000) == 0 ? 0 : -1;
}

/* Wait for the next instance spec.  Returns it, or NULL when the channel ended (*sig = 0) or
 * a signal told us to stop (*sig = its number). */
static json_t *wait_spec(jm_report_t *r, int sfd, int *sig)
{
    *sig = 0;
    for (;;) {
        int fd = jm_report_chan_fd(r);
        struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (fd < 0 || (poll(pfd, 2, -1) < 0 && errno != EINTR))
            return NULL;
        struct signalfd_siginfo si;
        if ((pfd[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si)) {
            *sig = (int)si.ssi_signo;
            return NULL;
        }
        char *buf = NULL;
        size_t len = 0;
        int got = jm_chan_recv(jm_report_chan(r), &buf, &len);
        if (got < 0)
            return NULL;
        json_t *spec = NULL;
        if (got > 0 && len > 2 && buf[0] == 'S' && buf[1] == ' ') {
            json_error_t je;
            spec = json_loadb(buf + 2, len - 2, 0, &je);
            if (!json_is_object(spec))
                jm_log(JM_LOG_ERROR, "worker", "bad instance spec: %s", je.text);
        } else if (got > 0)
            (void)jm_report_chan_answer(r, buf, len); /* to an earlier instance's event */
        free(buf);
        if (spec)
            return spec;
    }
}

static int64_t spec_int(json_t *spec, const char *key)
{
    json_t *v = json_object_get(spec, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static const char *spec_str(json_t *spec, const char *key)
{
    return json_string_value(json_object_get(spec, key)); /* NULL when absent */
}

/* The options of one instance: `base` (config) with the spec's fields (borrowed from spec). */
static int spec_opts(json_t *spec, const jm_worker_opts_t *base, jm_worker_opts_t *o)
{
    *o = *base;
    o->ti_id = spec_int(spec, "ti_id");
    o->workflow_id = spec_int(spec, "workflow_id");
    o->run_id = spec_int(spec, "run_id");
    o->task_id = spec_int(spec, "task_id");
    o->memory_mb = spec_int(spec, "memory_mb");
    o->runtime_s = spec_int(spec, "runtime_s");
    o->command = spec_str(spec, "command");
    o->stdout_path = spec_str(spec, "stdout");
    o->stderr_path = spec_str(spec, "stderr");
    o->distributor_id = spec_str(spec, "distributor_id");
    return o->ti_id && o->workflow_id && o->run_id && o->command ? 0 : -1;
}

/* 1 when SIGTERM, SIGINT or SIGHUP waits (blocked) for us. */
static int stop_pending(void)
{
    sigset_t p;
    return sigpending(&p) == 0 &&
           (sigismember(&p, SIGTERM) || sigismember(&p, SIGINT) || sigismember(&p, SIGHUP));
}

/* Run instances until the channel ends or a signal stops us; the exit code. */
static int serve(const jm_config_t *cfg, jm_report_t *r, const jm_worker_opts_t *base, int retry_s)
{
    sigset_t mask, stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    mask = stop;
    sigaddset(&mask, SIGCHLD);
    /* blocked for good: a signal between two instances waits in the signalfd (or for the
     * next jm_worker_run), it never kills us without a report */
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK), code = -1, sig = 0;
    jm_worker_opts_t last = *base;
    if (sfd < 0) {
        jm_log(JM_LOG_ERROR, "worker", "signalfd: %s", strerror(errno));
        return JM_EXIT_FAILED;
    }
    while (send_ready(r, code) == 0) {
        json_t *spec = wait_spec(r, sfd, &sig);
        if (!spec)
            break;
        jm_worker_opts_t o;
        jm_worker_kill_t why = JM_WKILL_NONE;
        int delivered = 0;
        if (spec_opts(spec, base, &o) != 0) {
            jm_log(JM_LOG_ERROR, "worker", "instance spec without ti_id, ids or command");
            code = JM_EXIT_USAGE;
        } else {
            code = run_instance(cfg, r, &o, retry_s, 1, &why, &delivered);
            last = o;
        }
        json_decref(spec);
        if (why == JM_WKILL_SIGNAL || stop_pending())
            break; /* terminated: the distributor sends nothing more to this worker */
    }
    close(sfd);
    /* the events still waiting for their answers (all of them tagged with their instance) */
    jm_err_t err;
    if (jm_report_finish(r, retry_s, jm_config_str(cfg, "worker.spool_dir"), last.workflow_id,
                         last.ti_id, &err) == JM_ERR_IO)
        jm_log(JM_LOG_ERROR, "worker", "RESULT LOST: %s", err.msg);
    jm_report_next(r);
    if (sig)
        return 128 + sig;
    return code < 0 ? JM_EXIT_OK : code;
}

int main(int argc, char **argv)
{
    enum {
        O_TI = 256,
        O_WF,
        O_RUN,
        O_TASK,
        O_CMD,
        O_BATCH,
        O_STEP,
        O_MEM,
        O_RT,
        O_OUT,
        O_ERR,
        O_LOGS,
        O_DID,
        O_CONF,
        O_SET,
        O_EVFILE,
        O_NOKILL,
        O_REPFD,
        O_SERVE,
        O_HELP
    };
    static const struct option longopts[] = {{"ti-id", 1, 0, O_TI},
                                             {"workflow-id", 1, 0, O_WF},
                                             {"run-id", 1, 0, O_RUN},
                                             {"task-id", 1, 0, O_TASK},
                                             {"command", 1, 0, O_CMD},
                                             {"array-batch", 1, 0, O_BATCH},
                                             {"step", 1, 0, O_STEP},
                                             {"memory-mb", 1, 0, O_MEM},
                                             {"runtime-s", 1, 0, O_RT},
                                             {"stdout", 1, 0, O_OUT},
                                             {"stderr", 1, 0, O_ERR},
                                             {"logs-dir", 1, 0, O_LOGS},
                                             {"distributor-id", 1, 0, O_DID},
                                             {"config", 1, 0, O_CONF},
                                             {"set", 1, 0, O_SET},
                                             {"events-file", 1, 0, O_EVFILE},
                                             {"no-kill-check", 0, 0, O_NOKILL},
                                             {"report-fd", 1, 0, O_REPFD},
                                             {"serve", 0, 0, O_SERVE},
                                             {"help", 0, 0, O_HELP},
                                             {0, 0, 0, 0}};
    jm_worker_opts_t o = {0};
    jm_batch_item_t item = {0};
    jm_err_t err;
    const char *batch = NULL, *config_path = NULL, *events_file = NULL;
    int64_t step = -1, report_fd = -1;
    int nokill = 0, serving = 0, exit_code = JM_EXIT_USAGE, c;
    jm_config_t *cfg = jm_config_new();
    jm_report_t *r = NULL;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_TI: bad = jm_main_parse_int(optarg, 0, &o.ti_id); break;
        case O_WF: bad = jm_main_parse_int(optarg, 0, &o.workflow_id); break;
        case O_RUN: bad = jm_main_parse_int(optarg, 0, &o.run_id); break;
        case O_TASK: bad = jm_main_parse_int(optarg, 0, &o.task_id); break;
        case O_CMD: o.command = optarg; break;
        case O_BATCH: batch = optarg; break;
        case O_STEP: bad = jm_main_parse_int(optarg, 0, &step); break;
        case O_MEM: bad = jm_main_parse_int(optarg, 0, &o.memory_mb); break;
        case O_RT: bad = jm_main_parse_int(optarg, 0, &o.runtime_s); break;
        case O_OUT: o.stdout_path = optarg; break;
        case O_ERR: o.stderr_path = optarg; break;
        case O_LOGS: o.logs_dir = optarg; break;
        case O_DID: o.distributor_id = optarg; break;
        case O_CONF: config_path = optarg; break;
        case O_SET:
            if (jm_config_set_assignment(cfg, optarg, &err) != JM_OK) {
                fprintf(stderr, "jobmon-worker: %s\n", err.msg);
                goto out;
            }
            break;
        case O_EVFILE: events_file = optarg; break;
        case O_NOKILL: nokill = 1; break;
        case O_REPFD: bad = jm_main_parse_int(optarg, 0, &report_fd); break;
        case O_SERVE: serving = 1; break;
        case O_HELP:
        case 'h':
            usage(stdout);
            exit_code = JM_EXIT_OK;
            goto out;
        default: usage(stderr); goto out;
        }
        if (bad) {
            fprintf(stderr, "jobmon-worker: bad number '%s'\n", optarg);
            goto out;
        }
    }
    if (jm_main_load_config(cfg, config_path, &err) != JM_OK) {
        fprintf(stderr, "jobmon-worker: config: %s\n", err.msg);
        goto out;
    }
    if (batch) {
        int64_t s = jm_worker_array_step(step);
        if (s < 0) {
            fprintf(stderr, "jobmon-worker: --array-batch needs --step, SLURM_ARRAY_TASK_ID or "
                            "JOBMON_ARRAY_STEP_ID\n");
            goto out;
        }
        if (jm_batchfile_read_step(batch, s, &o.workflow_id, &o.run_id, &item, &err) != JM_OK) {
            fprintf(stderr, "jobmon-worker: %s\n", err.msg);
            exit_code = JM_EXIT_FAILED;
            goto out;
        }
        o.ti_id = item.ti_id;
        o.task_id = item.task_id;
        o.command = item.command;
        if (!o.stdout_path)
            o.stdout_path = item.stdout_path;
        if (!o.stderr_path)
            o.stderr_path = item.stderr_path;
        if (!o.memory_mb)
            o.memory_mb = item.memory_mb;
        if (!o.runtime_s)
            o.runtime_s = item.runtime_s;
    }
    if (!serving && (!o.ti_id || !o.workflow_id || !o.run_id || !o.command)) {
        usage(stderr);
        goto out;
    }
    o.hb_interval_s = (int)jm_config_int(cfg, "heartbeat.task_instance_interval");
    o.report_by_buffer = jm_config_float(cfg, "heartbeat.report_by_buffer");
    o.interrupt_timeout_s = (int)jm_config_int(cfg, "worker.command_interrupt_timeout");
    if (!nokill && !events_file) {
        o.status_fn = status_from_pg;
        o.status_arg = (void *)jm_config_str(cfg, "postgres.reader_conninfo");
    }
    int retry_s = (int)jm_config_int(cfg, "worker.kafka_retry_timeout");
    jm_event_set_producer(JM_PRODUCER_WORKER);
    r = open_report(cfg, report_fd, events_file, retry_s, &err);
    if (!r) {
        fprintf(stderr, "jobmon-worker: %s\n", err.msg);
        exit_code = JM_EXIT_UNAVAILABLE;
        goto out;
    }
    char vmsg[160];
    if (version_mismatch(vmsg, sizeof(vmsg))) {
        jm_log(JM_LOG_ERROR, "worker", "%s", vmsg);
        /* a pooled worker ends before asking for an instance: its distributor then starts
         * one-shot workers, which report each instance so */
        exit_code = serving ? EXIT_VERSION_MISMATCH : fail_mismatch(cfg, r, &o, vmsg, retry_s);
        goto out;
    }
    if (serving) {
        if (jm_report_chan_fd(r) < 0 || batch) {
            fprintf(stderr, "jobmon-worker: --serve needs the distributor's --report-fd "
                            "(and worker.local_report on), and no --array-batch\n");
            exit_code = JM_EXIT_USAGE;
        } else {
            exit_code = serve(cfg, r, &o, retry_s);
        }
        goto out;
    }
    jm_worker_kill_t why;
    int delivered = 0;
    exit_code = run_instance(cfg, r, &o, retry_s, 0, &why, &delivered);
    if (delivered) {
        /* Everything sent is acknowledged: exit without rd_kafka_destroy(), which wakes and
         * joins librdkafka's threads (~1 ms measured, on the critical path of every task).
         * exit_group ends them and the kernel closes the connection; nothing is left to send
         * and nothing else is buffered (stdio is flushed). */
        fflush(NULL);
        _exit(exit_code);
    }
out:
    jm_report_destroy(r);
    jm_batch_item_clear(&item);
    jm_config_destroy(cfg);
    return exit_code;
}
