/*
 * cli_int.h — private to the `jobmon` CLI: the context every command handler gets and the
 * handlers themselves.  To add a command group: write src/client/cli_<group>.c with a handler
 * `int jm_cli_cmd_<group>(jm_cli_t *cli, int argc, char **argv)`, declare it below, add one row
 * to the command table in cli_main.c and the file to src/client/local.mk.
 */
#ifndef JOBMON_CLI_INT_H
#define JOBMON_CLI_INT_H

#include "jobmon/config.h"

typedef struct {
    jm_config_t *cfg; /* loaded (defaults < file < env < --set) before the handler runs */
    int json;         /* global --json */
} jm_cli_t;

/* A command handler.  argv[0] is the command name, options follow; parse them with getopt_long
 * after setting optind = 0.  Returns the process exit code (JM_EXIT_*); prints its own errors
 * (to stderr, prefixed "jobmon: ") and its results (to stdout). */
typedef int (*jm_cli_handler_t)(jm_cli_t *cli, int argc, char **argv);

/* cli_config.c: `jobmon config show [--json]` */
int jm_cli_cmd_config(jm_cli_t *cli, int argc, char **argv);

#endif
