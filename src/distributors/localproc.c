/*
 * localproc.c — a FIFO of task instances whose commands run at most N at a time in local
 * jobmon-worker processes.
 *
 * Two kinds of worker process: one-shot (the sequential plugin, and any instance that cannot be
 * pooled) runs one instance from its command line; pooled (`jobmon-worker --serve`, the
 * multiprocess plugin with env->worker_pool) stays up and runs the instances it is sent over
 * its report channel one after another (protocol in worker/report.h), which saves a worker
 * exec, its start-up and its channel per instance.  Workers are started with posix_spawn in
 * their own process group (so terminate reaches the worker; the worker then interrupts its
 * command's group), with no blocked signals; a one-shot worker gets JOBMON_DISTRIBUTOR_ID set.
 * It remembers the exit codes of the last 1000 instances for triage.  A pooled worker that
 * ends before it ever asked for an instance (an old or wrapped jobmon-worker without --serve)
 * turns pooling off: the instances then get one-shot workers.
 *
 * With env->report, each worker also gets a local report channel (worker/report.h) on
 * descriptor REPORT_FD: its events go through the relay (relay.h: ti.running and results as
 * ti.reports batches) and are answered once Kafka acknowledged the event that carried them, so
 * a worker never loads librdkafka nor connects to Kafka itself.  Without it there is no pool.
 * A worker whose result arrived (its command is over) no longer holds one of the N slots; a
 * pooled worker says R right after its result (the answers to its reports come while it runs
 * the next instance), so Kafka's round trip is off the path from one instance to the next.
 * With a pool, up to max(N + POOL_SPARE, 2 × N) processes (one-shot workers: 2 × N), and the
 * relay holds results up to RELAY_LINGER_MS so that one ti.reports carries many instances; it
 * is flushed at once when a queued instance waits for a worker that only the flush would free,
 * or when no command runs and none is queued (nothing to wait for).
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
#include "distributors/relay.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"

extern char **environ;

#define EXIT_MEMORY      1000
#define REPORT_FD        3     /* the worker's end of its report channel */
#define RELAY_LINGER_MS  30    /* ms a result may wait for others (JOBMON_RELAY_LINGER_MS) */
#define FINISH_GRACE_MS  20    /* a pooled worker says R this soon after its result */
#define DESTROY_FLUSH_MS 10000 /* how long the end waits for the delivery of held reports */
/* pooled workers beyond N (JOBMON_POOL_SPARE); few, since workers no longer wait for answers */
#define POOL_SPARE 2

typedef struct {
    char *id;
    char **argv; /* a one-shot worker's command line */
    char *spec;  /* the instance for a pooled worker; NULL = one-shot only */
    int started; /* given to a worker process */
} job_t;

typedef struct {
    pid_t pid;
    jm_chan_t *chan;     /* our end of its report channel, NULL = none */
    uint32_t cid;        /* channel id: the high half of forwarded events' tokens */
    uint32_t nrecv;      /* event datagrams received on it */
    int pooled;          /* --serve */
    int ready;           /* pooled: said R and has no instance */
    int served;          /* pooled: said R at least once */
    int retiring;        /* pooled: signalled or let go, gets no more instances */
    int finishing;       /* sent its instance's result: the command is over, its slot free */
    int64_t finished_ms; /* when (pooled: its R follows within FINISH_GRACE_MS) */
    char *job;           /* id of the instance it runs (owned), NULL = none */
} proc_t;

struct jm_localproc_s {
    const jm_plugin_env_t *env;
    int slots;
    int pool;    /* pooled workers for instances with a spec */
    job_t *jobs; /* queued and running, in submission order */
    size_t n, cap;
    proc_t *procs;
    size_t nprocs, capprocs;
    struct {
        char *id;
        int code;
    } done[EXIT_MEMORY];
    size_t ndone; /* total ever, ring index = ndone % EXIT_MEMORY */
    uint32_t next_cid;
    size_t max_procs;   /* worker processes at most: slots + spare (pool) or 2 × slots */
    struct pollfd *pfd; /* scratch for serve_readable */
    size_t cappfd;
    jm_relay_t *relay; /* with env->report: the workers' reports to Kafka */
};

/* Kafka's verdict on an event a worker sent (the relay's answer): answer the worker if its
 * channel is still open. */
