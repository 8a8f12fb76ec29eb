/*
 * evlog.c — the event_log table: every consumed message is recorded once, keyed by its event id,
 * which is also how duplicates are found.  Per batch, inside the caller's transaction: one SELECT
 * of the batch's ids that are already logged (jm_evlog_claim), then, once the handlers have
 * decided, one binary COPY of the new rows with their final outcome (jm_evlog_record).  It does
 * not decide outcomes (the handlers do) and does not commit.
 *
 * Why "look up, then COPY" is safe without ON CONFLICT: an event id is only ever logged by the
 * consumer of its partition (the message key is the workflow id, checked by the loop, so one
 * event's copies all land in one partition; a dead letter's derived id is its position), and
 * that partition has a single writer at a time, fenced by consumer_offset.owner_epoch: a zombie
 * that still writes loses at jm_offsets_advance and rolls back.  So no other transaction can
 * commit one of our ids between the look-up and the COPY.  Should it happen anyway (a message
 * with a valid id under a wrong key, replayed in another partition), the COPY fails on the
 * primary key and the batch is retried (JM_ERR_RETRY): the retry's look-up then sees the row.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consumer/consumer_int.h"

struct jm_evlog_s {
    jm_pgarr_t ids;
    jm_pgcopy_t copy;
    size_t *order; /* scratch: item indexes sorted by id */
    size_t cap_order;
};

static const char seen_sql[] = "SELECT event_id::text FROM event_log"
                               " WHERE event_id = ANY($1::uuid[])";

static const char copy_sql[] = "COPY event_log (event_id, topic, partition, kafka_offset,"
                               " workflow_id, type, outcome, reason, ts, raw)"
                               " FROM STDIN (FORMAT binary)";

jm_evlog_t *jm_evlog_new(void)
{
    return jm_calloc(1, sizeof(jm_evlog_t));
}

void jm_evlog_destroy(jm_evlog_t *el)
{
    if (!el)
        return;
    jm_pgarr_free(&el->ids);
    jm_pgcopy_free(&el->copy);
    free(el->order);
    free(el);
}

static int cmp_item_id(const void *a, const void *b, void *items)
{
    const jm_item_t *it = items;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(it[x].id, it[y].id);
    return c ? c : (x > y) - (x < y);
}

/* The first of equal ids in the batch is new, later ones are duplicates (as ON CONFLICT DO
 * NOTHING in one statement had it). */
static void mark_batch_duplicates(jm_evlog_t *el, jm_item_t *items, size_t n)
{
    if (n > el->cap_order) {
        el->cap_order = n;
        el->order = jm_realloc(el->order, n * sizeof(*el->order));
    }
    for (size_t i = 0; i < n; i++)
        el->order[i] = i;
    qsort_r(el->order, n, sizeof(*el->order), cmp_item_id, items);
    for (size_t i = 0; i < n; i++)
        items[el->order[i]].is_new =
            i == 0 || strcmp(items[el->order[i]].id, items[el->order[i - 1]].id) != 0;
}

/* Mark every item with this id as seen before (el->order sorts the items by id). */
static void mark_seen(jm_evlog_t *el, jm_item_t *items, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* the first position whose id is >= id */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(items[el->order[mid]].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < n && strcmp(items[el->order[lo]].id, id) == 0; lo++)
        items[el->order[lo]].is_new = 0;
}

jm_rc_t jm_evlog_claim(jm_evlog_t *el, jm_pg_t *pg, const char *topic, jm_item_t *items, size_t n,
                       jm_err_t *err)
{
    (void)topic;
    PGresult *res = NULL;
    if (n == 0)
        return JM_OK;
    mark_batch_duplicates(el, items, n);
    jm_pgarr_reset(&el->ids);
    for (size_t i = 0; i < n; i++)
        if (items[i].is_new)
            jm_pgarr_add_text(&el->ids, items[i].id, strlen(items[i].id));
    const char *params[1] = {jm_pgarr_finish(&el->ids)};
    jm_rc_t rc = jm_pg_exec(pg, seen_sql, 1, params, &res, err);
    if (rc != JM_OK)
        return rc;
    for (int r = 0; r < PQntuples(res); r++)
        mark_seen(el, items, n, PQgetvalue(res, r, 0));
    PQclear(res);
    return JM_OK;
}

static void copy_text(jm_pgcopy_t *c, const char *s)
{
    if (s && *s)
        jm_pgcopy_bytes(c, s, strlen(s));
    else
        jm_pgcopy_null(c);
}

static void copy_item(jm_pgcopy_t *c, const char *topic, const jm_item_t *it)
{
    jm_pgcopy_row(c, 10);
    jm_pgcopy_uuid(c, it->id);
    jm_pgcopy_bytes(c, topic, strlen(topic));
    jm_pgcopy_int4(c, it->partition);
    jm_pgcopy_int8(c, it->offset);
    if (it->workflow_id > 0)
        jm_pgcopy_int8(c, it->workflow_id);
    else
        jm_pgcopy_null(c);
    copy_text(c, it->type);
    if (it->dead) {
        copy_text(c, "dead_letter");
        jm_pgcopy_bytes(c, it->reason, strlen(it->reason));
        jm_pgcopy_null(c);
    } else {
        copy_text(c, jm_outcome_name(it->outcome));
        if (it->outcome == JM_OUTCOME_APPLIED)
            jm_pgcopy_null(c);
        else
            jm_pgcopy_bytes(c, it->reason, strlen(it->reason));
        jm_pgcopy_ts_ms(c, it->ts_ms);
    }
    jm_pgcopy_bytes(c, it->raw, it->raw_len);
}

jm_rc_t jm_evlog_record(jm_evlog_t *el, jm_pg_t *pg, const char *topic, const jm_item_t *items,
                        size_t n, jm_err_t *err)
{
    jm_pgcopy_reset(&el->copy);
    for (size_t i = 0; i < n; i++)
        if (items[i].is_new)
            copy_item(&el->copy, topic, &items[i]);
    if (el->copy.rows == 0)
        return JM_OK;
    return jm_pgcopy_send(&el->copy, jm_pg_conn(pg), copy_sql, err);
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
