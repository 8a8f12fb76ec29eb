/*
 * worker.c — run one task instance's command under supervision and report the outcome.
 *
 * One thread, one poll() loop over a signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP) and the two
 * output pipes; timers (heartbeat, memory poll, runtime, kill escalation) are the poll
 * timeout.  The worker is a child subreaper so descendants that daemonise stay countable.
 * It does not parse options, read configuration or decide where events go.
 *
 * Classification: exit 0 → ti.done; killed by us for memory or runtime → Z; KILL_SELF → F
 * ("got KILL_SELF"); SIGTERM/SIGHUP/SIGINT to the worker (scancel, node shutdown) → U; a
 * SIGKILL we did not send (the kernel OOM killer, the cluster's memory enforcement) → Z, and so
 * is exit code 137 (the shell's report of its child's SIGKILL) when the OOM-kill count of the
 * worker's memory cgroup rose during the run;
 * anything else non-zero → E.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobmon/jmtime.h"
#include "jobmon/log.h"
#include "worker/proctree.h"
#include "worker/tail.h"
#include "worker/worker.h"

#define MEM_POLL_MS 100
/* Over the local report channel, ti.running waits this long (or for the result, whichever
 * comes first): the distributor's relay holds it up to 20 ms for the result anyway
 * (JM_RELAY_RUNNING_HOLD_MS), and a short command then costs one datagram, decode and answer
 * less.  Workers that publish to Kafka themselves send it at once. */
#define RUNNING_DEFER_MS 15
#define MEM_POLL_NEAR_MS 25

char *jm_worker_distributor_id_from_env(void)
{
    const char *v = getenv("JOBMON_DISTRIBUTOR_ID");
    if (v && *v)
        return jm_strdup(v);
    const char *aj = getenv("SLURM_ARRAY_JOB_ID"), *at = getenv("SLURM_ARRAY_TASK_ID");
    if (aj && *aj && at && *at)
        return jm_asprintf("%s_%s", aj, at);
    v = getenv("SLURM_JOB_ID");
    if (v && *v)
        return jm_strdup(v);
    return jm_asprintf("local-%d", (int)getpid());
}

int64_t jm_worker_array_step(int64_t cli_step)
{
    if (cli_step >= 0)
        return cli_step;
    const char *names[] = {"SLURM_ARRAY_TASK_ID", "JOBMON_ARRAY_STEP_ID"};
    for (size_t i = 0; i < JM_ARRAY_LEN(names); i++) {
        const char *v = getenv(names[i]);
        if (!v || !*v)
            continue;
        char *end = NULL;
        long long s = strtoll(v, &end, 10);
        return (*end == '\0' && s >= 0) ? s : -1;
    }
    return -1;
}

static void mkdirs(const char *dir)
{
    char *p = jm_strdup(dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        (void)mkdir(p, 0777);
        *s = '/';
    }
    (void)mkdir(p, 0777);
    free(p);
}

/* Open (create) a log file for appending, creating its directories only when they are missing
 * (the common case costs one open, not a mkdir per path component). */
static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const char *slash = strrchr(path, '/');
    if (fd >= 0 || errno != ENOENT || !slash || slash == path)
        return fd;
    char *dir = jm_strndup(path, (size_t)(slash - path));
    mkdirs(dir);
    free(dir);
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

/* 0 when a log file can be made at `path` later: its directory exists (created if missing)
 * and is writable, or the file itself is writable (e.g. /dev/null); else -1 with errno. */
static int log_path_usable(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir =
        slash ? jm_strndup(path, slash > path ? (size_t)(slash - path) : 1) : jm_strdup(".");
    int ok = access(dir, W_OK | X_OK);
    if (ok != 0 && errno == ENOENT) {
        mkdirs(dir);
        ok = access(dir, W_OK | X_OK);
    }
    free(dir);
    return ok == 0 || access(path, W_OK) == 0 ? 0 : -1;
}

