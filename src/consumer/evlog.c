/*
 * evlog.c — the event_log table: every consumed message is recorded once, keyed by its event id,
 * which is also how duplicates are found (a claim that inserts nothing means "seen before").
 * One multi-row statement per batch (unnest of array parameters), inside the caller's
 * transaction.  It does not decide outcomes (the handlers do) and does not commit.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consumer/consumer_int.h"
#include "jobmon/jmtime.h"

enum { A_ID, A_PART, A_OFF, A_WF, A_TYPE, A_OUTCOME, A_REASON, A_TS, A_RAW, A__CNT };

struct jm_evlog_s {
    jm_pgarr_t arr[A__CNT];
};

static const char claim_sql[] =
    "WITH u AS (SELECT * FROM unnest($2::uuid[], $3::int[], $4::bigint[], $5::bigint[],"
    "  $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::bytea[])"
    "  WITH ORDINALITY AS u(id, p, o, wf, ty, oc, re, ts, raw, ord)),"
    " ins AS (INSERT INTO event_log (event_id, topic, partition, kafka_offset, workflow_id, type,"
    "  outcome, reason, ts, raw)"
    "  SELECT id, $1, p, o, wf, ty, oc, re, ts, raw FROM u ORDER BY ord"
    "  ON CONFLICT (event_id) DO NOTHING RETURNING partition, kafka_offset)"
    " SELECT u.ord FROM ins JOIN u ON u.p = ins.partition AND u.o = ins.kafka_offset";

static const char record_sql[] = "UPDATE event_log e SET outcome = u.oc, reason = u.re"
                                 " FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, oc, re)"
                                 " WHERE e.event_id = u.id";

jm_evlog_t *jm_evlog_new(void)
{
    return jm_calloc(1, sizeof(jm_evlog_t));
}

void jm_evlog_destroy(jm_evlog_t *el)
{
    if (!el)
        return;
    for (int i = 0; i < A__CNT; i++)
        jm_pgarr_free(&el->arr[i]);
    free(el);
}

static void add_item(jm_evlog_t *el, const jm_item_t *it)
{
    jm_pgarr_t *a = el->arr;
    char ts[32];
    jm_pgarr_add_text(&a[A_ID], it->id, strlen(it->id));
    jm_pgarr_add_int(&a[A_PART], it->partition);
    jm_pgarr_add_int(&a[A_OFF], it->offset);
    if (it->workflow_id > 0)
        jm_pgarr_add_int(&a[A_WF], it->workflow_id);
    else
        jm_pgarr_add_null(&a[A_WF]);
    jm_pgarr_add_text(&a[A_TYPE], it->type[0] ? it->type : NULL, strlen(it->type));
    if (it->dead) {
        jm_pgarr_add_text(&a[A_OUTCOME], "dead_letter", 11);
        jm_pgarr_add_text(&a[A_REASON], it->reason, strlen(it->reason));
        jm_pgarr_add_null(&a[A_TS]);
    } else {
        jm_pgarr_add_text(&a[A_OUTCOME], "applied", 7);
        jm_pgarr_add_null(&a[A_REASON]);
        jm_time_format_iso(it->ts_ms, ts, sizeof(ts));
        jm_pgarr_add_text(&a[A_TS], ts, strlen(ts));
    }
    jm_pgarr_add_bytea(&a[A_RAW], it->raw, it->raw_len);
}

jm_rc_t jm_evlog_claim(jm_evlog_t *el, jm_pg_t *pg, const char *topic, jm_item_t *items, size_t n,
                       jm_err_t *err)
{
    PGresult *res = NULL;
    const char *params[A__CNT + 1];
    for (int i = 0; i < A__CNT; i++)
        jm_pgarr_reset(&el->arr[i]);
    for (size_t i = 0; i < n; i++) {
        items[i].is_new = 0;
        add_item(el, &items[i]);
    }
    params[0] = topic;
    for (int i = 0; i < A__CNT; i++)
        params[i + 1] = jm_pgarr_finish(&el->arr[i]);
    jm_rc_t rc = jm_pg_exec(pg, claim_sql, A__CNT + 1, params, &res, err);
    if (rc != JM_OK)
        return rc;
    for (int r = 0; r < PQntuples(res); r++) {
        long ord = strtol(PQgetvalue(res, r, 0), NULL, 10);
        JM_ASSERT(ord >= 1 && (size_t)ord <= n);
        items[ord - 1].is_new = 1;
    }
    PQclear(res);
    return JM_OK;
}

jm_rc_t jm_evlog_record(jm_evlog_t *el, jm_pg_t *pg, const jm_item_t *items, size_t n,
                        jm_err_t *err)
{
    jm_pgarr_t *a = el->arr;
    size_t k = 0;
    jm_pgarr_reset(&a[0]);
    jm_pgarr_reset(&a[1]);
    jm_pgarr_reset(&a[2]);
    for (size_t i = 0; i < n; i++) {
        const jm_item_t *it = &items[i];
        if (!it->is_new || it->dead || it->res.outcome == JM_OUTCOME_APPLIED)
            continue;
        const char *oc = jm_outcome_name(it->res.outcome);
        jm_pgarr_add_text(&a[0], it->id, strlen(it->id));
        jm_pgarr_add_text(&a[1], oc, strlen(oc));
        jm_pgarr_add_text(&a[2], it->res.reason, strlen(it->res.reason));
        k++;
    }
    if (k == 0)
        return JM_OK;
    const char *params[3] = {jm_pgarr_finish(&a[0]), jm_pgarr_finish(&a[1]),
                             jm_pgarr_finish(&a[2])};
    return jm_pg_exec(pg, record_sql, 3, params, NULL, err);
}

void jm_evlog_inspect_dead(jm_item_t *it, const char *topic)
{
    json_error_t jerr;
    json_t *root = json_loadb(it->raw, it->raw_len, JSON_DISABLE_EOF_CHECK, &jerr);
    json_t *v;
    it->id[0] = '\0';
    if (root && json_is_object(root)) {
        v = json_object_get(root, "id");
        if (json_is_string(v) && jm_uuid_is_valid(json_string_value(v), json_string_length(v)))
            memcpy(it->id, json_string_value(v), JM_UUID_STR_LEN + 1);
        v = json_object_get(root, "workflow_id");
        if (json_is_integer(v) && json_integer_value(v) > 0)
            it->workflow_id = json_integer_value(v);
        v = json_object_get(root, "type");
        if (json_is_string(v) && json_string_length(v) < sizeof(it->type) &&
            !memchr(json_string_value(v), '\0', json_string_length(v)))
            memcpy(it->type, json_string_value(v), json_string_length(v) + 1);
    }
    json_decref(root);
    if (!it->id[0])
        jm_dead_letter_uuid(topic, it->partition, it->offset, it->id);
}
