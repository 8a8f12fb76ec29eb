/*
 * cli_lag.c — `jobmon lag`: is jobmon-fsm keeping up?  For each partition of the events topic,
 * what the FSM has applied (consumer_offset.next_offset, PostgreSQL, the reader role) against
 * what Kafka holds (the partition's high watermark), and the dead letters (messages in the DLQ
 * topic).  --max-lag N makes it a monitoring check: exit 1 when more than N events wait.
 *
 * Read-only: it publishes nothing and consumes nothing (watermarks come from the brokers'
 * offsets API through a producer handle).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli_ops.h"
#include "client/cli_util.h"

#define KAFKA_TIMEOUT_MS 10000

static void lag_usage(FILE *out)
{
    fprintf(out,
            "usage: jobmon lag [--max-lag N] [--json]\n"
            "  how far jobmon-fsm is behind: per partition of kafka.topic, the events applied\n"
            "  (PostgreSQL) against the events in Kafka, and the dead letters in kafka.dlq_topic\n"
            "options:\n"
            "      --max-lag N   exit 1 when more than N events are not applied yet (monitoring)\n"
            "      --json        one JSON object\n");
}

int jm_cli_lag_parse(int argc, char **argv, jm_cli_lag_opts_t *o, char *msg, size_t msglen)
{
    enum { OPT_JSON = 256, OPT_MAX };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"max-lag", required_argument, NULL, OPT_MAX},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    memset(o, 0, sizeof(*o));
    o->max_lag = -1;
    msg[0] = '\0';
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_JSON: o->json = 1; break;
        case OPT_MAX:
            if (jm_cli_parse_int(optarg, INT64_MAX, &o->max_lag) != 0) {
                snprintf(msg, msglen, "--max-lag: not a count: '%s'", optarg);
                return -1;
            }
            break;
        case 'h': return 1;
        default: snprintf(msg, msglen, "unknown option '%s'", argv[optind - 1]); return -1;
        }
    }
    return jm_cli_no_operands(argc, argv, msg, msglen);
}

/* next_offset and owner_epoch of `topic`'s partitions, indexed by partition (-1: no row). */
static int applied_offsets(jm_cli_t *cli, const char *topic, int n, int64_t *next, int64_t *epoch)
{
    jm_err_t err;
    PGresult *r = NULL;
    jm_status_ctx_t *ctx = jm_status_ctx_new_config(cli->cfg);
    jm_pg_t *pg = jm_status_ctx_pg(ctx, &err);
    const char *params[1] = {topic};
    int code = JM_EXIT_OK;
    for (int i = 0; i < n; i++)
        next[i] = epoch[i] = -1;
    if (!pg || jm_pg_exec(pg,
                          "SELECT partition, next_offset, owner_epoch FROM consumer_offset"
                          " WHERE topic = $1",
                          1, params, &r, &err) != JM_OK) {
        fprintf(stderr, "jobmon: PostgreSQL: %s\n", err.msg);
        code = jm_rc_to_exit(err.rc);
    }
    for (int i = 0; code == JM_EXIT_OK && i < PQntuples(r); i++) {
        int part = atoi(PQgetvalue(r, i, 0));
        if (part >= 0 && part < n) {
            next[part] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            epoch[part] = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        }
    }
    PQclear(r);
    jm_status_ctx_destroy(ctx);
    return code;
}

/* Messages stored in every partition of `topic` (high - low watermark, summed). */
static jm_rc_t stored(jm_producer_t *p, const char *topic, int64_t *total, jm_err_t *err)
{
    int n = 0;
    jm_rc_t rc = jm_producer_partitions(p, topic, KAFKA_TIMEOUT_MS, &n, err);
    *total = 0;
    for (int i = 0; rc == JM_OK && i < n; i++) {
        int64_t lo, hi;
        rc = jm_producer_watermarks(p, topic, i, KAFKA_TIMEOUT_MS, &lo, &hi, err);
        *total += hi - lo;
    }
    return rc;
}

