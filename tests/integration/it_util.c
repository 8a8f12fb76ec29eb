/*
 * it_util.c — helpers shared by the integration suites: a Kafka topic of their own, reading a file,
 * the schema's migrations.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it.h"
#include "jobmon/producer.h"

/* Create topic `name` with `partitions` partitions, or delete it when partitions is 0. */
static void topic_admin(const char *name, int partitions)
{
    jm_err_t err;
    ck_assert_msg(jm_kafka_topic_admin(it_env("JOBMON_KAFKA_BROKERS"), name, partitions, 30000,
                                       &err) == JM_OK,
                  "%s", err.msg);
}

void it_create_topic(const char *name, int partitions)
{
    ck_assert(partitions > 0);
    topic_admin(name, partitions);
}

void it_delete_topic(const char *name)
{
    topic_admin(name, 0);
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
