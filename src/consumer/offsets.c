/*
 * offsets.c — partition ownership in consumer_offset: the truth of how far each partition has
 * been applied.  A consumer that is assigned partitions bumps their owner_epoch; every batch
 * advances next_offset only where both the epoch and the expected offset still match, so a
 * zombie (a consumer that lost the partition without noticing) commits nothing.
 * It does not talk to Kafka (the loop seeks and commits there).
 */
#include <stdlib.h>
#include <string.h>

#include "consumer/consumer_int.h"

static const char claim_sql[] =
    "INSERT INTO consumer_offset AS c (topic, partition, next_offset, owner_epoch)"
    " SELECT $1, p, 0, 1 FROM unnest($2::int[]) AS p"
    " ON CONFLICT (topic, partition) DO UPDATE SET owner_epoch = c.owner_epoch + 1"
    " RETURNING partition, owner_epoch, next_offset";

static const char advance_sql[] =
    "UPDATE consumer_offset c SET next_offset = u.nx"
    " FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(p, ep, ex, nx)"
    " WHERE c.topic = $1 AND c.partition = u.p AND c.owner_epoch = u.ep AND c.next_offset = u.ex"
    " RETURNING c.partition";

static jm_owned_t *find(jm_owned_t *parts, size_t n, int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (parts[i].partition == partition)
            return &parts[i];
    return NULL;
}

jm_rc_t jm_offsets_claim(jm_pg_t *pg, const char *topic, jm_owned_t *parts, size_t n, jm_err_t *err)
{
    jm_pgarr_t a = {0};
    PGresult *res = NULL;
    jm_rc_t rc;
    jm_pgarr_reset(&a);
    for (size_t i = 0; i < n; i++)
        jm_pgarr_add_int(&a, parts[i].partition);
    const char *params[2] = {topic, jm_pgarr_finish(&a)};
    rc = jm_pg_exec(pg, claim_sql, 2, params, &res, err);
    if (rc != JM_OK)
        goto out;
    JM_ASSERT((size_t)PQntuples(res) == n);
    for (int r = 0; r < PQntuples(res); r++) {
        jm_owned_t *o = find(parts, n, (int32_t)strtol(PQgetvalue(res, r, 0), NULL, 10));
        JM_ASSERT(o);
        o->epoch = strtoll(PQgetvalue(res, r, 1), NULL, 10);
        o->next_offset = strtoll(PQgetvalue(res, r, 2), NULL, 10);
        o->fenced = 0;
    }
out:
    PQclear(res);
    jm_pgarr_free(&a);
    return rc;
}

jm_rc_t jm_offsets_advance(jm_pg_t *pg, const char *topic, jm_owned_t *parts, const int64_t *next,
                           size_t n, jm_err_t *err)
{
    jm_pgarr_t a[4] = {{0}};
    PGresult *res = NULL;
    jm_rc_t rc;
    for (int k = 0; k < 4; k++)
        jm_pgarr_reset(&a[k]);
    for (size_t i = 0; i < n; i++) {
        jm_pgarr_add_int(&a[0], parts[i].partition);
        jm_pgarr_add_int(&a[1], parts[i].epoch);
        jm_pgarr_add_int(&a[2], parts[i].next_offset);
        jm_pgarr_add_int(&a[3], next[i]);
        parts[i].fenced = 1;
    }
    const char *params[5] = {topic, jm_pgarr_finish(&a[0]), jm_pgarr_finish(&a[1]),
                             jm_pgarr_finish(&a[2]), jm_pgarr_finish(&a[3])};
    rc = jm_pg_exec(pg, advance_sql, 5, params, &res, err);
    if (rc != JM_OK)
        goto out;
    for (int r = 0; r < PQntuples(res); r++) {
        jm_owned_t *o = find(parts, n, (int32_t)strtol(PQgetvalue(res, r, 0), NULL, 10));
        JM_ASSERT(o);
        o->fenced = 0;
    }
    if ((size_t)PQntuples(res) != n)
        rc = jm_err_set(err, JM_ERR_CONFLICT, "%s: %zu of %zu partitions fenced by a newer owner",
                        topic, n - (size_t)PQntuples(res), n);
out:
    if (rc != JM_OK && rc != JM_ERR_CONFLICT)
        for (size_t i = 0; i < n; i++)
            parts[i].fenced = 0;
    PQclear(res);
    for (int k = 0; k < 4; k++)
        jm_pgarr_free(&a[k]);
    return rc;
}
