/*
 * cli_run.c — `jobmon run FILE`, `jobmon submit FILE` (= run --detach) and `jobmon resume WF`:
 * load and validate, refuse what Jobmon refuses (same workflow_args with other tasks, an
 * already complete workflow, an existing one without --resume), bind, publish `run.start`, start
 * the run's distributor (child, or a daemon with --detach) and watch the run to its end through
 * Redis notifications with a slow safety re-read, drawing a progress bar on a terminal.
 *
 * Deliberately not here: scheduling (the FSM does it; this process may go away at any time) and
 * any direct write to PostgreSQL — every change is an event.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "client/cli_run.h"
#include "client/cli_util.h"
#include "common/status_sql.h"
#include "jobmon/jmtime.h"
#include "jobmon/jobmon.h"
#include "jobmon/log.h"

#define SUB                 "run"
#define SAFETY_READ_MS      3000 /* re-read even without a notification */
#define PLAIN_LINE_MS       5000 /* non-terminal progress lines at most this often */
#define TTY_REDRAW_MS       1000 /* terminal bar redraw (elapsed and rate move) */
#define RUN_APPEAR_CHECK_MS 3000
#define SHUTDOWN_WAIT_MS    30000
#define SUBMIT_APPEAR_MS    10000
#define DIST_GRACE_MS       2000 /* after the distributor exited, time for the run's end to show */

static volatile sig_atomic_t got_sigint;

static void on_sigint(int sig)
{
    (void)sig;
    got_sigint++;
}

/* ---- options ----------------------------------------------------------------------------------
 */

static void run_usage(FILE *out, jm_cli_run_kind_t kind)
{
    if (kind == JM_CLI_RESUME)
        fprintf(out, "usage: jobmon resume WF [--cold|--hot] [--cluster C] [--detach] "
                     "[--fail-fast] [--timeout S] [--max-concurrent N] [--json]\n"
                     "  resume workflow WF: signal its alive run to hand over (hot: running "
                     "tasks keep running;\n  cold: they are killed; default hot), start a new run "
                     "and watch it like `run`\n");
    else
        fprintf(out,
                "usage: jobmon %s [OPTIONS] FILE\n"
                "  %s\n",
                kind == JM_CLI_SUBMIT ? "submit" : "run",
                kind == JM_CLI_SUBMIT ? "bind FILE, start a run with a daemonised distributor and "
                                        "print the ids (= run --detach)"
                                      : "bind FILE, start a run and its distributor, and watch it "
                                        "to the end");
    fprintf(out,
            "options:\n"
            "  -d, --detach            daemonise the distributor and return at once\n"
            "      --fail-fast         stop scheduling after the first fatal task\n"
            "      --timeout SECONDS   end the run (E) after SECONDS (default 36000, 0 = none)\n"
            "      --max-concurrent N  at most N tasks queued or running (0 pauses)\n"
            "%s"
            "      --cold | --hot      resume mode: kill running tasks, or let them finish\n"
            "      --cluster NAME      cluster (default: from the file / the last run)\n"
            "      --startup-timeout S wait S seconds for the distributor's ALIVE (180)\n"
            "      --json              print one JSON object at the end\n"
            "exit: 0 run done, 1 run failed/stopped, 2 invalid input, 3 Kafka/PostgreSQL/Redis "
            "unreachable\n",
            kind == JM_CLI_RESUME ? ""
                                  : "      --resume            resume the existing workflow "
                                    "of FILE (default --cold)\n");
}

