/*
 * bench/fsm_throughput.c — throughput benchmark of the FSM consumer (issue 4, "Benchmark").
 *
 * Generates the event stream of K synthetic workflows of N/K tasks each, as the real publishers
 * would send it, publishes it to Kafka and measures how fast the running jobmon-fsm consumers
 * apply it (events/s, first to last applied), their memory (VmHWM / VmRSS), the CPU spent by
 * each process group, and checks the end state (every task and workflow D, nothing rejected).
 *
 * Shape of each workflow: 1 root -> W = n/10 wide fan-out tasks -> each followed by a chain, so
 * ~n/10 tasks per level and ~11 levels.  Bind events come from the client library itself
 * (jm_bind_iter: workflow.bind, workflow.bind_tasks chunks of <= 500 with upstream ids,
 * workflow.bound); then run.start and the distributor's handshake run.status I, O, R; then, level
 * by level (a task is queued by the FSM only once its upstream is D), per group of <= 500 task
 * instances: ti.instantiated, ti.launched (batched), then per instance ti.running, ~H
 * ti.heartbeat and ti.done; a run.heartbeat every M events of the workflow.  Instance ids are
 * what the FSM derives for a first attempt: jm_hash_ti_id(task_id, 1) (sched.c: ti_seq + 1).
 *
 * Modes: --dry-run (counts and bytes by type; every event decoded back with jm_event_decode),
 * --publish (raw produce of the pre-encoded events, flush, publish rate), --measure (poll
 * PostgreSQL until every event is in event_log, then verify).  --publish --measure together is
 * the normal run; --state FILE passes the workflow ids from one to the other when split.
 *
 * It does not start or stop consumers (bench/run_fsm_bench.sh does) and never writes PostgreSQL.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobmon/config.h"
#include "jobmon/event.h"
#include "jobmon/hash.h"
#include "jobmon/jmtime.h"
#include "jobmon/jobmon.h"
#include "jobmon/log.h"
#include "jobmon/pg.h"
#include "jobmon/producer.h"

#define TI_BATCH      500  /* distributor batch (ti.instantiated / ti.launched items) */
#define REPORT_S      3600 /* next_report_s: far enough that the reaper never fires mid-run */
#define MAX_FSM_PIDS  16
#define POLL_MS       100
#define MAX_MSG_BYTES (900 * 1024)

/* ---- options ---------------------------------------------------------------------------- */

typedef struct {
    size_t tasks;        /* total over all workflows */
    size_t workflows;    /* K */
    double heartbeats;   /* ti.heartbeat per task, on average */
    size_t run_hb_every; /* a run.heartbeat every this many events of a workflow */
    size_t reports;      /* > 0: running and done as ti.reports of this many items (relay mix) */
    const char *tag;     /* workflow_args prefix: distinct per run, so ids differ */
    int partitions;      /* > 0: pick workflow args so workflows spread evenly */
    uint64_t seed;
    int dry_run, publish, measure, verify;
    const char *config; /* jobmon config file (NULL: JOBMON_CONFIG / search) */
    const char *state;  /* state file written by --publish, read by --measure */
    const char *topic;  /* events topic (default: kafka.topic of the config) */
    int create_topic;   /* > 0: create `topic` with this many partitions if missing */
    int delete_topic;   /* delete `topic` (the end of a bench run: its events are not kept) */
    int timeout_s;      /* --measure deadline */
    int stall_s;        /* --measure: give up when nothing was applied for this long */
    int consumers;      /* for the RESULT line only */
    int fsm_pids[MAX_FSM_PIDS];
    size_t n_fsm_pids;
} opts_t;

/* ---- pre-encoded events ------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t len, cap;
    size_t *off;
    uint32_t *size;
    uint8_t *type;
    size_t n, ncap;
} evlist_t;

static void evlist_add(evlist_t *l, const char *s, size_t len, jm_event_type_t type)
{
    if (l->len + len > l->cap) {
        l->cap = (l->cap ? l->cap * 2 : 1 << 20);
        while (l->cap < l->len + len)
            l->cap *= 2;
        l->buf = jm_realloc(l->buf, l->cap);
    }
    if (l->n == l->ncap) {
        l->ncap = l->ncap ? l->ncap * 2 : 4096;
        l->off = jm_realloc(l->off, l->ncap * sizeof(*l->off));
        l->size = jm_realloc(l->size, l->ncap * sizeof(*l->size));
        l->type = jm_realloc(l->type, l->ncap);
    }
    memcpy(l->buf + l->len, s, len);
    l->off[l->n] = l->len;
    l->size[l->n] = (uint32_t)len;
    l->type[l->n] = (uint8_t)type;
    l->n++;
    l->len += len;
}

static void evlist_free(evlist_t *l)
{
    free(l->buf);
    free(l->off);
    free(l->size);
    free(l->type);
    memset(l, 0, sizeof(*l));
}

/* One synthetic workflow. */
typedef struct {
    int64_t id, run_id;
    char key[24];
    char args[128];
    size_t n;            /* tasks */
    int64_t *task_id;    /* by generation index */
    size_t *level_start; /* tasks of level L: indices [level_start[L], level_start[L+1]) */
    size_t n_levels;
    evlist_t ev;
    size_t since_run_hb;
    size_t batches;
} bwf_t;

typedef struct {
    opts_t *o;
    bwf_t *wf;
    uint64_t rng;
    uint64_t count[JM_EV__CNT];
    uint64_t bytes[JM_EV__CNT];
    uint64_t n_events, n_bytes;
    uint64_t n_reports; /* instance reports carried: a ti.reports event counts its items */
    jm_tool_t *tool;
    jm_template_t *tt;
} gen_t;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

