/*
 * report.h — how the worker and the distributor publish events: the Kafka producer built from
 * the configuration, delivery confirmation with retry, and the spool that keeps a result when
 * Kafka stays unreachable.
 *
 * Spool format: one file per report in worker.spool_dir named
 * "<workflow_id>-<ti_id>-<event id>.jmspool", holding the encoded events (one JSON line each, in
 * publication order).  It is written to a ".tmp" name, fsynced and renamed, so a reader sees
 * whole files only.  Whoever finds it (the distributor of the workflow) re-publishes the events
 * and deletes the file; re-publishing twice is harmless because the FSM dedups by event id.
 *
 * Test mode: with an events file the events are appended there as JSON lines instead of Kafka.
 *
 * Report channel: the worker sends its events to its distributor, which publishes them with
 * its own producer.  Two transports (worker/chan.h), one protocol:
 *   - local (the sequential and multiprocess plugins): the distributor starts the worker with
 *     one end of a SOCK_SEQPACKET socketpair (jobmon-worker --report-fd N); a message is one
 *     datagram;
 *   - network (plugins whose workers run on other hosts: slurm): the distributor listens on
 *     TCP (distributor.report_listen) and gives its jobs JOBMON_REPORT_ADDR ("host:port") and
 *     JOBMON_REPORT_TOKEN (a random secret of the distributor) in their environment; the
 *     worker connects (worker.report_connect_timeout_ms), and a message is a 4-byte big-endian
 *     length then its bytes.  The first message must be "T <token>": the distributor closes a
 *     connection that starts otherwise (logged), and the worker, seeing the channel end, falls
 *     back as below.  The worker removes both variables from the command's environment.
 * The worker sends each encoded event as one message; the distributor publishes it and answers
 * "A <n>" (or "N <n>" when it could not) once Kafka acknowledged the worker's n-th event message
 * (n counts from 1; the token message is not counted).  The worker ends only when every kept
 * event is acknowledged; a broken channel, a refusal or no answer within the retry time sends
 * the kept events to Kafka directly, then to the spool, as without a channel.  Kafka itself is
 * reached through jm_producer_ops: linked in by the distributor (jm_report_set_producer_ops),
 * loaded from the jobmon-kafka.so module by jobmon-worker only when it needs Kafka.
 *
 * Pooled workers (jobmon-worker --serve, the multiprocess plugin): the same channel also carries
 * instances.  The worker sends "R" when it waits for one and "R <exit code>" after each instance
 * once its result is sent: the answers to its events may come later, while it runs the next
 * instance (jm_report_defer: at most 256 events wait, none longer than the retry
 * time; a refusal or a broken channel sends them to Kafka, then to the spool, as below, and
 * the worker ends only when none waits); the distributor answers "S <json>" (the
 * instance: ti_id, workflow_id, run_id, task_id, command, memory_mb, runtime_s, stdout, stderr,
 * distributor_id) only to a worker that said R.  Event datagrams are JSON objects ('{'), so
 * the two never mix up; datagram numbers go on across the instances of one worker.  A signal
 * (the distributor terminating the instance) ends the worker after the instance it interrupts.
 */
#ifndef JOBMON_WORKER_REPORT_H
#define JOBMON_WORKER_REPORT_H

#include <stdint.h>

#include "jobmon/common.h"
#include "jobmon/config.h"
#include "jobmon/event.h"
#include "jobmon/producer.h"
#include "worker/chan.h"

typedef struct jm_report_s jm_report_t;

/* A new publisher: Kafka from cfg (kafka.brokers, kafka.topic, kafka.properties), or the
 * events file when `events_file` is not NULL.  `delivery_timeout_s` bounds librdkafka's own
 * retries of one message (message.timeout.ms; 0 = library default).  Caller destroys. */
jm_report_t *jm_report_new(const jm_config_t *cfg, const char *events_file, int delivery_timeout_s,
                           jm_err_t *err);
/* jm_report_new with the producer's settings for `profile` (jm_report_new: THROUGHPUT; the
 * worker: LATENCY). */
jm_report_t *jm_report_new_profile(const jm_config_t *cfg, const char *events_file,
                                   int delivery_timeout_s, jm_producer_profile_t profile,
                                   jm_err_t *err);
/* A publisher over the local report channel `chan_fd` (a SOCK_SEQPACKET socket; it takes the
 * descriptor); Kafka from cfg is set up only if the channel fails. */
jm_report_t *jm_report_new_channel(const jm_config_t *cfg, int chan_fd, int delivery_timeout_s,
                                   jm_producer_profile_t profile, jm_err_t *err);
/* A publisher over a network report channel to `addr` ("host:port") authenticated by `token`;
 * when it cannot connect within connect_timeout_ms (logged) it publishes to Kafka as
 * jm_report_new_profile would.  Never NULL. */
jm_report_t *jm_report_new_remote(const jm_config_t *cfg, const char *addr, const char *token,
                                  int connect_timeout_ms, int delivery_timeout_s,
                                  jm_producer_profile_t profile);