int jm_cli_run_parse(int argc, char **argv, jm_cli_run_kind_t kind, jm_cli_run_opts_t *o, char *msg,
                     size_t msglen)
{
    enum {
        OPT_FAIL_FAST = 256,
        OPT_TIMEOUT,
        OPT_MAX,
        OPT_RESUME,
        OPT_COLD,
        OPT_HOT,
        OPT_CLUSTER,
        OPT_JSON,
        OPT_STARTUP,
    };
    static const struct option longopts[] = {
        {"detach", no_argument, NULL, 'd'},
        {"fail-fast", no_argument, NULL, OPT_FAIL_FAST},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"max-concurrent", required_argument, NULL, OPT_MAX},
        {"resume", no_argument, NULL, OPT_RESUME},
        {"cold", no_argument, NULL, OPT_COLD},
        {"hot", no_argument, NULL, OPT_HOT},
        {"cluster", required_argument, NULL, OPT_CLUSTER},
        {"startup-timeout", required_argument, NULL, OPT_STARTUP},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt, cold = 0, hot = 0;
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->detach = kind == JM_CLI_SUBMIT;
    o->timeout_s = 36000;
    o->max_concurrent = -1;
    o->startup_timeout_s = 180;
    o->resume = kind == JM_CLI_RESUME;
    msg[0] = '\0';
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+dh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': o->detach = 1; break;
        case OPT_FAIL_FAST: o->fail_fast = 1; break;
        case OPT_TIMEOUT:
            if (jm_cli_parse_int(optarg, INT32_MAX, &o->timeout_s) != 0) {
                snprintf(msg, msglen, "--timeout: not a number of seconds: '%s'", optarg);
                return -1;
            }
            break;
        case OPT_STARTUP:
            if (jm_cli_parse_int(optarg, 86400, &o->startup_timeout_s) != 0 ||
                o->startup_timeout_s == 0) {
                snprintf(msg, msglen, "--startup-timeout: not a number of seconds: '%s'", optarg);
                return -1;
            }
            break;
        case OPT_MAX:
            if (jm_cli_parse_int(optarg, INT32_MAX, &o->max_concurrent) != 0) {
                snprintf(msg, msglen, "--max-concurrent: not a count: '%s'", optarg);
                return -1;
            }
            break;
        case OPT_RESUME:
            if (kind == JM_CLI_RESUME)
                goto bad;
            o->resume = 1;
            break;
        case OPT_COLD: cold = 1; break;
        case OPT_HOT: hot = 1; break;
        case OPT_CLUSTER: o->cluster = optarg; break;
        case OPT_JSON: o->json = 1; break;
        case 'h': return 1;
        default:
        bad:
            snprintf(msg, msglen, "unknown option '%s'", argv[optind - 1]);
            return -1;
        }
    }
    if (cold && hot) {
        snprintf(msg, msglen, "--cold and --hot exclude each other");
        return -1;
    }
    if ((cold || hot) && !o->resume) {
        snprintf(msg, msglen, "--%s needs --resume", cold ? "cold" : "hot");
        return -1;
    }
    /* Jobmon: workflow.run(resume=True) resets running jobs (cold); the CLI resume is hot. */
    o->mode = !o->resume              ? "none"
              : cold                  ? "cold"
              : hot                   ? "hot"
              : kind == JM_CLI_RESUME ? "hot"
                                      : "cold";
    if (optind + 1 != argc) {
        snprintf(msg, msglen, optind >= argc ? "missing %s" : "unexpected argument '%s'",
                 optind >= argc ? (kind == JM_CLI_RESUME ? "WF" : "FILE") : argv[optind + 1]);
        return -1;
    }
    if (kind == JM_CLI_RESUME) {
        if (jm_cli_parse_id(argv[optind], &o->wf_id) != 0) {
            snprintf(msg, msglen, "not a workflow id: '%s'", argv[optind]);
            return -1;
        }
    } else {
        o->file = argv[optind];
    }
    return 0;
}

/* ---- watching ------------------------------------------------------------------------------ */

typedef struct {
    FILE *out;
    int tty;
    int width;
    int bar_shown; /* a bar without its newline is on the terminal */
    int64_t start_ms, last_line_ms, last_draw_ms;
    int64_t base_finished; /* D + F when watching started */
    char last[512];
} progress_t;

static progress_t *cur_progress;

static void progress_clear(void)
{
    if (cur_progress && cur_progress->bar_shown) {
        fputs("\r\033[K", cur_progress->out);
        fflush(cur_progress->out);
        cur_progress->bar_shown = 0;
    }
}

static void progress_show(progress_t *pg, const jm_status_t *st, int force)
{
    char line[512];
    int64_t now = jm_time_mono_ms();
    double el = (double)(now - pg->start_ms) / 1000.0;
    double rate =
        el > 0 ? (double)(st->n[JM_TASK_D] + st->n[JM_TASK_F] - pg->base_finished) / el : 0.0;
    jm_status_format_progress(line, sizeof(line), st, el, rate, pg->width, pg->tty);
    if (pg->tty) {
        if (!force && now - pg->last_draw_ms < TTY_REDRAW_MS && strcmp(line, pg->last) == 0)
            return;
        fprintf(pg->out, "\r\033[K%s", line);
        pg->bar_shown = 1;
        pg->last_draw_ms = now;
    } else {
        /* compare without the rate/elapsed tail: a line per change, at most every 5 s */
        char key[512];
        jm_status_format_progress(key, sizeof(key), st, 0, 0, pg->width, 0);
        if (!force && (strcmp(key, pg->last) == 0 || now - pg->last_line_ms < PLAIN_LINE_MS))
            return;
        snprintf(pg->last, sizeof(pg->last), "%s", key);
        fprintf(pg->out, "%s\n", line);
        pg->last_line_ms = now;
    }
    if (pg->tty)
        snprintf(pg->last, sizeof(pg->last), "%s", line);
    fflush(pg->out);
}

