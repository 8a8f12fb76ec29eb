/*
 * bind_gen.c — bind benchmark (issue 5).  Builds a synthetic workflow of N tasks (one root, N/10
 * chains of 10 steps fanned out from it, a join per 1,000 chains) with the client API, validates
 * it and computes its identity, then one of:
 *
 *   bench/bind_gen [N]                      generate every bind event, validate and encode each
 *                                           (what jm_producer_send does), then again with the fast
 *                                           encoder jm_workflow_bind uses; no Kafka; one table row
 *   bench/bind_gen --send [--tag T] [--wait S] [N]
 *                                           jm_workflow_bind to the real Kafka of $JOBMON_CONFIG
 *                                           (scripts/stack env): time to publish and have every
 *                                           event acknowledged; with --wait, then poll PostgreSQL
 *                                           (reader role) until workflow.bound_at IS NOT NULL,
 *                                           for at most S seconds (binding complete applied)
 *   bench/bind_gen --file PATH [--tag T] [N] write the same DAG as a workflow file (for
 *                                           `jobmon submit`; one task per object, no arrays)
 *
 * --topic T (with --send) publishes to T instead of kafka.topic: the client's publish cost alone,
 * without loading the FSM (no consumer reads T), or, with --wait, the bind applied by a private
 * jobmon-fsm that reads T (bench/bind_fsm.sh; postgres.reader_conninfo must see its schema).
 * --load PATH: the workflow is read from the file PATH (jm_workflow_load_file, as `jobmon submit`
 * does) instead of built with the API; "build s" is then parsing the file.
 * --tag makes the workflow_args unique (default "bench-bind-gen").  Peak RSS is getrusage's.
 * Deliberately not here: running the tasks (bench/fsm_throughput, bench/e2e_throughput.sh).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "client/client_int.h"
#include "jobmon/config.h"
#include "jobmon/jmtime.h"
#include "jobmon/jobmon.h"
#include "jobmon/pg.h"
#include "jobmon/producer.h"

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

enum { STEPS = 10, PER_JOIN = 1000 };

/* The DAG as a workflow file, streamed (nothing held in memory). */
static int write_file(const char *path, long n, const char *tag)
{
    long chains = n / STEPS > 0 ? n / STEPS : 1;
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return JM_EXIT_FAILED;
    }
    fprintf(f,
            "{\"tool\": \"bench\", \"workflow_args\": \"%s\", \"name\": \"bench-bind-file\",\n"
            " \"cluster\": \"dummy\", \"max_concurrently_running\": 1,\n"
            " \"defaults\": {\"compute_resources\": {\"memory\": \"2G\", \"runtime\": \"1h\"}},\n"
            " \"task_templates\": [\n"
            "  {\"name\": \"stage\", \"command_template\": \"python3 /opt/model/stage.py --chain "
            "{chain} --step {step} --release {release} {verbose}\", \"node_args\": [\"chain\", "
            "\"step\"], \"task_args\": [\"release\"], \"op_args\": [\"verbose\"]},\n"
            "  {\"name\": \"join\", \"command_template\": \"python3 /opt/model/join.py --group "
            "{group}\", \"node_args\": [\"group\"]}],\n"
            " \"tasks\": [\n"
            "  {\"name\": \"prepare\", \"command\": \"python3 /opt/model/prepare.py\"}",
            tag);
    for (long s = 0; s < STEPS; s++)
        for (long c = 0; c < chains; c++) {
            fprintf(f,
                    ",\n  {\"name\": \"s%ld_%ld\", \"template\": \"stage\", \"args\": {\"chain\": "
                    "\"%ld\", \"step\": \"%ld\", \"release\": \"2025.1\", \"verbose\": \"-v\"}, "
                    "\"upstream\": [",
                    s, c, c, s);
            if (s == 0)
                fprintf(f, "\"prepare\"]}");
            else
                fprintf(f, "\"s%ld_%ld\"]}", s - 1, c);
        }
    for (long g = 0; g * PER_JOIN < chains; g++) {
        fprintf(f,
                ",\n  {\"name\": \"join%ld\", \"template\": \"join\", \"args\": {\"group\": "
                "\"%ld\"}, \"upstream\": [",
                g, g);
        for (long c = g * PER_JOIN; c < chains && c < (g + 1) * PER_JOIN; c++)
            fprintf(f, "%s\"s%d_%ld\"", c > g * PER_JOIN ? ", " : "", STEPS - 1, c);
        fprintf(f, "]}");
    }
    fprintf(f, "\n]}\n");
    if (fclose(f) != 0) {
        perror(path);
        return JM_EXIT_FAILED;
    }
    return JM_EXIT_OK;
}