void jm_report_destroy(jm_report_t *r); /* accepts NULL; does not flush */
/* The channel's descriptor (still owned by r), -1 when there is none or it broke. */
int jm_report_chan_fd(const jm_report_t *r);
/* The channel itself (owned by r), NULL when there is none or it broke. */
jm_chan_t *jm_report_chan(jm_report_t *r);
/* Forget the kept events of the instance just finished (jm_report_finish returned), so r can
 * report the next one: the channel's datagram numbers go on, so a late answer to an event of
 * the previous instance never counts for the next one. */
void jm_report_next(jm_report_t *r);

/* The producer functions to use (programs that link librdkafka pass &jm_producer_ops); unset,
 * the first Kafka publisher loads them from jobmon-kafka.so: $JOBMON_KAFKA_MODULE, else next
 * to the program (or in its .libs/ in the build tree), else the installed pkglibdir. */
void jm_report_set_producer_ops(const jm_producer_ops_t *ops);

/* ---- the distributor's end of report channels ---- */
/* Called with the token of a forwarded event once its delivery is known (ok = 1: acknowledged). */
typedef void (*jm_report_ack_fn)(void *arg, uint64_t token, int ok);
void jm_report_set_ack_cb(jm_report_t *r, jm_report_ack_fn fn, void *arg);
/* Publish one encoded event received over a channel; the ack callback gets `token` on delivery
 * (at once with an events file).  JM_ERR_INVALID: it does not decode or validate (not sent). */
JM_WUR jm_rc_t jm_report_forward(jm_report_t *r, const void *buf, size_t len, uint64_t token,
                                 jm_err_t *err);
/* Readable when delivery reports wait for jm_report_poll; -1 when there is none (events file). */
/* Validate and publish `ev` (takes it) like jm_report_forward, tracked by `token`. */
JM_WUR jm_rc_t jm_report_send_tracked(jm_report_t *r, jm_event_t *ev, uint64_t token,
                                      jm_err_t *err);
int jm_report_wakeup_fd(jm_report_t *r);
/* Answer event message `n` of a channel: acknowledged (ok) or refused.  0, or -1 when it could
 * not be sent (a stream is then broken: close it). */
int jm_report_chan_ack(jm_chan_t *c, uint32_t n, int ok);

/* Validate and enqueue `ev` (takes ownership in every case).  With `keep`, the encoded event
 * is remembered for jm_report_finish (a result that must not be lost: ti.running, ti.done...). */
JM_WUR jm_rc_t jm_report_send(jm_report_t *r, jm_event_t *ev, int keep, jm_err_t *err);
/* Serve delivery reports. */
void jm_report_poll(jm_report_t *r, int timeout_ms);
/* Wait up to timeout_ms for every enqueued event to be acknowledged. */
JM_WUR jm_rc_t jm_report_flush(jm_report_t *r, int timeout_ms, jm_err_t *err);

/* Make sure the kept events are delivered: flush; on failure re-send them with back-off until
 * retry_timeout_s has passed; still failing → write them to spool files in spool_dir, one per
 * instance (named after workflow_id and ti_id for the current instance's, the deferred ones'
 * own otherwise).  JM_OK: delivered.  JM_ERR_UNAVAILABLE: spooled (err says
 * where).  JM_ERR_IO: neither delivered nor spooled (no spool dir, or the write failed). */
JM_WUR jm_rc_t jm_report_finish(jm_report_t *r, int retry_timeout_s, const char *spool_dir,
                                int64_t workflow_id, int64_t ti_id, jm_err_t *err);

/* A pooled worker's instance is over and its kept events were sent: let them wait for their
 * answers while the worker runs the next instance (they stay kept, tagged with this instance's
 * workflow_id / ti_id for a later spool file).  Reads the answers waiting on the channel and
 * forgets the acknowledged events.  JM_OK: the worker may go on; JM_ERR_RETRY: call
 * jm_report_finish now (then jm_report_next) — the channel broke, an event was refused or went
 * to Kafka directly, the oldest waited retry_timeout_s, or more than max_kept are kept. */
JM_WUR jm_rc_t jm_report_defer(jm_report_t *r, int64_t workflow_id, int64_t ti_id,
                               int retry_timeout_s, size_t max_kept);
/* An answer ("A n" / "N n") read from the channel by the caller (a pooled worker waiting for
 * its next instance): applied to the kept events, an acknowledged one is forgotten.  1 if it
 * was one, else 0. */
int jm_report_chan_answer(jm_report_t *r, const char *buf, size_t len);

/* Write `n` encoded events atomically to a new spool file; *path_out (may be NULL) receives
 * its path (caller frees). */
JM_WUR jm_rc_t jm_spool_write(const char *spool_dir, int64_t workflow_id, int64_t ti_id,
                              char *const *lines, size_t n, char **path_out, jm_err_t *err);
/* Re-publish every spool file of `workflow_id` (0 = all) in spool_dir through r, then delete
 * the files whose events were acknowledged.  *files (may be NULL) gets the number of files
 * re-published.  A corrupt file is renamed to *.bad and skipped. */
JM_WUR jm_rc_t jm_spool_replay(jm_report_t *r, const char *spool_dir, int64_t workflow_id,
                               int *files, jm_err_t *err);

/* Split cfg's kafka.properties ("key=value" items) into a NULL-terminated key, value vector
 * (plus the optional extra pair); caller frees with jm_report_props_free. */
char **jm_report_props(const jm_config_t *cfg, const char *extra_key, const char *extra_value);
void jm_report_props_free(char **props);

#endif