typedef struct {
    int fd;           /* read end, -1 once closed */
    int logfd;        /* log file, -1 until the first output (or after a failure) */
    const char *path; /* of the log file, made at the first output */
    int log_failed;
    jm_tail_t tail;
} stream_t;

/* The log file at the stream's first output: a command that writes nothing makes none. */
static void log_open_late(stream_t *s)
{
    if (s->logfd >= 0 || s->log_failed)
        return;
    s->logfd = open_log(s->path);
    if (s->logfd < 0) {
        s->log_failed = 1;
        jm_log(JM_LOG_WARN, "worker", "%s: %s (output kept in the tail only)", s->path,
               strerror(errno));
    }
}

/* Read what is available; 1 while open, 0 at EOF. */
static int stream_read(stream_t *s)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(s->fd, buf, sizeof(buf));
        if (n > 0) {
            jm_tail_append(&s->tail, buf, (size_t)n);
            log_open_late(s);
            for (ssize_t off = 0; off < n && s->logfd >= 0;) {
                ssize_t w = write(s->logfd, buf + off, (size_t)(n - off));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    jm_log(JM_LOG_WARN, "worker", "log write failed: %s", strerror(errno));
                    close(s->logfd);
                    s->logfd = -1;
                    s->log_failed = 1;
                    break;
                }
                off += w;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 1;
        close(s->fd);
        s->fd = -1;
        return 0;
    }
}

static json_t *usage_json(const jm_worker_result_t *res)
{
    return json_pack("{sI sI sI}", "wall_ms", (json_int_t)res->wall_ms, "cpu_ms",
                     (json_int_t)res->cpu_ms, "maxrss_kb", (json_int_t)res->maxrss_kb);
}

static int next_report_s(const jm_worker_opts_t *o)
{
    double v = ceil(o->hb_interval_s * o->report_by_buffer);
    return v < 1 ? 1 : (int)v;
}

/* "oom_kill N" from the open memory.oom_control (cgroup v1), memory.events (v2) or
 * /proc/vmstat file `fd` (read from its start: these files are regenerated on each read);
 * 0 if absent. */
static long long oom_kill_in(int fd)
{
    char buf[16384];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    for (const char *l = buf; l; l = strchr(l, '\n')) {
        long long v;
        if (*l == '\n')
            l++;
        if (sscanf(l, "oom_kill %lld", &v) == 1)
            return v;
    }
    return 0;
}

#define OOM_MAX_FILES 32
/* The OOM-kill counter files of this process (its memory cgroup and ancestors, else
 * /proc/vmstat), opened at the first use and kept: a pooled worker reads them before each
 * instance, and looking up its cgroup every time cost 4+ file opens per instance.  A worker
 * does not change cgroup between instances. */
static struct {
    int init, n;
    int fd[OOM_MAX_FILES];
} oom_files;

/* Open the counter file `path` into oom_files (ignored when it does not exist). */
static void oom_file_add(const char *path)
{
    int fd = oom_files.n < OOM_MAX_FILES ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0)
        oom_files.fd[oom_files.n++] = fd;
}

/* Find and open the counter files (see oom_files). */
static void oom_files_open(void)
{
    char line[1024], dir[1200];
    int found = 0;
    oom_files.init = 1;
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f && !found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        const char *file, *base;
        if (strncmp(c1 + 1, "memory:", 7) == 0) {
            base = "/sys/fs/cgroup/memory";
            file = "memory.oom_control";
        } else if (c1[1] == ':' && access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
            base = "/sys/fs/cgroup";
            file = "memory.events";
        } else {
            continue;
        }
        found = 1;
        snprintf(dir, sizeof(dir), "%s%s", base, c2 + 1);
        for (;;) {
            char p[1300];
            snprintf(p, sizeof(p), "%s/%s", dir, file);
            oom_file_add(p);
            char *slash = strrchr(dir, '/');
            if (!slash || (size_t)(slash - dir) < strlen(base))
                break;
            *slash = '\0';
        }
    }
    if (f)
        fclose(f);
    if (!found)
        oom_file_add("/proc/vmstat");
}