static void on_delivery(void *arg, uint64_t token, int ok)
{
    jm_localproc_t *lp = arg;
    uint32_t cid = (uint32_t)(token >> 32);
    for (size_t i = 0; i < lp->nprocs; i++)
        if (lp->procs[i].cid == cid && lp->procs[i].chan) {
            (void)jm_report_chan_ack(lp->procs[i].chan, (uint32_t)token, ok);
            return;
        }
}

jm_localproc_t *jm_localproc_new(const jm_plugin_env_t *env, int slots, int pool)
{
    jm_localproc_t *lp = jm_calloc(1, sizeof(*lp));
    lp->env = env;
    lp->slots = slots > 0 ? slots : 1;
    lp->pool = pool && env->report;
    lp->max_procs = (size_t)lp->slots * 2;
    if (lp->pool)
        lp->max_procs = (size_t)lp->slots + (size_t)jm_env_int("JOBMON_POOL_SPARE", POOL_SPARE);
    if (lp->max_procs < (size_t)lp->slots * 2)
        lp->max_procs = (size_t)lp->slots * 2;
    if (env->report)
        lp->relay = jm_relay_new(
            env->report, env->workflow_id, env->run_id,
            jm_env_int("JOBMON_RELAY_LINGER_MS", lp->pool ? RELAY_LINGER_MS : 0), on_delivery, lp);
    return lp;
}

static void chan_close(proc_t *p)
{
    jm_chan_free(p->chan);
    p->chan = NULL;
    p->ready = 0; /* nothing can be sent to it any more */
}

static job_t *find_job(jm_localproc_t *lp, const char *id, size_t *at)
{
    for (size_t i = 0; i < lp->n; i++)
        if (strcmp(lp->jobs[i].id, id) == 0) {
            if (at)
                *at = i;
            return &lp->jobs[i];
        }
    return NULL;
}

static void remember(jm_localproc_t *lp, const char *id, int code)
{
    size_t i = lp->ndone++ % EXIT_MEMORY;
    free(lp->done[i].id);
    lp->done[i].id = jm_strdup(id);
    lp->done[i].code = code;
}

static void job_free(job_t *j)
{
    free(j->id);
    free(j->spec);
    jm_plugin_argv_free(j->argv);
}

/* The instance `id` ended with `code`: remember it and drop it from the queue. */
static void job_end(jm_localproc_t *lp, const char *id, int code)
{
    size_t i;
    remember(lp, id, code);
    job_t *j = find_job(lp, id, &i);
    if (!j)
        return;
    job_free(j);
    memmove(&lp->jobs[i], &lp->jobs[i + 1], (lp->n - i - 1) * sizeof(job_t));
    lp->n--;
}

void jm_localproc_destroy(jm_localproc_t *lp)
{
    if (!lp)
        return;
    if (lp->relay) {
        /* publish what is held and serve the delivery reports: the workers get their answers
         * (they may still wait for those of several instances) instead of falling back to
         * Kafka when their channel closes */
        jm_err_t e;
        jm_relay_flush(lp->relay, 1);
        if (jm_report_flush(lp->env->report, DESTROY_FLUSH_MS, &e) != JM_OK)
            jm_log(JM_LOG_WARN, "localproc", "reports not all delivered: %s", e.msg);
    }
    jm_relay_destroy(lp->relay);
    /* close the channels first: the interrupted workers then report to Kafka themselves
     * instead of waiting for answers while we wait for them (idle pooled ones just end) */
    for (size_t i = 0; i < lp->nprocs; i++)
        chan_close(&lp->procs[i]);
    for (size_t i = 0; i < lp->nprocs; i++)
        kill(-lp->procs[i].pid, SIGTERM);
    for (size_t i = 0; i < lp->nprocs; i++) {
        (void)waitpid(lp->procs[i].pid, NULL, 0);
        free(lp->procs[i].job);
    }
    free(lp->procs);
    free(lp->pfd);
    for (size_t i = 0; i < lp->n; i++)
        job_free(&lp->jobs[i]);
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
    lp->jobs[lp->n++] = (job_t){.id = jm_strdup(id),
                                .argv = jm_plugin_worker_argv(lp->env, ti),
                                .spec = lp->pool ? jm_plugin_worker_spec(lp->env, ti, id) : NULL};
}

