/*
 * batchfile.h — the file that maps the steps of an array submission to task instances.
 *
 * The distributor writes one JSON file per submitted batch; each step of the cluster array
 * runs `jobmon-worker --array-batch FILE` and picks its entry by step (SLURM_ARRAY_TASK_ID or
 * JOBMON_ARRAY_STEP_ID).  This keeps commands out of sbatch scripts (no shell quoting) and the
 * worker off PostgreSQL.  Format:
 *   {"workflow_id": W, "run_id": R, "steps": [{"step": 1, "ti_id": .., "task_id": .., "name": ..,
 *     "command": .., "stdout": .., "stderr": .., "memory_mb": .., "runtime_s": ..}, ...]}
 */
#ifndef JOBMON_WORKER_BATCHFILE_H
#define JOBMON_WORKER_BATCHFILE_H

#include <stddef.h>
#include <stdint.h>

#include "jobmon/common.h"

typedef struct jm_batch_item_s {
    int64_t step, ti_id, task_id;
    char *name, *command;
    char *stdout_path, *stderr_path; /* may be NULL: the worker's default */
    int64_t memory_mb, runtime_s;    /* 0 = no limit */
} jm_batch_item_t;

/* Frees the strings of it (not it).  Accepts NULL. */
void jm_batch_item_clear(jm_batch_item_t *it);

/* Write the batch atomically (tmp + rename) to path. */
JM_WUR jm_rc_t jm_batchfile_write(const char *path, int64_t workflow_id, int64_t run_id,
                                  const jm_batch_item_t *items, size_t n, jm_err_t *err);
/* Read the entry of `step`; out's strings are new (clear with jm_batch_item_clear).
 * JM_ERR_NOT_FOUND when the step is not in the file, JM_ERR_INVALID when malformed. */
JM_WUR jm_rc_t jm_batchfile_read_step(const char *path, int64_t step, int64_t *workflow_id,
                                      int64_t *run_id, jm_batch_item_t *out, jm_err_t *err);

#endif
