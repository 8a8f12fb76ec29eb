/*
 * slurm.h — the pure parts of the Slurm plugin: sbatch command lines, and parsing of sbatch,
 * squeue, `scontrol show job -o` and jobcomp/filetxt output into jobmon's terms.
 * No process is run here (plugin_slurm.c does that), so all of it is unit-tested.
 */
#ifndef JOBMON_DISTRIBUTORS_SLURM_H
#define JOBMON_DISTRIBUTORS_SLURM_H

#include <stddef.h>
#include <stdint.h>

#include "jobmon/common.h"

typedef struct jm_slurm_req_s {
    const char *job_name;
    const char *partition;           /* NULL = the default partition */
    int64_t memory_mb, runtime_s;    /* 0 = cluster default */
    int64_t cores;                   /* 0 = 1 */
    size_t array_n;                  /* 0 = a single job, else --array=1-N */
    const char *out_path, *err_path; /* may hold %A %a %j */
    const char *wrap;                /* the shell command of the job */
} jm_slurm_req_t;

/* argv for sbatch --parsable (NULL-terminated, new; free with jm_plugin_argv_free). */
char **jm_slurm_sbatch_argv(const jm_slurm_req_t *req);
/* Job id from `sbatch --parsable` output ("123" or "123;cluster").  JM_ERR_INVALID if none. */
jm_rc_t jm_slurm_parse_sbatch(const char *out, char *jobid, size_t sz);
/* Value of `key` in a line of space-separated key=value tokens (scontrol -o, jobcomp).
 * 1 and the value in out when found, else 0. */
int jm_slurm_kv(const char *line, const char *key, char *out, size_t sz);
/* 1 when a job in `state` is still queued or running (PENDING, RUNNING, ...). */
int jm_slurm_state_alive(const char *state);
/* Map a finished job to a triage status: Z for OUT_OF_MEMORY, TIMEOUT and the no-cgroup
 * memory-kill signature (FAILED with ExitCode=0:9); E for FAILED with an exit code; U for
 * everything else (CANCELLED, NODE_FAIL, COMPLETED without a report...).  Returns 0 and sets
 * *status and msg; JM_ERR_RETRY when the job is still alive. */
jm_rc_t jm_slurm_map_exit(const char *state, const char *exit_code, const char *reason,
                          char *status, char *msg, size_t msgsz);
/* Map a `scontrol show job -o` line or a jobcomp line as above. JM_ERR_NOT_FOUND without
 * JobState. */
jm_rc_t jm_slurm_map_line(const char *line, char *status, char *msg, size_t msgsz);
/* 1 when a jobcomp line describes distributor id `id` ("N" or "A_T" for an array task). */
int jm_slurm_jobcomp_match(const char *line, const char *id);
/* Parse an `squeue -h -r -o '%i|%T'` line into id and state.  0 on success. */
int jm_slurm_squeue_line(const char *line, char *id, size_t idsz, char *state, size_t statesz);

#endif
