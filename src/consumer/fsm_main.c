/*
 * fsm_main.c — jobmon-fsm: configuration, signals, fsm.consumers consume-loop threads (each its
 * own Kafka consumer in the group, PostgreSQL connection and Redis connection) and, in the main
 * thread, the reaper.  Everything else is in libjobmon (consumer.c and friends).
 *
 *   jobmon-fsm [--config FILE] [--set section.key=value]... [--wait SECONDS]
 *
 * SIGTERM/SIGINT: stop taking events, finish or roll back the batch in flight, leave the group,
 * flush producers, exit 0.  A second signal exits at once.  Exit 3 when Kafka or PostgreSQL
 * stays unreachable at start-up for --wait seconds (default 30); 1 on a runtime failure.
 * Testing: JOBMON_FSM_INJECT_SERIALIZATION_FAILURE=N fails each consumer's Nth batch
 * transaction with a real SQLSTATE 40001.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "consumer/consumer_int.h"
#include "jobmon/config.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"

#define SUB "fsm"

static volatile sig_atomic_t stop_flag;

/* A long-running process with many threads (librdkafka's, one per consumer): bound glibc's
 * arenas, and keep large blocks (event_log arrays, libpq and librdkafka buffers) in mmap so
 * that freeing one returns it to the OS.  The default threshold rises after the first such
 * free, after which big blocks are carved from the arenas and stay resident. */
static void tune_malloc(void)
{
#if defined(__GLIBC__)
    mallopt(M_ARENA_MAX, 4);
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
}

static void on_signal(int sig)
{
    if (stop_flag) {
        static const char msg[] = "jobmon-fsm: second signal, exiting now\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)w;
        _exit(128 + sig);
    }
    stop_flag = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* kafka.properties ("key=value" items) as a NULL-terminated key, value vector; caller frees
 * with free_props. */
static char **split_props(const jm_config_t *cfg)
{
    size_t n = 0;
    const char *const *items = jm_config_list(cfg, "kafka.properties", &n);
    char **kv = jm_calloc(2 * n + 1, sizeof(*kv));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        if (!eq)
            continue; /* the config loader validates the format */
        kv[k++] = jm_strndup(items[i], (size_t)(eq - items[i]));
        kv[k++] = jm_strdup(eq + 1);
    }
    return kv;
}

static void free_props(char **kv)
{
    for (size_t i = 0; kv && kv[i]; i++)
        free(kv[i]);
    free(kv);
}

typedef struct {
    jm_fsm_consumer_t *c;
    pthread_t th;
    int started;
    jm_rc_t rc;
    jm_err_t err;
    char name[32];
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    w->rc = jm_fsm_consumer_run(w->c, &w->err);
    if (w->rc != JM_OK) {
        jm_log(JM_LOG_ERROR, SUB, "%s stopped: %s: %s", w->name, jm_rc_name(w->rc), w->err.msg);
        stop_flag = 1; /* one consumer failing stops the process: visible, not silent */
    }
    return NULL;
}

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: jobmon-fsm [--config FILE] [--set section.key=value]... "
                 "[--wait SECONDS]\n");
    return code;
}

static int parse_args(int argc, char **argv, jm_config_t *cfg, const char **path, int *wait_s)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"set", required_argument, NULL, 's'},
                                             {"wait", required_argument, NULL, 'w'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    jm_err_t err;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:s:w:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': *path = optarg; break;
        case 'w': *wait_s = atoi(optarg); break;
        case 'h': return usage(stdout, JM_EXIT_OK) + 1000;
        case 's':
            if (jm_config_set_assignment(cfg, optarg, &err) != JM_OK) {
                fprintf(stderr, "jobmon-fsm: --set %s: %s\n", optarg, err.msg);
                return JM_EXIT_USAGE;
            }
            break;
        default: return usage(stderr, JM_EXIT_USAGE);
        }
    }
    return optind < argc ? usage(stderr, JM_EXIT_USAGE) : -1;
}