static void die(const char *what, const jm_err_t *err)
{
    fprintf(stderr, "fsm_throughput: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    exit(JM_EXIT_FAILED);
}

/* Validate, encode and append `ev` (consumed) to the workflow's list. */
static void emit(gen_t *g, bwf_t *w, jm_event_t *ev)
{
    jm_err_t err;
    jm_event_error_t kind;
    if (jm_event_validate(ev, &kind, &err) != JM_OK) {
        fprintf(stderr, "fsm_throughput: generated an invalid %s (%s)\n",
                jm_event_type_name(ev->type), jm_event_error_name(kind));
        die("invalid event", &err);
    }
    size_t len = 0;
    char *s = jm_event_encode(ev, &len);
    if (len > MAX_MSG_BYTES)
        die("generated an event over 900 kB", NULL);
    evlist_add(&w->ev, s, len, ev->type);
    g->count[ev->type]++;
    g->bytes[ev->type] += len;
    g->n_events++;
    g->n_bytes += len;
    g->n_reports +=
        ev->type == JM_EV_TI_REPORTS ? json_array_size(json_object_get(ev->payload, "items")) : 1;
    free(s);
    jm_event_destroy(ev);
}

static jm_event_t *mk(jm_event_type_t type, int64_t wf, jm_producer_kind_t kind, json_t *payload)
{
    jm_event_t *ev = jm_event_new(type, wf, payload);
    ev->producer_kind = kind;
    return ev;
}

static void maybe_run_heartbeat(gen_t *g, bwf_t *w)
{
    if (g->o->run_hb_every == 0 || ++w->since_run_hb < g->o->run_hb_every)
        return;
    w->since_run_hb = 0;
    emit(g, w,
         mk(JM_EV_RUN_HEARTBEAT, w->id, JM_PRODUCER_DISTRIBUTOR,
            json_pack("{s:I,s:i}", "run_id", (json_int_t)w->run_id, "next_report_s", REPORT_S)));
}

/* ---- the workflow model -------------------------------------------------------------------- */

/* Task layout of one workflow of n tasks: index 0 the root (level 0), 1..W the fan-out (level
 * 1), then the chains level by level; up[i] is the upstream index (-1 for the root). */
typedef struct {
    size_t n, w, n_levels;
    long *up;
    size_t *level_start; /* n_levels + 1 entries */
} layout_t;

static void layout_build(layout_t *L, size_t n)
{
    memset(L, 0, sizeof(*L));
    L->n = n;
    L->up = jm_malloc(n * sizeof(*L->up));
    L->level_start = jm_malloc((n + 2) * sizeof(size_t));
    L->up[0] = -1;
    L->level_start[0] = 0;
    L->n_levels = 1;
    if (n == 1) {
        L->level_start[1] = 1;
        return;
    }
    size_t w = n / 10;
    if (w < 1)
        w = 1;
    if (w > n - 1)
        w = n - 1;
    L->w = w;
    L->level_start[1] = 1;
    for (size_t j = 0; j < w; j++)
        L->up[1 + j] = 0;
    L->n_levels = 2;
    size_t rest = n - 1 - w;
    size_t *prev = jm_malloc(w * sizeof(*prev)), *len = jm_malloc(w * sizeof(*len));
    size_t maxlen = 0;
    for (size_t j = 0; j < w; j++) {
        prev[j] = 1 + j;
        len[j] = rest / w + (j < rest % w);
        if (len[j] > maxlen)
            maxlen = len[j];
    }
    size_t idx = 1 + w;
    for (size_t d = 1; d <= maxlen; d++) {
        L->level_start[L->n_levels++] = idx;
        for (size_t j = 0; j < w; j++)
            if (len[j] >= d) {
                L->up[idx] = (long)prev[j];
                prev[j] = idx++;
            }
    }
    JM_ASSERT(idx == n);
    L->level_start[L->n_levels] = n;
    free(prev);
    free(len);
}

static void layout_free(layout_t *L)
{
    free(L->up);
    free(L->level_start);
}

/* A validated client workflow of layout L with workflow_args `args`.  Caller destroys. */
static jm_workflow_t *build_workflow(gen_t *g, const layout_t *L, const char *args)
{
    jm_err_t err;
    jm_workflow_t *wf = jm_workflow_new(g->tool, args);
    jm_workflow_set_max_concurrently_running(wf, (int64_t)L->n + 1);
    char name[160];
    snprintf(name, sizeof(name), "fsm-bench %s", args);
    if (jm_workflow_set_name(wf, name, &err) != JM_OK)
        die("workflow name", &err);
    jm_task_t **t = jm_malloc(L->n * sizeof(*t));
    char val[32];
    for (size_t i = 0; i < L->n; i++) {
        snprintf(val, sizeof(val), "%zu", i);
        jm_kv_t kv[1] = {{"i", val}};
        t[i] = jm_workflow_add_task(wf, g->tt, kv, 1, &err);
        if (!t[i])
            die("add task", &err);
        if (L->up[i] >= 0 && jm_task_add_upstream(t[i], t[L->up[i]], &err) != JM_OK)
            die("add upstream", &err);
    }
    free(t);
    if (jm_workflow_validate(wf, &err) != JM_OK)
        die("validate workflow", &err);
    return wf;
}

/* Partition the default librdkafka partitioner (consistent_random: CRC32 of the key) picks. */
static int key_partition(int64_t wf, int partitions)
{
    char key[24];
    int n = snprintf(key, sizeof(key), "%" PRId64, wf);
    return (int)rd_kafka_msg_partitioner_consistent_random(NULL, key, (size_t)n, partitions, NULL,
                                                           NULL);
}

/* Choose workflow_args for each workflow; with --partitions, such that workflow k lands on
 * partition k % P (the workflow id only depends on args, task set and dag: the latter two are
 * the same for every workflow of the same size, so one validated workflow gives them). */
static void choose_args(gen_t *g, const layout_t *L)
{
    opts_t *o = g->o;
    jm_hash_t ts = {0, 0}, dag = {0, 0};
    if (o->partitions > 0) {
        jm_workflow_t *probe = build_workflow(g, L, "probe");
        ts = jm_workflow_task_hash(probe);
        dag = jm_workflow_dag_hash(probe);
        jm_workflow_destroy(probe);
    }
    for (size_t k = 0; k < o->workflows; k++) {
        bwf_t *w = &g->wf[k];
        for (unsigned s = 0;; s++) {
            if (s == 0)
                snprintf(w->args, sizeof(w->args), "%s-%zu", o->tag, k);
            else
                snprintf(w->args, sizeof(w->args), "%s-%zu.%u", o->tag, k, s);
            if (o->partitions <= 0)
                break;
            int64_t id =
                jm_hash_workflow_id(jm_tool_name(g->tool), jm_hash_workflow_args(w->args), ts, dag);
            if (key_partition(id, o->partitions) == (int)(k % (size_t)o->partitions))
                break;
            JM_ASSERT(s < 100000);
        }
    }
}

/* --reports: add one instance's running or result report (the other NULL; stolen) to the open
 * ti.reports bundle of workflow w (NULL: start one) and emit the bundle once it holds
 * o->reports items or `last`, as the distributor's relay does with its workers' reports.
 * Returns the bundle still open (NULL after an emit). */
static json_t *report_add(gen_t *g, bwf_t *w, json_t *bundle, int64_t ti, json_t *running,
                          json_t *result, int last)
{
    if (!bundle)
        bundle = json_array();
    json_array_append_new(bundle, json_pack("{s:I,s:o,s:o}", "ti_id", (json_int_t)ti, "running",
                                            running ? running : json_null(), "result",
                                            result ? result : json_null()));
    if (!last && json_array_size(bundle) < g->o->reports)
        return bundle;
    emit(g, w,
         mk(JM_EV_TI_REPORTS, w->id, JM_PRODUCER_DISTRIBUTOR,
            json_pack("{s:I,s:o}", "run_id", (json_int_t)w->run_id, "items", bundle)));
    maybe_run_heartbeat(g, w);
    return NULL;
}

/* Events of one level of one workflow. */
static void gen_level(gen_t *g, bwf_t *w, size_t lo, size_t hi)
{
    char did[48], path[96], tail[96];
    int64_t *ti = jm_malloc(TI_BATCH * sizeof(*ti));
    for (size_t b = lo; b < hi; b += TI_BATCH) {
        size_t e = b + TI_BATCH < hi ? b + TI_BATCH : hi, m = e - b;
        size_t batch = ++w->batches;
        json_t *inst = json_array(), *lau = json_array();
        for (size_t i = 0; i < m; i++) {
            ti[i] = jm_hash_ti_id(w->task_id[b + i], 1);
            snprintf(did, sizeof(did), "%zu_%zu", batch, i);
            json_array_append_new(inst, json_pack("{s:I}", "ti_id", (json_int_t)ti[i]));
            json_array_append_new(
                lau, json_pack("{s:I,s:s}", "ti_id", (json_int_t)ti[i], "distributor_id", did));
        }
        emit(g, w,
             mk(JM_EV_TI_INSTANTIATED, w->id, JM_PRODUCER_DISTRIBUTOR,
                json_pack("{s:I,s:o}", "run_id", (json_int_t)w->run_id, "items", inst)));
        maybe_run_heartbeat(g, w);
        emit(g, w,
             mk(JM_EV_TI_LAUNCHED, w->id, JM_PRODUCER_DISTRIBUTOR,
                json_pack("{s:I,s:i,s:o}", "run_id", (json_int_t)w->run_id, "next_report_s",
                          REPORT_S, "items", lau)));
        maybe_run_heartbeat(g, w);
        json_t *bundle = NULL;
        for (size_t i = 0; i < m; i++) {
            snprintf(did, sizeof(did), "%zu_%zu", batch, i);
            snprintf(path, sizeof(path), "/scratch/bench/%" PRId64 "/%" PRId64 ".out", w->id,
                     ti[i]);
            json_t *run =
                json_pack("{s:s,s:i,s:s,s:i,s:s,s:s}", "host", "node017", "pid",
                          (int)(1000 + (b + i) % 30000), "distributor_id", did, "next_report_s",
                          REPORT_S, "stdout_path", path, "stderr_path", path);
            if (g->o->reports) {
                bundle = report_add(g, w, bundle, ti[i], run, NULL, i + 1 == m);
                continue;
            }
            json_object_set_new(run, "ti_id", json_integer((json_int_t)ti[i]));
            emit(g, w, mk(JM_EV_TI_RUNNING, w->id, JM_PRODUCER_WORKER, run));
            maybe_run_heartbeat(g, w);
        }
        for (size_t i = 0; i < m; i++) {
            double h = g->o->heartbeats;
            size_t k = (size_t)h + (rng_unit(&g->rng) < h - floor(h));
            for (size_t j = 0; j < k; j++) {
                emit(g, w,
                     mk(JM_EV_TI_HEARTBEAT, w->id, JM_PRODUCER_WORKER,
                        json_pack("{s:I,s:i}", "ti_id", (json_int_t)ti[i], "next_report_s",
                                  REPORT_S)));
                maybe_run_heartbeat(g, w);
            }
        }
        for (size_t i = 0; i < m; i++) {
            snprintf(tail, sizeof(tail), "task %zu: processed 1234 rows\ndone\n", b + i);
            json_t *res =
                json_pack("{s:s,s:s,s:{s:I,s:I,s:I}}", "stdout_tail", tail, "stderr_tail", "",
                          "usage", "wall_ms", (json_int_t)(1000 + rng_next(&g->rng) % 60000),
                          "cpu_ms", (json_int_t)(900 + rng_next(&g->rng) % 50000), "maxrss_kb",
                          (json_int_t)(20000 + rng_next(&g->rng) % 500000));
            if (g->o->reports) {
                json_object_set_new(res, "status", json_string("D"));
                json_object_set_new(res, "exit_code", json_integer(0));
                json_object_set_new(res, "message", json_string(""));
                bundle = report_add(g, w, bundle, ti[i], NULL, res, i + 1 == m);
                continue;
            }
            json_object_set_new(res, "ti_id", json_integer((json_int_t)ti[i]));
            emit(g, w, mk(JM_EV_TI_DONE, w->id, JM_PRODUCER_WORKER, res));
            maybe_run_heartbeat(g, w);
        }
    }
    free(ti);
}

/* Generate every workflow's event list. */
static void generate(gen_t *g)
{
    opts_t *o = g->o;
    jm_err_t err;
    size_t n = o->tasks / o->workflows;
    if (n * o->workflows != o->tasks)
        fprintf(stderr, "fsm_throughput: %zu tasks do not split into %zu workflows; using %zu\n",
                o->tasks, o->workflows, n * o->workflows);
    o->tasks = n * o->workflows;
    g->tool = jm_tool_new("jobmon-bench");
    g->tt = jm_template_new(g->tool, "step", "bench-step --item {i}", (const char *[]){"i"}, 1,
                            NULL, 0, NULL, 0, &err);
    if (!g->tt)
        die("template", &err);
    jm_template_set_max_concurrently_running(g->tt, (int64_t)n + 1);
    layout_t L;
    layout_build(&L, n);
    g->wf = jm_calloc(o->workflows, sizeof(*g->wf));
    choose_args(g, &L);
    for (size_t k = 0; k < o->workflows; k++) {
        bwf_t *w = &g->wf[k];
        jm_workflow_t *wf = build_workflow(g, &L, w->args);
        w->id = jm_workflow_id(wf);
        snprintf(w->key, sizeof(w->key), "%" PRId64, w->id);
        w->n = n;
        w->task_id = jm_malloc(n * sizeof(*w->task_id));
        for (size_t i = 0; i < n; i++)
            w->task_id[i] = jm_task_id(jm_workflow_task(wf, i));
        /* run ids are the client's choice: derived from the args, so each tag gets new ones */
        char rk[160];
        snprintf(rk, sizeof(rk), "run:%s", w->args);
        w->run_id = jm_hash_to_id(jm_hash_workflow_args(rk));
        /* bind: exactly what the client sends */
        jm_bind_iter_t *it = jm_bind_iter_new(wf, "bench");
        for (;;) {
            jm_event_t *ev = NULL;
            if (jm_bind_next_event(it, &ev, &err) != JM_OK)
                die("bind iterator", &err);
            if (!ev)
                break;
            emit(g, w, ev);
        }
        jm_bind_iter_destroy(it);
        jm_workflow_destroy(wf);
        emit(g, w,
             mk(JM_EV_RUN_START, w->id, JM_PRODUCER_CLIENT,
                json_pack("{s:I,s:s,s:s,s:s,s:b,s:i,s:s}", "run_id", (json_int_t)w->run_id,
                          "cluster", "dummy", "user", "bench", "host", "login01", "fail_fast", 0,
                          "timeout_s", 0, "resume", "none")));
        static const char *const hs[] = {"I", "O", "R"};
        for (size_t i = 0; i < 3; i++)
            emit(g, w,
                 mk(JM_EV_RUN_STATUS, w->id, JM_PRODUCER_DISTRIBUTOR,
                    json_pack("{s:I,s:s}", "run_id", (json_int_t)w->run_id, "status", hs[i])));
        emit(
            g, w,
            mk(JM_EV_RUN_HEARTBEAT, w->id, JM_PRODUCER_DISTRIBUTOR,
               json_pack("{s:I,s:i}", "run_id", (json_int_t)w->run_id, "next_report_s", REPORT_S)));
        for (size_t lv = 0; lv < L.n_levels; lv++)
            gen_level(g, w, L.level_start[lv], L.level_start[lv + 1]);
        w->n_levels = L.n_levels;
    }
    layout_free(&L);
}

/* Publish order: round-robin over the workflows, one event at a time. */
typedef struct {
    size_t wf, idx;
} ref_t;

static ref_t *merge_order(const gen_t *g, size_t *n_out)
{
    size_t total = 0;
    for (size_t k = 0; k < g->o->workflows; k++)
        total += g->wf[k].ev.n;
    ref_t *r = jm_malloc((total ? total : 1) * sizeof(*r));
    size_t *pos = jm_calloc(g->o->workflows, sizeof(*pos)), m = 0;
    while (m < total)
        for (size_t k = 0; k < g->o->workflows; k++)
            if (pos[k] < g->wf[k].ev.n)
                r[m++] = (ref_t){k, pos[k]++};
    free(pos);
    *n_out = total;
    return r;
}

static void print_counts(const gen_t *g)
{
    printf("%-22s %10s %12s %8s\n", "type", "events", "bytes", "avg B");
    for (int t = 0; t < JM_EV__CNT; t++)
        if (g->count[t])
            printf("%-22s %10" PRIu64 " %12" PRIu64 " %8.0f\n", jm_event_type_name(t), g->count[t],
                   g->bytes[t], (double)g->bytes[t] / (double)g->count[t]);
    printf("%-22s %10" PRIu64 " %12" PRIu64 " %8.0f\n", "total", g->n_events, g->n_bytes,
           g->n_events ? (double)g->n_bytes / (double)g->n_events : 0.0);
}

/* Decode every generated event back (strict codec) and check its type. */
static int verify_decode(const gen_t *g)
{
    uint64_t bad = 0;
    for (size_t k = 0; k < g->o->workflows; k++) {
        const evlist_t *l = &g->wf[k].ev;
        for (size_t i = 0; i < l->n; i++) {
            jm_event_t *ev = NULL;
            jm_err_t err;
            if (jm_event_decode(l->buf + l->off[i], l->size[i], &ev, &err) != JM_OK) {
                if (bad++ < 5)
                    fprintf(stderr, "decode failed (wf %zu event %zu): %s\n", k, i, err.msg);
                continue;
            }
            if (ev->type != (jm_event_type_t)l->type[i] || ev->workflow_id != g->wf[k].id)
                bad++;
            jm_event_destroy(ev);
        }
    }
    printf("decode check: %" PRIu64 " events, %" PRIu64 " failed\n", g->n_events, bad);
    return bad == 0;
}

/* ---- topic ------------------------------------------------------------------------------- */

/* Create `topic` with `partitions` partitions unless it exists, or with partitions == 0 delete
 * it.  Exits on failure. */
static void topic_admin(const char *brokers, const char *topic, int partitions)
{
    jm_err_t err;
    jm_rc_t rc = jm_kafka_topic_admin(brokers, topic, partitions, 30000, &err);
    if (rc == JM_OK || (partitions > 0 && rc == JM_ERR_CONFLICT))
        printf("topic %s: %s\n", topic,
               rc == JM_ERR_CONFLICT ? "exists"
               : partitions > 0      ? "created"
                                     : "deleted");
    else
        die(partitions > 0 ? "could not create the topic" : "could not delete the topic", &err);
}

/* ---- publish ------------------------------------------------------------------------------ */

static double publish(gen_t *g, const char *brokers, const char *topic, int64_t *t0_wall)
{
    jm_err_t err;
    static const char *const props[] = {"queue.buffering.max.messages", "1000000",
                                        "queue.buffering.max.kbytes", "1048576", NULL};
    jm_producer_t *p = jm_producer_new(brokers, props, &err);
    if (!p)
        die("producer", &err);
    jm_producer_set_topic(p, topic);
    size_t n;
    ref_t *order = merge_order(g, &n);
    *t0_wall = jm_time_wall_ms();
    int64_t t0 = jm_time_mono_ms();
    for (size_t i = 0; i < n; i++) {
        const bwf_t *w = &g->wf[order[i].wf];
        const evlist_t *l = &w->ev;
        size_t j = order[i].idx;
        if (jm_producer_send_raw(p, topic, w->key, l->buf + l->off[j], l->size[j], NULL, &err) !=
            JM_OK)
            die("produce", &err);
        if ((i & 1023) == 0)
            jm_producer_poll(p, 0);
    }
    if (jm_producer_flush(p, 300000, &err) != JM_OK)
        die("flush", &err);
    double secs = (double)(jm_time_mono_ms() - t0) / 1000.0;
    jm_producer_stats_t st;
    jm_producer_stats(p, &st);
    printf("published %" PRIu64 " events (%" PRIu64 " acked, %" PRIu64
           " failed, %.1f MB) in %.2f s:"
           " %.0f events/s\n",
           st.sent, st.acked, st.failed, (double)g->n_bytes / 1e6, secs,
           secs > 0 ? (double)st.sent / secs : 0.0);
    jm_producer_destroy(p);
    free(order);
    return secs;
}

/* --publish --measure: the producer runs on its own thread while the main thread polls. */
typedef struct {
    gen_t *g;
    const char *brokers, *topic;
    int64_t t0_wall;
    double secs;
} pub_job_t;

static void *publish_thread(void *arg)
{
    pub_job_t *j = arg;
    int64_t t0 = 0;
    j->secs = publish(j->g, j->brokers, j->topic, &t0);
    fflush(stdout);
    return NULL;
}

/* ---- state file (publish -> measure) -------------------------------------------------------- */

static void state_write(const char *path, const gen_t *g, double pub_s, int64_t t0_wall)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write the state file", NULL);
    fprintf(f,
            "events %" PRIu64 "\nreports %" PRIu64
            "\ntasks %zu\npublish_s %.3f\npublish_t0 %" PRId64 "\n",
            g->n_events, g->n_reports, g->o->tasks, pub_s, t0_wall);
    for (size_t k = 0; k < g->o->workflows; k++)
        fprintf(f, "wf %" PRId64 " %" PRId64 " %zu\n", g->wf[k].id, g->wf[k].run_id, g->wf[k].n);
    fclose(f);
}