/* Ask on the terminal; non-interactive = yes. */
static int confirm_stop(int64_t run_id)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0 || !isatty(STDIN_FILENO)) {
        if (fd >= 0)
            close(fd);
        return 1;
    }
    char q[96], a[16] = {0};
    int n = snprintf(q, sizeof(q), "\nstop workflow run %" PRId64 "? [y/N] ", run_id);
    if (write(fd, q, (size_t)n) < 0) { /* treat as yes below */
    }
    ssize_t got = read(fd, a, sizeof(a) - 1);
    close(fd);
    if (got < 0 && errno == EINTR)
        return 1; /* a second Ctrl-C at the prompt */
    return got > 0 && (a[0] == 'y' || a[0] == 'Y');
}

static int run_is_terminal(char s)
{
    int v = jm_status_from_letter(JM_ENTITY_RUN, s);
    return v >= 0 && jm_run_is_terminal((jm_run_status_t)v);
}

/* Status of our run from PostgreSQL (when the cache shows another one); 0 if unknown. */
static char pg_run_status(jm_status_ctx_t *ctx, int64_t run_id)
{
    PGresult *res = NULL;
    char st = 0;
    jm_pg_t *pg = jm_status_ctx_pg(ctx, NULL);
    if (pg &&
        jm_pg_exec_id(pg, "SELECT status FROM workflow_run WHERE id = $1", run_id, &res, NULL) ==
            JM_OK &&
        PQntuples(res) == 1)
        st = PQgetvalue(res, 0, 0)[0];
    PQclear(res);
    return st;
}

static void print_failed(jm_status_ctx_t *ctx, int64_t wf_id)
{
    static const char sql[] =
        "SELECT t.id, t.name, ti.exit_code, coalesce(ti.message, ''), coalesce(ti.stderr_tail, ''),"
        " count(*) OVER ()"
        " FROM task t LEFT JOIN LATERAL (SELECT exit_code, message, stderr_tail FROM task_instance"
        "   WHERE task_id = t.id ORDER BY attempt DESC LIMIT 1) ti ON true"
        " WHERE t.workflow_id = $1 AND t.status = 'F' ORDER BY t.id LIMIT 20";
    PGresult *res = NULL;
    jm_err_t err;
    jm_pg_t *pg = jm_status_ctx_pg(ctx, &err);
    if (!pg || jm_pg_exec_id(pg, sql, wf_id, &res, &err) != JM_OK) {
        fprintf(stderr, "jobmon: cannot list the failed tasks: %s\n", err.msg);
        goto out;
    }
    int n = PQntuples(res);
    if (n == 0)
        goto out;
    fprintf(stderr, "failed tasks (%s):\n", PQgetvalue(res, 0, 5));
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "  task %s %s: exit code %s%s%s\n", PQgetvalue(res, i, 0),
                PQgetvalue(res, i, 1), PQgetisnull(res, i, 2) ? "-" : PQgetvalue(res, i, 2),
                *PQgetvalue(res, i, 3) ? ", " : "", PQgetvalue(res, i, 3));
        jm_cli_print_lines(stderr, "    | ", jm_cli_tail_lines(PQgetvalue(res, i, 4), 10));
    }
    fprintf(stderr, "(jobmon errors %" PRId64 ": every failed task with its stderr)\n", wf_id);
out:
    PQclear(res);
}

typedef struct {
    jm_cli_t *cli;
    const jm_cli_run_opts_t *o;
    jm_status_ctx_t *ctx;
    jm_producer_t *p;
    int64_t wf_id, run_id;
    char start_event[37];
    jm_cli_dist_t *dist; /* NULL when detached */
} watch_t;