/* A pooled worker's "R [code]": the instance it ran (if any) ended; it waits for the next. */
static void on_ready(jm_localproc_t *lp, proc_t *p, const char *msg)
{
    if (p->job) {
        int code = msg[1] == ' ' ? atoi(msg + 2) : 0;
        job_end(lp, p->job, code);
        free(p->job);
        p->job = NULL;
    }
    p->finishing = 0;
    p->served = 1;
    p->ready = !p->retiring;
}

/* Forward the events a worker sent, take its R messages; at EOF close the channel. */
static void serve_chan(jm_localproc_t *lp, proc_t *p)
{
    char *buf = NULL;
    size_t len = 0;
    int got;
    while (p->chan && (got = jm_chan_recv(p->chan, &buf, &len)) != 0) {
        if (got < 0) {
            chan_close(p);
            break;
        }
        if (p->pooled && buf[0] == 'R') {
            on_ready(lp, p, buf);
            free(buf);
            continue;
        }
        int result = 0;
        jm_relay_take_msg(lp->relay, p->chan, p->cid, ++p->nrecv, buf, len, p->job ? p->job : "-",
                          &result);
        if (result && p->job) {
            p->finishing = 1;
            p->finished_ms = jm_time_mono_ms();
        }
        free(buf);
    }
}

/* argv with "--report-fd REPORT_FD" added (a new vector of borrowed strings). */
static char **argv_with_channel(char *const *argv, char *fdbuf)
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

/* environ without JOBMON_DISTRIBUTOR_ID, plus `did` when not NULL (a new vector of borrowed
 * strings). */
static char **worker_env(char *did)
{
    size_t ne = 0, k = 0;
    while (environ[ne])
        ne++;
    char **envp = jm_calloc(ne + 2, sizeof(*envp));
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "JOBMON_DISTRIBUTOR_ID=", 22) != 0)
            envp[k++] = environ[i];
    if (did)
        envp[k++] = did;
    envp[k] = NULL;
    return envp;
}

/* posix_spawn the worker `argv` in its own process group with default signals. */
static int spawn(char **argv, char **envp, posix_spawn_file_actions_t *fa, pid_t *pid)
{
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
    int e = posix_spawn(pid, argv[0], fa, &at, argv, envp);
    posix_spawnattr_destroy(&at);
    return e;
}

/* Start a worker process: one-shot for job j, or pooled (j NULL).  The new process, or NULL. */
static proc_t *start(jm_localproc_t *lp, job_t *j)
{
    int sv[2] = {-1, -1};
    char fdbuf[16];
    char **argv;
    char *pool_argv[] = {(char *)lp->env->worker_path, "--serve",
                         lp->env->config_path ? "--config" : NULL, (char *)lp->env->config_path,
                         NULL};
    char *const *base = j ? j->argv : pool_argv;
    const char *what = j ? j->id : "pool";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    snprintf(fdbuf, sizeof(fdbuf), "%d", REPORT_FD);
    if (lp->env->report && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0) {
        posix_spawn_file_actions_adddup2(&fa, sv[1], REPORT_FD);
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
    } else if (lp->env->report) {
        jm_log(JM_LOG_WARN, "localproc", "job %s: socketpair: %s (worker reports to Kafka)", what,
               strerror(errno));
    }
    argv = sv[0] >= 0 ? argv_with_channel(base, fdbuf) : NULL;
    char *did = j ? jm_asprintf("JOBMON_DISTRIBUTOR_ID=%s", j->id) : NULL;
    char **envp = worker_env(did);
    pid_t pid = 0;
    int e = argv ? spawn(argv, envp, &fa, &pid)
            : j  ? spawn((char **)base, envp, &fa, &pid)
                 : ENOTCONN;
    posix_spawn_file_actions_destroy(&fa);
    free(argv);
    free(did);
    free(envp);
    if (sv[1] >= 0)
        close(sv[1]);
    if (e != 0) {
        if (sv[0] >= 0)
            close(sv[0]);
        jm_log(JM_LOG_ERROR, "localproc", "job %s: cannot start %s: %s", what, base[0],
               strerror(e));
        return NULL;
    }
    if (lp->nprocs == lp->capprocs) {
        lp->capprocs = lp->capprocs ? lp->capprocs * 2 : 8;
        lp->procs = jm_realloc(lp->procs, lp->capprocs * sizeof(proc_t));
    }
    proc_t *p = &lp->procs[lp->nprocs++];
    *p = (proc_t){.pid = pid, .pooled = !j, .job = j ? jm_strdup(j->id) : NULL};
    if (sv[0] >= 0) {
        p->chan = jm_chan_new(sv[0], 0);
        p->cid = ++lp->next_cid;
    }
    if (j)
        j->started = 1;
    return p;
}