static jm_workflow_t *build(jm_tool_t *tool, long n, const char *tag)
{
    long chains = n / STEPS > 0 ? n / STEPS : 1;
    jm_err_t err;
    const char *node[] = {"chain", "step"}, *task[] = {"release"}, *op[] = {"verbose"};
    jm_template_t *tt = jm_template_new(tool, "stage",
                                        "python3 /opt/model/stage.py --chain {chain} --step {step} "
                                        "--release {release} {verbose}",
                                        node, 2, task, 1, op, 1, &err);
    jm_template_t *jt = jm_template_new(tool, "join", "python3 /opt/model/join.py --group {group}",
                                        (const char *[]){"group"}, 1, NULL, 0, NULL, 0, &err);
    if (!tt || !jt)
        die(&err);
    jm_workflow_t *wf = jm_workflow_new(tool, tag);
    jm_defaults_set_resource(jm_workflow_defaults(wf), "memory", "2G");
    jm_defaults_set_resource(jm_workflow_defaults(wf), "runtime", "1h");
    jm_task_t *root = jm_workflow_add_command(wf, "python3 /opt/model/prepare.py", &err);

    char **chain_vals = malloc((size_t)chains * sizeof(char *));
    for (long c = 0; c < chains; c++) {
        chain_vals[c] = malloc(24);
        snprintf(chain_vals[c], 24, "%ld", c);
    }
    jm_array_t *prev = NULL;
    for (long s = 0; s < STEPS; s++) {
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
    for (long g = 0; g * PER_JOIN < chains; g++) {
        char gv[24];
        snprintf(gv, sizeof(gv), "%ld", g);
        jm_task_t *j = jm_workflow_add_task(wf, jt, (jm_kv_t[]){{"group", gv}}, 1, &err);
        for (long c = g * PER_JOIN; c < chains && c < (g + 1) * PER_JOIN; c++)
            if (jm_task_add_upstream(j, jm_array_task(prev, (size_t)c), &err) != JM_OK)
                die(&err);
    }
    for (long c = 0; c < chains; c++)
        free(chain_vals[c]);
    free(chain_vals);
    return wf;
}

/* --send: bind through the real Kafka, then (wait_s > 0) poll bound_at. */
static int send_bind(jm_workflow_t *wf, double t_start, double t_built, int wait_s,
                     const char *topic)
{
    jm_err_t err;
    jm_config_t *cfg = jm_config_new();
    jm_producer_t *p = NULL;
    jm_pg_t *pg = NULL;
    int code = JM_EXIT_FAILED;
    if (jm_config_load(cfg, NULL, &err) != JM_OK)
        die(&err);
    /* as jm_cli_producer (src/client/cli_util.c), with a longer delivery timeout */
    const char *props[] = {"message.timeout.ms", "300000", "queue.buffering.max.kbytes", "131072",
                           NULL};
    p = jm_producer_new(jm_config_str(cfg, "kafka.brokers"), props, &err);
    if (!p)
        die(&err);
    jm_producer_set_topic(p, topic ? topic : jm_config_str(cfg, "kafka.topic"));
    double t0 = now();
    jm_bind_result_t res;
    if (jm_workflow_bind(wf, p, &res, &err) != JM_OK)
        die(&err);
    double t1 = now();
    long rss_client = peak_rss_mb(); /* the client's part ends here */
    double t2 = 0;
    const char *state = "not waited";
    if (wait_s > 0) {
        pg = jm_pg_connect(jm_config_str(cfg, "postgres.reader_conninfo"), jm_time_mono_ms() + 5000,
                           &err);
        if (!pg)
            die(&err);
        char id[24];
        snprintf(id, sizeof(id), "%" PRId64, res.workflow_id);
        const char *params[1] = {id};
        state = "TIMEOUT";
        while (now() - t1 < wait_s) {
            PGresult *r = NULL;
            if (jm_pg_exec(pg, "SELECT bound_at IS NOT NULL FROM workflow WHERE id = $1", 1, params,
                           &r, &err) != JM_OK)
                die(&err);
            int bound = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
            PQclear(r);
            if (bound) {
                t2 = now();
                state = "bound";
                break;
            }
            jm_producer_poll(p, 200); /* poll interval; the deadline bounds the wait */
        }
    }
    printf("| tasks | events | build+validate s | publish+ack s | client tasks/s | bound_at after "
           "s (from start) | end-to-end tasks/s | client peak RSS MB | workflow_id |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    printf("| %zu | %zu | %.2f | %.2f | %.0f | ", res.total_tasks, res.events, t_built - t_start,
           t1 - t0, (double)res.total_tasks / (t1 - t_start));
    if (t2 > 0)
        printf("%.1f (%.1f) | %.0f | ", t2 - t1, t2 - t_start,
               (double)res.total_tasks / (t2 - t_start));
    else
        printf("%s | – | ", state);
    printf("%ld | %" PRId64 " |\n", rss_client, res.workflow_id);
    code = wait_s <= 0 || t2 > 0 ? JM_EXIT_OK : JM_EXIT_FAILED;
    jm_pg_destroy(pg);
    jm_producer_destroy(p);
    jm_config_destroy(cfg);
    return code;
}

/* No Kafka: generate, validate and encode every event, timing each step. */
static int dry(jm_workflow_t *wf, double t0, double t1, double t2, double t3, double t4,
               long rss_build)
{
    jm_err_t err;
    jm_bind_iter_t *it = jm_bind_iter_new(wf, "bench");
    jm_event_t *ev;
    size_t events = 0, chunks = 0;
    unsigned long long bytes = 0;
    size_t max_event = 0;
    double t_gen = 0, t_val = 0, t_enc = 0, a = now(), b;
    while (jm_bind_next_event(it, &ev, &err) == JM_OK && ev) {
        b = now();
        t_gen += b - a;
        if (jm_event_validate(ev, NULL, &err) != JM_OK)
            die(&err);
        a = now();
        t_val += a - b;
        size_t len;
        char *s = jm_event_encode(ev, &len);
        free(s);
        bytes += len;
        if (len > max_event)
            max_event = len;
        events++;
        chunks += ev->type == JM_EV_WORKFLOW_BIND_TASKS;
        jm_event_destroy(ev);
        b = now();
        t_enc += b - a;
        a = b;
    }
    jm_bind_iter_destroy(it);
    /* what jm_workflow_bind sends: the fast encoder (bind.c) */
    it = jm_bind_iter_new(wf, "bench");
    unsigned long long fast_bytes = 0;
    char *buf;
    size_t len;
    jm_event_type_t type;
    a = now();
    while (jm_bind_next_encoded(it, &buf, &len, &type, &err) == JM_OK && buf) {
        fast_bytes += len;
        free(buf);
    }
    double t_fast = now() - a;
    jm_bind_iter_destroy(it);
    printf(
        "| tasks | edges | build s | validate s | hash s | settings s | events | chunks | "
        "bytes | max event | generate s | event validate s | encode s | fast encoder s (bytes) | "
        "peak RSS MB (after build) |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    printf("| %zu | %u | %.2f | %.2f | %.2f | %.2f | %zu | %zu | %llu | %zu | %.2f | %.2f | %.2f | "
           "%.2f (%llu) | %ld (%ld) |\n",
           jm_workflow_task_count(wf), wf->up_off[wf->n_tasks], t1 - t0, t2 - t1, t3 - t2, t4 - t3,
           events, chunks, bytes, max_event, t_gen, t_val, t_enc, t_fast, fast_bytes, peak_rss_mb(),
           rss_build);
    return JM_EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"send", no_argument, NULL, 'S'},        {"wait", required_argument, NULL, 'w'},
        {"tag", required_argument, NULL, 't'},   {"file", required_argument, NULL, 'f'},
        {"topic", required_argument, NULL, 'T'}, {"load", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    int send = 0, wait_s = 0, opt, code;
    const char *tag = "bench-bind-gen", *file = NULL, *topic = NULL, *load = NULL;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'S': send = 1; break;
        case 'w': wait_s = atoi(optarg); break;
        case 't': tag = optarg; break;
        case 'f': file = optarg; break;
        case 'T': topic = optarg; break;
        case 'L': load = optarg; break;
        default:
            fprintf(stderr, "usage: bind_gen [--send [--wait S] [--topic T]] [--file PATH] "
                            "[--load PATH] [--tag T] [N]\n");
            return opt == 'h' ? JM_EXIT_OK : JM_EXIT_USAGE;
        }
    }
    long n = optind < argc ? atol(argv[optind]) : 100000;
    if (file)
        return write_file(file, n, tag);

    jm_err_t err;
    double t0 = now();
    jm_tool_t *tool = NULL;
    jm_workflow_t *wf;
    if (load) { /* what `jobmon submit FILE` does before binding (the workflow owns its tool) */
        if (!(wf = jm_workflow_load_file(load, &err)))
            die(&err);
    } else {
        tool = jm_tool_new("bench");
        wf = build(tool, n, tag);
    }
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

    code = send ? send_bind(wf, t0, t4, wait_s, topic) : dry(wf, t0, t1, t2, t3, t4, rss_build);
    jm_workflow_destroy(wf);
    jm_tool_destroy(tool);
    return code;
}
