/*
 * batchfile.c — write and read the step → task instance map of an array submission.
 * Pure file I/O with jansson; knows nothing about clusters.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/batchfile.h"

void jm_batch_item_clear(jm_batch_item_t *it)
{
    if (!it)
        return;
    free(it->name);
    free(it->command);
    free(it->stdout_path);
    free(it->stderr_path);
    it->name = it->command = it->stdout_path = it->stderr_path = NULL;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

jm_rc_t jm_batchfile_write(const char *path, int64_t workflow_id, int64_t run_id,
                           const jm_batch_item_t *items, size_t n, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    json_t *steps = json_array();
    for (size_t i = 0; i < n; i++) {
        const jm_batch_item_t *it = &items[i];
        json_array_append_new(
            steps, json_pack("{sI sI sI so so so so sI sI}", "step", (json_int_t)it->step, "ti_id",
                             (json_int_t)it->ti_id, "task_id", (json_int_t)it->task_id, "name",
                             str_or_null(it->name), "command", str_or_null(it->command), "stdout",
                             str_or_null(it->stdout_path), "stderr", str_or_null(it->stderr_path),
                             "memory_mb", (json_int_t)it->memory_mb, "runtime_s",
                             (json_int_t)it->runtime_s));
    }
    json_t *doc = json_pack("{sI sI so}", "workflow_id", (json_int_t)workflow_id, "run_id",
                            (json_int_t)run_id, "steps", steps);
    char *tmp = jm_asprintf("%s.tmp", path);
    if (json_dump_file(doc, tmp, JSON_COMPACT) != 0) {
        rc = jm_err_set(err, JM_ERR_IO, "%s: cannot write", tmp);
        goto out;
    }
    if (rename(tmp, path) != 0)
        rc = jm_err_set(err, JM_ERR_IO, "rename %s: %s", path, strerror(errno));
out:
    free(tmp);
    json_decref(doc);
    return rc;
}

static char *dup_opt(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? jm_strdup(s) : NULL;
}

jm_rc_t jm_batchfile_read_step(const char *path, int64_t step, int64_t *workflow_id,
                               int64_t *run_id, jm_batch_item_t *out, jm_err_t *err)
{
    jm_rc_t rc = JM_ERR_NOT_FOUND;
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    memset(out, 0, sizeof(*out));
    if (!doc)
        return jm_err_set(err, JM_ERR_INVALID, "%s:%d: %s", path, je.line, je.text);
    json_t *steps = json_object_get(doc, "steps");
    if (!json_is_array(steps) || !json_is_integer(json_object_get(doc, "workflow_id")) ||
        !json_is_integer(json_object_get(doc, "run_id"))) {
        rc = jm_err_set(err, JM_ERR_INVALID, "%s: not a batch file", path);
        goto out;
    }
    *workflow_id = json_integer_value(json_object_get(doc, "workflow_id"));
    *run_id = json_integer_value(json_object_get(doc, "run_id"));
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        if (json_integer_value(json_object_get(s, "step")) != step)
            continue;
        if (!json_is_integer(json_object_get(s, "ti_id")) ||
            !json_is_string(json_object_get(s, "command"))) {
            rc = jm_err_set(err, JM_ERR_INVALID, "%s: step %lld malformed", path, (long long)step);
            goto out;
        }
        out->step = step;
        out->ti_id = json_integer_value(json_object_get(s, "ti_id"));
        out->task_id = json_integer_value(json_object_get(s, "task_id"));
        out->memory_mb = json_integer_value(json_object_get(s, "memory_mb"));
        out->runtime_s = json_integer_value(json_object_get(s, "runtime_s"));
        out->name = dup_opt(s, "name");
        out->command = dup_opt(s, "command");
        out->stdout_path = dup_opt(s, "stdout");
        out->stderr_path = dup_opt(s, "stderr");
        rc = JM_OK;
        goto out;
    }
    jm_err_set(err, rc, "%s: no step %lld", path, (long long)step);
out:
    json_decref(doc);
    return rc;
}
