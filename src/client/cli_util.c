/*
 * cli_util.c — helpers the `jobmon` command groups share: option values, publishing one client
 * event and waiting for the FSM to apply it (event_log through the reader role), and the run's
 * distributor child (spawn, ALIVE handshake, stderr forwarding, SIGTERM/SHUTDOWN, daemonising).
 * It prints nothing but forwarded distributor lines; callers report errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/cli_util.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"

#define PUBLISH_FLUSH_MS 60000
#define EVENT_POLL_MS    200

void (*jm_cli_before_log)(void) = NULL;

int jm_cli_parse_id(const char *s, int64_t *out)
{
    int64_t v;
    if (jm_cli_parse_int(s, INT64_MAX, &v) != 0 || v < 1)
        return -1;
    *out = v;
    return 0;
}

int jm_cli_parse_int(const char *s, int64_t max, int64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

int jm_cli_no_operands(int argc, char **argv, char *msg, size_t msglen)
{
    if (optind >= argc)
        return 0;
    snprintf(msg, msglen, "unexpected argument '%s'", argv[optind]);
    return -1;
}

char *jm_cli_id_array(const int64_t *ids, size_t n)
{
    char *out = jm_malloc(n * 21 + 3), *w = out;
    *w++ = '{';
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "%s%" PRId64, i ? "," : "", ids[i]);
    strcpy(w, "}");
    return out;
}

const char *jm_cli_tail_lines(const char *text, int64_t lines)
{
    if (lines <= 0)
        return text;
    size_t len = strlen(text);
    if (len && text[len - 1] == '\n')
        len--; /* the final newline ends the last line */
    for (size_t i = len; i > 0; i--)
        if (text[i - 1] == '\n' && --lines == 0)
            return text + i;
    return text;
}

void jm_cli_print_lines(FILE *out, const char *prefix, const char *text)
{
    for (const char *l = text; *l;) {
        size_t n = strcspn(l, "\n");
        fprintf(out, "%s%.*s\n", prefix, (int)n, l);
        l += n + (l[n] == '\n');
    }
}

const char *jm_cli_user(void)
{
    const char *u = getenv("USER");
    if (u && *u)
        return u;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_name && *pw->pw_name ? pw->pw_name : "unknown";
}

void jm_cli_print_json(json_t *j)
{
    json_dumpf(j, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(j);
}

/* ---- events -------------------------------------------------------------------------------- */

jm_producer_t *jm_cli_producer(const jm_config_t *cfg, jm_err_t *err)
{
    size_t n = 0;
    const char *const *items = jm_config_list(cfg, "kafka.properties", &n);
    const char **kv = jm_calloc(2 * n + 5, sizeof(*kv));
    char **owned = jm_calloc(n + 1, sizeof(*owned));
    size_t k = 0;
    kv[k++] = "message.timeout.ms";
    kv[k++] = "30000";
    /* Bound what a big bind can hold in librdkafka's queue (its default is 1 GB): a full queue
     * makes jm_producer_send_raw poll and retry, so the client's RSS stays below the 1 GB goal
     * at 1.5M tasks (about 350 MB of model + this). */
    kv[k++] = "queue.buffering.max.kbytes";
    kv[k++] = JM_CLI_PRODUCER_QUEUE_KB;
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(items[i], '=');
        if (!eq)
            continue;
        owned[i] = jm_strndup(items[i], (size_t)(eq - items[i]));
        kv[k++] = owned[i];
        kv[k++] = eq + 1;
    }
    kv[k] = NULL;
    jm_producer_t *p = jm_producer_new(jm_config_str(cfg, "kafka.brokers"), kv, err);
    if (p)
        jm_producer_set_topic(p, jm_config_str(cfg, "kafka.topic"));
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
    free(kv);
    return p;
}

jm_rc_t jm_cli_publish(jm_producer_t *p, jm_event_type_t type, int64_t wf, json_t *payload,
                       char *event_id, jm_err_t *err)
{
    jm_event_t *ev = jm_event_new(type, wf, payload);
    jm_rc_t rc = jm_producer_send(p, ev, err);
    if (rc == JM_OK)
        rc = jm_producer_flush(p, PUBLISH_FLUSH_MS, err);
    if (rc == JM_OK && event_id)
        memcpy(event_id, ev->id, sizeof(ev->id));
    jm_event_destroy(ev);
    return rc;
}

