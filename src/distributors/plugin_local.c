/*
 * plugin_local.c — the plugin functions over jm_localproc_t shared by plugin_sequential.c and
 * plugin_multiprocess.c.  Remote exit info: the worker's exit code when it is remembered (U with
 * the code: the worker went silent, so its report was lost), otherwise "not available".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributors/plugin_local_int.h"

static jm_rc_t local_start(jm_plugin_t *pl, jm_err_t *err)
{
    jm_local_state_t *s = pl->state;
    (void)err;
    s->lp = jm_localproc_new(pl->env, s->slots, s->pool);
    jm_localproc_prestart(s->lp); /* while the first instances are being queued */
    return JM_OK;
}

static void local_stop(jm_plugin_t *pl)
{
    jm_local_state_t *s = pl->state;
    jm_localproc_destroy(s->lp);
    s->lp = NULL;
}

static jm_rc_t local_submit(jm_plugin_t *pl, const jm_dist_ti_t *ti, char **id, jm_err_t *err)
{
    jm_local_state_t *s = pl->state;
    (void)err;
    *id = jm_asprintf("%llu", (unsigned long long)++s->next_job);
    jm_localproc_enqueue(s->lp, ti, *id);
    return JM_OK;
}

static jm_rc_t local_submit_array(jm_plugin_t *pl, jm_dist_ti_t *const *tis, size_t n, char **ids,
                                  jm_err_t *err)
{
    jm_local_state_t *s = pl->state;
    (void)err;
    unsigned long long job = ++s->next_job;
    for (size_t i = 0; i < n; i++) {
        ids[i] = jm_asprintf("%llu_%zu", job, i + 1);
        jm_localproc_enqueue(s->lp, tis[i], ids[i]);
    }
    return JM_OK;
}

static jm_rc_t local_alive(jm_plugin_t *pl, const char *const *ids, size_t n, int *alive,
                           jm_err_t *err)
{
    jm_local_state_t *s = pl->state;
    (void)err;
    for (size_t i = 0; i < n; i++)
        alive[i] = jm_localproc_alive(s->lp, ids[i]);
    return JM_OK;
}

static jm_rc_t local_terminate(jm_plugin_t *pl, const char *const *ids, size_t n, jm_err_t *err)
{
    jm_local_state_t *s = pl->state;
    (void)err;
    for (size_t i = 0; i < n; i++)
        jm_localproc_terminate(s->lp, ids[i]);
    return JM_OK;
}

static jm_rc_t local_exit_info(jm_plugin_t *pl, const char *id, char *status, char *msg,
                               size_t msgsz, jm_err_t *err)
{
    jm_local_state_t *s = pl->state;
    int code;
    if (jm_localproc_exit_code(s->lp, id, &code) != JM_OK)
        return jm_err_set(err, JM_ERR_NOT_FOUND, "exit info of job %s not available", id);
    *status = 'U';
    if (code == 128 + SIGKILL)
        snprintf(msg, msgsz, "worker of job %s was killed (SIGKILL) before reporting", id);
    else
        snprintf(msg, msgsz, "worker of job %s exited with code %d without a report", id, code);
    return JM_OK;
}

static void local_poll(jm_plugin_t *pl)
{
    jm_local_state_t *s = pl->state;
    if (s->lp)
        jm_localproc_poll(s->lp);
}

static size_t local_pollfds(jm_plugin_t *pl, struct pollfd *fds, size_t max)
{
    jm_local_state_t *s = pl->state;
    return s->lp ? jm_localproc_pollfds(s->lp, fds, max) : 0;
}

static void local_destroy(jm_plugin_t *pl)
{
    if (!pl)
        return;
    jm_local_state_t *s = pl->state;
    jm_localproc_destroy(s->lp);
    free(s);
    free(pl);
}

jm_plugin_t *jm_plugin_local_new(const jm_plugin_env_t *env, const char *name, int slots,
                                 int arrays, int pool)
{
    jm_plugin_t *pl = jm_calloc(1, sizeof(*pl));
    jm_local_state_t *s = jm_calloc(1, sizeof(*s));
    s->slots = slots;
    s->pool = pool;
    *pl = (jm_plugin_t){
        .name = name,
        .env = env,
        .workers = JM_WORKERS_LOCAL,
        .state = s,
        .start = local_start,
        .stop = local_stop,
        .submit = local_submit,
        .submit_array = arrays ? local_submit_array : NULL,
        .get_submitted_or_running = local_alive,
        .terminate = local_terminate,
        .get_remote_exit_info = local_exit_info,
        .poll = local_poll,
        .pollfds = local_pollfds,
        .destroy = local_destroy,
    };
    return pl;
}