typedef struct {
    uint64_t events;
    uint64_t reports; /* instance reports carried by the events (= events without --reports) */
    size_t tasks;
    double publish_s;
    int64_t publish_t0;
    int64_t *wf;
    size_t n_wf;
} target_t;

static void state_read(const char *path, target_t *t)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot read the state file", NULL);
    char line[256];
    memset(t, 0, sizeof(*t));
    while (fgets(line, sizeof(line), f)) {
        int64_t a, b;
        size_t c;
        if (sscanf(line, "events %" SCNu64, &t->events) == 1 ||
            sscanf(line, "reports %" SCNu64, &t->reports) == 1 ||
            sscanf(line, "tasks %zu", &t->tasks) == 1 ||
            sscanf(line, "publish_s %lf", &t->publish_s) == 1 ||
            sscanf(line, "publish_t0 %" SCNd64, &t->publish_t0) == 1)
            continue;
        if (sscanf(line, "wf %" SCNd64 " %" SCNd64 " %zu", &a, &b, &c) == 3) {
            t->wf = jm_realloc(t->wf, (t->n_wf + 1) * sizeof(*t->wf));
            t->wf[t->n_wf++] = a;
        }
    }
    fclose(f);
    if (!t->reports) /* a state file from before --reports */
        t->reports = t->events;
}