/* How many processes the kernel's OOM killer has killed in this process's memory cgroup and
 * its ancestors (a limit may be set on the job's cgroup above the step's), or node-wide from
 * /proc/vmstat when no memory cgroup is visible.  A rise across the command's run tells an
 * external memory kill (Slurm's cgroup enforcement, the kernel) from a command that merely
 * exited 137: `/bin/sh -c` turns its child's SIGKILL into exit code 137. */
static long long oom_kills(void)
{
    long long sum = 0;
    if (!oom_files.init)
        oom_files_open();
    for (int i = 0; i < oom_files.n; i++)
        sum += oom_kill_in(oom_files.fd[i]);
    return sum;
}

static void classify(const jm_worker_opts_t *o, int wstatus, int we_killed, long long oom_rise,
                     jm_worker_result_t *res)
{
    if (WIFEXITED(wstatus)) {
        res->exit_code = WEXITSTATUS(wstatus);
        res->event_exit_code = res->exit_code;
    } else {
        int sig = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : SIGKILL;
        res->exit_code = 128 + sig;
        res->event_exit_code = -sig;
    }
    switch (res->why) {
    case JM_WKILL_MEMORY:
        res->status = 'Z';
        snprintf(res->message, sizeof(res->message),
                 "killed: memory limit exceeded (%lld kB used > %lld MB requested)",
                 (long long)res->maxrss_kb, (long long)o->memory_mb);
        return;
    case JM_WKILL_RUNTIME:
        res->status = 'Z';
        snprintf(res->message, sizeof(res->message),
                 "killed: runtime limit exceeded (%lld s requested)", (long long)o->runtime_s);
        return;
    case JM_WKILL_SELF:
        res->status = 'F';
        snprintf(res->message, sizeof(res->message), "got KILL_SELF");
        return;
    case JM_WKILL_SIGNAL:
        res->status = 'U';
        snprintf(res->message, sizeof(res->message),
                 "worker terminated by a signal (job cancelled or node shutting down)");
        return;
    case JM_WKILL_NONE: break;
    }
    if (WIFEXITED(wstatus) && res->exit_code == 0) {
        res->status = 'D';
        res->message[0] = '\0';
    } else if (!we_killed && oom_rise > 0 &&
               ((WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) ||
                (WIFEXITED(wstatus) && res->exit_code == 128 + SIGKILL))) {
        res->status = 'Z';
        snprintf(res->message, sizeof(res->message),
                 "killed by the out-of-memory killer (memory limit %lld MB, max RSS seen %lld kB)",
                 (long long)o->memory_mb, (long long)res->maxrss_kb);
    } else if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL && !we_killed) {
        res->status = 'Z';
        snprintf(res->message, sizeof(res->message),
                 "killed by SIGKILL from outside the worker (likely the OOM killer or the "
                 "cluster's memory enforcement)");
    } else if (WIFSIGNALED(wstatus)) {
        res->status = 'E';
        snprintf(res->message, sizeof(res->message), "command killed by signal %d (%s)",
                 WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
    } else {
        res->status = 'E';
        snprintf(res->message, sizeof(res->message), "command exited with code %d", res->exit_code);
    }
}

static int64_t tv_ms(struct timeval tv)
{
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Reap the children that ended.  Those of the command's process group `pgid` (the command and
 * orphans of it adopted as subreaper, with their own reaped descendants) add their usage to res;
 * others are leftovers of an earlier instance of a pooled worker and do not count.  Sets
 * *wstatus and returns 1 once the command itself is reaped. */
static int reap(pid_t pgid, jm_worker_result_t *res, int *wstatus)
{
    int done = 0;
    for (;;) {
        siginfo_t si = {0};
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
            return done;
        int ours = si.si_pid == pgid || getpgid(si.si_pid) == pgid; /* zombies keep theirs */
        int ws;
        struct rusage ru;
        if (wait4(si.si_pid, &ws, 0, &ru) != si.si_pid)
            return done;
        if (!ours)
            continue;
        if (ru.ru_maxrss > res->maxrss_kb)
            res->maxrss_kb = ru.ru_maxrss;
        res->cpu_ms += tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
        if (si.si_pid == pgid) {
            *wstatus = ws;
            done = 1;
        }
    }
}

