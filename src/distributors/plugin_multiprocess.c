/*
 * plugin_multiprocess.c — N local worker processes (env->parallelism, default the number of
 * online cores), with array submission (ids "<job>_<step>"); pooled (long-lived) workers unless
 * distributor.worker_pool is off.
 */
#include <unistd.h>

#include "distributors/plugin_local_int.h"

jm_plugin_t *jm_plugin_multiprocess_new(const jm_plugin_env_t *env)
{
    int n = env->parallelism > 0 ? env->parallelism : (int)sysconf(_SC_NPROCESSORS_ONLN);
    return jm_plugin_local_new(env, "multiprocess", n > 0 ? n : 1, 1, env->worker_pool);
}