/* ---- /proc sampling -------------------------------------------------------------------------- */

/* kB value of `field` ("VmHWM") in /proc/<pid>/status, -1 if gone. */
static long proc_status_kb(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* comm and utime+stime (clock ticks) of a pid; 0 on success. */
static int proc_stat(int pid, char comm[32], uint64_t *ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *l = strchr(buf, '('), *r = strrchr(buf, ')');
    if (!l || !r)
        return -1;
    size_t cl = (size_t)(r - l - 1) < 31 ? (size_t)(r - l - 1) : 31;
    memcpy(comm, l + 1, cl);
    comm[cl] = '\0';
    /* fields after ")": state(3) ... utime(14) stime(15) */
    char *p = r + 2;
    unsigned long long ut = 0, stt = 0;
    int field = 3;
    for (char *tok = strtok(p, " "); tok; tok = strtok(NULL, " "), field++) {
        if (field == 14)
            ut = strtoull(tok, NULL, 10);
        else if (field == 15) {
            stt = strtoull(tok, NULL, 10);
            break;
        }
    }
    *ticks = ut + stt;
    return 0;
}

enum { G_FSM = 0, G_PG, G_KAFKA, G_REDIS, G_BENCH, G_OTHER, G__CNT };
static const char *const group_names[G__CNT] = {"jobmon-fsm", "postgres", "kafka (java)",
                                                "redis",      "bench",    "other"};

static int group_of(const char *comm)
{
    if (strstr(comm, "jobmon-fsm") || strstr(comm, "memcheck") || strstr(comm, "callgrind"))
        return G_FSM;
    if (strncmp(comm, "postgres", 8) == 0 || strncmp(comm, "postmaster", 10) == 0)
        return G_PG;
    if (strcmp(comm, "java") == 0)
        return G_KAFKA;
    if (strncmp(comm, "redis", 5) == 0)
        return G_REDIS;
    if (strstr(comm, "fsm_throughput"))
        return G_BENCH;
    return G_OTHER;
}

typedef struct {
    int *pid;
    uint64_t *ticks;
    size_t n;
} cpu_snap_t;

static void cpu_snap(cpu_snap_t *s)
{
    memset(s, 0, sizeof(*s));
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    size_t cap = 0;
    while ((de = readdir(d)))
        if (isdigit((unsigned char)de->d_name[0])) {
            int pid = atoi(de->d_name);
            char comm[32];
            uint64_t t;
            if (proc_stat(pid, comm, &t) != 0)
                continue;
            if (s->n == cap) {
                cap = cap ? cap * 2 : 256;
                s->pid = jm_realloc(s->pid, cap * sizeof(int));
                s->ticks = jm_realloc(s->ticks, cap * sizeof(uint64_t));
            }
            s->pid[s->n] = pid;
            s->ticks[s->n] = t;
            s->n++;
        }
    closedir(d);
}

/* CPU seconds per group between two snapshots; the processes in fsm[0..n_fsm) count as
 * jobmon-fsm whatever their name (an A/B names its builds as it likes). */
static void cpu_delta(const cpu_snap_t *a, const cpu_snap_t *b, const int *fsm, size_t n_fsm,
                      double out[G__CNT])
{
    long hz = sysconf(_SC_CLK_TCK);
    for (int i = 0; i < G__CNT; i++)
        out[i] = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint64_t before = 0;
        for (size_t j = 0; j < a->n; j++)
            if (a->pid[j] == b->pid[i]) {
                before = a->ticks[j];
                break;
            }
        char comm[32];
        uint64_t t;
        if (proc_stat(b->pid[i], comm, &t) != 0)
            continue;
        int g = group_of(comm);
        for (size_t k = 0; k < n_fsm; k++)
            if (fsm[k] == b->pid[i])
                g = G_FSM;
        if (b->ticks[i] >= before)
            out[g] += (double)(b->ticks[i] - before) / (double)hz;
    }
}

