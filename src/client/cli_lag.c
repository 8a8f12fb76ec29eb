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

/* One partition: Kafka's watermarks and what the FSM applied (-1: no consumer_offset row). */
typedef struct {
    int64_t low, high, next, epoch;
} part_t;

static int64_t applied(const part_t *p)
{
    return p->next < 0 ? 0 : p->next;
}

/* Events stored in Kafka and not applied yet. */
static int64_t lag(const part_t *p)
{
    return p->high - (p->next > p->low ? p->next : p->low);
}

/* next_offset and owner_epoch of `topic`'s n partitions (-1 where there is no row). */
static int applied_offsets(jm_cli_t *cli, const char *topic, int n, part_t *part)
{
    jm_err_t err;
    PGresult *r = NULL;
    jm_status_ctx_t *ctx = jm_status_ctx_new_config(cli->cfg);
    jm_pg_t *pg = jm_status_ctx_pg(ctx, &err);
    const char *params[1] = {topic};
    int code = JM_EXIT_OK;
    for (int i = 0; i < n; i++)
        part[i].next = part[i].epoch = -1;
    if (!pg || jm_pg_exec(pg,
                          "SELECT partition, next_offset, owner_epoch FROM consumer_offset"
                          " WHERE topic = $1",
                          1, params, &r, &err) != JM_OK) {
        fprintf(stderr, "jobmon: PostgreSQL: %s\n", err.msg);
        code = jm_rc_to_exit(err.rc);
    }
    for (int i = 0; code == JM_EXIT_OK && i < PQntuples(r); i++) {
        int k = atoi(PQgetvalue(r, i, 0));
        if (k >= 0 && k < n) {
            part[k].next = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            part[k].epoch = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        }
    }
    PQclear(r);
    jm_status_ctx_destroy(ctx);
    return code;
}

/* The watermarks of `topic`'s partitions: a new array of *n (caller frees), or NULL with err. */
static part_t *watermarks(jm_producer_t *p, const char *topic, int *n, jm_err_t *err)
{
    *n = 0;
    if (jm_producer_partitions(p, topic, KAFKA_TIMEOUT_MS, n, err) != JM_OK)
        return NULL;
    part_t *part = jm_calloc((size_t)*n + 1, sizeof(*part));
    for (int i = 0; i < *n; i++)
        if (jm_producer_watermarks(p, topic, i, KAFKA_TIMEOUT_MS, &part[i].low, &part[i].high,
                                   err) != JM_OK) {
            free(part);
            return NULL;
        }
    return part;
}

static void print_lag(const jm_cli_lag_opts_t *o, const char *topic, int n, const part_t *part,
                      int64_t total, const char *dlq, int64_t dead)
{
    if (!o->json) {
        printf("%-24s %9s %12s %12s %12s %11s\n", "TOPIC", "PARTITION", "APPLIED", "END", "LAG",
               "OWNER_EPOCH");
        for (int i = 0; i < n; i++) {
            char ep[24] = "-";
            if (part[i].epoch >= 0)
                snprintf(ep, sizeof(ep), "%" PRId64, part[i].epoch);
            printf("%-24s %9d %12" PRId64 " %12" PRId64 " %12" PRId64 " %11s\n", topic, i,
                   applied(&part[i]), part[i].high, lag(&part[i]), ep);
        }
        printf("lag %" PRId64 " event(s); dead letters in %s: %" PRId64 "\n", total, dlq, dead);
        return;
    }
    json_t *parts = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(
            parts, json_pack("{si sI sI sI so}", "partition", i, "applied",
                             (json_int_t)applied(&part[i]), "end", (json_int_t)part[i].high, "lag",
                             (json_int_t)lag(&part[i]), "owner_epoch",
                             part[i].epoch < 0 ? json_null() : json_integer(part[i].epoch)));
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
    int n = 0, n_dlq = 0, code = JM_EXIT_OK;
    int64_t total = 0, dead = 0;
    part_t *part = NULL, *dparts = NULL;
    jm_producer_t *p = jm_cli_producer(cli->cfg, &err);
    if (!p || !(part = watermarks(p, topic, &n, &err)) ||
        !(dparts = watermarks(p, dlq, &n_dlq, &err))) {
        fprintf(stderr, "jobmon: %s\n", err.msg);
        code = err.rc == JM_ERR_NOT_FOUND ? JM_EXIT_USAGE : jm_rc_to_exit(err.rc);
        goto out;
    }
    for (int i = 0; i < n_dlq; i++)
        dead += dparts[i].high - dparts[i].low;
    if ((code = applied_offsets(cli, topic, n, part)) != JM_EXIT_OK)
        goto out;
    for (int i = 0; i < n; i++)
        total += lag(&part[i]);
    print_lag(&o, topic, n, part, total, dlq, dead);
    if (o.max_lag >= 0 && total > o.max_lag) {
        fprintf(stderr, "jobmon: lag %" PRId64 " > --max-lag %" PRId64 "\n", total, o.max_lag);
        code = JM_EXIT_FAILED;
    }
out:
    jm_producer_destroy(p);
    free(part);
    free(dparts);
    return code;
}