/* Watch the run to its end.  Returns the exit code; *st gets the last status. */
static int watch_run(watch_t *w, jm_status_t *st)
{
    char chan[64];
    jm_err_t err;
    jm_notify_t *notify = NULL;
    progress_t pg = {0};
    struct sigaction sa = {0}, old_sa;
    int code = JM_EXIT_FAILED, have = 0, stopping = 0, run_seen = 0, notify_warned = 0;
    int64_t notify_retry_at = 0, last_read = 0, last_appear_check = 0;
    char run_st = 0, stop_event[37] = "";
    int dist_dead = 0;
    int64_t dist_dead_at = 0;

    pg.out = w->o->json ? stderr : stdout;
    pg.tty = isatty(fileno(pg.out));
    pg.width = 100;
    if (pg.tty) {
        struct winsize ws;
        if (ioctl(fileno(pg.out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
            pg.width = ws.ws_col - 1;
    }
    pg.start_ms = jm_time_mono_ms();
    pg.last_line_ms = -PLAIN_LINE_MS;
    cur_progress = &pg;
    jm_cli_before_log = progress_clear;
    memset(st, 0, sizeof(*st));

    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa);
    got_sigint = 0;

    snprintf(chan, sizeof(chan), "jm:notify:wf:%" PRId64, w->wf_id);
    for (;;) {
        int64_t now = jm_time_mono_ms();
        if (!notify && now >= notify_retry_at) {
            notify = jm_notify_new(jm_config_str(w->cli->cfg, "redis.host"),
                                   (int)jm_config_int(w->cli->cfg, "redis.port"), chan, &err);
            if (!notify) {
                if (!notify_warned++)
                    jm_log(JM_LOG_WARN, SUB,
                           "workflow %" PRId64 ": no notifications (%s); "
                           "re-reading every %d s",
                           w->wf_id, err.msg, SAFETY_READ_MS / 1000);
                notify_retry_at = now + SAFETY_READ_MS;
            } else {
                last_read = 0; /* re-read: we may have missed a message while unsubscribed */
            }
        }
        if (last_read == 0 || now - last_read >= SAFETY_READ_MS) {
            jm_status_t s;
            jm_rc_t rc = jm_status_get(w->ctx, w->wf_id, &s, &err);
            last_read = now;
            if (rc == JM_OK) {
                if (!have)
                    pg.base_finished = s.n[JM_TASK_D] + s.n[JM_TASK_F];
                *st = s;
                have = 1;
            } else if (rc != JM_ERR_NOT_FOUND) {
                progress_clear();
                jm_log(JM_LOG_WARN, SUB, "workflow %" PRId64 ": cannot read status: %s", w->wf_id,
                       err.msg);
            }
            if (have && st->run_id == w->run_id) {
                run_seen = 1;
                run_st = st->run_status;
            } else if (have && now - last_appear_check >= RUN_APPEAR_CHECK_MS) {
                /* not (or no longer) the cache's run: ask PostgreSQL, and the event log */
                last_appear_check = now;
                char s2 = pg_run_status(w->ctx, w->run_id);
                if (s2) {
                    run_seen = 1;
                    run_st = s2;
                } else if (!run_seen && w->start_event[0]) {
                    char outcome[32], reason[512];
                    if (jm_cli_event_outcome(w->ctx, w->start_event, outcome, sizeof(outcome),
                                             reason, sizeof(reason), NULL) == JM_OK &&
                        strcmp(outcome, "applied") != 0) {
                        progress_clear();
                        fprintf(stderr, "jobmon: run %" PRId64 " was not started (%s: %s)\n",
                                w->run_id, outcome, reason);
                        code = JM_EXIT_FAILED;
                        goto out;
                    }
                }
            }
            if (have)
                progress_show(&pg, st, 0);
            if (run_seen && run_is_terminal(run_st)) {
                st->run_status = run_st;
                code = run_st == 'D' ? JM_EXIT_OK : JM_EXIT_FAILED;
                break;
            }
            if (stopping && stop_event[0]) { /* the FSM may refuse the stop (e.g. run not R) */
                char outcome[32], reason[512];
                if (jm_cli_event_outcome(w->ctx, stop_event, outcome, sizeof(outcome), reason,
                                         sizeof(reason), NULL) == JM_OK) {
                    stop_event[0] = '\0';
                    if (strcmp(outcome, "applied") != 0) {
                        progress_clear();
                        fprintf(stderr, "jobmon: run %" PRId64 " was not stopped (%s: %s)\n",
                                w->run_id, outcome, reason);
                        code = JM_EXIT_FAILED;
                        goto out;
                    }
                }
            }
        }
        if (got_sigint) {
            got_sigint = 0;
            if (stopping) {
                progress_clear();
                fprintf(stderr,
                        "jobmon: interrupted again: leaving run %" PRId64 " to stop on its own\n",
                        w->run_id);
                code = JM_EXIT_FAILED;
                goto out;
            }
            progress_clear();
            if (confirm_stop(w->run_id)) {
                json_t *pl = json_pack("{sI}", "run_id", (json_int_t)w->run_id);
                if (jm_cli_publish(w->p, JM_EV_RUN_STOP, w->wf_id, pl, stop_event, &err) != JM_OK) {
                    fprintf(stderr, "jobmon: cannot publish run.stop: %s\n", err.msg);
                    code = jm_rc_to_exit(err.rc);
                    goto out;
                }
                fprintf(stderr, "jobmon: stopping run %" PRId64 "...\n", w->run_id);
                stopping = 1;
                last_read = 0;
                continue;
            }
            got_sigint = 0;
        }
        if (w->dist && !dist_dead && !jm_cli_dist_alive(w->dist)) {
            /* it may have ended because the run did: read once more before judging */
            jm_cli_dist_pump(w->dist);
            dist_dead = 1;
            dist_dead_at = jm_time_mono_ms();
            last_read = 0;
            last_appear_check = 0;
            continue;
        }
        if (dist_dead && jm_time_mono_ms() - dist_dead_at > DIST_GRACE_MS) {
            progress_clear();
            fprintf(stderr, "jobmon: the distributor of run %" PRId64 " exited unexpectedly\n",
                    w->run_id);
            code = JM_EXIT_FAILED;
            goto out;
        }
        /* sleep until a notification, distributor output, Ctrl-C, or the next tick */
        struct pollfd pfd[2];
        int nfd = 0, timeout = (int)(SAFETY_READ_MS - (jm_time_mono_ms() - last_read));
        if (pg.tty && timeout > TTY_REDRAW_MS)
            timeout = TTY_REDRAW_MS;
        if (dist_dead) { /* re-read often during the short grace period */
            timeout = 250;
            last_read = 0;
        }
        if (timeout < 0)
            timeout = 0;
        if (notify)
            pfd[nfd++] = (struct pollfd){.fd = jm_notify_fd(notify), .events = POLLIN};
        if (w->dist && !dist_dead && w->dist->err_fd >= 0)
            pfd[nfd++] = (struct pollfd){.fd = w->dist->err_fd, .events = POLLIN};
        int pr = poll(pfd, (nfds_t)nfd, timeout);
        if (pr > 0) {
            for (int i = 0; i < nfd; i++) {
                if (!pfd[i].revents)
                    continue;
                if (notify && pfd[i].fd == jm_notify_fd(notify)) {
                    if (jm_notify_drain(notify, &err) < 0) {
                        jm_log(JM_LOG_WARN, SUB, "%s", err.msg);
                        jm_notify_destroy(notify);
                        notify = NULL;
                        notify_retry_at = jm_time_mono_ms() + SAFETY_READ_MS;
                    }
                    last_read = 0; /* re-read now */
                } else {
                    jm_cli_dist_pump(w->dist);
                }
            }
        } else if (pr == 0 && pg.tty && have) {
            progress_show(&pg, st, 0);
        }
    }
    progress_show(&pg, st, 1);
out:
    if (pg.bar_shown) {
        fputc('\n', pg.out);
        fflush(pg.out);
        pg.bar_shown = 0;
    }
    jm_cli_before_log = NULL;
    cur_progress = NULL;
    sigaction(SIGINT, &old_sa, NULL);
    jm_notify_destroy(notify);
    return code;
}

/* ---- start a run ----------------------------------------------------------------------------- */

static int64_t random_run_id(void)
{
    int64_t v = 0;
    while (v == 0) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            r = (uint64_t)jm_time_wall_ms() * 6364136223846793005ULL + (uint64_t)getpid();
        v = (int64_t)(r & (uint64_t)INT64_MAX);
    }
    return v;
}

static void print_result(const jm_cli_run_opts_t *o, const jm_status_t *st, int64_t wf_id,
                         int64_t run_id)
{
    jm_status_t s = *st;
    s.workflow_id = wf_id;
    s.run_id = run_id;
    if (o->json) {
        jm_cli_print_json(jm_status_json(&s));
        return;
    }
    int64_t u[JM_USER__CNT];
    jm_status_user_counts(&s, u);
    printf("workflow %" PRId64 " run %" PRId64 ": workflow %c, run %c; %" PRId64 " of %" PRId64
           " tasks done, %" PRId64 " fatal\n",
           wf_id, run_id, s.workflow_status ? s.workflow_status : '?',
           s.run_status ? s.run_status : '?', u[JM_USER_DONE], s.total, u[JM_USER_FATAL]);
}

/* Publish run.start and run the distributor: the part `run` and `resume` share. */
static int start_run(jm_cli_t *cli, const jm_cli_run_opts_t *o, jm_status_ctx_t *ctx,
                     jm_producer_t *p, int64_t wf_id, const char *cluster, const char *mode)
{
    jm_err_t err;
    jm_cli_dist_t dist;
    watch_t w = {0};
    jm_status_t st;
    char host[256] = "";
    char *path = NULL, **argv = NULL, *dir = NULL, *log_path = NULL;
    int code = JM_EXIT_FAILED;
    int64_t run_id = random_run_id();

    memset(&st, 0, sizeof(st));
    gethostname(host, sizeof(host) - 1);
    json_t *pl = json_pack("{sI ss ss ss sb sI ss}", "run_id", (json_int_t)run_id, "cluster",
                           cluster, "user", jm_cli_user(), "host", host, "fail_fast", o->fail_fast,
                           "timeout_s", (json_int_t)o->timeout_s, "resume", mode);
    w.cli = cli;
    w.o = o;
    w.ctx = ctx;
    w.p = p;
    w.wf_id = wf_id;
    w.run_id = run_id;
    if (jm_cli_publish(p, JM_EV_RUN_START, wf_id, pl, w.start_event, &err) != JM_OK) {
        fprintf(stderr, "jobmon: cannot publish run.start: %s\n", err.msg);
        code = jm_rc_to_exit(err.rc);
        goto out;
    }
    jm_log(JM_LOG_INFO, SUB,
           "workflow %" PRId64 ": run %" PRId64 " started (cluster %s, resume %s)", wf_id, run_id,
           cluster, mode);
    path = jm_cli_distributor_path();
    argv = jm_cli_distributor_argv(cli->cfg, path, run_id, wf_id, cluster);
    if (o->detach) {
        pid_t pid = 0;
        if (!(dir = jm_cli_state_dir(&err))) {
            fprintf(stderr, "jobmon: %s\n", err.msg);
            goto out;
        }
        log_path = jm_asprintf("%s/distributor-%" PRId64 ".log", dir, run_id);
        if (jm_cli_dist_daemonise(argv, log_path, &pid, &err) != JM_OK) {
            fprintf(stderr, "jobmon: %s\n", err.msg);
            goto out;
        }
        /* Report the run once the FSM has it (bounded: we promised to return at once). */
        int64_t deadline = jm_time_mono_ms() + SUBMIT_APPEAR_MS;
        for (;;) {
            jm_rc_t rc = jm_status_get(ctx, wf_id, &st, NULL);
            if (rc == JM_OK && st.run_id == run_id)
                break;
            if (jm_time_mono_ms() >= deadline)
                break;
            jm_time_sleep_ms(100, NULL);
        }
        if (st.run_id != run_id)
            st.run_status = 0;
        if (!o->json)
            printf("submitted workflow %" PRId64 " run %" PRId64 " (distributor pid %d, log %s)\n",
                   wf_id, run_id, (int)pid, log_path);
        else
            print_result(o, &st, wf_id, run_id);
        code = JM_EXIT_OK;
        goto out;
    }
    if (jm_cli_dist_start(&dist, argv, o->startup_timeout_s * 1000, &err) != JM_OK) {
        fprintf(stderr, "jobmon: %s\n", err.msg);
        fprintf(stderr, "jobmon: stopping run %" PRId64 "\n", run_id);
        json_t *stop = json_pack("{sI}", "run_id", (json_int_t)run_id);
        if (jm_cli_publish(p, JM_EV_RUN_STOP, wf_id, stop, NULL, &err) != JM_OK)
            fprintf(stderr, "jobmon: cannot publish run.stop: %s\n", err.msg);
        code = JM_EXIT_FAILED;
        goto out;
    }
    w.dist = &dist;
    if (!o->json)
        fprintf(stdout, "workflow %" PRId64 " run %" PRId64 " (distributor pid %d)\n", wf_id,
                run_id, (int)dist.pid);
    fflush(stdout);
    code = watch_run(&w, &st);
    jm_cli_dist_stop(&dist, SHUTDOWN_WAIT_MS);
    if (code != JM_EXIT_OK && st.workflow_id)
        print_failed(ctx, wf_id);
    print_result(o, &st, wf_id, run_id);
out:
    free(log_path);
    free(dir);
    jm_cli_argv_free(argv);
    free(path);
    return code;
}

/* ---- commands ------------------------------------------------------------------------------- */

/* Connect the reader and Redis up front: unreachable infrastructure is exit 3 before anything is
 * published. */
static int connect_infra(jm_cli_t *cli, jm_status_ctx_t **ctx_out, jm_producer_t **p_out)
{
    jm_err_t err;
    jm_status_ctx_t *ctx = jm_status_ctx_new_config(cli->cfg);
    if (!jm_status_ctx_pg(ctx, &err)) {
        fprintf(stderr, "jobmon: PostgreSQL unreachable: %s\n", err.msg);
        goto fail3;
    }
    if (jm_status_ctx_ping_redis(ctx, &err) != JM_OK) {
        fprintf(stderr, "jobmon: Redis unreachable: %s\n", err.msg);
        goto fail3;
    }
    jm_producer_t *p = jm_cli_producer(cli->cfg, &err);
    if (!p) {
        fprintf(stderr, "jobmon: Kafka producer: %s\n", err.msg);
        jm_status_ctx_destroy(ctx);
        return JM_EXIT_USAGE;
    }
    *ctx_out = ctx;
    *p_out = p;
    return JM_EXIT_OK;
fail3:
    jm_status_ctx_destroy(ctx);
    return JM_EXIT_UNAVAILABLE;
}

/* What PostgreSQL knows of workflows with this tool and workflow_args. */
typedef struct {
    int exists;        /* our id exists */
    char status;       /* its status */
    int64_t other_id;  /* a different workflow with the same args (different tasks) */
    int64_t alive_run; /* its alive run, 0 if none */
} existing_t;

static jm_rc_t find_existing(jm_status_ctx_t *ctx, jm_workflow_t *wf, existing_t *ex, jm_err_t *err)
{
    static const char sql[] =
        "SELECT w.id, w.status, coalesce((SELECT r.id FROM workflow_run r WHERE r.workflow_id ="
        " w.id AND r.status IN " JM_SQL_RUN_ALIVE " LIMIT 1), 0)"
        " FROM workflow w WHERE w.tool = $1 AND w.workflow_args_hash = $2";
    char args[JM_HASH_HEX_LEN + 1];
    const char *params[2] = {jm_tool_name(jm_workflow_tool(wf)), args};
    PGresult *res = NULL;
    jm_pg_t *pg = jm_status_ctx_pg(ctx, err);
    memset(ex, 0, sizeof(*ex));
    if (!pg)
        return JM_ERR_UNAVAILABLE;
    jm_hash_hex(jm_workflow_args_hash(wf), args);
    jm_rc_t rc = jm_pg_exec(pg, sql, 2, params, &res, err);
    if (rc != JM_OK)
        goto out;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (id == jm_workflow_id(wf)) {
            ex->exists = 1;
            ex->status = PQgetvalue(res, i, 1)[0];
            ex->alive_run = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        } else {
            ex->other_id = id;
        }
    }
out:
    PQclear(res);
    return rc;
}

