/*
 * cli_ops.h — private to the CLI: the operator commands (stop, reset, task-update, concurrency)
 * and their option parser (pure, unit-tested in tests/check_cli.c).
 */
#ifndef JOBMON_CLI_OPS_H
#define JOBMON_CLI_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "client/cli_int.h"
#include "jobmon/pg.h"

typedef struct {
    int64_t wf_id;  /* stop, reset, concurrency */
    int64_t *tasks; /* task-update: owned, free with jm_cli_ops_opts_free */
    size_t n_tasks;
    const char *status;        /* task-update --status "D" / "G" */
    int recursive;             /* task-update --recursive */
    int partial;               /* reset --partial */
    int64_t max_concurrent;    /* concurrency N */
    const char *template_name; /* concurrency --template */
    int wait;                  /* --wait */
    int64_t timeout_s;         /* --timeout for --wait (60) */
    int json;                  /* --json */
} jm_cli_ops_opts_t;

/* Parse argv of operator command argv[0].  0 ok, 1 --help, -1 with a message.  Call
 * jm_cli_ops_opts_free() afterwards in every case. */
int jm_cli_ops_parse(int argc, char **argv, jm_cli_ops_opts_t *o, char *msg, size_t msglen);
void jm_cli_ops_opts_free(jm_cli_ops_opts_t *o);

/* Handler of every operator command (dispatches on argv[0]). */
int jm_cli_cmd_ops(jm_cli_t *cli, int argc, char **argv);

/* cli_db.c: `jobmon db migrate [--schema-dir DIR]` */
int jm_cli_cmd_db(jm_cli_t *cli, int argc, char **argv);
/* The migrations directory: $JOBMON_MIGRATIONS_DIR, the checkout's schemas/sql beside the
 * binary, or <prefix>/share/jobmon/sql.  Returns a new string, caller frees. */
char *jm_cli_default_schema_dir(void);
/* Run every NNN_*.sql of `dir`, in order, on `pg` (into the first schema of its search_path;
 * meant for a fresh scratch schema: nothing is recorded or skipped).  0 ok; -1 with a message
 * ending in a newline. */
int jm_cli_migrate_fresh(jm_pg_t *pg, const char *dir, char *msg, size_t len);

/* cli_lag.c: `jobmon lag` (how far jobmon-fsm is behind Kafka) */
typedef struct {
    int json;        /* --json */
    int64_t max_lag; /* --max-lag: exit 1 above it; -1 = no check */
} jm_cli_lag_opts_t;

/* Parse argv of `lag`.  0 ok, 1 --help, -1 with a message. */
int jm_cli_lag_parse(int argc, char **argv, jm_cli_lag_opts_t *o, char *msg, size_t msglen);
int jm_cli_cmd_lag(jm_cli_t *cli, int argc, char **argv);

/* cli_prune.c: `jobmon prune` (retention) */
typedef struct {
    int64_t cutoff_ms; /* --older-than / --before, as epoch ms */
    int64_t *wf;       /* --workflow ids (owned), n_wf of them; none = every workflow */
    size_t n_wf;
    int64_t rows;      /* --rows: rows per workflow.prune event (50000) */
    int64_t timeout_s; /* --timeout per event (60) */
    int dry_run;       /* --dry-run */
    int json;          /* --json */
} jm_cli_prune_opts_t;

/* Parse argv of `prune` (now_ms anchors --older-than).  0 ok, 1 --help, -1 with a message.  Call
 * jm_cli_prune_opts_free() afterwards in every case. */
int jm_cli_prune_parse(int argc, char **argv, int64_t now_ms, jm_cli_prune_opts_t *o, char *msg,
                       size_t msglen);
void jm_cli_prune_opts_free(jm_cli_prune_opts_t *o);
/* An age like "90d", "12h", "30m", "45s", "2w" in ms.  0, or -1 when malformed. */
int jm_cli_parse_age(const char *s, int64_t *ms);
int jm_cli_cmd_prune(jm_cli_t *cli, int argc, char **argv);

/* cli_audit.c: `jobmon audit WF` */
int jm_cli_cmd_audit(jm_cli_t *cli, int argc, char **argv);

#endif
