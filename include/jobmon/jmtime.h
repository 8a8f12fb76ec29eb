/*
 * jobmon/jmtime.h — monotonic and wall clock helpers.  Apply code (src/consumer) must never call
 * these: it takes times from event timestamps so replays are deterministic.
 */
#ifndef JOBMON_JMTIME_H
#define JOBMON_JMTIME_H

#include <stddef.h>
#include <stdint.h>

#include "jobmon/common.h"

/* Milliseconds from an arbitrary start (CLOCK_MONOTONIC); for timeouts and rates. */
int64_t jm_time_mono_ms(void);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t jm_time_wall_ms(void);
/* Format epoch milliseconds as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= 25 bytes). Returns buf. */
char *jm_time_format_iso(int64_t epoch_ms, char *buf, size_t len);
/* Parse the format above (also without milliseconds).  JM_ERR_INVALID when malformed. */
jm_rc_t jm_time_parse_iso(const char *s, int64_t *epoch_ms);
/* Sleep for ms milliseconds (restarts on EINTR unless *stop becomes non-zero; stop may be NULL). */
void jm_time_sleep_ms(int64_t ms, volatile int *stop);
/* Exponential back-off with full jitter: min(cap, base*2^attempt) * U(0.5,1]. */
int64_t jm_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms);

#endif