static int cmd_run_file(jm_cli_t *cli, jm_cli_run_opts_t *o)
{
    jm_err_t err;
    jm_workflow_t *wf = NULL;
    jm_status_ctx_t *ctx = NULL;
    jm_producer_t *p = NULL;
    jm_bind_result_t res;
    existing_t ex;
    const char *mode = o->mode;
    int code;

    wf = jm_workflow_load_file(o->file, &err);
    if (!wf) {
        fprintf(stderr, "jobmon: %s: %s\n", o->file, err.msg);
        code = JM_EXIT_USAGE;
        goto out;
    }
    if (o->cluster)
        jm_defaults_set_cluster(jm_workflow_defaults(wf), o->cluster);
    if (o->max_concurrent >= 0)
        jm_workflow_set_max_concurrently_running(wf, o->max_concurrent);
    if (jm_workflow_validate(wf, &err) != JM_OK) {
        fprintf(stderr, "jobmon: %s: %s\n", o->file, err.msg);
        code = JM_EXIT_USAGE;
        goto out;
    }
    if ((code = connect_infra(cli, &ctx, &p)) != JM_EXIT_OK)
        goto out;
    if (find_existing(ctx, wf, &ex, &err) != JM_OK) {
        fprintf(stderr, "jobmon: PostgreSQL: %s\n", err.msg);
        code = jm_rc_to_exit(err.rc);
        goto out;
    }
    int64_t wf_id = jm_workflow_id(wf);
    if (ex.other_id && !ex.exists) {
        fprintf(stderr,
                "jobmon: %s: workflow args already used by a workflow with different "
                "tasks (workflow %" PRId64 "); change workflow_args to start a new one\n",
                o->file, ex.other_id);
        code = JM_EXIT_USAGE;
        goto out;
    }
    if (ex.exists && ex.status == 'D') {
        fprintf(stderr, "jobmon: workflow %" PRId64 " is already complete\n", wf_id);
        code = JM_EXIT_USAGE;
        goto out;
    }
    if (ex.exists && !o->resume) {
        fprintf(stderr,
                "jobmon: workflow %" PRId64 " already exists (status %c); use --resume "
                "to resume it\n",
                wf_id, ex.status);
        code = JM_EXIT_USAGE;
        goto out;
    }
    if (!ex.exists && o->resume) {
        jm_log(JM_LOG_WARN, SUB, "workflow %" PRId64 " does not exist yet: running it fresh",
               wf_id);
        mode = "none";
    }
    if (ex.exists && ex.alive_run) {
        json_t *pl = json_pack("{ss}", "mode", mode);
        if (jm_cli_publish(p, JM_EV_WORKFLOW_RESUME, wf_id, pl, NULL, &err) != JM_OK) {
            fprintf(stderr, "jobmon: cannot publish workflow.resume: %s\n", err.msg);
            code = jm_rc_to_exit(err.rc);
            goto out;
        }
    }
    if (jm_workflow_bind(wf, p, &res, &err) != JM_OK) {
        fprintf(stderr, "jobmon: bind: %s\n", err.msg);
        code = jm_rc_to_exit(err.rc);
        goto out;
    }
    jm_log(JM_LOG_INFO, SUB, "workflow %" PRId64 ": bound %zu tasks in %zu events", wf_id,
           res.total_tasks, res.events);
    const char *cluster = o->cluster ? o->cluster : jm_task_cluster(jm_workflow_task(wf, 0));
    code = start_run(cli, o, ctx, p, wf_id, cluster, mode);
out:
    jm_producer_destroy(p);
    jm_status_ctx_destroy(ctx);
    jm_workflow_destroy(wf);
    return code;
}

