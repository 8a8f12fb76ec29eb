/*
 * reportsrv.h — the distributor's TCP report channel, for plugins whose workers run on other
 * hosts (jm_plugin_t.workers JM_WORKERS_REMOTE: slurm).
 *
 * It listens on distributor.report_listen and gives the plugin the address ("host:port") and a
 * random secret token of this distributor (32 hex digits from getrandom) to hand to its jobs
 * (the Slurm plugin: JOBMON_REPORT_ADDR / JOBMON_REPORT_TOKEN in sbatch's environment, so the
 * token shows in neither ps nor squeue).  Each worker connects on its own (an array job's steps
 * too) and speaks the report channel protocol of worker/report.h, length-prefixed
 * (worker/chan.h): first "T <token>", then its events, answered "A n" / "N n".  Events go
 * through the same relay as the local plugins' (relay.h: ti.reports batches, answered only
 * after Kafka's delivery report).  A connection whose first message is not the token, or that
 * sends nothing for JM_REPORTSRV_AUTH_MS, is closed and logged; beyond `max_conns` open
 * connections a new one is closed at once (logged): those workers publish to Kafka themselves.
 * Accepting and reading never block; it runs on the distributor's one thread.
 */
#ifndef JOBMON_DISTRIBUTORS_REPORTSRV_H
#define JOBMON_DISTRIBUTORS_REPORTSRV_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/report.h"

#define JM_REPORTSRV_AUTH_MS 10000

typedef struct jm_reportsrv_s jm_reportsrv_t;

typedef struct {
    size_t accepted;  /* connections accepted */
    size_t bad_token; /* closed: wrong or missing token, or silent past JM_REPORTSRV_AUTH_MS */
    size_t over_cap;  /* closed at once: max_conns reached */
    size_t events;    /* event messages taken from workers */
    size_t open;      /* connections open now */
} jm_reportsrv_stats_t;

/* Listen on `listen` ("" = the address this host's name resolves to, else 127.0.0.1, on an
 * ephemeral port; "HOST", "HOST:PORT", "[V6]:PORT" or ":PORT" otherwise) and relay the
 * reports of workflow_id / run_id through r (the relay takes r's delivery callback).  NULL with
 * err when it cannot listen. */
jm_reportsrv_t *jm_reportsrv_new(jm_report_t *r, int64_t workflow_id, int64_t run_id,
                                 const char *listen, size_t max_conns, jm_err_t *err);
/* Closes every connection (their workers fall back to Kafka), publishes what is held.  Logs the
 * totals.  Accepts NULL. */
void jm_reportsrv_destroy(jm_reportsrv_t *s);
const char *jm_reportsrv_addr(const jm_reportsrv_t *s);  /* "host:port" for the workers */
const char *jm_reportsrv_token(const jm_reportsrv_t *s); /* the secret */
/* The listening socket and the connections, for POLLIN: fills up to `max` of fds, returns how
 * many there are. */
size_t jm_reportsrv_pollfds(const jm_reportsrv_t *s, struct pollfd *fds, size_t max);
/* Accept, read and relay what is waiting, publish held reports when due, drop dead
 * connections. */
void jm_reportsrv_poll(jm_reportsrv_t *s);
/* 1 while reports are held (the caller polls again soon: the relay publishes them on time, not
 * on an event).  Connections wake the caller through pollfds; one silent before its token is
 * closed by the first poll after JM_REPORTSRV_AUTH_MS. */
int jm_reportsrv_busy(const jm_reportsrv_t *s);
void jm_reportsrv_stats(const jm_reportsrv_t *s, jm_reportsrv_stats_t *out);

#endif