static int run(const jm_config_t *cfg, int wait_s)
{
    int n = (int)jm_config_int(cfg, "fsm.consumers"), code = JM_EXIT_OK;
    const char *inject = getenv("JOBMON_FSM_INJECT_SERIALIZATION_FAILURE");
    char **props = split_props(cfg);
    worker_t *w = jm_calloc((size_t)n, sizeof(*w));
    jm_producer_t *reaper_p = NULL;
    jm_reaper_t *reaper = NULL;
    jm_err_t err;
    jm_fsm_opts_t o = {
        .brokers = jm_config_str(cfg, "kafka.brokers"),
        .topic = jm_config_str(cfg, "kafka.topic"),
        .dlq_topic = jm_config_str(cfg, "kafka.dlq_topic"),
        .group_id = jm_config_str(cfg, "fsm.group_id"),
        .conninfo = jm_config_str(cfg, "postgres.conninfo"),
        .kafka_props = (const char *const *)props,
        .redis_host = jm_config_str(cfg, "redis.host"),
        .redis_port = (int)jm_config_int(cfg, "redis.port"),
        .batch_max = (size_t)jm_config_int(cfg, "fsm.batch_max"),
        .batch_max_bytes = (size_t)jm_config_int(cfg, "fsm.batch_max_kbytes") * 1024,
        .batch_linger_ms = (int)jm_config_int(cfg, "fsm.batch_linger_ms"),
        .start_deadline_ms = jm_time_mono_ms() + (int64_t)wait_s * 1000,
        .inject_40001 = inject ? (unsigned)strtoul(inject, NULL, 10) : 0,
        .decode_ahead = jm_config_bool(cfg, "fsm.decode_ahead"),
    };
    for (int i = 0; i < n && !stop_flag; i++) {
        snprintf(w[i].name, sizeof(w[i].name), "fsm.%d", i);
        o.name = w[i].name;
        if (!(w[i].c = jm_fsm_consumer_new(&o, (volatile int *)&stop_flag, &err))) {
            jm_log(JM_LOG_ERROR, SUB, "%s: cannot start: %s", w[i].name, err.msg);
            code = jm_rc_to_exit(err.rc);
            goto out;
        }
    }
    reaper_p = jm_producer_new(o.brokers, o.kafka_props, &err);
    if (!reaper_p) {
        jm_log(JM_LOG_ERROR, SUB, "reaper producer: %s", err.msg);
        code = JM_EXIT_USAGE;
        goto out;
    }
    jm_producer_set_topic(reaper_p, o.topic);
    reaper = jm_reaper_new(o.conninfo, reaper_p, (int)jm_config_int(cfg, "reaper.poll_interval"));
    jm_reaper_set_retention(reaper, (int)jm_config_int(cfg, "reaper.retention_days"),
                            (int)jm_config_int(cfg, "reaper.retention_rows"));
    for (int i = 0; i < n && !stop_flag; i++) {
        JM_ASSERT(pthread_create(&w[i].th, NULL, worker_main, &w[i]) == 0);
        w[i].started = 1;
    }
    jm_log(JM_LOG_INFO, SUB, "jobmon-fsm running: %d consumer(s) in group %s on %s", n, o.group_id,
           o.topic);
    while (!stop_flag) {
        if (jm_reaper_tick(reaper, jm_time_mono_ms(), jm_time_wall_ms(), &err) < 0)
            jm_log(JM_LOG_WARN, SUB, "reaper scan failed: %s", err.msg);
        jm_producer_poll(reaper_p, 0);
        jm_time_sleep_ms(200, (volatile int *)&stop_flag);
    }
    jm_log(JM_LOG_INFO, SUB, "stopping");
out:
    for (int i = 0; i < n; i++) {
        if (w[i].started) {
            pthread_join(w[i].th, NULL);
            if (w[i].rc != JM_OK)
                code = JM_EXIT_FAILED;
        }
        jm_fsm_consumer_destroy(w[i].c);
    }
    if (reaper_p && jm_producer_flush(reaper_p, 10000, &err) != JM_OK)
        jm_log(JM_LOG_WARN, SUB, "reaper producer flush: %s", err.msg);
    jm_reaper_destroy(reaper);
    jm_producer_destroy(reaper_p);
    free(w);
    free_props(props);
    return code;
}

int main(int argc, char **argv)
{
    jm_config_t *cfg = jm_config_new();
    const char *path = NULL;
    int wait_s = 30, code;
    jm_err_t err;
    jm_log_level_t lvl;
    code = parse_args(argc, argv, cfg, &path, &wait_s);
    if (code >= 0) {
        jm_config_destroy(cfg);
        return code >= 1000 ? code - 1000 : code;
    }
    if (jm_config_load(cfg, path, &err) != JM_OK) {
        fprintf(stderr, "jobmon-fsm: config: %s\n", err.msg);
        jm_config_destroy(cfg);
        return JM_EXIT_USAGE;
    }
    if (jm_log_level_parse(jm_config_str(cfg, "log.level"), &lvl) == JM_OK)
        jm_log_set_level(lvl); /* JOBMON_LOG_LEVEL is this key's env layer */
    jm_event_set_producer(JM_PRODUCER_REAPER);
    tune_malloc();
    install_signals();
    code = run(cfg, wait_s);
    jm_config_destroy(cfg);
    return code;
}