/* CPU seconds between two snapshots of the processes in pids[0..n). */
static double cpu_of_pids(const cpu_snap_t *a, const cpu_snap_t *b, const int *pids, size_t n)
{
    uint64_t t = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t t0 = 0, t1 = 0;
        for (size_t j = 0; j < a->n; j++)
            if (a->pid[j] == pids[k])
                t0 = a->ticks[j];
        for (size_t j = 0; j < b->n; j++)
            if (b->pid[j] == pids[k])
                t1 = b->ticks[j];
        t += t1 >= t0 ? t1 - t0 : 0;
    }
    return (double)t / (double)sysconf(_SC_CLK_TCK);
}

/* The PostgreSQL backends serving the consumers under test: run_fsm_bench.sh gives them
 * application_name=jobmon-fsm-bench, so that PostgreSQL work of other sessions on a shared
 * machine is not counted as theirs.  Returns how many (at most cap). */
static size_t own_backends(jm_pg_t *pg, int *pids, size_t cap)
{
    jm_err_t err;
    PGresult *r = NULL;
    size_t n = 0;
    if (jm_pg_exec(pg,
                   "SELECT pid FROM pg_stat_activity WHERE application_name = 'jobmon-fsm-bench'",
                   0, NULL, &r, &err) != JM_OK) {
        fprintf(stderr, "fsm_throughput: warning: pg_stat_activity: %s\n", err.msg);
        return 0;
    }
    for (int i = 0; i < PQntuples(r) && n < cap; i++)
        pids[n++] = atoi(PQgetvalue(r, i, 0));
    PQclear(r);
    return n;
}

static void cpu_free(cpu_snap_t *s)
{
    free(s->pid);
    free(s->ticks);
}

/* jobmon-fsm processes (by comm) unless given with --fsm-pid. */
static void find_fsm_pids(opts_t *o)
{
    if (o->n_fsm_pids)
        return;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && o->n_fsm_pids < MAX_FSM_PIDS)
        if (isdigit((unsigned char)de->d_name[0])) {
            int pid = atoi(de->d_name);
            char comm[32];
            uint64_t t;
            if (pid != getpid() && proc_stat(pid, comm, &t) == 0 && strstr(comm, "jobmon-fsm"))
                o->fsm_pids[o->n_fsm_pids++] = pid;
        }
    closedir(d);
}

/* ---- measure -------------------------------------------------------------------------------- */

static int64_t q_int(jm_pg_t *pg, const char *sql, const char *arr)
{
    jm_err_t err;
    PGresult *r = NULL;
    const char *p[1] = {arr};
    if (jm_pg_exec(pg, sql, arr ? 1 : 0, arr ? p : NULL, &r, &err) != JM_OK)
        die(sql, &err);
    int64_t v =
        PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return v;
}

