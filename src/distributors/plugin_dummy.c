/*
 * plugin_dummy.c — runs nothing: every submitted instance is reported RUNNING then DONE by the
 * plugin itself, at full speed, for exercising the machinery (the end-to-end benchmark).
 *
 * Submission only records the instance; the reports are published from poll(), i.e. after the
 * distributor published ti.launched, so the FSM sees I→O→R→D in order.  They go out as
 * ti.reports events (R and D of many instances in one event).  Ids are even random
 * numbers as in Jobmon; remote exit info is U; terminate does nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "distributors/plugin.h"
#include "jobmon/event.h"
#include "jobmon/log.h"

/* instances per ti.reports event: ~330 bytes each, well under the 900 kB message limit */
#define REPORTS_MAX 500

typedef struct {
    int64_t *ti_ids;
    char **ids;
    size_t n, cap;
    char host[256];
    uint64_t seq;
} dummy_t;

static jm_rc_t dummy_start(jm_plugin_t *pl, jm_err_t *err)
{
    dummy_t *d = pl->state;
    (void)err;
    gethostname(d->host, sizeof(d->host) - 1);
    if (!d->host[0])
        strcpy(d->host, "localhost");
    return JM_OK;
}

static void dummy_stop(jm_plugin_t *pl)
{
    (void)pl;
}

static jm_rc_t dummy_submit(jm_plugin_t *pl, const jm_dist_ti_t *ti, char **id, jm_err_t *err)
{
    dummy_t *d = pl->state;
    (void)err;
    *id = jm_asprintf("%llu", (unsigned long long)(((uint64_t)getpid() << 24) + ++d->seq) * 2);
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->ti_ids = jm_realloc(d->ti_ids, d->cap * sizeof(*d->ti_ids));
        d->ids = jm_realloc(d->ids, d->cap * sizeof(*d->ids));
    }
    d->ti_ids[d->n] = ti->ti_id;
    d->ids[d->n++] = jm_strdup(*id);
    return JM_OK;
}

static jm_rc_t dummy_alive(jm_plugin_t *pl, const char *const *ids, size_t n, int *alive,
                           jm_err_t *err)
{
    (void)pl;
    (void)ids;
    (void)err;
    for (size_t i = 0; i < n; i++)
        alive[i] = 0;
    return JM_OK;
}

static jm_rc_t dummy_terminate(jm_plugin_t *pl, const char *const *ids, size_t n, jm_err_t *err)
{
    (void)pl;
    (void)ids;
    (void)err;
    jm_log(JM_LOG_WARN, "dummy", "terminate of %zu job(s): nothing runs", n);
    return JM_OK;
}

static jm_rc_t dummy_exit_info(jm_plugin_t *pl, const char *id, char *status, char *msg,
                               size_t msgsz, jm_err_t *err)
{
    (void)pl;
    (void)err;
    *status = 'U';
    snprintf(msg, msgsz, "dummy job %s: no exit information", id);
    return JM_OK;
}

/* One instance's reports: R then D, as a worker of a no-op command would publish them. */
static json_t *dummy_report(const dummy_t *d, const jm_plugin_env_t *env, size_t i)
{
    return json_pack("{sI s{ss si ss si ss ss} s{ss si ss ss ss s{si si si}}}", "ti_id",
                     (json_int_t)d->ti_ids[i], "running", "host", d->host, "pid", (int)getpid(),
                     "distributor_id", d->ids[i], "next_report_s", env->next_report_s,
                     "stdout_path", "/dev/null", "stderr_path", "/dev/null", "result", "status",
                     "D", "exit_code", 0, "message", "", "stdout_tail", "", "stderr_tail", "",
                     "usage", "wall_ms", 0, "cpu_ms", 0, "maxrss_kb", 0);
}

/* Everything submitted since the last poll runs and succeeds: ti.reports events of up to
 * REPORTS_MAX instances each (one event_log row and one decode per event instead of two per
 * instance), enqueued without waiting for each acknowledgement (the producer batches them). */
static void dummy_poll(jm_plugin_t *pl)
{
    dummy_t *d = pl->state;
    const jm_plugin_env_t *env = pl->env;
    jm_err_t err;
    for (size_t off = 0; off < d->n; off += REPORTS_MAX) {
        json_t *items = json_array();
        for (size_t i = off; i < d->n && i < off + REPORTS_MAX; i++)
            json_array_append_new(items, dummy_report(d, env, i));
        json_t *p = json_pack("{sI so}", "run_id", (json_int_t)env->run_id, "items", items);
        jm_event_t *ev = jm_event_new(JM_EV_TI_REPORTS, env->workflow_id, p);
        if (jm_report_send(env->report, ev, 0, &err) != JM_OK)
            jm_log(JM_LOG_ERROR, "dummy", "ti.reports of %zu instance(s): %s",
                   json_array_size(items), err.msg);
    }
    for (size_t i = 0; i < d->n; i++)
        free(d->ids[i]);
    d->n = 0;
}

static void dummy_destroy(jm_plugin_t *pl)
{
    if (!pl)
        return;
    dummy_t *d = pl->state;
    for (size_t i = 0; i < d->n; i++)
        free(d->ids[i]);
    free(d->ids);
    free(d->ti_ids);
    free(d);
    free(pl);
}

jm_plugin_t *jm_plugin_dummy_new(const jm_plugin_env_t *env)
{
    jm_plugin_t *pl = jm_calloc(1, sizeof(*pl));
    *pl = (jm_plugin_t){
        .name = "dummy",
        .env = env,
        .state = jm_calloc(1, sizeof(dummy_t)),
        .start = dummy_start,
        .stop = dummy_stop,
        .submit = dummy_submit,
        .get_submitted_or_running = dummy_alive,
        .terminate = dummy_terminate,
        .get_remote_exit_info = dummy_exit_info,
        .poll = dummy_poll,
        .destroy = dummy_destroy,
    };
    return pl;
}
