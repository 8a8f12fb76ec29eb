/*
 * localproc.c — a FIFO of jobmon-worker command lines run by at most N child processes.
 *
 * Workers are started with posix_spawn in their own process group (so terminate reaches the
 * worker; the worker then interrupts its command's group), with JOBMON_DISTRIBUTOR_ID set and
 * no blocked signals.  It remembers the exit codes of the last 1000 workers for triage.
 *
 * With env->report, each worker also gets a local report channel (worker/report.h) on
 * descriptor REPORT_FD: its events are forwarded through env->report and answered once Kafka
 * acknowledged them, so a worker never loads librdkafka nor connects to Kafka itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "distributors/localproc.h"
#include "jobmon/log.h"

extern char **environ;

#define EXIT_MEMORY 1000
#define REPORT_FD   3 /* the worker's end of its report channel */

typedef struct {
    char *id;
    char **argv;
    pid_t pid;      /* 0 while queued */
    int chan;       /* our end of its report channel, -1 = none */
    uint32_t cid;   /* channel id: the high half of forwarded events' tokens */
    uint32_t nrecv; /* datagrams received on it */
} job_t;

struct jm_localproc_s {
    const jm_plugin_env_t *env;
    int slots;
    job_t *jobs; /* queued (pid 0) and running, in submission order */
    size_t n, cap;
    size_t running;
    struct {
        char *id;
        int code;
    } done[EXIT_MEMORY];
    size_t ndone; /* total ever, ring index = ndone % EXIT_MEMORY */
    uint32_t next_cid;
};

/* Kafka's verdict on an event a worker sent: answer the worker if its channel is still open. */
static void on_delivery(void *arg, uint64_t token, int ok)
{
    jm_localproc_t *lp = arg;
    uint32_t cid = (uint32_t)(token >> 32);
    for (size_t i = 0; i < lp->n; i++)
        if (lp->jobs[i].cid == cid && lp->jobs[i].chan >= 0) {
            jm_report_chan_ack(lp->jobs[i].chan, (uint32_t)token, ok);
            return;
        }
}

jm_localproc_t *jm_localproc_new(const jm_plugin_env_t *env, int slots)
{
    jm_localproc_t *lp = jm_calloc(1, sizeof(*lp));
    lp->env = env;
    lp->slots = slots > 0 ? slots : 1;
    if (env->report)
        jm_report_set_ack_cb(env->report, on_delivery, lp);
    return lp;
}

static void job_free(job_t *j)
{
    if (j->chan >= 0)
        close(j->chan);
    free(j->id);
    jm_plugin_argv_free(j->argv);
}

static void remove_at(jm_localproc_t *lp, size_t i)
{
    job_free(&lp->jobs[i]);
    memmove(&lp->jobs[i], &lp->jobs[i + 1], (lp->n - i - 1) * sizeof(job_t));
    lp->n--;
}

void jm_localproc_destroy(jm_localproc_t *lp)
{
    if (!lp)
        return;
    if (lp->env->report)
        jm_report_set_ack_cb(lp->env->report, NULL, NULL);
    /* close the channels first: the interrupted workers then report to Kafka themselves
     * instead of waiting for answers while we wait for them */
    for (size_t i = 0; i < lp->n; i++) {
        if (lp->jobs[i].chan >= 0)
            close(lp->jobs[i].chan);
        lp->jobs[i].chan = -1;
    }
    for (size_t i = 0; i < lp->n; i++)
        if (lp->jobs[i].pid > 0)
            kill(-lp->jobs[i].pid, SIGTERM);
    for (size_t i = 0; i < lp->n; i++) {
        if (lp->jobs[i].pid > 0)
            (void)waitpid(lp->jobs[i].pid, NULL, 0);
        job_free(&lp->jobs[i]);
    }
    free(lp->jobs);
    for (size_t i = 0; i < EXIT_MEMORY; i++)
        free(lp->done[i].id);
    free(lp);
}

void jm_localproc_enqueue(jm_localproc_t *lp, const jm_dist_ti_t *ti, const char *id)
{
    if (lp->n == lp->cap) {
        lp->cap = lp->cap ? lp->cap * 2 : 16;
        lp->jobs = jm_realloc(lp->jobs, lp->cap * sizeof(job_t));
    }
    lp->jobs[lp->n++] =
        (job_t){.id = jm_strdup(id), .argv = jm_plugin_worker_argv(lp->env, ti), .chan = -1};
}

/* Forward what a worker sent; at EOF close the channel. */
static void serve_chan(jm_localproc_t *lp, job_t *j)
{
    char *buf = NULL;
    size_t len = 0;
    int got;
    while (j->chan >= 0 && (got = jm_report_chan_recv(j->chan, &buf, &len)) != 0) {
        if (got < 0) {
            close(j->chan);
            j->chan = -1;
            break;
        }
        uint32_t n = ++j->nrecv;
        jm_err_t err;
        if (jm_report_forward(lp->env->report, buf, len, (uint64_t)j->cid << 32 | n, &err) !=
            JM_OK) {
            jm_log(JM_LOG_WARN, "localproc", "job %s: event %u of its worker: %s", j->id, n,
                   err.msg);
            jm_report_chan_ack(j->chan, n, 0);
        }
        free(buf);
    }
}

