/*
 * jmtime.c — clocks, ISO-8601 formatting, sleeping and back-off.
 * Never used by the apply path of the FSM consumer (determinism).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobmon/jmtime.h"

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    JM_ASSERT(clock_gettime(id, &ts) == 0);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t jm_time_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t jm_time_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

char *jm_time_format_iso(int64_t epoch_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(epoch_ms / 1000);
    int ms = (int)(epoch_ms % 1000);
    struct tm tm;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return buf;
}

jm_rc_t jm_time_parse_iso(const char *s, int64_t *epoch_ms)
{
    struct tm tm;
    int ms = 0, used = 0;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6)
        return JM_ERR_INVALID;
    s += used;
    if (*s == '.') {
        int digits = 0;
        for (s++; *s >= '0' && *s <= '9'; s++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*s - '0');
        if (digits == 0)
            return JM_ERR_INVALID;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (strcmp(s, "Z") != 0)
        return JM_ERR_INVALID;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return JM_ERR_INVALID;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *epoch_ms = (int64_t)timegm(&tm) * 1000 + ms;
    return JM_OK;
}

void jm_time_sleep_ms(int64_t ms, volatile int *stop)
{
    struct timespec req = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&req, &req) != 0 && errno == EINTR)
        if (stop && *stop)
            return;
}

int64_t jm_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms)
{
    int64_t d = base_ms;
    for (unsigned i = 0; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    /* jitter in (d/2, d]: random() is fine here, this is not the apply path */
    return d / 2 + 1 + (int64_t)(random() % (d / 2 + 1));
}