jm_rc_t jm_cli_event_outcome(jm_status_ctx_t *ctx, const char *event_id, char *outcome,
                             size_t outcome_len, char *reason, size_t reason_len, jm_err_t *err)
{
    static const char sql[] =
        "SELECT outcome, coalesce(reason, '') FROM event_log WHERE event_id = $1::uuid";
    const char *params[1] = {event_id};
    PGresult *res = NULL;
    jm_pg_t *pg = jm_status_ctx_pg(ctx, err);
    if (!pg)
        return JM_ERR_UNAVAILABLE;
    jm_rc_t rc = jm_pg_exec(pg, sql, 1, params, &res, err);
    if (rc == JM_ERR_UNAVAILABLE && jm_pg_reconnect(pg, jm_time_mono_ms() + 5000, NULL) == JM_OK)
        rc = jm_pg_exec(pg, sql, 1, params, &res, err);
    if (rc != JM_OK)
        goto out;
    if (PQntuples(res) == 0) {
        rc = JM_ERR_NOT_FOUND;
        goto out;
    }
    snprintf(outcome, outcome_len, "%s", PQgetvalue(res, 0, 0));
    snprintf(reason, reason_len, "%s", PQgetvalue(res, 0, 1));
out:
    PQclear(res);
    return rc;
}

jm_rc_t jm_cli_wait_event(jm_status_ctx_t *ctx, const char *event_id, int64_t timeout_ms,
                          char *outcome, size_t outcome_len, char *reason, size_t reason_len,
                          jm_err_t *err)
{
    int64_t deadline = jm_time_mono_ms() + timeout_ms;
    for (;;) {
        jm_rc_t rc =
            jm_cli_event_outcome(ctx, event_id, outcome, outcome_len, reason, reason_len, err);
        if (rc != JM_ERR_NOT_FOUND)
            return rc;
        int64_t left = deadline - jm_time_mono_ms();
        if (left <= 0)
            return jm_err_set(err, JM_ERR_RETRY,
                              "event %s not applied after %" PRId64 " s (is jobmon-fsm running?)",
                              event_id, timeout_ms / 1000);
        jm_time_sleep_ms(left < EVENT_POLL_MS ? left : EVENT_POLL_MS, NULL);
    }
}

/* ---- distributor ------------------------------------------------------------------------------
 */