/* Reap ended workers: the instance a worker still held ends with its exit code. */
static void reap(jm_localproc_t *lp)
{
    int ws;
    pid_t w;
    while (lp->nprocs > 0 && (w = waitpid(-1, &ws, WNOHANG)) > 0) {
        for (size_t i = 0; i < lp->nprocs; i++) {
            proc_t *p = &lp->procs[i];
            if (p->pid != w)
                continue;
            serve_chan(lp, p); /* what it sent before exiting */
            int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
            if (p->job)
                job_end(lp, p->job, code);
            if (p->pooled && !p->served && lp->pool) {
                jm_log(JM_LOG_WARN, "localproc",
                       "pooled worker %d ended (code %d) before asking for work: one worker "
                       "process per instance from now on",
                       (int)w, code);
                lp->pool = 0;
            }
            chan_close(p);
            free(p->job);
            memmove(p, p + 1, (lp->nprocs - i - 1) * sizeof(proc_t));
            lp->nprocs--;
            break;
        }
    }
}

static proc_t *ready_proc(jm_localproc_t *lp)
{
    for (size_t i = 0; i < lp->nprocs; i++)
        if (lp->procs[i].ready)
            return &lp->procs[i];
    return NULL;
}

/* A pooled worker that sent its result: it says R right after (it does not wait for the
 * answers to its reports), so for a short while it counts as about to be ready. */
static int soon_ready(const proc_t *p, int64_t now)
{
    return p->pooled && p->finishing && !p->retiring && p->chan &&
           now - p->finished_ms < FINISH_GRACE_MS;
}

/* Pooled workers started but not yet ready, or about to be (each will take one queued
 * instance). */
static size_t starting(const jm_localproc_t *lp)
{
    size_t k = 0;
    int64_t now = jm_time_mono_ms();
    for (size_t i = 0; i < lp->nprocs; i++) {
        const proc_t *p = &lp->procs[i];
        k += (p->pooled && !p->served && !p->retiring) || soon_ready(p, now);
    }
    return k;
}

/* Give job j to the ready pooled worker p: 0, or -1 when the spec could not be sent (too
 * large: the job then goes one-shot). */
static int give(proc_t *p, job_t *j)
{
    size_t len = strlen(j->spec);
    char *msg = jm_asprintf("S %s", j->spec);
    int w = jm_chan_send(p->chan, msg, len + 2, 0);
    free(msg);
    if (w != 0) {
        jm_log(JM_LOG_WARN, "localproc", "job %s: spec not sent to worker %d (%s): one-shot", j->id,
               (int)p->pid, strerror(errno));
        free(j->spec);
        j->spec = NULL;
        return -1;
    }
    p->ready = 0;
    p->job = jm_strdup(j->id);
    j->started = 1;
    return 0;
}

/* Instances whose command may still run: given to a worker that has not sent its result. */
static size_t commands(const jm_localproc_t *lp)
{
    size_t k = 0;
    for (size_t i = 0; i < lp->nprocs; i++)
        k += lp->procs[i].job && !lp->procs[i].finishing;
    return k;
}

/* Start queued instances, in order, while fewer than `slots` commands run.  A worker whose
 * command ended but whose reports Kafka has not acknowledged yet (finishing) holds no slot:
 * the next instance goes to another worker meanwhile, up to max_procs worker processes. */
