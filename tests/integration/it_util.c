/*
 * it_util.c — helpers shared by the integration suites: a Kafka topic of their own, reading a file,
 * the schema's migrations.
 */
#include <glob.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it.h"

void it_create_topic(const char *name, int partitions)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert(rd_kafka_conf_set(conf, "bootstrap.servers", it_env("JOBMON_KAFKA_BROKERS"), errstr,
                                sizeof(errstr)) == RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ck_assert_msg(rk != NULL, "%s", errstr);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, errstr, sizeof(errstr));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    ck_assert_msg(ev != NULL, "CreateTopics timed out");
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    ck_assert_msg(n == 1 && rd_kafka_topic_result_error(tr[0]) == 0, "create %s: %s", name,
                  n ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
}

char *it_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert(fread(s, 1, (size_t)n, f) == (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

int it_file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

char *it_schema_sql(void)
{
    glob_t g;
    ck_assert_int_eq(glob(JM_TOP_SRCDIR "/schemas/sql/[0-9][0-9][0-9]_*.sql", 0, NULL, &g), 0);
    size_t len = 0;
    char *all = calloc(1, 1);
    for (size_t i = 0; i < g.gl_pathc; i++) { /* glob sorts: NNN order */
        if (strstr(g.gl_pathv[i], "/001_plumbing.sql"))
            continue;
        char *s = it_slurp(g.gl_pathv[i]);
        size_t n = strlen(s);
        all = realloc(all, len + n + 2);
        memcpy(all + len, s, n);
        len += n;
        all[len++] = '\n';
        all[len] = 0;
        free(s);
    }
    globfree(&g);
    return all;
}
