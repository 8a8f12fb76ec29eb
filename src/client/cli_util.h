/*
 * cli_util.h — private helpers shared by the `jobmon` command groups (cli_run.c, cli_status.c,
 * cli_ops.c): ids and option values, publishing one client event, waiting until the FSM has
 * applied an event, and the run's distributor child process.
 */
#ifndef JOBMON_CLI_UTIL_H
#define JOBMON_CLI_UTIL_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "client/cli_int.h"
#include "jobmon/event.h"
#include "jobmon/producer.h"
#include "jobmon/status.h"

/* Parse a positive decimal id (1 … 2^63−1).  0 on success, -1 otherwise. */
int jm_cli_parse_id(const char *s, int64_t *out);
/* Parse a non-negative int (0 … max).  0 on success, -1 otherwise. */
int jm_cli_parse_int(const char *s, int64_t max, int64_t *out);
/* After getopt_long: -1 with "unexpected argument 'X'" in msg when an operand is left (optind <
 * argc), else 0. */
int jm_cli_no_operands(int argc, char **argv, char *msg, size_t msglen);
/* `ids` as a PostgreSQL array literal "{1,2}" (new string, caller frees). */
char *jm_cli_id_array(const int64_t *ids, size_t n);
/* The last `lines` lines of `text` (all of it when lines <= 0 or it has fewer): a pointer into
 * text.  A final newline does not count as a line of its own. */
const char *jm_cli_tail_lines(const char *text, int64_t lines);
/* Print `text` to `out` line by line, each after `prefix` (a final newline ends the last line,
 * it does not start an empty one). */
void jm_cli_print_lines(FILE *out, const char *prefix, const char *text);
/* $USER, else the passwd name, else "unknown".  Static or environment storage. */
const char *jm_cli_user(void);
/* Print `j` (stolen) compactly on stdout followed by a newline. */
void jm_cli_print_json(json_t *j);

/* librdkafka queue.buffering.max.kbytes of the CLI's producer (kafka.properties overrides). */
#define JM_CLI_PRODUCER_QUEUE_KB "131072"

/* A producer for the configured brokers/topic/properties, with a 30 s delivery timeout unless
 * kafka.properties sets message.timeout.ms.  NULL with err on a bad property. */
jm_producer_t *jm_cli_producer(const jm_config_t *cfg, jm_err_t *err);
/* Send one client event (payload stolen) and flush: JM_OK once Kafka acknowledged it.  The event
 * id is copied to `event_id` (37 bytes) when not NULL. */
JM_WUR jm_rc_t jm_cli_publish(jm_producer_t *p, jm_event_type_t type, int64_t wf, json_t *payload,
                              char *event_id, jm_err_t *err);
/* Wait until event_log has `event_id` (the FSM consumed it) or timeout_ms passes.  *outcome gets
 * "applied"/"ignored"/"rejected"/"dead_letter" and reason (may be empty) its reason.
 * JM_ERR_RETRY on timeout. */
JM_WUR jm_rc_t jm_cli_wait_event(jm_status_ctx_t *ctx, const char *event_id, int64_t timeout_ms,
                                 char *outcome, size_t outcome_len, char *reason, size_t reason_len,
                                 jm_err_t *err);
/* Look an event up once: JM_OK (found, outcome/reason filled), JM_ERR_NOT_FOUND, or an error. */
JM_WUR jm_rc_t jm_cli_event_outcome(jm_status_ctx_t *ctx, const char *event_id, char *outcome,
                                    size_t outcome_len, char *reason, size_t reason_len,
                                    jm_err_t *err);

/* ---- the run's distributor ----------------------------------------------------------------- */

typedef struct {
    pid_t pid;      /* 0 = not running */
    int err_fd;     /* read end of its stderr, -1 when closed */
    char buf[4096]; /* partial line */
    size_t len;
    int shutdown_seen;
    int alive_seen;
} jm_cli_dist_t;

/* A file beside this executable: $env_name when set, else the first of fmts (each with one %s,
 * the executable's directory; with `libtool`, retried from the parent of a .libs directory) that
 * accept() takes.  Returns a new string, caller frees; NULL when none matched. */
char *jm_cli_locate(const char *env_name, const char *const *fmts, size_t n,
                    int (*accept)(const char *path), int libtool);
/* The distributor program: $JOBMON_DISTRIBUTOR, else jobmon-distributor beside this executable,
 * else "jobmon-distributor" (searched on PATH).  Returns a new string, caller frees. */
char *jm_cli_distributor_path(void);
/* The argument vector for one run (NULL-terminated, new; free with jm_cli_argv_free). */
char **jm_cli_distributor_argv(const jm_config_t *cfg, const char *path, int64_t run_id,
                               int64_t wf_id, const char *cluster);
void jm_cli_argv_free(char **argv);
/* Start it as a child in its own process group (Ctrl-C does not reach it) with its stderr on a
 * pipe, and wait up to timeout_ms for the `ALIVE` line; other lines are forwarded to our log.
 * JM_ERR_IO when it cannot start, exits or stays silent (the child is killed then). */
JM_WUR jm_rc_t jm_cli_dist_start(jm_cli_dist_t *d, char **argv, int64_t timeout_ms, jm_err_t *err);
/* Read what is available on its stderr (non-blocking), forward lines.  Returns 0, or -1 when
 * the pipe closed. */
int jm_cli_dist_pump(jm_cli_dist_t *d);
/* 1 if the child is still running (reaps it when not). */
int jm_cli_dist_alive(jm_cli_dist_t *d);
/* SIGTERM, wait up to timeout_ms for `SHUTDOWN` and exit, then SIGKILL its process group. */
void jm_cli_dist_stop(jm_cli_dist_t *d, int64_t timeout_ms);
/* Double-fork a daemon (setsid, stdio to `log_path`) running argv; returns once the
 * intermediate child has exited.  *pid_out gets the daemon's pid when known (may be 0). */
JM_WUR jm_rc_t jm_cli_dist_daemonise(char **argv, const char *log_path, pid_t *pid_out,
                                     jm_err_t *err);
/* $XDG_STATE_HOME/jobmon or ~/.local/state/jobmon, created; new string, caller frees. */
char *jm_cli_state_dir(jm_err_t *err);

/* Called for each forwarded distributor line (set by the watcher to clear its progress bar). */
extern void (*jm_cli_before_log)(void);

#endif
