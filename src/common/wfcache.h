/*
 * wfcache.h — the layout of the Redis status hash `jm:wf:<id>` (docs/redis.md) shared by its
 * writer (src/consumer/cache.c) and the readers that re-fill it (src/client/status.c).
 */
#ifndef JOBMON_COMMON_WFCACHE_H
#define JOBMON_COMMON_WFCACHE_H

#include "jobmon/fsm.h"

/* Versioned compare-and-set: KEYS[1] the hash; ARGV[1] version; ARGV[2] n channels;
 * ARGV[3..2+n] channels to PUBLISH the version on; then field/value pairs.  Writes (and
 * publishes) only when ARGV[1] is newer than the stored version, so an older writer never wins. */
extern const char jm_wfcache_cas_script[];
/* Hash field of the task count per task status, in jm_task_status_t order ("n_G", …). */
extern const char *const jm_wfcache_count_fields[JM_TASK__CNT];

#endif
