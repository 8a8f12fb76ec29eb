/*
 * bind_gen.c — client-side bind benchmark without Kafka: builds a synthetic workflow of N tasks
 * (one root, N/10 chains of 10 steps fanned out from it, a join per 1,000 chains), validates
 * it, computes its identity and generates (and encodes) every bind event.  Prints one table row
 * per stage and the peak RSS.  Sending is measured separately (jobmon run --detach).
 *
 *   bench/bind_gen [N]        (default 100000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "client/client_int.h"
#include "jobmon/jobmon.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

static void die(const jm_err_t *err)
{
    fprintf(stderr, "bind_gen: %s\n", err->msg);
    exit(JM_EXIT_FAILED);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    const long steps = 10, per_join = 1000;
    long chains = n / steps > 0 ? n / steps : 1;
    jm_err_t err;
    double t0 = now();

    jm_tool_t *tool = jm_tool_new("bench");
    const char *node[] = {"chain", "step"}, *task[] = {"release"}, *op[] = {"verbose"};
    jm_template_t *tt = jm_template_new(tool, "stage",
                                        "python3 /opt/model/stage.py --chain {chain} --step {step} "
                                        "--release {release} {verbose}",
                                        node, 2, task, 1, op, 1, &err);
    jm_template_t *jt = jm_template_new(tool, "join", "python3 /opt/model/join.py --group {group}",
                                        (const char *[]){"group"}, 1, NULL, 0, NULL, 0, &err);
    if (!tt || !jt)
        die(&err);
    jm_workflow_t *wf = jm_workflow_new(tool, "bench-bind-gen");
    jm_defaults_set_resource(jm_workflow_defaults(wf), "memory", "2G");
    jm_defaults_set_resource(jm_workflow_defaults(wf), "runtime", "1h");
    jm_task_t *root = jm_workflow_add_command(wf, "python3 /opt/model/prepare.py", &err);

    char **chain_vals = malloc((size_t)chains * sizeof(char *));
    for (long c = 0; c < chains; c++) {
        chain_vals[c] = malloc(24);
        snprintf(chain_vals[c], 24, "%ld", c);
    }
    jm_array_t *prev = NULL;
    for (long s = 0; s < steps; s++) {
        char sv[24];
        snprintf(sv, sizeof(sv), "%ld", s);
        const char *svp = sv, *rel = "2025.1", *verb = "-v";
        jm_arg_values_t args[] = {{"chain", (const char *const *)chain_vals, (size_t)chains},
                                  {"step", &svp, 1},
                                  {"release", &rel, 1},
                                  {"verbose", &verb, 1}};
        jm_array_t *arr = jm_workflow_add_array(wf, tt, args, 4, NULL, &err);
        if (!arr)
            die(&err);
        if (!prev) {
            if (jm_array_add_upstream(arr, root, &err) != JM_OK)
                die(&err);
        } else {
            for (long c = 0; c < chains; c++)
                if (jm_task_add_upstream(jm_array_task(arr, (size_t)c),
                                         jm_array_task(prev, (size_t)c), &err) != JM_OK)
                    die(&err);
        }
        prev = arr;
    }
    for (long g = 0; g * per_join < chains; g++) {
        char gv[24];
        snprintf(gv, sizeof(gv), "%ld", g);
        jm_task_t *j = jm_workflow_add_task(wf, jt, (jm_kv_t[]){{"group", gv}}, 1, &err);
        for (long c = g * per_join; c < chains && c < (g + 1) * per_join; c++)
            if (jm_task_add_upstream(j, jm_array_task(prev, (size_t)c), &err) != JM_OK)
                die(&err);
    }
    for (long c = 0; c < chains; c++)
        free(chain_vals[c]);
    free(chain_vals);
    double t1 = now();
    long rss_build = peak_rss_mb();

    if (jm_workflow_check_structure(wf, &err) != JM_OK)
        die(&err);
    double t2 = now();
    if (jm_workflow_compute_identity(wf, &err) != JM_OK)
        die(&err);
    double t3 = now();
    if (jm_workflow_resolve_settings(wf, &err) != JM_OK)
        die(&err);
    wf->valid = 1; /* the three stages are what jm_workflow_validate runs */
    double t4 = now();

    jm_bind_iter_t *it = jm_bind_iter_new(wf, "bench");
    jm_event_t *ev;
    size_t events = 0, chunks = 0;
    unsigned long long bytes = 0;
    size_t max_event = 0;
    while (jm_bind_next_event(it, &ev, &err) == JM_OK && ev) {
        size_t len;
        char *s = jm_event_encode(ev, &len);
        free(s);
        bytes += len;
        if (len > max_event)
            max_event = len;
        events++;
        chunks += ev->type == JM_EV_WORKFLOW_BIND_TASKS;
        jm_event_destroy(ev);
    }
    jm_bind_iter_destroy(it);
    double t5 = now();

    printf("| tasks | edges | build s | validate s | hash s | settings s | events | chunks | "
           "bytes | max event | events s | peak RSS MB (after build) |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    printf("| %zu | %u | %.2f | %.2f | %.2f | %.2f | %zu | %zu | %llu | %zu | %.2f | %ld (%ld) |\n",
           jm_workflow_task_count(wf), wf->up_off[wf->n_tasks], t1 - t0, t2 - t1, t3 - t2, t4 - t3,
           events, chunks, bytes, max_event, t5 - t4, peak_rss_mb(), rss_build);
    jm_workflow_destroy(wf);
    jm_tool_destroy(tool);
    return 0;
}
