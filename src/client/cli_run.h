/*
 * cli_run.h — private to the CLI: the options of `jobmon run`, `submit` and `resume` and their
 * parser (pure, unit-tested in tests/check_cli.c).
 */
#ifndef JOBMON_CLI_RUN_H
#define JOBMON_CLI_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "client/cli_int.h"

typedef enum { JM_CLI_RUN = 0, JM_CLI_SUBMIT, JM_CLI_RESUME } jm_cli_run_kind_t;

typedef struct {
    jm_cli_run_kind_t kind;
    const char *file;          /* run/submit: the workflow file (borrowed from argv) */
    int64_t wf_id;             /* resume: the workflow */
    int detach;                /* --detach (submit: always) */
    int fail_fast;             /* --fail-fast */
    int json;                  /* --json */
    int resume;                /* --resume (resume: always) */
    const char *mode;          /* run.start resume mode: "none", "cold", "hot" (static) */
    int64_t timeout_s;         /* --timeout, default 36000, 0 = none */
    int64_t max_concurrent;    /* --max-concurrent, -1 = from the file / unchanged */
    int64_t startup_timeout_s; /* --startup-timeout, default 180 */
    const char *cluster;       /* --cluster or NULL (borrowed from argv) */
} jm_cli_run_opts_t;

/* Parse argv (argv[0] = the command name).  Returns 0 (ok), 1 (--help) or -1 with a message in
 * msg.  Strings in *o are borrowed from argv. */
int jm_cli_run_parse(int argc, char **argv, jm_cli_run_kind_t kind, jm_cli_run_opts_t *o, char *msg,
                     size_t msglen);

int jm_cli_cmd_run(jm_cli_t *cli, int argc, char **argv);
int jm_cli_cmd_submit(jm_cli_t *cli, int argc, char **argv);
int jm_cli_cmd_resume(jm_cli_t *cli, int argc, char **argv);

#endif
