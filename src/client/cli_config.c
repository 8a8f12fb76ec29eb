/*
 * cli_config.c — `jobmon config show [--json]`: every effective configuration value and where it
 * came from (default, file, env, code), secrets masked.  It does not edit files: configuration
 * is changed by editing the file or setting JOBMON_<SECTION>_<KEY>.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client/cli_int.h"

static void config_usage(FILE *out)
{
    fprintf(out, "usage: jobmon config show [--json]\n"
                 "  print every configuration key, its effective value and its source\n");
}

static int config_show(jm_cli_t *cli, int argc, char **argv)
{
    enum { OPT_JSON = 256 };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = cli->json, opt;
    jm_err_t err;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_JSON: json = 1; break;
        case 'h': config_usage(stdout); return JM_EXIT_OK;
        default: config_usage(stderr); return JM_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "jobmon: config show: unexpected argument '%s'\n", argv[optind]);
        return JM_EXIT_USAGE;
    }
    jm_err_clear(&err);
    if (jm_config_show(cli->cfg, stdout, json, &err) != JM_OK ||
        (fflush(stdout) != 0 && jm_err_set(&err, JM_ERR_IO, "cannot write: %s", strerror(errno)))) {
        fprintf(stderr, "jobmon: config show: %s\n", err.msg);
        return JM_EXIT_FAILED;
    }
    return JM_EXIT_OK;
}

int jm_cli_cmd_config(jm_cli_t *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        config_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? JM_EXIT_USAGE : JM_EXIT_OK;
    }
    if (strcmp(argv[1], "show") == 0)
        return config_show(cli, argc - 1, argv + 1);
    fprintf(stderr, "jobmon: config: unknown subcommand '%s'\n", argv[1]);
    config_usage(stderr);
    return JM_EXIT_USAGE;
}