/* After the command ended: reap what is left of its group; when we SIGKILLed it, wait (up to a
 * second) for the rest of the group to die, so it counts for this instance, not the next. */
static void reap_group_rest(pid_t pgid, int we_killed, jm_worker_result_t *res)
{
    int ws;
    int64_t until = jm_time_mono_ms() + (we_killed ? 1000 : 0);
    for (;;) {
        (void)reap(pgid, res, &ws);
        if (kill(-pgid, 0) != 0 || jm_time_mono_ms() >= until)
            return;
        jm_time_sleep_ms(2, NULL); /* the deadline bounds the wait */
    }
}

/* The signals the command gets with default dispositions and unblocked: a worker started with
 * `&` inherits SIGINT ignored, which would defeat the interrupt, and the worker blocks some of
 * them for its signalfd. */
static const int cmd_sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD};

/* The forked child's side of start_command (what posix_spawn's attributes do in spawn_command). */
static void child_exec(char *const *argv, char *const *envp, const sigset_t *mask, int outfd,
                       int errfd)
{
    setpgid(0, 0);
    for (size_t i = 0; i < JM_ARRAY_LEN(cmd_sigs); i++)
        signal(cmd_sigs[i], SIG_DFL);
    sigprocmask(SIG_UNBLOCK, mask, NULL);
    if (dup2(outfd, 1) < 0 || dup2(errfd, 2) < 0)
        _exit(127);
    execve("/bin/sh", argv, envp);
    _exit(127);
}

/* environ with the instance's JOBMON_* variables set (replaced in place or appended, as
 * setenv does): a new vector of `strs` (the NAME=value strings, owned by the caller) and
 * borrowed entries of environ. */
static char **command_env(const jm_worker_opts_t *o, char *strs[5])
{
    const char *names[] = {"JOBMON_WORKFLOW_ID", "JOBMON_WORKFLOW_RUN_ID", "JOBMON_TASK_ID",
                           "JOBMON_TASK_INSTANCE_ID", "JOBMON_DISTRIBUTOR_ID"};
    long long ids[] = {(long long)o->workflow_id, (long long)o->run_id, (long long)o->task_id,
                       (long long)o->ti_id};
    int nset = o->distributor_id ? 5 : 4; /* a pooled worker's environment has no id of its own */
    for (int k = 0; k < 5; k++)
        strs[k] = k >= nset ? NULL
                  : k < 4   ? jm_asprintf("%s=%lld", names[k], ids[k])
                            : jm_asprintf("%s=%s", names[k], o->distributor_id);
    size_t ne = 0, used = 0;
    while (environ[ne])
        ne++;
    char **envp = jm_calloc(ne + 6, sizeof(*envp));
    int placed[5] = {0};
    for (size_t i = 0; i < ne; i++) {
        envp[i] = environ[i];
        for (int k = 0; k < nset; k++) {
            size_t nl = strlen(names[k]);
            if (!placed[k] && strncmp(environ[i], names[k], nl) == 0 && environ[i][nl] == '=') {
                envp[i] = strs[k];
                placed[k] = 1;
            }
        }
    }
    used = ne;
    for (int k = 0; k < nset; k++)
        if (!placed[k])
            envp[used++] = strs[k];
    envp[used] = NULL;
    return envp;
}

/* posix_spawn of argv with envp in a new process group, stdout/stderr on outfd/errfd, the
 * cmd_sigs at their defaults and unblocked.  0 and *pid, or the error. */
static int spawn_command(char *const *argv, char *const *envp, const sigset_t *mask, int outfd,
                         int errfd, pid_t *pid)
{
    sigset_t cur, def;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    sigemptyset(&def);
    for (size_t i = 0; i < JM_ARRAY_LEN(cmd_sigs); i++) {
        sigaddset(&def, cmd_sigs[i]);
        if (sigismember(mask, cmd_sigs[i]))
            sigdelset(&cur, cmd_sigs[i]);
    }
    posix_spawnattr_t at;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &cur);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, outfd, 1);
    posix_spawn_file_actions_adddup2(&fa, errfd, 2);
    int e = posix_spawn(pid, "/bin/sh", &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return e;
}