/* The worker's argv with "--report-fd REPORT_FD" added (a new vector of borrowed strings). */
static char **argv_with_channel(char **argv, char *fdbuf)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char **v = jm_calloc(n + 3, sizeof(*v));
    memcpy(v, argv, n * sizeof(*v));
    v[n] = "--report-fd";
    v[n + 1] = fdbuf;
    return v;
}

static int start(jm_localproc_t *lp, job_t *j)
{
    int sv[2] = {-1, -1};
    char fdbuf[16], **argv = j->argv;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (lp->env->report && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0) {
        snprintf(fdbuf, sizeof(fdbuf), "%d", REPORT_FD);
        argv = argv_with_channel(j->argv, fdbuf);
        posix_spawn_file_actions_adddup2(&fa, sv[1], REPORT_FD);
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
    } else if (lp->env->report) {
        jm_log(JM_LOG_WARN, "localproc", "job %s: socketpair: %s (worker reports to Kafka)", j->id,
               strerror(errno));
    }
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **envp = jm_calloc(ne + 2, sizeof(*envp));
    char *did = jm_asprintf("JOBMON_DISTRIBUTOR_ID=%s", j->id);
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "JOBMON_DISTRIBUTOR_ID=", 22) != 0)
            envp[k++] = environ[i];
    envp[k++] = did;
    envp[k] = NULL;
    posix_spawnattr_t at;
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGHUP);
    sigaddset(&def, SIGCHLD);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    pid_t pid = 0;
    int e = posix_spawn(&pid, argv[0], &fa, &at, argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (argv != j->argv)
        free(argv);
    free(did);
    free(envp);
    if (sv[1] >= 0)
        close(sv[1]);
    if (e != 0 && sv[0] >= 0)
        close(sv[0]);
    else if (sv[0] >= 0) {
        j->chan = sv[0];
        j->cid = ++lp->next_cid;
    }
    if (e != 0) {
        jm_log(JM_LOG_ERROR, "localproc", "job %s: cannot start %s: %s", j->id, j->argv[0],
               strerror(e));
        return -1;
    }
    j->pid = pid;
    lp->running++;
    return 0;
}

static void remember(jm_localproc_t *lp, const char *id, int code)
{
    size_t i = lp->ndone++ % EXIT_MEMORY;
    free(lp->done[i].id);
    lp->done[i].id = jm_strdup(id);
    lp->done[i].code = code;
}

void jm_localproc_poll(jm_localproc_t *lp)
{
    int ws;
    pid_t w;
    for (size_t i = 0; i < lp->n; i++)
        serve_chan(lp, &lp->jobs[i]);
    while (lp->running > 0 && (w = waitpid(-1, &ws, WNOHANG)) > 0) {
        for (size_t i = 0; i < lp->n; i++) {
            if (lp->jobs[i].pid != w)
                continue;
            serve_chan(lp, &lp->jobs[i]); /* what it sent before exiting */
            int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
            remember(lp, lp->jobs[i].id, code);
            lp->running--;
            remove_at(lp, i);
            break;
        }
    }
    for (size_t i = 0; i < lp->n && lp->running < (size_t)lp->slots; i++) {
        if (lp->jobs[i].pid != 0)
            continue;
        if (start(lp, &lp->jobs[i]) != 0) {
            remember(lp, lp->jobs[i].id, 127);
            remove_at(lp, i);
            i--;
        }
    }
}

int jm_localproc_alive(const jm_localproc_t *lp, const char *id)
{
    for (size_t i = 0; i < lp->n; i++)
        if (strcmp(lp->jobs[i].id, id) == 0)
            return 1;
    return 0;
}

void jm_localproc_terminate(jm_localproc_t *lp, const char *id)
{
    for (size_t i = 0; i < lp->n; i++) {
        if (strcmp(lp->jobs[i].id, id) != 0)
            continue;
        if (lp->jobs[i].pid == 0) {
            remember(lp, id, 128 + SIGTERM);
            remove_at(lp, i);
        } else {
            kill(-lp->jobs[i].pid, SIGTERM);
        }
        return;
    }
}

jm_rc_t jm_localproc_exit_code(const jm_localproc_t *lp, const char *id, int *code)
{
    size_t n = lp->ndone < EXIT_MEMORY ? lp->ndone : EXIT_MEMORY;
    for (size_t k = 0; k < n; k++) {
        size_t i = (lp->ndone - 1 - k) % EXIT_MEMORY;
        if (lp->done[i].id && strcmp(lp->done[i].id, id) == 0) {
            *code = lp->done[i].code;
            return JM_OK;
        }
    }
    return JM_ERR_NOT_FOUND;
}

size_t jm_localproc_pollfds(const jm_localproc_t *lp, struct pollfd *fds, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < lp->n; i++) {
        if (lp->jobs[i].chan < 0)
            continue;
        if (k < max)
            fds[k] = (struct pollfd){.fd = lp->jobs[i].chan, .events = POLLIN};
        k++;
    }
    return k;
}

size_t jm_localproc_busy(const jm_localproc_t *lp)
{
    return lp->n;
}
