/*
 * cli_main.c — the `jobmon` command: global options, configuration loading, and dispatch through
 * one command table.  Each command group lives in its own cli_<group>.c; this file knows only
 * their names, handlers and one-line help.  It does no work of its own and is the only place in
 * the CLI that exits.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli_int.h"
#include "client/cli_ops.h"
#include "client/cli_run.h"
#include "client/cli_status.h"
#include "common/progmain.h"
#include "config.h" /* autoconf: PACKAGE_VERSION */

typedef struct {
    const char *name;
    jm_cli_handler_t handler; /* NULL for the built-in `help` */
    const char *help;
} cli_command_t;

/* Keep sorted by name; one row per command group. */
static const cli_command_t commands[] = {
    {"audit", jm_cli_cmd_audit,
     "replay a workflow's event log into a scratch schema and compare (writer role)"},
    {"concurrency", jm_cli_cmd_ops, "limit a workflow's (or template's) running tasks"},
    {"config", jm_cli_cmd_config,
     "show the effective configuration and where each value comes from"},
    {"db", jm_cli_cmd_db, "db migrate: apply pending schema migrations"},
    {"deps", jm_cli_cmd_read, "upstream and downstream tasks of a task"},
    {"errors", jm_cli_cmd_read, "why tasks failed: exit code, message, stderr tail"},
    {"events", jm_cli_cmd_read, "the audit trail of a workflow or task"},
    {"help", NULL, "list the commands"},
    {"lag", jm_cli_cmd_lag, "how far jobmon-fsm is behind Kafka, and the dead letters"},
    {"logs", jm_cli_cmd_read, "stdout/stderr paths of a workflow's task instances"},
    {"prune", jm_cli_cmd_prune, "delete finished workflows older than a cutoff, with their logs"},
    {"reset", jm_cli_cmd_ops, "reset a workflow so the next run re-executes its tasks"},
    {"resume", jm_cli_cmd_resume, "resume a workflow: new run, watched like run"},
    {"run", jm_cli_cmd_run, "bind a workflow file, run it and watch it to the end"},
    {"status", jm_cli_cmd_read, "task counts per status of workflows"},
    {"stop", jm_cli_cmd_ops, "stop a workflow's alive run"},
    {"submit", jm_cli_cmd_submit, "bind and start a run in the background (= run --detach)"},
    {"task", jm_cli_cmd_read, "one task and its instances"},
    {"task-update", jm_cli_cmd_ops, "set tasks to D or G"},
    {"tasks", jm_cli_cmd_read, "tasks of a workflow"},
    {"usage", jm_cli_cmd_read, "memory and runtime used per task template, and what to request"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: jobmon [--config FILE] [--set SECTION.KEY=VALUE]... [--json] COMMAND "
                 "[ARGS]\n"
                 "       jobmon --help | --version\n\n"
                 "global options:\n"
                 "  -c, --config FILE    read FILE instead of $JOBMON_CONFIG, "
                 "~/.config/jobmon/jobmon.conf, /etc/jobmon/jobmon.conf\n"
                 "  -s, --set K=V        set configuration key K (e.g. kafka.brokers=h:9092); "
                 "wins over env and file\n"
                 "      --json           machine-readable output\n"
                 "  -h, --help           this help\n"
                 "  -V, --version        print the version\n\n"
                 "commands:\n");
    for (size_t i = 0; i < JM_ARRAY_LEN(commands); i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nexit codes: 0 ok, 1 failed, 2 usage or invalid input, 3 Kafka/PostgreSQL/Redis "
                 "unreachable\n");
}

static const cli_command_t *find_command(const char *name)
{
    for (size_t i = 0; i < JM_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    enum { OPT_JSON = 256 };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
        {"json", no_argument, NULL, OPT_JSON},    {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    jm_cli_t cli = {0};
    const char *config_path = NULL;
    const cli_command_t *cmd = NULL;
    jm_err_t err;
    int code = JM_EXIT_OK, opt;

    jm_err_clear(&err);
    cli.cfg = jm_config_new();
    /* "+": stop at the command name; what follows belongs to the command. */
    while ((opt = getopt_long(argc, argv, "+c:s:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 's':
            if (jm_config_set_assignment(cli.cfg, optarg, &err) != JM_OK) {
                fprintf(stderr, "jobmon: --set: %s\n", err.msg);
                code = JM_EXIT_USAGE;
                goto out;
            }
            break;
        case OPT_JSON: cli.json = 1; break;
        case 'h': usage(stdout); goto out;
        case 'V': printf("jobmon %s\n", PACKAGE_VERSION); goto out;
        default:
            fprintf(stderr, "jobmon: see 'jobmon --help'\n");
            code = JM_EXIT_USAGE;
            goto out;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        code = JM_EXIT_USAGE;
        goto out;
    }
    cmd = find_command(argv[optind]);
    if (!cmd) {
        fprintf(stderr, "jobmon: unknown command '%s' (see 'jobmon help')\n", argv[optind]);
        code = JM_EXIT_USAGE;
        goto out;
    }
    if (!cmd->handler) {
        usage(stdout);
        goto out;
    }
    if (jm_main_load_config(cli.cfg, config_path, &err) != JM_OK) {
        fprintf(stderr, "jobmon: configuration: %s\n", err.msg);
        code = jm_rc_to_exit(err.rc);
        goto out;
    }
    code = cmd->handler(&cli, argc - optind, argv + optind);
out:
    jm_config_destroy(cli.cfg);
    return code;
}
