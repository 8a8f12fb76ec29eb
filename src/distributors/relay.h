/*
 * relay.h — the distributor's relay of its local workers' reports to Kafka.
 *
 * A worker's ti.running, ti.done and ti.error arrive one datagram at a time over its report
 * channel (worker/report.h).  Instead of one Kafka event each, the relay holds them and
 * publishes them as one ti.reports event (ti.running and the result of one instance in one
 * item), and answers each datagram only once Kafka's delivery report for the event that carried
 * it arrived: a worker still continues or exits only after its reports are acknowledged, and a
 * refused or failed batch sends it to its own Kafka/spool fallback as before.
 *
 * When held reports go out: once the oldest held result has waited `linger_ms` (0: at once;
 * its worker waits for the answer, so the caller forces a flush when nothing is gained by
 * waiting longer); a held ti.running alone waits up to JM_RELAY_RUNNING_HOLD_MS for its result,
 * so that both travel in one item.  Any other
 * event (a heartbeat...) publishes what is held first, then goes out alone, so the order of a
 * worker's events is kept.  At most JM_RELAY_MAX_ITEMS items or JM_RELAY_MAX_BYTES per event.
 */
#ifndef JOBMON_DISTRIBUTORS_RELAY_H
#define JOBMON_DISTRIBUTORS_RELAY_H

#include <stdint.h>

#include "worker/report.h"

#define JM_RELAY_MAX_ITEMS       500
#define JM_RELAY_MAX_BYTES       (512 * 1024)
#define JM_RELAY_RUNNING_HOLD_MS 20

typedef struct jm_relay_s jm_relay_t;

/* The verdict on one datagram taken with jm_relay_take (ok = 1: in Kafka). */
typedef void (*jm_relay_answer_fn)(void *arg, uint64_t token, int ok);

/* A relay publishing through r (it takes r's delivery callback until destroyed) for run
 * `run_id` of workflow `workflow_id`. */
jm_relay_t *jm_relay_new(jm_report_t *r, int64_t workflow_id, int64_t run_id, int linger_ms,
                         jm_relay_answer_fn answer, void *arg);
/* Publishes what is held (force flush), then lets go of r's delivery callback.  Accepts NULL. */
void jm_relay_destroy(jm_relay_t *rl);
/* One event datagram of a worker; `token` (high 32 bits not 0) is answered through `answer`.
 * *result (may be NULL) is set to 1 when it is a ti.done or ti.error (the command is over),
 * else 0.  JM_ERR_INVALID when it does not decode or validate (nothing sent, nothing
 * answered); other errors: it could not be published (not answered either). */
JM_WUR jm_rc_t jm_relay_take(jm_relay_t *rl, const char *buf, size_t len, uint64_t token,
                             int *result, jm_err_t *err);
/* jm_relay_take for event message `n` of channel c, a worker's report channel with id `cid`
 * (the token: cid in the high 32 bits, n below).  A message that cannot be taken is refused on
 * c at once ("N n") and logged with `who` (the job).  *result as for jm_relay_take. */
void jm_relay_take_msg(jm_relay_t *rl, jm_chan_t *c, uint32_t cid, uint32_t n, const char *buf,
                       size_t len, const char *who, int *result);
/* Publish the held reports when due (see above); force: now. */
void jm_relay_flush(jm_relay_t *rl, int force);
/* Reports held and not yet published. */
size_t jm_relay_held(const jm_relay_t *rl);
/* ti.reports events published and awaiting their delivery report. */
size_t jm_relay_in_flight(const jm_relay_t *rl);

#endif
