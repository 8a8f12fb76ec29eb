/*
 * plugin.h — the one interface between jobmon-distributor and a cluster (dummy, sequential,
 * multiprocess, slurm).  One file per plugin; each exports a constructor returning a
 * jm_plugin_t whose function pointers implement the contract below (Jobmon's §4.3).
 *
 * The distributor owns the instances (jm_dist_ti_t) and the event publishing; a plugin only
 * submits, lists, terminates and explains jobs.  The exception is the dummy plugin, which
 * publishes ti.running / ti.done itself (through env->report) because it runs nothing.
 * All calls happen on the distributor's one thread.
 */
#ifndef JOBMON_DISTRIBUTORS_PLUGIN_H
#define JOBMON_DISTRIBUTORS_PLUGIN_H

#include <jansson.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "jobmon/common.h"
#include "worker/report.h"

/* One task instance as the distributor knows it (from task_instance JOIN task). */
typedef struct jm_dist_ti_s {
    int64_t ti_id, task_id, array_id; /* array_id 0 = plain command */
    int batch_num, step;
    char status;          /* last status read from PostgreSQL */
    char *name, *command; /* owned */
    char *resources;      /* owned: the jsonb text, e.g. {"memory": 512, "runtime": 60} */
    char *distributor_id; /* owned, NULL until launched */
    /* derived from resources (jm_dist_ti_parse_resources) */
    int64_t memory_mb, runtime_s, cores; /* 0 = unset */
    char *queue;                         /* owned, NULL = the cluster's default */
    char *stdout_path, *stderr_path;     /* owned, NULL = the worker's default */
} jm_dist_ti_t;

/* Fill memory_mb/runtime_s/cores/queue and the log paths from ti->resources: keys
 * "memory" (MB), "runtime" (s), "cores", "queue", and "stdout"/"stderr" (directories: the
 * paths become <dir>/<name>.o<ti_id> and .e<ti_id>).  Unknown keys are ignored. */
void jm_dist_ti_parse_resources(jm_dist_ti_t *ti);
void jm_dist_ti_free(jm_dist_ti_t *ti); /* accepts NULL */

/* What plugins get from the distributor. Borrowed for the plugin's lifetime. */
typedef struct jm_plugin_env_s {
    int64_t workflow_id, run_id;
    const char *cluster;     /* cluster name */
    const char *worker_path; /* the jobmon-worker binary */
    const char *config_path; /* passed on to workers as --config (may be NULL) */
    const char *state_dir;   /* per-run scratch dir on a shared file system (batch files) */
    jm_report_t *report;     /* for the dummy plugin */
    int parallelism;         /* multiprocess: worker processes (0 = number of cores) */
    int worker_pool;   /* multiprocess: long-lived workers (--serve) instead of one per instance */
    int next_report_s; /* for events the dummy plugin publishes */
    /* plugins with JM_WORKERS_REMOTE: the distributor's TCP report channel (reportsrv.h) for the
     * jobs' environment, JOBMON_REPORT_ADDR and JOBMON_REPORT_TOKEN; NULL = none (off, or it
     * could not listen): the workers publish to Kafka themselves */
    const char *report_addr, *report_token;
} jm_plugin_env_t;

typedef struct jm_plugin_s jm_plugin_t;

/* How a plugin's workers report: JM_WORKERS_NONE, no workers or no channel (dummy: the plugin
 * publishes itself); JM_WORKERS_LOCAL, workers on this host over a socketpair to the plugin
 * (localproc.c; its submit only queues: nothing starts before its next poll, which the
 * distributor relies on to announce the submission afterwards); JM_WORKERS_REMOTE, workers on other
 * hosts over the distributor's TCP report channel (the distributor then opens it before start() and
 * fills env->report_addr and env->report_token for submit).  The workers of the last two wait for
 * the distributor's acknowledgement of their events. */
typedef enum { JM_WORKERS_NONE = 0, JM_WORKERS_LOCAL, JM_WORKERS_REMOTE } jm_plugin_workers_t;
struct jm_plugin_s {
    const char *name;
    const jm_plugin_env_t *env;
    void *state;
    jm_plugin_workers_t workers; /* capability: how its workers report */
    /* Lifecycle.  stop() terminates outstanding work of local plugins. */
    jm_rc_t (*start)(jm_plugin_t *pl, jm_err_t *err);
    void (*stop)(jm_plugin_t *pl);
    /* Submit one instance; *id receives a new string (the distributor id).  An error means
     * the instance was not submitted (→ ti.submit_failed with err's message). */
    jm_rc_t (*submit)(jm_plugin_t *pl, const jm_dist_ti_t *ti, char **id, jm_err_t *err);
    /* Optional (NULL = not supported): submit n instances of one batch as a cluster array;
     * ids[i] receive new strings.  All or nothing. */
    jm_rc_t (*submit_array)(jm_plugin_t *pl, jm_dist_ti_t *const *tis, size_t n, char **ids,
                            jm_err_t *err);
    /* alive[i] = 1 when ids[i] is still queued or running on the cluster. */
    jm_rc_t (*get_submitted_or_running)(jm_plugin_t *pl, const char *const *ids, size_t n,
                                        int *alive, jm_err_t *err);
    /* Kill these jobs (unknown ids are ignored). */
    jm_rc_t (*terminate)(jm_plugin_t *pl, const char *const *ids, size_t n, jm_err_t *err);
    /* Post-mortem of a job whose worker went silent: *status is 'Z', 'U', 'F' or 'E' and msg
     * the explanation.  JM_ERR_NOT_FOUND = "not available" (the caller reports U). */
    jm_rc_t (*get_remote_exit_info)(jm_plugin_t *pl, const char *id, char *status, char *msg,
                                    size_t msgsz, jm_err_t *err);
    /* Optional: make progress (start queued local work, reap children, publish dummy events).
     * Called every loop iteration, after the distributor published ti.launched. */
    void (*poll)(jm_plugin_t *pl);
    /* Optional: descriptors whose POLLIN should wake the distributor for poll() (the local
     * workers' report channels): fills up to `max` of fds, returns how many there are. */
    size_t (*pollfds)(jm_plugin_t *pl, struct pollfd *fds, size_t max);
    void (*destroy)(jm_plugin_t *pl); /* accepts the plugin after stop(); frees state */
};

/* The plugin for a cluster type: "dummy", "sequential", "multiprocess", "slurm".  Returns a
 * new plugin (caller destroys with pl->destroy), NULL with JM_ERR_INVALID when unknown. */
jm_plugin_t *jm_plugin_new(const char *type, const jm_plugin_env_t *env, jm_err_t *err);

jm_plugin_t *jm_plugin_dummy_new(const jm_plugin_env_t *env);
jm_plugin_t *jm_plugin_sequential_new(const jm_plugin_env_t *env);
jm_plugin_t *jm_plugin_multiprocess_new(const jm_plugin_env_t *env);
jm_plugin_t *jm_plugin_slurm_new(const jm_plugin_env_t *env);

/* The argv of a jobmon-worker for one instance (NULL-terminated, free with
 * jm_plugin_argv_free).  Used by the local plugins. */
char **jm_plugin_worker_argv(const jm_plugin_env_t *env, const jm_dist_ti_t *ti);
void jm_plugin_argv_free(char **argv);
/* The instance spec a pooled worker gets for ti under distributor id `id` (JSON text, caller
 * frees; fields in worker/report.h). */
char *jm_plugin_worker_spec(const jm_plugin_env_t *env, const jm_dist_ti_t *ti, const char *id);

#endif
