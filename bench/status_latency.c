/*
 * status_latency.c — `jobmon status` latency (issue 5's goal: ≤ 1 ms in-library, ≤ 10 ms as a
 * process): jm_status_get() in a loop on one reused context (Redis, then PostgreSQL only), and
 * `jobmon status WF --json` as a whole process (fork/exec, stdout to /dev/null).  Prints p50,
 * p99 and max per row.  Needs the stack (eval "$(scripts/stack env)").
 *
 *   bench/status_latency [--wf ID] [--calls N] [--procs M] [--jobmon PATH]
 *
 * Without --wf it picks the workflow with the most tasks (PostgreSQL, reader role).
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobmon/config.h"
#include "jobmon/status.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    printf("| %-34s | %6d | %9.3f | %9.3f | %9.3f |\n", what, n, v[n / 2],
           v[(int)((double)n * 0.99) < n ? (int)((double)n * 0.99) : n - 1], v[n - 1]);
}

static int bench_lib(jm_status_ctx_t *ctx, int64_t wf, int calls, const char *what)
{
    double *v = jm_calloc((size_t)calls, sizeof(*v));
    jm_status_t st;
    jm_err_t err;
    /* warm up: connect */
    if (jm_status_get(ctx, wf, &st, &err) != JM_OK) {
        fprintf(stderr, "status_latency: %s: %s\n", what, err.msg);
        free(v);
        return -1;
    }
    for (int i = 0; i < calls; i++) {
        double t0 = now_ms();
        if (jm_status_get(ctx, wf, &st, &err) != JM_OK) {
            fprintf(stderr, "status_latency: %s: %s\n", what, err.msg);
            free(v);
            return -1;
        }
        v[i] = now_ms() - t0;
    }
    report(what, v, calls);
    free(v);
    return 0;
}

static int bench_proc(const char *jobmon, int64_t wf, int procs)
{
    double *v = jm_calloc((size_t)procs, sizeof(*v));
    char id[24];
    snprintf(id, sizeof(id), "%" PRId64, wf);
    for (int i = 0; i < procs; i++) {
        double t0 = now_ms();
        pid_t pid = fork();
        if (pid == 0) {
            int nul = open("/dev/null", O_WRONLY);
            dup2(nul, STDOUT_FILENO);
            execl(jobmon, jobmon, "status", id, "--json", (char *)NULL);
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        v[i] = now_ms() - t0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "status_latency: %s status %s failed (%d)\n", jobmon, id, status);
            free(v);
            return -1;
        }
    }
    report("process `jobmon status WF --json`", v, procs);
    free(v);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"wf", required_argument, NULL, 'w'},
        {"calls", required_argument, NULL, 'n'},
        {"procs", required_argument, NULL, 'p'},
        {"jobmon", required_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    int64_t wf = 0;
    int calls = 10000, procs = 200, opt, code = 1;
    const char *jobmon = "./jobmon";
    jm_err_t err;
    while ((opt = getopt_long(argc, argv, "w:n:p:j:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'w': wf = strtoll(optarg, NULL, 10); break;
        case 'n': calls = atoi(optarg); break;
        case 'p': procs = atoi(optarg); break;
        case 'j': jobmon = optarg; break;
        default:
            fprintf(stderr, "usage: status_latency [--wf ID] [--calls N] [--procs M] "
                            "[--jobmon PATH]\n");
            return 2;
        }
    }
    if (calls < 1 || procs < 0)
        return 2;
    jm_config_t *cfg = jm_config_new();
    if (jm_config_load(cfg, NULL, &err) != JM_OK) {
        fprintf(stderr, "status_latency: %s\n", err.msg);
        return 2;
    }
    jm_status_ctx_t *ctx = jm_status_ctx_new_config(cfg);
    int64_t total = 0;
    {
        jm_pg_t *pg = jm_status_ctx_pg(ctx, &err);
        PGresult *res = NULL;
        if (!pg) {
            fprintf(stderr, "status_latency: %s\n", err.msg);
            goto out;
        }
        const char *sql = wf ? "SELECT id, total_tasks FROM workflow WHERE id = $1"
                             : "SELECT id, total_tasks FROM workflow ORDER BY total_tasks DESC"
                               " LIMIT 1";
        char id[24];
        const char *params[1] = {id};
        snprintf(id, sizeof(id), "%" PRId64, wf);
        if (jm_pg_exec(pg, sql, wf ? 1 : 0, wf ? params : NULL, &res, &err) != JM_OK ||
            PQntuples(res) != 1) {
            fprintf(stderr, "status_latency: no workflow to measure %s\n", err.msg);
            PQclear(res);
            goto out;
        }
        wf = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        total = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        PQclear(res);
    }
    printf("workflow %" PRId64 " (%" PRId64 " tasks)\n\n", wf, total);
    printf("| %-34s | %6s | %9s | %9s | %9s |\n", "what", "calls", "p50 ms", "p99 ms", "max ms");
    printf("|%s|%s|%s|%s|%s|\n", "------------------------------------",
           "-------:", "----------:", "----------:", "----------:");
    jm_status_ctx_set_source(ctx, JM_STATUS_SRC_REDIS);
    if (bench_lib(ctx, wf, calls, "jm_status_get (Redis)") != 0)
        goto out;
    jm_status_ctx_set_source(ctx, JM_STATUS_SRC_PG);
    if (bench_lib(ctx, wf, calls, "jm_status_get (PostgreSQL only)") != 0)
        goto out;
    if (procs > 0 && bench_proc(jobmon, wf, procs) != 0)
        goto out;
    code = 0;
out:
    jm_status_ctx_destroy(ctx);
    jm_config_destroy(cfg);
    return code;
}