static void dispatch(jm_localproc_t *lp)
{
    size_t reserved = starting(lp), cmds = commands(lp);
    for (size_t i = 0; i < lp->n && cmds < (size_t)lp->slots; i++) {
        job_t *j = &lp->jobs[i];
        if (j->started)
            continue;
        proc_t *p = lp->pool && j->spec ? ready_proc(lp) : NULL;
        if (p && give(p, j) == 0) {
            cmds++;
            continue;
        }
        if (lp->pool && j->spec && reserved > 0) {
            reserved--; /* a worker on its way will take it */
            cmds++;
            continue;
        }
        if (lp->nprocs >= lp->max_procs) {
            proc_t *idle = ready_proc(lp);
            if (idle) { /* a one-shot instance needs the place of an idle pooled worker */
                idle->ready = 0;
                idle->retiring = 1;
                chan_close(idle); /* it ends at EOF */
            }
            break;
        }
        if (lp->pool && j->spec) {
            if (!start(lp, NULL)) {
                lp->pool = 0;
                i--; /* again, one-shot */
            } else {
                cmds++; /* j waits for it */
            }
            continue;
        }
        if (!start(lp, j)) {
            job_end(lp, j->id, 127);
            i--;
            continue;
        }
        cmds++;
    }
}

/* 1 when a queued instance has not been given to a worker yet. */
static int unstarted(const jm_localproc_t *lp)
{
    for (size_t i = 0; i < lp->n; i++)
        if (!lp->jobs[i].started)
            return 1;
    return 0;
}

/* Fewer than `slots` worker processes could take an instance now (ready or not yet started):
 * the next instances would wait for workers that wait for the answers to held reports. */
static int workers_short(const jm_localproc_t *lp)
{
    size_t avail = lp->nprocs < lp->max_procs ? lp->max_procs - lp->nprocs : 0;
    int64_t now = jm_time_mono_ms();
    for (size_t i = 0; i < lp->nprocs; i++)
        avail += lp->procs[i].ready || soon_ready(&lp->procs[i], now);
    return avail < (size_t)lp->slots;
}

void jm_localproc_prestart(jm_localproc_t *lp)
{
    while (lp->pool && lp->nprocs < (size_t)lp->slots)
        if (!start(lp, NULL))
            lp->pool = 0; /* the instances go one-shot */
}

/* serve_chan for the channels with something to read (one poll instead of a recv per worker:
 * with spare workers most of them are quiet at any time). */
static void serve_readable(jm_localproc_t *lp)
{
    size_t n = lp->nprocs;
    if (n > lp->cappfd) {
        lp->cappfd = lp->capprocs;
        lp->pfd = jm_realloc(lp->pfd, lp->cappfd * sizeof(*lp->pfd));
    }
    for (size_t i = 0; i < n; i++)
        lp->pfd[i] = (struct pollfd){.fd = jm_chan_fd(lp->procs[i].chan), .events = POLLIN};
    if (poll(lp->pfd, (nfds_t)n, 0) <= 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (lp->pfd[i].revents)
            serve_chan(lp, &lp->procs[i]);
}

void jm_localproc_poll(jm_localproc_t *lp)
{
    serve_readable(lp);
    reap(lp);
    if (lp->relay)
        jm_relay_flush(lp->relay, 0);
    dispatch(lp);
    /* publish the held results now when the next instances may need workers that wait for
     * their answers (a worker that does not go on before them), or when nothing runs nor waits
     * to run (no other result is coming: a chain's next task must not wait for the linger);
     * a worker between two instances of the queue does not count as idle */
    if (lp->relay && jm_relay_held(lp->relay) > 0 &&
        (workers_short(lp) || (commands(lp) == 0 && !unstarted(lp))))
        jm_relay_flush(lp->relay, 1);
}

int jm_localproc_alive(const jm_localproc_t *lp, const char *id)
{
    return find_job((jm_localproc_t *)lp, id, NULL) != NULL;
}

void jm_localproc_terminate(jm_localproc_t *lp, const char *id)
{
    job_t *j = find_job(lp, id, NULL);
    if (!j)
        return;
    if (!j->started) {
        job_end(lp, id, 128 + SIGTERM);
        return;
    }
    for (size_t i = 0; i < lp->nprocs; i++) {
        proc_t *p = &lp->procs[i];
        if (p->job && strcmp(p->job, id) == 0) {
            kill(-p->pid, SIGTERM); /* a pooled worker ends after this instance */
            p->retiring = 1;
            p->ready = 0;
            return;
        }
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
    for (size_t i = 0; i < lp->nprocs; i++) {
        if (!lp->procs[i].chan)
            continue;
        if (k < max)
            fds[k] = (struct pollfd){.fd = jm_chan_fd(lp->procs[i].chan), .events = POLLIN};
        k++;
    }
    return k;
}

size_t jm_localproc_busy(const jm_localproc_t *lp)
{
    return lp->n;
}
