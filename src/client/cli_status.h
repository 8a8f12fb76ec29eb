/*
 * cli_status.h — private to the CLI: the read commands (status, tasks, task, deps, logs, events,
 * usage, errors)
 * and their option parser (pure, unit-tested in tests/check_cli.c).
 */
#ifndef JOBMON_CLI_STATUS_H
#define JOBMON_CLI_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "client/cli_int.h"

/* Options of the read commands. */
typedef struct {
    int json;           /* --json */
    int64_t limit;      /* --limit, 0 = all (status defaults to 5 recent workflows) */
    const char *status; /* tasks --status */
    int64_t task;       /* events --task */
    const char *source; /* status --source auto|redis|pg */
    const char *user;   /* status --user */
    int all_users;      /* status --all-users */
    int active;         /* status --active: only workflows with an alive run */
    const char *tmpl;   /* usage --template */
    int64_t headroom;   /* usage --headroom, percent (default 20) */
    int all;            /* errors --all */
    int64_t lines;      /* errors --lines (default 5, 0 = all) */
    int nargs;          /* positional ids */
    char **args;
} jm_cli_read_opts_t;

/* Parse argv of read command argv[0].  0 ok, 1 --help, -1 with a message. */
int jm_cli_read_parse(int argc, char **argv, jm_cli_read_opts_t *o, char *msg, size_t msglen);
/* Task letters for a --status value: comma-separated user statuses (PENDING → GQIAE, ...) or
 * task letters.  0 ok (letters NUL-terminated, no duplicates), -1 when unknown. */
int jm_cli_task_status_filter(const char *spec, char *letters, size_t len);

/* The compute_resources `jobmon usage` suggests from the largest use seen: max_kb of memory
 * and max_ms of wall time plus headroom_pct percent, rounded up to whole MiB and seconds.  0 for
 * a value with nothing measured (max 0 or less: a plugin that reports no usage). */
void jm_cli_usage_suggest(int64_t max_kb, int64_t max_ms, int64_t headroom_pct, int64_t *mib,
                          int64_t *seconds);

/* Handler of every read command (dispatches on argv[0]). */
int jm_cli_cmd_read(jm_cli_t *cli, int argc, char **argv);

#endif
