/*
 * jobmon/resources.h — compute-resource units, queue limits and resource scaling.
 *
 * Canonical form of a resources object (a jansson object): `queue` (string), `cores` (integer),
 * `memory` (integer MiB), `runtime` (integer seconds); other keys are kept as given.  User input
 * ("8G", "1h30m", memory as a bare number of GiB) is turned into that form once, by
 * jm_res_normalise(); everything else works on the canonical form.
 *
 * Pure functions: no I/O.  Errors fill the optional jm_err_t with a message naming the bad text.
 */
#ifndef JOBMON_RESOURCES_H
#define JOBMON_RESOURCES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jobmon/common.h"

/* ---- units ------------------------------------------------------------------------------- */

/*
 * Parse a memory amount into MiB.  Accepted: a non-negative number (integer or decimal, e.g.
 * "1.5") optionally followed by a unit K, M, G or T (binary: 1G = 1024M; case-insensitive;
 * optionally followed by "B", "b" or "iB"; spaces allowed around).  A bare number is GiB.
 * Fractions of a MiB round up ("1K" = 1, "1.5G" = 1536).  JM_ERR_INVALID on empty text, a bad
 * number, an unknown unit, a negative value or overflow, e.g.
 * `memory "12X": unknown unit X, use K, M, G or T`.
 */
jm_rc_t jm_res_parse_memory(const char *text, int64_t *mib, jm_err_t *err) JM_WUR;

/*
 * Parse a runtime into seconds.  Accepted:
 *   - a bare non-negative number: seconds ("3600", "90.5" rounds up to 91);
 *   - one or more number+unit parts, units d, h, m, s (case-insensitive): "1h", "60m",
 *     "3600s", "1d", "1h30m", "1.5h";
 *   - "HH:MM:SS" (hours may exceed 23) and Slurm's "D-HH:MM:SS"; minutes and seconds < 60.
 * "MM:SS" is rejected as ambiguous (Slurm reads "1:30" as minutes:seconds, people often mean
 * hours:minutes).  Fractional seconds round up.  JM_ERR_INVALID on bad text, negative or overflow.
 */
jm_rc_t jm_res_parse_runtime(const char *text, int64_t *seconds, jm_err_t *err) JM_WUR;

/* Format MiB as "<n>G" when a whole number of GiB, else "<n>M" (e.g. "8G", "1536M").  Writes at
 * most len bytes (truncating) and returns buf. */
char *jm_res_format_memory(int64_t mib, char *buf, size_t len);
/* Format seconds as "HH:MM:SS" (hours grow past 99 as needed, e.g. "01:30:00", "100:00:00").
 * Writes at most len bytes (truncating) and returns buf. */
char *jm_res_format_runtime(int64_t seconds, char *buf, size_t len);

/* ---- queues ------------------------------------------------------------------------------ */

/* Inclusive limits of one numeric resource key in a queue. */
typedef struct {
    const char *key; /* e.g. "cores", "memory" (MiB), "runtime" (s) */
    double min, max;
} jm_limit_t;

/* A queue: a name and its limits.  Borrowed strings and array; the caller keeps them alive. */
typedef struct {
    const char *name;
    const jm_limit_t *limits;
    size_t n;
} jm_queue_t;

/*
 * Strict validation of canonical resources against a queue: every limited key present in `res`
 * must be a number within [min, max].  Keys the queue does not limit, and limited keys absent
 * from `res`, are accepted.  JM_ERR_INVALID with a message naming the key, the value, the limit
 * and the queue, e.g. `memory 300000 is above the maximum 262144 of queue "all.q"`.
 */
jm_rc_t jm_res_validate(const json_t *res, const jm_queue_t *q, jm_err_t *err) JM_WUR;

/* Copy of `res` with every limited numeric key clipped into the queue's limits (integers stay
 * integers, clipped to the nearest integer inside the limits) and `queue` set to the queue's
 * name.  Returns a new object, caller decrefs.  Non-numeric values are left as they are. */
json_t *jm_res_coerce(const json_t *res, const jm_queue_t *q);

/* ---- scaling ----------------------------------------------------------------------------- */

/* The default scales {"memory": 0.5, "runtime": 0.5}.  New object, caller decrefs. */
json_t *jm_res_default_scales(void);

/*
 * Resources for the next attempt after a resource kill (reference §3.8).
 *   res       canonical resources of the attempt that was killed (not modified)
 *   scales    object key → number s (new value = ceil(v × (1+s)), so repeated calls compound:
 *             40 → 60 → 90 for 0.5) or array of numbers (absolute value at index attempt-1, the
 *             last one once exhausted).  Only keys present in both res and scales are scaled.
 *   attempt   number of the attempt that was killed (task num_attempts), >= 1
 *   queue     the task's current queue; fallbacks: queues to try next, in order (may be NULL/0)
 * The scaled request is validated strictly against `queue` then each fallback in order; the first
 * that accepts it is chosen.  If none does, it is coerced into the last queue tried (so, without
 * fallbacks, clipped at the current queue's limits).  `queue` is set in the result.
 * On success *out is a new object (caller decrefs) and *queue_name (optional) points to the
 * chosen queue's name (borrowed from the jm_queue_t).  JM_ERR_INVALID for a bad scale, a scaled
 * key whose value is not a number, or attempt < 1; *out is then NULL.
 */
jm_rc_t jm_res_scale(const json_t *res, const json_t *scales, int attempt, const jm_queue_t *queue,
                     const jm_queue_t *fallbacks, size_t n_fallback, json_t **out,
                     const char **queue_name, jm_err_t *err) JM_WUR;

/* ---- user input -------------------------------------------------------------------------- */

/*
 * Canonical copy of user-supplied resources: `memory` string or number (bare number = GiB) →
 * integer MiB; `runtime` string or number (seconds) → integer seconds; `cores` integer, an
 * integral real or a string of digits → integer (>= 0); `queue` must be a string; other keys are
 * copied unchanged.  Not idempotent (a canonical memory of 1024 would be read as 1024 GiB): call it
 * once on input.  On success *out is a new object (caller decrefs); on JM_ERR_INVALID *out is
 * NULL and the message names the key and the bad value.
 */
jm_rc_t jm_res_normalise(const json_t *in, json_t **out, jm_err_t *err) JM_WUR;

#endif