/* Start `/bin/sh -c command` with the instance's environment: posix_spawn (vfork-like: no copy
 * of the worker's page tables and no copy-on-write faults afterwards, on every instance), else
 * fork (e.g. /bin/sh cannot be executed: the child then exits 127).  The pid, or -1 with errno
 * (fork failed). */
static pid_t start_command(const jm_worker_opts_t *o, const sigset_t *mask, int outfd, int errfd)
{
    char *strs[5];
    char **envp = command_env(o, strs);
    char *argv[] = {"sh", "-c", (char *)o->command, NULL};
    pid_t pid = -1;
    if (spawn_command(argv, envp, mask, outfd, errfd, &pid) != 0) {
        pid = fork();
        if (pid == 0)
            child_exec(argv, envp, mask, outfd, errfd);
        if (pid > 0)
            setpgid(pid, pid); /* also done by the child: whoever runs first wins, no race */
    }
    int e = errno;
    free(envp);
    for (int k = 0; k < 5; k++)
        free(strs[k]);
    errno = e;
    return pid;
}

/* Send the ti.running *ev (kept until acknowledged) if not sent yet. */
static void send_running(jm_report_t *r, jm_event_t **ev, int64_t ti_id)
{
    jm_err_t err;
    if (!*ev)
        return;
    if (jm_report_send(r, *ev, 1, &err) != JM_OK) /* the command runs anyway */
        jm_log(JM_LOG_ERROR, "worker", "ti %lld: ti.running not sent: %s", (long long)ti_id,
               err.msg);
    *ev = NULL;
}

