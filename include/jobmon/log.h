/*
 * jobmon/log.h — one grep-able line per record on stderr:
 *   2026-11-25T14:32:47.123Z WARN  fsm[1234] message
 * The level is checked before the message is formatted.
 */
#ifndef JOBMON_LOG_H
#define JOBMON_LOG_H

#include "jobmon/common.h"

typedef enum {
    JM_LOG_ERROR = 0,
    JM_LOG_WARN,
    JM_LOG_INFO,
    JM_LOG_DEBUG,
    JM_LOG__CNT
} jm_log_level_t;

extern jm_log_level_t jm_log_threshold;

/* Set the lowest level that is printed (default INFO, or JOBMON_LOG_LEVEL at first use). */
void jm_log_set_level(jm_log_level_t level);
/* Parse "error" / "warn" / "info" / "debug" (case-insensitive).  JM_ERR_INVALID otherwise. */
jm_rc_t jm_log_level_parse(const char *s, jm_log_level_t *out);
/* Static name of a level. */
const char *jm_log_level_name(jm_log_level_t level);

void jm_log_write(jm_log_level_t level, const char *subsys, const char *fmt, ...) JM_PRINTF(3, 4);

#define jm_log(level, subsys, ...)                                                                 \
    do {                                                                                           \
        if ((level) <= jm_log_threshold)                                                           \
            jm_log_write((level), (subsys), __VA_ARGS__);                                          \
    } while (0)

#endif
