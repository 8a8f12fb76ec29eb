/*
 * plugin_sequential.c — runs the worker for one instance at a time, on this host.
 *
 * Unlike Jobmon's (which blocks the distributor inside submit), the one worker runs as a child
 * process so the distributor keeps heartbeating during long tasks.  Ids 1, 2, 3...; no arrays;
 * one worker process per instance (no pool).
 */
#include "distributors/plugin_local_int.h"

jm_plugin_t *jm_plugin_sequential_new(const jm_plugin_env_t *env)
{
    return jm_plugin_local_new(env, "sequential", 1, 0, 0);
}