static int cmd_resume_wf(jm_cli_t *cli, jm_cli_run_opts_t *o)
{
    static const char sql[] =
        "SELECT w.status, w.bound_at IS NOT NULL,"
        " coalesce((SELECT r.id FROM workflow_run r WHERE r.workflow_id = w.id"
        "   AND r.status IN " JM_SQL_RUN_ALIVE " LIMIT 1), 0),"
        " coalesce((SELECT r.cluster FROM workflow_run r WHERE r.workflow_id = w.id"
        "   ORDER BY r.created_at DESC LIMIT 1),"
        "  (SELECT t.cluster FROM task t WHERE t.workflow_id = w.id LIMIT 1), 'dummy')"
        " FROM workflow w WHERE w.id = $1";
    jm_err_t err;
    jm_status_ctx_t *ctx = NULL;
    jm_producer_t *p = NULL;
    PGresult *res = NULL;
    char *cluster = NULL;
    int code;

    if ((code = connect_infra(cli, &ctx, &p)) != JM_EXIT_OK)
        goto out;
    if (jm_pg_exec_id(jm_status_ctx_pg(ctx, NULL), sql, o->wf_id, &res, &err) != JM_OK) {
        fprintf(stderr, "jobmon: PostgreSQL: %s\n", err.msg);
        code = jm_rc_to_exit(err.rc);
        goto out;
    }
    if (PQntuples(res) == 0) {
        fprintf(stderr, "jobmon: workflow %" PRId64 " not found\n", o->wf_id);
        code = JM_EXIT_USAGE;
        goto out;
    }
    if (PQgetvalue(res, 0, 0)[0] == 'D') {
        fprintf(stderr, "jobmon: workflow %" PRId64 " is already complete\n", o->wf_id);
        code = JM_EXIT_USAGE;
        goto out;
    }
    if (PQgetvalue(res, 0, 1)[0] != 't') {
        fprintf(stderr, "jobmon: workflow %" PRId64 ": binding not complete; run its file again\n",
                o->wf_id);
        code = JM_EXIT_USAGE;
        goto out;
    }
    cluster = jm_strdup(o->cluster ? o->cluster : PQgetvalue(res, 0, 3));
    if (strtoll(PQgetvalue(res, 0, 2), NULL, 10) != 0) {
        json_t *pl = json_pack("{ss}", "mode", o->mode);
        if (jm_cli_publish(p, JM_EV_WORKFLOW_RESUME, o->wf_id, pl, NULL, &err) != JM_OK) {
            fprintf(stderr, "jobmon: cannot publish workflow.resume: %s\n", err.msg);
            code = jm_rc_to_exit(err.rc);
            goto out;
        }
    }
    if (o->max_concurrent >= 0) {
        json_t *pl = json_pack("{sI sn}", "max_concurrently_running", (json_int_t)o->max_concurrent,
                               "template");
        if (jm_cli_publish(p, JM_EV_WORKFLOW_CONCURRENCY, o->wf_id, pl, NULL, &err) != JM_OK) {
            fprintf(stderr, "jobmon: cannot publish workflow.concurrency: %s\n", err.msg);
            code = jm_rc_to_exit(err.rc);
            goto out;
        }
    }
    code = start_run(cli, o, ctx, p, o->wf_id, cluster, o->mode);
out:
    free(cluster);
    PQclear(res);
    jm_producer_destroy(p);
    jm_status_ctx_destroy(ctx);
    return code;
}

static int run_common(jm_cli_t *cli, int argc, char **argv, jm_cli_run_kind_t kind)
{
    jm_cli_run_opts_t o;
    char msg[256];
    int r = jm_cli_run_parse(argc, argv, kind, &o, msg, sizeof(msg));
    if (r == 1) {
        run_usage(stdout, kind);
        return JM_EXIT_OK;
    }
    if (r < 0) {
        fprintf(stderr, "jobmon %s: %s\n", argv[0], msg);
        run_usage(stderr, kind);
        return JM_EXIT_USAGE;
    }
    o.json |= cli->json;
    return kind == JM_CLI_RESUME ? cmd_resume_wf(cli, &o) : cmd_run_file(cli, &o);
}

int jm_cli_cmd_run(jm_cli_t *cli, int argc, char **argv)
{
    return run_common(cli, argc, argv, JM_CLI_RUN);
}

int jm_cli_cmd_submit(jm_cli_t *cli, int argc, char **argv)
{
    return run_common(cli, argc, argv, JM_CLI_SUBMIT);
}

int jm_cli_cmd_resume(jm_cli_t *cli, int argc, char **argv)
{
    return run_common(cli, argc, argv, JM_CLI_RESUME);
}
