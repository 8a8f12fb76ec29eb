/*
 * plugin_local_int.h — the plugin functions sequential and multiprocess share (both are a
 * jm_localproc_t; they differ in slots, id scheme and array support).
 */
#ifndef JOBMON_DISTRIBUTORS_PLUGIN_LOCAL_INT_H
#define JOBMON_DISTRIBUTORS_PLUGIN_LOCAL_INT_H

#include "distributors/localproc.h"
#include "distributors/plugin.h"

typedef struct {
    jm_localproc_t *lp;
    int slots;
    int pool; /* pooled workers (localproc.h) */
    uint64_t next_job;
} jm_local_state_t;

jm_plugin_t *jm_plugin_local_new(const jm_plugin_env_t *env, const char *name, int slots,
                                 int arrays, int pool);

#endif