/* The directory holding this executable into dir (PATH_MAX bytes): 0, or -1 when unknown. */
static int self_dir(char *dir)
{
    ssize_t n = readlink("/proc/self/exe", dir, PATH_MAX - 1);
    if (n <= 0)
        return -1;
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

static char *first_accepted(const char *dir, const char *const *fmts, size_t n,
                            int (*accept)(const char *path))
{
    for (size_t i = 0; i < n; i++) {
        char *c = jm_asprintf(fmts[i], dir);
        if (accept(c))
            return c;
        free(c);
    }
    return NULL;
}

char *jm_cli_locate(const char *env_name, const char *const *fmts, size_t n,
                    int (*accept)(const char *path), int libtool)
{
    const char *env = getenv(env_name);
    char dir[PATH_MAX];
    if (env && *env)
        return jm_strdup(env);
    if (self_dir(dir) != 0)
        return NULL;
    char *found = first_accepted(dir, fmts, n, accept);
    size_t dl = strlen(dir);
    if (!found && libtool && dl > 6 && strcmp(dir + dl - 6, "/.libs") == 0) {
        dir[dl - 6] = '\0';
        found = first_accepted(dir, fmts, n, accept);
    }
    return found;
}

static int is_executable(const char *path)
{
    return access(path, X_OK) == 0;
}

char *jm_cli_distributor_path(void)
{
    static const char *const fmts[] = {"%s/jobmon-distributor"};
    char *p = jm_cli_locate("JOBMON_DISTRIBUTOR", fmts, JM_ARRAY_LEN(fmts), is_executable, 1);
    return p ? p : jm_strdup("jobmon-distributor");
}

char **jm_cli_distributor_argv(const jm_config_t *cfg, const char *path, int64_t run_id,
                               int64_t wf_id, const char *cluster)
{
    char **argv = jm_calloc(12, sizeof(*argv));
    int k = 0;
    argv[k++] = jm_strdup(path);
    argv[k++] = jm_strdup("--run-id");
    argv[k++] = jm_asprintf("%" PRId64, run_id);
    argv[k++] = jm_strdup("--workflow-id");
    argv[k++] = jm_asprintf("%" PRId64, wf_id);
    argv[k++] = jm_strdup("--cluster");
    argv[k++] = jm_strdup(cluster);
    if (cfg && jm_config_file(cfg)) {
        argv[k++] = jm_strdup("--config");
        argv[k++] = jm_strdup(jm_config_file(cfg));
    }
    argv[k] = NULL;
    return argv;
}

void jm_cli_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

/* One complete stderr line of the distributor. */
static void dist_line(jm_cli_dist_t *d, const char *line)
{
    if (strcmp(line, "ALIVE") == 0) {
        d->alive_seen = 1;
        return;
    }
    if (strcmp(line, "SHUTDOWN") == 0) {
        d->shutdown_seen = 1;
        return;
    }
    if (!*line)
        return;
    if (jm_cli_before_log)
        jm_cli_before_log();
    /* Its lines are already jm_log records ("<ts> LEVEL distributor[pid] ..."): pass through. */
    fprintf(stderr, "%s\n", line);
}

int jm_cli_dist_pump(jm_cli_dist_t *d)
{
    if (d->err_fd < 0)
        return -1;
    for (;;) {
        if (d->len == sizeof(d->buf) - 1) { /* an over-long line: flush it as is */
            d->buf[d->len] = '\0';
            dist_line(d, d->buf);
            d->len = 0;
        }
        ssize_t n = read(d->err_fd, d->buf + d->len, sizeof(d->buf) - 1 - d->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) {
            if (d->len) {
                d->buf[d->len] = '\0';
                dist_line(d, d->buf);
                d->len = 0;
            }
            close(d->err_fd);
            d->err_fd = -1;
            return -1;
        }
        d->len += (size_t)n;
        char *start = d->buf, *nl;
        while ((nl = memchr(start, '\n', d->len - (size_t)(start - d->buf)))) {
            *nl = '\0';
            dist_line(d, start);
            start = nl + 1;
        }
        d->len -= (size_t)(start - d->buf);
        memmove(d->buf, start, d->len);
    }
}

int jm_cli_dist_alive(jm_cli_dist_t *d)
{
    int status;
    if (d->pid <= 0)
        return 0;
    pid_t r = waitpid(d->pid, &status, WNOHANG);
    if (r == d->pid || (r < 0 && errno == ECHILD)) {
        d->pid = 0;
        return 0;
    }
    return 1;
}

jm_rc_t jm_cli_dist_start(jm_cli_dist_t *d, char **argv, int64_t timeout_ms, jm_err_t *err)
{
    int fds[2], ex[2];
    memset(d, 0, sizeof(*d));
    d->err_fd = -1;
    if (pipe2(fds, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0)
        return jm_err_set(err, JM_ERR_IO, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]), close(ex[0]), close(ex[1]);
        return jm_err_set(err, JM_ERR_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        dup2(fds[1], STDERR_FILENO);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, STDIN_FILENO);
        execvp(argv[0], argv);
        int e = errno;
        if (write(ex[1], &e, sizeof(e)) < 0) { /* nothing more to do */
        }
        _exit(127);
    }
    setpgid(pid, pid); /* both sides, to win the race */
    close(fds[1]);
    close(ex[1]);
    int e = 0;
    ssize_t got = read(ex[0], &e, sizeof(e)); /* EOF at exec: started */
    close(ex[0]);
    d->pid = pid;
    d->err_fd = fds[0];
    fcntl(d->err_fd, F_SETFL, fcntl(d->err_fd, F_GETFL) | O_NONBLOCK);
    if (got == (ssize_t)sizeof(e)) {
        waitpid(pid, NULL, 0);
        d->pid = 0;
        close(d->err_fd);
        d->err_fd = -1;
        return jm_err_set(err, JM_ERR_IO, "cannot start %s: %s", argv[0], strerror(e));
    }
    int64_t deadline = jm_time_mono_ms() + timeout_ms;
    while (!d->alive_seen) {
        int64_t left = deadline - jm_time_mono_ms();
        if (left <= 0) {
            jm_cli_dist_stop(d, 5000);
            return jm_err_set(err, JM_ERR_IO,
                              "distributor %s did not report ALIVE within %" PRId64 " s", argv[0],
                              timeout_ms / 1000);
        }
        struct pollfd pfd = {.fd = d->err_fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left < 1000 ? left : 1000));
        if (pr < 0 && errno != EINTR)
            return jm_err_set(err, JM_ERR_IO, "poll: %s", strerror(errno));
        if (jm_cli_dist_pump(d) < 0 && !d->alive_seen) {
            int status = 0;
            if (d->pid > 0)
                waitpid(d->pid, &status, 0);
            d->pid = 0;
            return jm_err_set(err, JM_ERR_IO, "distributor %s exited during start-up (%s %d)",
                              argv[0], WIFSIGNALED(status) ? "signal" : "status",
                              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
    }
    return JM_OK;
}

void jm_cli_dist_stop(jm_cli_dist_t *d, int64_t timeout_ms)
{
    if (d->pid > 0 && jm_cli_dist_alive(d)) {
        kill(d->pid, SIGTERM);
        int64_t deadline = jm_time_mono_ms() + timeout_ms;
        while (d->pid > 0 && jm_cli_dist_alive(d) && jm_time_mono_ms() < deadline) {
            if (d->err_fd >= 0) {
                struct pollfd pfd = {.fd = d->err_fd, .events = POLLIN};
                if (poll(&pfd, 1, 100) > 0)
                    jm_cli_dist_pump(d);
            } else {
                jm_time_sleep_ms(50, NULL);
            }
        }
        if (d->pid > 0 && jm_cli_dist_alive(d)) {
            jm_log(JM_LOG_WARN, "run",
                   "distributor %d did not shut down in %" PRId64 " s: killing it", (int)d->pid,
                   timeout_ms / 1000);
            kill(-d->pid, SIGKILL);
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
            d->pid = 0;
        }
    }
    if (d->err_fd >= 0) {
        jm_cli_dist_pump(d);
        if (d->err_fd >= 0)
            close(d->err_fd);
        d->err_fd = -1;
    }
}

char *jm_cli_state_dir(jm_err_t *err)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char *base;
    if (xdg && *xdg == '/')
        base = jm_strdup(xdg);
    else if (home && *home)
        base = jm_asprintf("%s/.local/state", home);
    else
        base = jm_strdup("/tmp");
    char *dir = jm_asprintf("%s/jobmon", base);
    /* mkdir -p */
    for (char *s = dir + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(dir, 0700);
        *s = '/';
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        jm_err_set(err, JM_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
        free(dir);
        dir = NULL;
    }
    free(base);
    return dir;
}

jm_rc_t jm_cli_dist_daemonise(char **argv, const char *log_path, pid_t *pid_out, jm_err_t *err)
{
    int p[2];
    *pid_out = 0;
    if (pipe2(p, O_CLOEXEC) < 0)
        return jm_err_set(err, JM_ERR_IO, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]), close(p[1]);
        return jm_err_set(err, JM_ERR_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(p[0]);
        setsid();
        pid_t gc = fork();
        if (gc != 0) {
            if (write(p[1], &gc, sizeof(gc)) < 0) { /* the parent then reports pid 0 */
            }
            _exit(gc < 0 ? 1 : 0);
        }
        close(p[1]);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGHUP, SIG_IGN);
        int nul = open("/dev/null", O_RDONLY);
        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (nul >= 0)
            dup2(nul, STDIN_FILENO);
        if (log >= 0) {
            dup2(log, STDOUT_FILENO);
            dup2(log, STDERR_FILENO);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "jobmon: cannot start %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(p[1]);
    pid_t gc = 0;
    if (read(p[0], &gc, sizeof(gc)) == (ssize_t)sizeof(gc))
        *pid_out = gc;
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || gc <= 0)
        return jm_err_set(err, JM_ERR_IO, "cannot daemonise the distributor");
    return JM_OK;
}