/* Print a two-column GROUP BY result; returns the count for `want` in column 0 (or -1). */
static int64_t q_groups(jm_pg_t *pg, const char *title, const char *sql, const char *arr,
                        const char *want, int64_t *total)
{
    jm_err_t err;
    PGresult *r = NULL;
    const char *p[1] = {arr};
    if (jm_pg_exec(pg, sql, 1, p, &r, &err) != JM_OK)
        die(sql, &err);
    int64_t hit = 0, tot = 0;
    printf("  %-14s", title);
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t n = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        printf(" %s=%" PRId64, PQgetisnull(r, i, 0) ? "NULL" : PQgetvalue(r, i, 0), n);
        tot += n;
        if (want && strcmp(PQgetvalue(r, i, 0), want) == 0)
            hit = n;
    }
    printf("\n");
    PQclear(r);
    if (total)
        *total = tot;
    return hit;
}

static int measure(opts_t *o, target_t *t, const char *conninfo, pthread_t *pub, pub_job_t *job)
{
    jm_err_t err;
    jm_pg_t *pg = jm_pg_connect(conninfo, jm_time_mono_ms() + 15000, &err);
    if (!pg)
        die("PostgreSQL", &err);
    /* workflow ids as an array literal */
    size_t cap = t->n_wf * 24 + 3, len = 0;
    char *arr = jm_malloc(cap);
    arr[len++] = '{';
    for (size_t k = 0; k < t->n_wf; k++)
        len += (size_t)snprintf(arr + len, cap - len, "%s%" PRId64, k ? "," : "", t->wf[k]);
    arr[len++] = '}';
    arr[len] = '\0';

    find_fsm_pids(o);
    if (o->n_fsm_pids == 0)
        fprintf(stderr, "fsm_throughput: warning: no jobmon-fsm process found (RSS unknown)\n");
    long rss_max[MAX_FSM_PIDS] = {0};
    cpu_snap_t c0, c1;
    int own_pg[4 * MAX_FSM_PIDS];
    size_t n_own_pg = own_backends(pg, own_pg, JM_ARRAY_LEN(own_pg));
    cpu_snap(&c0);

    const char *count_sql = "SELECT count(*) FROM event_log WHERE workflow_id = ANY($1::bigint[])";
    /* cheap progress: the applied_seq high-water mark of our workflows (gaps from rolled-back
     * batches and other workflows' events make it an over-estimate, hence the exact count
     * before declaring completion); per workflow because only (workflow_id, applied_seq) is
     * indexed (005_hotpath.sql) */
    const char *seq_sql = "SELECT COALESCE(max(m), 0) FROM unnest($1::bigint[]) w(id),"
                          " LATERAL (SELECT max(applied_seq) AS m FROM event_log e"
                          " WHERE e.workflow_id = w.id) x";
    int64_t have = q_int(pg, count_sql, arr);
    int64_t seq0 = q_int(pg, "SELECT COALESCE(max(applied_seq), 0) FROM event_log", NULL) - have;
    int64_t start = jm_time_mono_ms(), deadline = start + (int64_t)o->timeout_s * 1000;
    int64_t t_first = 0, t_last = 0, c_first = 0, last_change = start, last_print = start;
    int64_t last_seen = -1, printed = 0;
    int exact_mode = 0;
    for (;;) {
        int64_t now = jm_time_mono_ms();
        int64_t seen = exact_mode ? q_int(pg, count_sql, arr) : q_int(pg, seq_sql, arr) - seq0;
        if (!exact_mode && seen >= (int64_t)t->events) {
            exact_mode = 1;
            seen = q_int(pg, count_sql, arr);
        }
        if (seen > 0 && !t_first) {
            t_first = now;
            c_first = seen;
        }
        if (seen != last_seen) {
            last_seen = seen;
            last_change = now;
        }
        for (size_t i = 0; i < o->n_fsm_pids; i++) {
            long v = proc_status_kb(o->fsm_pids[i], "VmRSS");
            if (v > rss_max[i])
                rss_max[i] = v;
        }
        if (now - last_print >= 5000) {
            printf("  %6.1f s  applied %9" PRId64 " / %" PRIu64 "  (%.0f events/s)\n",
                   (double)(now - start) / 1000.0, seen, t->events,
                   (double)(seen - printed) * 1000.0 / (double)(now - last_print));
            fflush(stdout);
            printed = seen;
            last_print = now;
        }
        if (exact_mode && seen >= (int64_t)t->events) {
            t_last = now;
            break;
        }
        if (now > deadline || now - last_change > (int64_t)o->stall_s * 1000) {
            fprintf(stderr,
                    "fsm_throughput: %s after %.0f s: %" PRId64 " of %" PRIu64 " events applied\n",
                    now > deadline ? "deadline" : "stalled", (double)(now - start) / 1000.0, seen,
                    t->events);
            break;
        }
        jm_time_sleep_ms(POLL_MS, NULL);
    }
    cpu_snap(&c1);
    if (pub) { /* the publish thread finished long before, unless applying beat it */
        pthread_join(*pub, NULL);
        t->publish_s = job->secs;
    }
    double cpu[G__CNT];
    cpu_delta(&c0, &c1, o->fsm_pids, o->n_fsm_pids, cpu);
    double own_pg_s = cpu_of_pids(&c0, &c1, own_pg, n_own_pg);
    double wall = (double)(jm_time_mono_ms() - start) / 1000.0;

    int ok = t_last != 0;
    double apply_s = ok ? (double)(t_last - t_first) / 1000.0 : 0;
    /* events applied between the first and last observation, over that time */
    double eps = ok && apply_s > 0 ? (double)((int64_t)t->events - c_first) / apply_s : 0;
    double e2e_s = ok && t->publish_t0 ? (double)(jm_time_wall_ms() - t->publish_t0) / 1000.0 : 0;
    /* instance reports at the same rate: each event carries reports/events of them on average */
    double rps = t->events ? eps * (double)t->reports / (double)t->events : 0;

    printf("verification:\n");
    int64_t total = 0;
    q_groups(pg, "event_log",
             "SELECT outcome, count(*) FROM event_log"
             " WHERE workflow_id = ANY($1::bigint[]) GROUP BY 1 ORDER BY 1",
             arr, NULL, &total);
    int64_t rejected = q_int(pg,
                             "SELECT count(*) FROM event_log WHERE workflow_id ="
                             " ANY($1::bigint[]) AND outcome IN ('rejected','dead_letter')",
                             arr);
    int64_t ignored = q_int(pg,
                            "SELECT count(*) FROM event_log WHERE workflow_id ="
                            " ANY($1::bigint[]) AND outcome = 'ignored'",
                            arr);
    {
        PGresult *r = NULL;
        const char *p[1] = {arr};
        if (jm_pg_exec(pg,
                       "SELECT type, outcome, left(reason, 120), count(*) FROM event_log"
                       " WHERE workflow_id = ANY($1::bigint[]) AND outcome <> 'applied'"
                       " GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 8",
                       1, p, &r, &err) != JM_OK)
            die("reasons", &err);
        for (int i = 0; i < PQntuples(r); i++)
            printf("    %s %s x%s: %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                   PQgetvalue(r, i, 3), PQgetvalue(r, i, 2));
        PQclear(r);
    }
    q_groups(pg, "by partition",
             "SELECT partition::text, count(*) FROM event_log"
             " WHERE workflow_id = ANY($1::bigint[]) GROUP BY 1 ORDER BY 1",
             arr, NULL, NULL);
    int64_t n_tasks = 0, n_wf = 0;
    int64_t tasks_d = q_groups(pg, "task",
                               "SELECT status, count(*) FROM task"
                               " WHERE workflow_id = ANY($1::bigint[]) GROUP BY 1 ORDER BY 1",
                               arr, "D", &n_tasks);
    q_groups(pg, "task_instance",
             "SELECT status, count(*) FROM task_instance"
             " WHERE workflow_id = ANY($1::bigint[]) GROUP BY 1 ORDER BY 1",
             arr, NULL, NULL);
    int64_t wf_d = q_groups(pg, "workflow",
                            "SELECT status, count(*) FROM workflow"
                            " WHERE id = ANY($1::bigint[]) GROUP BY 1 ORDER BY 1",
                            arr, "D", &n_wf);
    q_groups(pg, "workflow_run",
             "SELECT status, count(*) FROM workflow_run"
             " WHERE workflow_id = ANY($1::bigint[]) GROUP BY 1 ORDER BY 1",
             arr, NULL, NULL);

    long hwm_max = 0;
    printf("jobmon-fsm memory:\n");
    for (size_t i = 0; i < o->n_fsm_pids; i++) {
        long hwm = proc_status_kb(o->fsm_pids[i], "VmHWM");
        printf("  pid %d: VmHWM %.1f MB, max sampled VmRSS %.1f MB\n", o->fsm_pids[i], hwm / 1024.0,
               rss_max[i] / 1024.0);
        if (hwm > hwm_max)
            hwm_max = hwm;
    }
    printf("CPU seconds during the measurement (%.1f s wall x %ld cores):", wall,
           sysconf(_SC_NPROCESSORS_ONLN));
    for (int i = 0; i < G__CNT; i++)
        printf(" %s %.1f;", group_names[i], cpu[i]);
    printf("\n");
    if (ok && t->events)
        printf("CPU per event: jobmon-fsm %.1f us, postgres %.1f us (of which the consumers'"
               " %zu backends %.1f us)\n",
               cpu[G_FSM] * 1e6 / (double)t->events, cpu[G_PG] * 1e6 / (double)t->events, n_own_pg,
               own_pg_s * 1e6 / (double)t->events);

    int correct = ok && total == (int64_t)t->events && rejected == 0 &&
                  n_tasks == (int64_t)t->tasks && tasks_d == n_tasks && wf_d == (int64_t)t->n_wf &&
                  n_wf == (int64_t)t->n_wf;
    printf("apply: %" PRIu64 " events in %.2f s (first to last applied): %.0f events/s;"
           " publish start to all applied %.2f s\n",
           t->events, apply_s, eps, e2e_s);
    if (t->reports != t->events)
        printf("apply: %" PRIu64 " instance reports (ti.reports items counted one by one): %.0f"
               " reports/s\n",
               t->reports, rps);
    printf("check: %s (tasks D %" PRId64 "/%zu, workflows D %" PRId64 "/%zu, rejected+dead %" PRId64
           ", ignored %" PRId64 ")\n",
           correct ? "PASS" : "FAIL", tasks_d, t->tasks, wf_d, t->n_wf, rejected, ignored);
    printf("RESULT consumers=%d tasks=%zu events=%" PRIu64 " reports=%" PRIu64
           " publish_s=%.2f apply_s=%.2f eps=%.0f rps=%.0f e2e_s=%.2f rss_mb=%.1f fsm_cpu_s=%.1f"
           " pg_cpu_s=%.1f own_pg_cpu_s=%.1f ok=%d\n",
           o->consumers, t->tasks, t->events, t->reports, t->publish_s, apply_s, eps, rps, e2e_s,
           hwm_max / 1024.0, cpu[G_FSM], cpu[G_PG], own_pg_s, correct);
    cpu_free(&c0);
    cpu_free(&c1);
    free(arr);
    jm_pg_destroy(pg);
    return correct ? 0 : 1;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fsm_throughput [--dry-run | --publish | --measure ...] [options]\n"
            "  --tasks N            total tasks (default 100000)\n"
            "  --workflows K        split into K workflows of N/K tasks (default 1)\n"
            "  --heartbeats H       ti.heartbeat per task on average (default 1.0)\n"
            "  --run-heartbeat M    a run.heartbeat every M events of a workflow (default 1000)\n"
            "  --reports N          send running and done reports as ti.reports events of up to\n"
            "                       N instances, as the distributor's relay does (default 0:\n"
            "                       one ti.running / ti.done event per instance)\n"
            "  --tag STR            workflow_args prefix (default bench-<time>-<pid>)\n"
            "  --partitions P       spread workflows evenly over P partitions (0 = no)\n"
            "  --seed S             PRNG seed (default 1)\n"
            "  --dry-run            generate, print counts by type, decode every event back\n"
            "  --verify             decode every event back (also with --publish)\n"
            "  --publish            produce every event, flush, report the publish rate\n"
            "  --measure            wait until every event is applied, verify the end state\n"
            "  --state FILE         written by --publish, read by --measure when run alone\n"
            "  --config FILE        jobmon config (default: JOBMON_CONFIG)\n"
            "  --topic T            events topic (default: kafka.topic of the config)\n"
            "  --create-topic P     create the topic with P partitions if missing, then go on\n"
            "  --delete-topic       delete the topic, then go on\n"
            "  --timeout S          --measure deadline (default 1800)\n"
            "  --stall S            --measure gives up after S s without progress (default 120)\n"
            "  --fsm-pid PID        consumer to sample (repeatable; default: every jobmon-fsm)\n"
            "  --consumers C        number of consumers (labels the RESULT line)\n");
}

