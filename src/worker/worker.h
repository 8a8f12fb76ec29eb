/*
 * worker.h — the body of jobmon-worker: run one task instance's command and report it.
 *
 * jm_worker_run() forks `/bin/sh -c command` in its own process group, streams its stdout and
 * stderr into log files while keeping their tails, heartbeats, enforces memory and runtime
 * limits, obeys KILL_SELF, and publishes ti.running / ti.heartbeat / ti.done / ti.error
 * through a jm_report_t.  It does not parse options or read configuration (worker_main.c
 * does) and it does not talk to PostgreSQL itself: the KILL_SELF check is a callback.
 */
#ifndef JOBMON_WORKER_WORKER_H
#define JOBMON_WORKER_WORKER_H

#include <stdint.h>
#include <sys/types.h>

#include "jobmon/common.h"
#include "worker/report.h"

/* Returns the instance's current status letter, or 0 when it cannot be learned right now. */
typedef char (*jm_worker_status_fn)(void *arg, int64_t ti_id);

typedef struct jm_worker_opts_s {
    int64_t ti_id, workflow_id, run_id, task_id;
    const char *command;
    const char *stdout_path, *stderr_path; /* NULL = <logs_dir>/<ti_id>.stdout|.stderr */
    const char *logs_dir;                  /* NULL = $JOBMON_LOGS_DIR or /tmp/jobmon-logs */
    const char *distributor_id;            /* NULL = from the environment (see below) */
    int64_t memory_mb;                     /* 0 = no limit */
    int64_t runtime_s;                     /* 0 = no limit */
    int hb_interval_s;                     /* heartbeat.task_instance_interval */
    double report_by_buffer;               /* heartbeat.report_by_buffer */
    int interrupt_timeout_s;               /* worker.command_interrupt_timeout */
    jm_worker_status_fn status_fn;         /* may be NULL: KILL_SELF is then not watched */
    void *status_arg;
} jm_worker_opts_t;

typedef enum {
    JM_WKILL_NONE = 0,
    JM_WKILL_MEMORY,  /* over --memory-mb → Z */
    JM_WKILL_RUNTIME, /* over --runtime-s → Z */
    JM_WKILL_SELF,    /* the instance is K → F */
    JM_WKILL_SIGNAL,  /* the worker was told to stop (SIGTERM...) → U */
} jm_worker_kill_t;

typedef struct jm_worker_result_s {
    int exit_code;        /* what jobmon-worker exits with: status, or 128+signal */
    int event_exit_code;  /* for ti.error: status, or -signal */
    char status;          /* 'D', or the ti.error status E/Z/U/F */
    jm_worker_kill_t why; /* */
    char message[512];    /* for ti.error */
    int64_t wall_ms, cpu_ms, maxrss_kb;
    pid_t pid; /* of the command */
} jm_worker_result_t;

/* Run the instance described by `o`, publishing through `r` (ti.running and the final event
 * are kept for jm_report_finish; the caller calls it).  JM_OK when the command ran (whatever
 * its exit code: see res); JM_ERR_IO when it could not be started (pipes, fork, log files);
 * JM_ERR_INVALID when r rejected an event. */
JM_WUR jm_rc_t jm_worker_run(const jm_worker_opts_t *o, jm_report_t *r, jm_worker_result_t *res,
                             jm_err_t *err);

/* The distributor id to report: JOBMON_DISTRIBUTOR_ID, else SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID,
 * else SLURM_JOB_ID, else "local-<pid>".  Returns a new string, caller frees. */
char *jm_worker_distributor_id_from_env(void);
/* The array step from --step (>= 0 wins), else SLURM_ARRAY_TASK_ID, else JOBMON_ARRAY_STEP_ID;
 * -1 when none is set or it is malformed. */
int64_t jm_worker_array_step(int64_t cli_step);

#endif
