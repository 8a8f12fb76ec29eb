/*
 * relay.c — local workers' reports to Kafka as ti.reports events (relay.h).
 *
 * Tokens: a worker datagram's token has its channel id in the high 32 bits (never 0); a
 * ti.reports event's token has 0 there and the event's sequence number below, so one delivery
 * callback on the report serves both.
 */
#include <stdlib.h>
#include <string.h>

#include "distributors/relay.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"

typedef struct {
    int64_t ti_id;
    json_t *running, *result; /* owned; NULL = none */
    uint64_t tok[2];          /* the datagrams it came in */
    char *raw[2];             /* their bytes, for the one-by-one fallback */
    size_t rawlen[2];
    size_t ntok;
    int64_t at_ms; /* arrival */
} item_t;

typedef struct {
    uint64_t token; /* of the ti.reports event */
    uint64_t *toks; /* the datagrams it carries (owned) */
    size_t n;
} flight_t;

struct jm_relay_s {
    jm_report_t *r;
    int64_t workflow_id, run_id;
    int linger_ms;
    jm_relay_answer_fn answer;
    void *arg;
    item_t *items; /* held, in arrival order */
    size_t n, cap, bytes, nresults;
    int64_t first_ms, first_result_ms; /* arrival of the oldest held item / result */
    flight_t *fl;                      /* published, awaiting delivery */
    size_t nfl, capfl;
    uint32_t seq;
};

static void delivered(void *arg, uint64_t token, int ok);

jm_relay_t *jm_relay_new(jm_report_t *r, int64_t workflow_id, int64_t run_id, int linger_ms,
                         jm_relay_answer_fn answer, void *arg)
{
    jm_relay_t *rl = jm_calloc(1, sizeof(*rl));
    *rl = (jm_relay_t){.r = r,
                       .workflow_id = workflow_id,
                       .run_id = run_id,
                       .linger_ms = linger_ms > 0 ? linger_ms : 0,
                       .answer = answer,
                       .arg = arg};
    jm_report_set_ack_cb(r, delivered, rl);
    return rl;
}

void jm_relay_destroy(jm_relay_t *rl)
{
    if (!rl)
        return;
    jm_relay_flush(rl, 1);
    jm_report_set_ack_cb(rl->r, NULL, NULL);
    for (size_t i = 0; i < rl->nfl; i++)
        free(rl->fl[i].toks);
    free(rl->fl);
    free(rl->items);
    free(rl);
}

size_t jm_relay_held(const jm_relay_t *rl)
{
    return rl->n;
}

size_t jm_relay_in_flight(const jm_relay_t *rl)
{
    return rl->nfl;
}

/* The flight of ti.reports `token`, removed from the list (caller frees), or NULL. */
static int take_flight(jm_relay_t *rl, uint64_t token, flight_t *out)
{
    for (size_t i = 0; i < rl->nfl; i++)
        if (rl->fl[i].token == token) {
            *out = rl->fl[i];
            rl->fl[i] = rl->fl[--rl->nfl];
            return 1;
        }
    return 0;
}

static void delivered(void *arg, uint64_t token, int ok)
{
    jm_relay_t *rl = arg;
    flight_t f;
    if (token >> 32) {
        rl->answer(rl->arg, token, ok); /* an event relayed alone */
        return;
    }
    if (!take_flight(rl, token, &f))
        return;
    if (!ok)
        jm_log(JM_LOG_WARN, "relay",
               "ti.reports of %zu report(s) not delivered: the workers "
               "publish them themselves",
               f.n);
    for (size_t i = 0; i < f.n; i++)
        rl->answer(rl->arg, f.toks[i], ok);
    free(f.toks);
}

static void item_free(item_t *it)
{
    json_decref(it->running);
    json_decref(it->result);
    for (size_t k = 0; k < it->ntok; k++)
        free(it->raw[k]);
}

/* One held item as a ti.reports item (steals its running/result). */
static json_t *item_json(item_t *it)
{
    json_t *o = json_pack("{sI so so}", "ti_id", (json_int_t)it->ti_id, "running",
                          it->running ? it->running : json_null(), "result",
                          it->result ? it->result : json_null());
    it->running = it->result = NULL;
    return o;
}

/* Send the held datagrams one by one (the ti.reports could not be published). */
static void forward_each(jm_relay_t *rl, item_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < items[i].ntok; k++) {
            jm_err_t err;
            if (jm_report_forward(rl->r, items[i].raw[k], items[i].rawlen[k], items[i].tok[k],
                                  &err) != JM_OK) {
                jm_log(JM_LOG_WARN, "relay", "ti %lld: report not relayed: %s",
                       (long long)items[i].ti_id, err.msg);
                rl->answer(rl->arg, items[i].tok[k], 0);
            }
        }
}