int main(int argc, char **argv)
{
    opts_t o = {.tasks = 100000,
                .workflows = 1,
                .heartbeats = 1.0,
                .run_hb_every = 1000,
                .seed = 1,
                .timeout_s = 1800,
                .stall_s = 120,
                .consumers = 0};
    static char tagbuf[64];
    enum {
        O_TASKS = 256,
        O_WF,
        O_HB,
        O_RHB,
        O_REPORTS,
        O_TAG,
        O_PART,
        O_SEED,
        O_DRY,
        O_VERIFY,
        O_PUB,
        O_MEAS,
        O_STATE,
        O_CONF,
        O_TMO,
        O_STALL,
        O_PID,
        O_CONS,
        O_HELP,
        O_TOPIC,
        O_CREATE,
        O_DELETE
    };
    static const struct option lo[] = {{"tasks", 1, NULL, O_TASKS},
                                       {"workflows", 1, NULL, O_WF},
                                       {"heartbeats", 1, NULL, O_HB},
                                       {"run-heartbeat", 1, NULL, O_RHB},
                                       {"reports", 1, NULL, O_REPORTS},
                                       {"tag", 1, NULL, O_TAG},
                                       {"partitions", 1, NULL, O_PART},
                                       {"seed", 1, NULL, O_SEED},
                                       {"dry-run", 0, NULL, O_DRY},
                                       {"verify", 0, NULL, O_VERIFY},
                                       {"publish", 0, NULL, O_PUB},
                                       {"measure", 0, NULL, O_MEAS},
                                       {"state", 1, NULL, O_STATE},
                                       {"config", 1, NULL, O_CONF},
                                       {"timeout", 1, NULL, O_TMO},
                                       {"stall", 1, NULL, O_STALL},
                                       {"fsm-pid", 1, NULL, O_PID},
                                       {"consumers", 1, NULL, O_CONS},
                                       {"help", 0, NULL, O_HELP},
                                       {"topic", 1, NULL, O_TOPIC},
                                       {"create-topic", 1, NULL, O_CREATE},
                                       {"delete-topic", 0, NULL, O_DELETE},
                                       {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_TASKS: o.tasks = strtoull(optarg, NULL, 10); break;
        case O_WF: o.workflows = strtoull(optarg, NULL, 10); break;
        case O_HB: o.heartbeats = strtod(optarg, NULL); break;
        case O_REPORTS: o.reports = strtoul(optarg, NULL, 10); break;
        case O_RHB: o.run_hb_every = strtoull(optarg, NULL, 10); break;
        case O_TAG: o.tag = optarg; break;
        case O_PART: o.partitions = atoi(optarg); break;
        case O_SEED: o.seed = strtoull(optarg, NULL, 10); break;
        case O_DRY:
            o.dry_run = 1;
            o.verify = 1;
            break;
        case O_VERIFY: o.verify = 1; break;
        case O_PUB: o.publish = 1; break;
        case O_MEAS: o.measure = 1; break;
        case O_STATE: o.state = optarg; break;
        case O_CONF: o.config = optarg; break;
        case O_TMO: o.timeout_s = atoi(optarg); break;
        case O_STALL: o.stall_s = atoi(optarg); break;
        case O_PID:
            if (o.n_fsm_pids < MAX_FSM_PIDS)
                o.fsm_pids[o.n_fsm_pids++] = atoi(optarg);
            break;
        case O_CONS: o.consumers = atoi(optarg); break;
        case O_TOPIC: o.topic = optarg; break;
        case O_CREATE: o.create_topic = atoi(optarg); break;
        case O_DELETE: o.delete_topic = 1; break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return JM_EXIT_USAGE;
        }
    }
    if (!o.dry_run && !o.publish && !o.measure && !o.create_topic && !o.delete_topic) {
        usage(stderr);
        return JM_EXIT_USAGE;
    }
    if (o.tasks < 1 || o.workflows < 1 || o.workflows > o.tasks || o.heartbeats < 0 ||
        (o.measure && !o.publish && !o.state)) {
        fprintf(stderr, "fsm_throughput: bad options (--measure alone needs --state)\n");
        return JM_EXIT_USAGE;
    }
    if (!o.tag) {
        snprintf(tagbuf, sizeof(tagbuf), "bench-%lld-%d", (long long)time(NULL), (int)getpid());
        o.tag = tagbuf;
    }
    jm_log_set_level(JM_LOG_WARN);

    jm_config_t *cfg = jm_config_new();
    jm_err_t err;
    int admin = o.create_topic > 0 || o.delete_topic;
    if ((o.publish || o.measure || admin) && jm_config_load(cfg, o.config, &err) != JM_OK)
        die("config", &err);
    if (!o.topic && (o.publish || admin))
        o.topic = jm_config_str(cfg, "kafka.topic");
    if (admin)
        topic_admin(jm_config_str(cfg, "kafka.brokers"), o.topic, o.create_topic);

    gen_t g = {.o = &o, .rng = o.seed ? o.seed : 88172645463325252ULL};
    target_t t = {0};
    double pub_s = 0;
    int64_t t0_wall = 0;
    if (o.dry_run || o.publish) {
        int64_t t0 = jm_time_mono_ms();
        generate(&g);
        double gen_s = (double)(jm_time_mono_ms() - t0) / 1000.0;
        printf("generated %zu workflow(s) x %zu tasks, %" PRIu64 " events, %.1f MB in %.2f s"
               " (tag %s)\n",
               o.workflows, o.tasks / o.workflows, g.n_events, (double)g.n_bytes / 1e6, gen_s,
               o.tag);
        for (size_t k = 0; k < o.workflows; k++)
            printf("  workflow %" PRId64 " run %" PRId64 " args %s: %zu events, %zu levels%s\n",
                   g.wf[k].id, g.wf[k].run_id, g.wf[k].args, g.wf[k].ev.n, g.wf[k].n_levels,
                   o.partitions > 0 ? "" : "");
        if (o.partitions > 0)
            for (size_t k = 0; k < o.workflows; k++)
                printf("  workflow %" PRId64 " -> partition %d of %d\n", g.wf[k].id,
                       key_partition(g.wf[k].id, o.partitions), o.partitions);
        print_counts(&g);
        if (o.verify && !verify_decode(&g))
            return JM_EXIT_FAILED;
        fflush(stdout);
    }
    pub_job_t job = {.g = &g};
    pthread_t pub_th;
    int threaded = o.publish && o.measure;
    if (o.publish) {
        job.brokers = jm_config_str(cfg, "kafka.brokers");
        job.topic = o.topic;
        if (threaded) {
            job.t0_wall = jm_time_wall_ms();
            if (pthread_create(&pub_th, NULL, publish_thread, &job) != 0)
                die("pthread_create", NULL);
        } else {
            pub_s = publish(&g, job.brokers, job.topic, &t0_wall);
            if (o.state)
                state_write(o.state, &g, pub_s, t0_wall);
            fflush(stdout);
        }
    }
    int rc = 0;
    if (o.measure) {
        if (o.publish) {
            t.events = g.n_events;
            t.reports = g.n_reports;
            t.tasks = o.tasks;
            t.publish_t0 = job.t0_wall;
            t.n_wf = o.workflows;
            t.wf = jm_malloc(o.workflows * sizeof(*t.wf));
            for (size_t k = 0; k < o.workflows; k++)
                t.wf[k] = g.wf[k].id;
        } else {
            state_read(o.state, &t);
        }
        const char *ci = jm_config_str(cfg, "postgres.reader_conninfo");
        if (!ci || !*ci)
            ci = jm_config_str(cfg, "postgres.conninfo");
        rc = measure(&o, &t, ci, threaded ? &pub_th : NULL, &job);
    }
    for (size_t k = 0; g.wf && k < o.workflows; k++) {
        evlist_free(&g.wf[k].ev);
        free(g.wf[k].task_id);
    }
    free(g.wf);
    free(t.wf);
    jm_tool_destroy(g.tool);
    jm_config_destroy(cfg);
    return rc;
}
