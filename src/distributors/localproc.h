/*
 * localproc.h — N local jobmon-worker processes fed from a FIFO queue: the engine behind the
 * sequential (N = 1) and multiprocess plugins, one-shot or pooled (see localproc.c).  Job ids are
 * "<n>" or "<n>_<step>". Children are reaped in jm_localproc_poll() (the distributor calls it on
 * SIGCHLD and on every loop); it does not install signal handlers.
 */
#ifndef JOBMON_DISTRIBUTORS_LOCALPROC_H
#define JOBMON_DISTRIBUTORS_LOCALPROC_H

#include <poll.h>

#include "distributors/plugin.h"

typedef struct jm_localproc_s jm_localproc_t;

/* pool: run instances in long-lived `jobmon-worker --serve` processes (needs env->report). */
jm_localproc_t *jm_localproc_new(const jm_plugin_env_t *env, int slots, int pool);
void jm_localproc_destroy(jm_localproc_t *lp); /* kills what still runs; accepts NULL */
/* Queue a worker for ti under distributor id `id` (copied). */
void jm_localproc_enqueue(jm_localproc_t *lp, const jm_dist_ti_t *ti, const char *id);
/* Pooled: start the worker processes now (all slots), so they are up and waiting when the
 * first instances are queued.  Does nothing without pooling. */
void jm_localproc_prestart(jm_localproc_t *lp);
/* Reap finished workers, start queued ones while slots are free. */
void jm_localproc_poll(jm_localproc_t *lp);
/* 1 while `id` is queued or running. */
int jm_localproc_alive(const jm_localproc_t *lp, const char *id);
/* Drop `id` from the queue, or SIGTERM its worker's process group. */
void jm_localproc_terminate(jm_localproc_t *lp, const char *id);
/* Exit code of a finished worker: JM_OK and *code, or JM_ERR_NOT_FOUND if unknown. */
jm_rc_t jm_localproc_exit_code(const jm_localproc_t *lp, const char *id, int *code);
/* The workers' report channels to watch for POLLIN (then call jm_localproc_poll): fills up to
 * `max` entries of fds, returns how many there are. */
size_t jm_localproc_pollfds(const jm_localproc_t *lp, struct pollfd *fds, size_t max);
/* Number of workers queued + running. */
size_t jm_localproc_busy(const jm_localproc_t *lp);

#endif