/* Publish every held item as one ti.reports. */
static void publish(jm_relay_t *rl)
{
    size_t n = rl->n, nt = 0;
    item_t *items = rl->items;
    rl->items = NULL;
    rl->n = rl->cap = rl->bytes = rl->nresults = 0;
    if (++rl->seq == 0)
        rl->seq = 1; /* token 0 is not a token */
    flight_t f = {.token = rl->seq};
    for (size_t i = 0; i < n; i++)
        nt += items[i].ntok;
    f.toks = jm_calloc(nt, sizeof(*f.toks));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < items[i].ntok; k++)
            f.toks[f.n++] = items[i].tok[k];
        json_array_append_new(arr, item_json(&items[i]));
    }
    if (rl->nfl == rl->capfl) {
        rl->capfl = rl->capfl ? 2 * rl->capfl : 8;
        rl->fl = jm_realloc(rl->fl, rl->capfl * sizeof(*rl->fl));
    }
    rl->fl[rl->nfl++] = f; /* before sending: an events file answers at once */
    json_t *p = json_pack("{sI so}", "run_id", (json_int_t)rl->run_id, "items", arr);
    jm_err_t err;
    jm_rc_t rc = jm_report_send_tracked(rl->r, jm_event_new(JM_EV_TI_REPORTS, rl->workflow_id, p),
                                        f.token, &err);
    if (rc != JM_OK && take_flight(rl, f.token, &f)) {
        jm_log(JM_LOG_WARN, "relay", "ti.reports of %zu instance(s): %s; relayed one by one", n,
               err.msg);
        free(f.toks);
        forward_each(rl, items, n);
    }
    for (size_t i = 0; i < n; i++)
        item_free(&items[i]);
    free(items);
}

void jm_relay_flush(jm_relay_t *rl, int force)
{
    if (rl->n == 0)
        return;
    int64_t now = jm_time_mono_ms();
    int due = force || (rl->nresults > 0 && now - rl->first_result_ms >= rl->linger_ms);
    /* a ti.running still without its result waits JM_RELAY_RUNNING_HOLD_MS at most */
    for (size_t i = 0; !due && i < rl->n && now - rl->first_ms >= JM_RELAY_RUNNING_HOLD_MS; i++)
        due = !rl->items[i].result && now - rl->items[i].at_ms >= JM_RELAY_RUNNING_HOLD_MS;
    if (due)
        publish(rl);
}

/* ti.done's payload as an item's result. */
static json_t *done_result(json_t *pl)
{
    return json_pack("{ss si ss sO sO sO}", "status", "D", "exit_code", 0, "message", "",
                     "stdout_tail", json_object_get(pl, "stdout_tail"), "stderr_tail",
                     json_object_get(pl, "stderr_tail"), "usage", json_object_get(pl, "usage"));
}

/* The held item that takes a result for ti_id: its ti.running's, or a new one. */
static item_t *item_for(jm_relay_t *rl, int64_t ti_id, int result)
{
    if (result)
        for (size_t i = rl->n; i-- > 0;)
            if (rl->items[i].ti_id == ti_id && !rl->items[i].result)
                return &rl->items[i];
    if (rl->n == rl->cap) {
        rl->cap = rl->cap ? 2 * rl->cap : 16;
        rl->items = jm_realloc(rl->items, rl->cap * sizeof(*rl->items));
    }
    int64_t now = jm_time_mono_ms();
    if (rl->n == 0)
        rl->first_ms = now;
    item_t *it = &rl->items[rl->n++];
    *it = (item_t){.ti_id = ti_id, .at_ms = now};
    return it;
}

/* Hold report `ev` (a ti.running, ti.done or ti.error of our workflow). */
static void hold(jm_relay_t *rl, jm_event_t *ev, const char *buf, size_t len, uint64_t token)
{
    if (rl->n >= JM_RELAY_MAX_ITEMS || rl->bytes + len > JM_RELAY_MAX_BYTES)
        jm_relay_flush(rl, 1);
    json_t *pl = ev->payload;
    int64_t ti_id = (int64_t)json_integer_value(json_object_get(pl, "ti_id"));
    int result = ev->type != JM_EV_TI_RUNNING;
    item_t *it = item_for(rl, ti_id, result);
    json_object_del(pl, "ti_id");
    if (!result) {
        it->running = json_incref(pl);
    } else {
        it->result = ev->type == JM_EV_TI_DONE ? done_result(pl) : json_incref(pl);
        if (rl->nresults++ == 0)
            rl->first_result_ms = jm_time_mono_ms();
    }
    it->tok[it->ntok] = token;
    it->raw[it->ntok] = jm_strndup(buf, len);
    it->rawlen[it->ntok++] = len;
    rl->bytes += len;
}

jm_rc_t jm_relay_take(jm_relay_t *rl, const char *buf, size_t len, uint64_t token, int *result,
                      jm_err_t *err)
{
    jm_event_t *ev = NULL;
    if (result)
        *result = 0;
    jm_rc_t rc = jm_event_decode(buf, len, &ev, err);
    if (rc == JM_OK)
        rc = jm_event_validate(ev, NULL, err);
    if (rc != JM_OK) {
        jm_event_destroy(ev);
        return rc;
    }
    int final = ev->type == JM_EV_TI_DONE || ev->type == JM_EV_TI_ERROR;
    int report = final || ev->type == JM_EV_TI_RUNNING;
    if (result)
        *result = final;
    if (report && ev->workflow_id == rl->workflow_id) {
        hold(rl, ev, buf, len, token);
        jm_event_destroy(ev);
        return JM_OK;
    }
    jm_event_destroy(ev);
    jm_relay_flush(rl, 1); /* what the worker sent before goes first */
    return jm_report_forward(rl->r, buf, len, token, err);
}

void jm_relay_take_msg(jm_relay_t *rl, jm_chan_t *c, uint32_t cid, uint32_t n, const char *buf,
                       size_t len, const char *who, int *result)
{
    jm_err_t err;
    if (jm_relay_take(rl, buf, len, (uint64_t)cid << 32 | n, result, &err) == JM_OK)
        return;
    jm_log(JM_LOG_WARN, "relay", "job %s: event %u of its worker: %s", who, n, err.msg);
    (void)jm_report_chan_ack(c, n, 0);
}
