/*
 * distributor_main.c — jobmon-distributor: options and configuration around jm_dist_run().
 * Handshake with the parent `jobmon run`: "ALIVE" on stderr once started, "SHUTDOWN" when it
 * stops.  Exit codes: 0 the run ended (or SIGTERM), 2 usage, 3 Kafka/PostgreSQL unreachable.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/progmain.h"
#include "config.h" /* autoconf: PACKAGE_VERSION */
#include "distributors/distributor.h"
#include "jobmon/config.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: jobmon-distributor --run-id R --workflow-id W --cluster C [--config F]\n"
               "       [--plugin dummy|sequential|multiprocess|slurm] [--parallelism N]\n"
               "       [--state-dir DIR] [--worker PATH] [--set key=value] [--events-file F]\n");
}

int main(int argc, char **argv)
{
    enum {
        O_RUN = 256,
        O_WF,
        O_CLUSTER,
        O_CONF,
        O_PLUGIN,
        O_PAR,
        O_STATE,
        O_WORKER,
        O_SET,
        O_EVFILE,
        O_HELP
    };
    static const struct option longopts[] = {
        {"run-id", 1, 0, O_RUN},         {"workflow-id", 1, 0, O_WF}, {"cluster", 1, 0, O_CLUSTER},
        {"config", 1, 0, O_CONF},        {"plugin", 1, 0, O_PLUGIN},  {"parallelism", 1, 0, O_PAR},
        {"state-dir", 1, 0, O_STATE},    {"worker", 1, 0, O_WORKER},  {"set", 1, 0, O_SET},
        {"events-file", 1, 0, O_EVFILE}, {"help", 0, 0, O_HELP},      {0, 0, 0, 0}};
    jm_dist_opts_t o = {0};
    jm_err_t err;
    int c, exit_code = JM_EXIT_USAGE;
    int64_t par = 0;
    jm_config_t *cfg = jm_config_new();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_RUN: bad = jm_main_parse_int(optarg, 1, &o.run_id); break;
        case O_WF: bad = jm_main_parse_int(optarg, 1, &o.workflow_id); break;
        case O_CLUSTER: o.cluster = optarg; break;
        case O_CONF: o.config_path = optarg; break;
        case O_PLUGIN: o.plugin = optarg; break;
        case O_PAR: bad = jm_main_parse_int(optarg, 1, &par); break;
        case O_STATE: o.state_dir = optarg; break;
        case O_WORKER: o.worker_path = optarg; break;
        case O_SET:
            if (jm_config_set_assignment(cfg, optarg, &err) != JM_OK) {
                fprintf(stderr, "jobmon-distributor: %s\n", err.msg);
                goto out;
            }
            break;
        case O_EVFILE: o.events_file = optarg; break;
        case O_HELP:
        case 'h':
            usage(stdout);
            exit_code = JM_EXIT_OK;
            goto out;
        default: usage(stderr); goto out;
        }
        if (bad) {
            fprintf(stderr, "jobmon-distributor: bad number '%s'\n", optarg);
            goto out;
        }
    }
    if (!o.run_id || !o.workflow_id || !o.cluster) {
        usage(stderr);
        goto out;
    }
    o.parallelism = (int)par;
    if (jm_main_load_config(cfg, o.config_path, &err) != JM_OK) {
        fprintf(stderr, "jobmon-distributor: config: %s\n", err.msg);
        goto out;
    }
    /* version pinning: every worker started from here (local children, Slurm jobs through
     * sbatch's --export=ALL) checks it runs this version; an operator's value is kept */
    setenv("JOBMON_EXPECT_VERSION", PACKAGE_VERSION, 0);
    jm_rc_t rc = jm_dist_run(&o, cfg, &err);
    if (rc != JM_OK)
        fprintf(stderr, "jobmon-distributor: %s\n", err.msg);
    fprintf(stderr, "SHUTDOWN\n");
    exit_code = jm_rc_to_exit(rc);
out:
    jm_config_destroy(cfg);
    return exit_code;
}
