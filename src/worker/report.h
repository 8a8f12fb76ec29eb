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
 */
#ifndef JOBMON_WORKER_REPORT_H
#define JOBMON_WORKER_REPORT_H

#include <stdint.h>

#include "jobmon/common.h"
#include "jobmon/config.h"
#include "jobmon/event.h"
#include "jobmon/producer.h"

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
void jm_report_destroy(jm_report_t *r); /* accepts NULL; does not flush */

/* Validate and enqueue `ev` (takes ownership in every case).  With `keep`, the encoded event
 * is remembered for jm_report_finish (a result that must not be lost: ti.running, ti.done...). */
JM_WUR jm_rc_t jm_report_send(jm_report_t *r, jm_event_t *ev, int keep, jm_err_t *err);
/* Serve delivery reports. */
void jm_report_poll(jm_report_t *r, int timeout_ms);
/* Wait up to timeout_ms for every enqueued event to be acknowledged. */
JM_WUR jm_rc_t jm_report_flush(jm_report_t *r, int timeout_ms, jm_err_t *err);

/* Make sure the kept events are delivered: flush; on failure re-send them with back-off until
 * retry_timeout_s has passed; still failing → write them to a spool file in spool_dir (named
 * after workflow_id and ti_id).  JM_OK: delivered.  JM_ERR_UNAVAILABLE: spooled (err says
 * where).  JM_ERR_IO: neither delivered nor spooled (no spool dir, or the write failed). */
JM_WUR jm_rc_t jm_report_finish(jm_report_t *r, int retry_timeout_s, const char *spool_dir,
                                int64_t workflow_id, int64_t ti_id, jm_err_t *err);

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