jm_rc_t jm_worker_run(const jm_worker_opts_t *o, jm_report_t *r, jm_worker_result_t *res,
                      jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    jm_event_t *running = NULL; /* ti.running not sent yet */
    int sfd = -1, outp[2] = {-1, -1}, errp[2] = {-1, -1};
    stream_t st[2] = {{.fd = -1, .logfd = -1}, {.fd = -1, .logfd = -1}};
    char *outpath = NULL, *errpath = NULL, *did = NULL;
    sigset_t mask, oldmask;
    memset(res, 0, sizeof(*res));

    const char *logs = o->logs_dir ? o->logs_dir : getenv("JOBMON_LOGS_DIR");
    if (!logs || !*logs)
        logs = "/tmp/jobmon-logs";
    outpath = o->stdout_path ? jm_strdup(o->stdout_path)
                             : jm_asprintf("%s/%lld.stdout", logs, (long long)o->ti_id);
    errpath = o->stderr_path ? jm_strdup(o->stderr_path)
                             : jm_asprintf("%s/%lld.stderr", logs, (long long)o->ti_id);
    did = o->distributor_id ? jm_strdup(o->distributor_id) : jm_worker_distributor_id_from_env();
    for (int i = 0; i < 2; i++) {
        const char *p = i ? errpath : outpath;
        jm_tail_init(&st[i].tail);
        st[i].path = p;
        if (log_path_usable(p) != 0) {
            rc = jm_err_set(err, JM_ERR_IO, "%s: %s", p, strerror(errno));
            goto out;
        }
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, &oldmask);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0 || pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        rc = jm_err_set(err, JM_ERR_IO, "signalfd/pipe: %s", strerror(errno));
        goto out;
    }
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);

    long long oom0 = oom_kills();
    int64_t t0 = jm_time_mono_ms();
    pid_t pid = start_command(o, &mask, outp[1], errp[1]);
    if (pid < 0) {
        rc = jm_err_set(err, JM_ERR_IO, "fork: %s", strerror(errno));
        goto out;
    }
    res->pid = pid;
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;
    st[0].fd = outp[0];
    st[1].fd = errp[0];
    outp[0] = errp[0] = -1;
    fcntl(st[0].fd, F_SETFL, O_NONBLOCK);
    fcntl(st[1].fd, F_SETFL, O_NONBLOCK);

    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    json_t *pl = json_pack("{sI ss si ss si ss ss}", "ti_id", (json_int_t)o->ti_id, "host", host,
                           "pid", (int)pid, "distributor_id", did, "next_report_s",
                           next_report_s(o), "stdout_path", outpath, "stderr_path", errpath);
    running = jm_event_new(JM_EV_TI_RUNNING, o->workflow_id, pl);
    int64_t running_at = jm_report_chan_fd(r) >= 0 ? t0 + RUNNING_DEFER_MS : t0;
    if (running_at <= t0)
        send_running(r, &running, o->ti_id);
    jm_log(JM_LOG_DEBUG, "worker", "ti %lld: started pid %d", (long long)o->ti_id, (int)pid);

    int done = 0, wstatus = 0, we_killed = 0;
    int64_t next_hb = o->hb_interval_s > 0 ? t0 + (int64_t)o->hb_interval_s * 1000 : INT64_MAX;
    int64_t next_mem = o->memory_mb > 0 ? t0 + 10 : INT64_MAX;
    int64_t deadline = o->runtime_s > 0 ? t0 + o->runtime_s * 1000 : INT64_MAX;
    int64_t kill_at = INT64_MAX;
    int64_t limit_kb = o->memory_mb * 1024;
    while (!done) {
        int64_t now = jm_time_mono_ms();
        int64_t next = next_hb;
        if (running && running_at < next)
            next = running_at;
        if (next_mem < next)
            next = next_mem;
        if (deadline < next)
            next = deadline;
        if (kill_at < next)
            next = kill_at;
        int timeout = next == INT64_MAX ? -1 : (int)(next > now ? next - now : 0);
        struct pollfd pfd[3] = {{.fd = sfd, .events = POLLIN},
                                {.fd = st[0].fd, .events = POLLIN},
                                {.fd = st[1].fd, .events = POLLIN}};
        int pn = poll(pfd, 3, timeout);
        if (pn < 0 && errno != EINTR) {
            jm_log(JM_LOG_ERROR, "worker", "poll: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < 2; i++)
            if (st[i].fd >= 0 && (pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                stream_read(&st[i]);
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGCHLD)
                    continue;
                if (res->why == JM_WKILL_NONE) {
                    res->why = JM_WKILL_SIGNAL;
                    kill(-pid, SIGINT);
                    kill_at = jm_time_mono_ms() + (int64_t)o->interrupt_timeout_s * 1000;
                } else {
                    kill(-pid, SIGKILL); /* a second signal: at once */
                    we_killed = 1;
                }
            }
            /* reap the command and the orphans of its group the subreaper inherited */
            done = reap(pid, res, &wstatus);
        }
        now = jm_time_mono_ms();
        if (done)
            break;
        if (running && now >= running_at)
            send_running(r, &running, o->ti_id);
        if (now >= next_mem) {
            long kb = jm_proc_tree_rss_kb("/proc", pid, NULL);
            if (kb > res->maxrss_kb)
                res->maxrss_kb = kb;
            if (kb > limit_kb && res->why != JM_WKILL_MEMORY) {
                jm_log(JM_LOG_WARN, "worker", "ti %lld: %ld kB > %lld MB: killing",
                       (long long)o->ti_id, kb, (long long)o->memory_mb);
                res->why = JM_WKILL_MEMORY;
                kill(-pid, SIGKILL);
                we_killed = 1;
                kill_at = INT64_MAX;
            }
            next_mem = now + (kb > limit_kb * 3 / 4 ? MEM_POLL_NEAR_MS : MEM_POLL_MS);
        }
        if (now >= deadline) {
            deadline = INT64_MAX;
            if (res->why == JM_WKILL_NONE) {
                jm_log(JM_LOG_WARN, "worker", "ti %lld: runtime %lld s exceeded: interrupting",
                       (long long)o->ti_id, (long long)o->runtime_s);
                res->why = JM_WKILL_RUNTIME;
                kill(-pid, SIGINT);
                kill_at = now + (int64_t)o->interrupt_timeout_s * 1000;
            }
        }
        if (now >= kill_at) {
            kill(-pid, SIGKILL);
            we_killed = 1;
            kill_at = INT64_MAX;
        }
        if (now >= next_hb) {
            next_hb = now + (int64_t)o->hb_interval_s * 1000;
            pl = json_pack("{sI si}", "ti_id", (json_int_t)o->ti_id, "next_report_s",
                           next_report_s(o));
            jm_err_t e2;
            if (jm_report_send(r, jm_event_new(JM_EV_TI_HEARTBEAT, o->workflow_id, pl), 0, &e2) !=
                JM_OK)
                jm_log(JM_LOG_WARN, "worker", "ti %lld: heartbeat: %s", (long long)o->ti_id,
                       e2.msg);
            char s = o->status_fn ? o->status_fn(o->status_arg, o->ti_id) : 0;
            if (s == 'K' && res->why == JM_WKILL_NONE) {
                jm_log(JM_LOG_WARN, "worker", "ti %lld: KILL_SELF: interrupting",
                       (long long)o->ti_id);
                res->why = JM_WKILL_SELF;
                kill(-pid, SIGINT);
                kill_at = now + (int64_t)o->interrupt_timeout_s * 1000;
            }
        }
        jm_report_poll(r, 0);
    }
    /* what the command wrote before exiting is in the pipes: take it (do not wait for
     * descendants that still hold them open) */
    for (int i = 0; i < 2; i++)
        if (st[i].fd >= 0)
            stream_read(&st[i]);
    res->wall_ms = jm_time_mono_ms() - t0;
    reap_group_rest(pid, we_killed, res);
    /* the OOM-kill count matters only for a SIGKILL we did not send (or sh's 137): read it
     * again only then, not on every exit (4 file reads off the latency path) */
    int sigkill = (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) ||
                  (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 128 + SIGKILL);
    classify(o, wstatus, we_killed, sigkill && !we_killed ? oom_kills() - oom0 : 0, res);

    send_running(r, &running, o->ti_id); /* if it waited: before the result */
    char *otail = jm_tail_text(&st[0].tail, NULL), *etail = jm_tail_text(&st[1].tail, NULL);
    if (res->status == 'D') {
        pl = json_pack("{sI ss ss so}", "ti_id", (json_int_t)o->ti_id, "stdout_tail", otail,
                       "stderr_tail", etail, "usage", usage_json(res));
        rc = jm_report_send(r, jm_event_new(JM_EV_TI_DONE, o->workflow_id, pl), 1, err);
    } else {
        char st_s[2] = {res->status, '\0'};
        pl = json_pack("{sI ss si ss ss ss so}", "ti_id", (json_int_t)o->ti_id, "status", st_s,
                       "exit_code", res->event_exit_code, "message", res->message, "stdout_tail",
                       otail, "stderr_tail", etail, "usage", usage_json(res));
        rc = jm_report_send(r, jm_event_new(JM_EV_TI_ERROR, o->workflow_id, pl), 1, err);
    }
    free(otail);
    free(etail);
    jm_log(JM_LOG_INFO, "worker", "ti %lld: %c exit %d wall %lld ms cpu %lld ms maxrss %lld kB%s%s",
           (long long)o->ti_id, res->status, res->exit_code, (long long)res->wall_ms,
           (long long)res->cpu_ms, (long long)res->maxrss_kb, res->message[0] ? ": " : "",
           res->message);
out:
    jm_event_destroy(running); /* NULL unless a failure came between it and its send */
    for (int i = 0; i < 2; i++) {
        if (st[i].fd >= 0)
            close(st[i].fd);
        if (st[i].logfd >= 0)
            close(st[i].logfd);
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    if (sfd >= 0)
        close(sfd); /* signals stay blocked: the worker is ending; a SIGTERM now must not cut
                     * the delivery of the result short */
    free(outpath);
    free(errpath);
    free(did);
    return rc;
}
