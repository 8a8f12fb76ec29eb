/*
 * log.c — the one logging sink: a line per record on stderr with time, level, subsystem and pid.
 * Does not rotate files or talk to syslog; services run under a supervisor that captures stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "jobmon/jmtime.h"
#include "jobmon/log.h"

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
_Static_assert(JM_ARRAY_LEN(level_names) == JM_LOG__CNT, "level names");

jm_log_level_t jm_log_threshold = JM_LOG_INFO;

__attribute__((constructor)) static void log_init_from_env(void)
{
    const char *s = getenv("JOBMON_LOG_LEVEL");
    jm_log_level_t lvl;
    if (s && jm_log_level_parse(s, &lvl) == JM_OK)
        jm_log_threshold = lvl;
}

void jm_log_set_level(jm_log_level_t level)
{
    jm_log_threshold = level;
}

jm_rc_t jm_log_level_parse(const char *s, jm_log_level_t *out)
{
    for (int i = 0; i < JM_LOG__CNT; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (jm_log_level_t)i;
            return JM_OK;
        }
    }
    return JM_ERR_INVALID;
}

const char *jm_log_level_name(jm_log_level_t level)
{
    return (unsigned)level < JM_LOG__CNT ? level_names[level] : "?";
}

void jm_log_write(jm_log_level_t level, const char *subsys, const char *fmt, ...)
{
    char ts[32], line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    jm_time_format_iso(jm_time_wall_ms(), ts, sizeof(ts));
    fprintf(stderr, "%s %-5s %s[%d] %s\n", ts, jm_log_level_name(level), subsys, (int)getpid(),
            line);
}