static void print_lag(const jm_cli_lag_opts_t *o, const char *topic, int n, const int64_t *low,
                      const int64_t *high, const int64_t *next, const int64_t *epoch, int64_t total,
                      const char *dlq, int64_t dead)
{
    if (!o->json) {
        printf("%-24s %9s %12s %12s %12s %11s\n", "TOPIC", "PARTITION", "APPLIED", "END", "LAG",
               "OWNER_EPOCH");
        for (int i = 0; i < n; i++) {
            int64_t from = next[i] > low[i] ? next[i] : low[i];
            char ep[24] = "-";
            if (epoch[i] >= 0)
                snprintf(ep, sizeof(ep), "%" PRId64, epoch[i]);
            printf("%-24s %9d %12" PRId64 " %12" PRId64 " %12" PRId64 " %11s\n", topic, i,
                   next[i] < 0 ? 0 : next[i], high[i], high[i] - from, ep);
        }
        printf("lag %" PRId64 " event(s); dead letters in %s: %" PRId64 "\n", total, dlq, dead);
        return;
    }
    json_t *parts = json_array();
    for (int i = 0; i < n; i++) {
        int64_t from = next[i] > low[i] ? next[i] : low[i];
        json_array_append_new(
            parts, json_pack("{si sI sI sI so}", "partition", i, "applied",
                             (json_int_t)(next[i] < 0 ? 0 : next[i]), "end", (json_int_t)high[i],
                             "lag", (json_int_t)(high[i] - from), "owner_epoch",
                             epoch[i] < 0 ? json_null() : json_integer(epoch[i])));
    }
    jm_cli_print_json(json_pack("{ss so sI ss sI}", "topic", topic, "partitions", parts, "lag",
                                (json_int_t)total, "dlq_topic", dlq, "dead_letters",
                                (json_int_t)dead));
}

int jm_cli_cmd_lag(jm_cli_t *cli, int argc, char **argv)
{
    jm_cli_lag_opts_t o;
    jm_err_t err;
    char msg[256];
    int r = jm_cli_lag_parse(argc, argv, &o, msg, sizeof(msg));
    if (r != 0) {
        if (r < 0)
            fprintf(stderr, "jobmon lag: %s\n", msg);
        lag_usage(r < 0 ? stderr : stdout);
        return r < 0 ? JM_EXIT_USAGE : JM_EXIT_OK;
    }
    o.json |= cli->json;
    const char *topic = jm_config_str(cli->cfg, "kafka.topic"),
               *dlq = jm_config_str(cli->cfg, "kafka.dlq_topic");
    int n = 0, code = JM_EXIT_OK;
    int64_t *low = NULL, *high = NULL, *next = NULL, *epoch = NULL, total = 0, dead = 0;
    jm_producer_t *p = jm_cli_producer(cli->cfg, &err);
    jm_rc_t rc = p ? jm_producer_partitions(p, topic, KAFKA_TIMEOUT_MS, &n, &err) : err.rc;
    if (rc == JM_OK) {
        low = jm_calloc((size_t)n + 1, sizeof(*low));
        high = jm_calloc((size_t)n + 1, sizeof(*high));
        next = jm_calloc((size_t)n + 1, sizeof(*next));
        epoch = jm_calloc((size_t)n + 1, sizeof(*epoch));
    }
    for (int i = 0; rc == JM_OK && i < n; i++)
        rc = jm_producer_watermarks(p, topic, i, KAFKA_TIMEOUT_MS, &low[i], &high[i], &err);
    if (rc == JM_OK)
        rc = stored(p, dlq, &dead, &err);
    if (rc != JM_OK) {
        fprintf(stderr, "jobmon: %s\n", err.msg);
        code = rc == JM_ERR_NOT_FOUND ? JM_EXIT_USAGE : jm_rc_to_exit(rc);
        goto out;
    }
    if ((code = applied_offsets(cli, topic, n, next, epoch)) != JM_EXIT_OK)
        goto out;
    for (int i = 0; i < n; i++)
        total += high[i] - (next[i] > low[i] ? next[i] : low[i]);
    print_lag(&o, topic, n, low, high, next, epoch, total, dlq, dead);
    if (o.max_lag >= 0 && total > o.max_lag) {
        fprintf(stderr, "jobmon: lag %" PRId64 " > --max-lag %" PRId64 "\n", total, o.max_lag);
        code = JM_EXIT_FAILED;
    }
out:
    jm_producer_destroy(p);
    free(low);
    free(high);
    free(next);
    free(epoch);
    return code;
}
