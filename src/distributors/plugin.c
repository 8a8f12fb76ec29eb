/*
 * plugin.c — what every plugin shares: the registry by cluster type, the resources of an
 * instance, and the jobmon-worker command line.  No cluster logic here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributors/plugin.h"

void jm_dist_ti_parse_resources(jm_dist_ti_t *ti)
{
    json_error_t je;
    json_t *r = ti->resources ? json_loads(ti->resources, 0, &je) : NULL;
    json_t *v;
    ti->memory_mb = ti->runtime_s = ti->cores = 0;
    if (!json_is_object(r))
        goto out;
    if ((v = json_object_get(r, "memory")) && json_is_number(v))
        ti->memory_mb = (int64_t)json_number_value(v);
    if ((v = json_object_get(r, "runtime")) && json_is_number(v))
        ti->runtime_s = (int64_t)json_number_value(v);
    if ((v = json_object_get(r, "cores")) && json_is_number(v))
        ti->cores = (int64_t)json_number_value(v);
    if ((v = json_object_get(r, "queue")) && json_is_string(v)) {
        free(ti->queue);
        ti->queue = jm_strdup(json_string_value(v));
    }
    const char *name = ti->name ? ti->name : "task";
    if ((v = json_object_get(r, "stdout")) && json_is_string(v)) {
        free(ti->stdout_path);
        ti->stdout_path =
            jm_asprintf("%s/%s.o%lld", json_string_value(v), name, (long long)ti->ti_id);
    }
    if ((v = json_object_get(r, "stderr")) && json_is_string(v)) {
        free(ti->stderr_path);
        ti->stderr_path =
            jm_asprintf("%s/%s.e%lld", json_string_value(v), name, (long long)ti->ti_id);
    }
out:
    json_decref(r);
}

void jm_dist_ti_free(jm_dist_ti_t *ti)
{
    if (!ti)
        return;
    free(ti->name);
    free(ti->command);
    free(ti->resources);
    free(ti->distributor_id);
    free(ti->queue);
    free(ti->stdout_path);
    free(ti->stderr_path);
    free(ti);
}

jm_plugin_t *jm_plugin_new(const char *type, const jm_plugin_env_t *env, jm_err_t *err)
{
    if (strcmp(type, "dummy") == 0)
        return jm_plugin_dummy_new(env);
    if (strcmp(type, "sequential") == 0)
        return jm_plugin_sequential_new(env);
    if (strcmp(type, "multiprocess") == 0)
        return jm_plugin_multiprocess_new(env);
    if (strcmp(type, "slurm") == 0)
        return jm_plugin_slurm_new(env);
    jm_err_set(err, JM_ERR_INVALID,
               "unknown cluster type '%s' (dummy, sequential, "
               "multiprocess, slurm)",
               type);
    return NULL;
}

char **jm_plugin_worker_argv(const jm_plugin_env_t *env, const jm_dist_ti_t *ti)
{
    char **v = jm_calloc(32, sizeof(*v));
    size_t k = 0;
    v[k++] = jm_strdup(env->worker_path);
#define ARG(flag, ...)                                                                             \
    do {                                                                                           \
        v[k++] = jm_strdup(flag);                                                                  \
        v[k++] = jm_asprintf(__VA_ARGS__);                                                         \
    } while (0)
    ARG("--ti-id", "%lld", (long long)ti->ti_id);
    ARG("--workflow-id", "%lld", (long long)env->workflow_id);
    ARG("--run-id", "%lld", (long long)env->run_id);
    ARG("--task-id", "%lld", (long long)ti->task_id);
    ARG("--command", "%s", ti->command);
    if (ti->memory_mb > 0)
        ARG("--memory-mb", "%lld", (long long)ti->memory_mb);
    if (ti->runtime_s > 0)
        ARG("--runtime-s", "%lld", (long long)ti->runtime_s);
    if (ti->stdout_path)
        ARG("--stdout", "%s", ti->stdout_path);
    if (ti->stderr_path)
        ARG("--stderr", "%s", ti->stderr_path);
    if (env->config_path)
        ARG("--config", "%s", env->config_path);
#undef ARG
    v[k] = NULL;
    return v;
}

void jm_plugin_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

char *jm_plugin_worker_spec(const jm_plugin_env_t *env, const jm_dist_ti_t *ti, const char *id)
{
    json_t *o = json_pack("{sI sI sI sI ss sI sI ss}", "ti_id", (json_int_t)ti->ti_id,
                          "workflow_id", (json_int_t)env->workflow_id, "run_id",
                          (json_int_t)env->run_id, "task_id", (json_int_t)ti->task_id, "command",
                          ti->command ? ti->command : "", "memory_mb", (json_int_t)ti->memory_mb,
                          "runtime_s", (json_int_t)ti->runtime_s, "distributor_id", id);
    if (!o)
        return NULL; /* not UTF-8: a one-shot worker takes it from its command line */
    if (ti->stdout_path)
        json_object_set_new(o, "stdout", json_string(ti->stdout_path));
    if (ti->stderr_path)
        json_object_set_new(o, "stderr", json_string(ti->stderr_path));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
