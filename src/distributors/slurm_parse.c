/*
 * slurm_parse.c — build sbatch command lines and read Slurm's answers (see slurm.h).
 * Pure string work: no processes, no files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributors/slurm.h"

char **jm_slurm_sbatch_argv(const jm_slurm_req_t *req)
{
    char **v = jm_calloc(24, sizeof(*v));
    size_t k = 0;
    v[k++] = jm_strdup("sbatch");
    v[k++] = jm_strdup("--parsable");
    v[k++] = jm_asprintf("--job-name=%s", req->job_name ? req->job_name : "jobmon");
    if (req->partition && *req->partition)
        v[k++] = jm_asprintf("--partition=%s", req->partition);
    if (req->memory_mb > 0)
        v[k++] = jm_asprintf("--mem=%lldM", (long long)req->memory_mb);
    if (req->runtime_s > 0)
        v[k++] = jm_asprintf("--time=%lld", (long long)((req->runtime_s + 59) / 60));
    v[k++] = jm_asprintf("--cpus-per-task=%lld", (long long)(req->cores > 0 ? req->cores : 1));
    if (req->array_n > 0)
        v[k++] = jm_asprintf("--array=1-%zu", req->array_n);
    if (req->out_path)
        v[k++] = jm_asprintf("--output=%s", req->out_path);
    if (req->err_path)
        v[k++] = jm_asprintf("--error=%s", req->err_path);
    v[k++] = jm_asprintf("--wrap=%s", req->wrap);
    v[k] = NULL;
    return v;
}

jm_rc_t jm_slurm_parse_sbatch(const char *out, char *jobid, size_t sz)
{
    while (*out == ' ' || *out == '\n')
        out++;
    size_t n = 0;
    while (out[n] >= '0' && out[n] <= '9')
        n++;
    if (n == 0 || n >= sz || (out[n] && out[n] != ';' && out[n] != '\n' && out[n] != ' '))
        return JM_ERR_INVALID;
    memcpy(jobid, out, n);
    jobid[n] = '\0';
    return JM_OK;
}

int jm_slurm_kv(const char *line, const char *key, char *out, size_t sz)
{
    size_t kl = strlen(key);
    for (const char *p = line; p && *p;) {
        while (*p == ' ')
            p++;
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            const char *v = p + kl + 1;
            size_t n = strcspn(v, " \n");
            if (n >= sz)
                n = sz - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
        p = strchr(p, ' ');
    }
    return 0;
}

int jm_slurm_state_alive(const char *state)
{
    static const char *const alive[] = {"PENDING",      "RUNNING",  "CONFIGURING",  "COMPLETING",
                                        "SUSPENDED",    "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                                        "RESIZING",     "STOPPED",  "SIGNALING",    "STAGE_OUT",
                                        "RESV_DEL_HOLD"};
    for (size_t i = 0; i < JM_ARRAY_LEN(alive); i++)
        if (strcmp(state, alive[i]) == 0)
            return 1;
    return 0;
}

jm_rc_t jm_slurm_map_exit(const char *state, const char *exit_code, const char *reason,
                          char *status, char *msg, size_t msgsz)
{
    int code = 0, sig = 0;
    if (exit_code)
        (void)sscanf(exit_code, "%d:%d", &code, &sig);
    if (jm_slurm_state_alive(state))
        return JM_ERR_RETRY;
    if (strcmp(state, "OUT_OF_MEMORY") == 0) {
        *status = 'Z';
        snprintf(msg, msgsz, "slurm: job ran out of memory (OUT_OF_MEMORY)");
    } else if (strcmp(state, "TIMEOUT") == 0) {
        *status = 'Z';
        snprintf(msg, msgsz, "slurm: job exceeded its time limit (TIMEOUT)");
    } else if (strcmp(state, "FAILED") == 0 && code == 0 && sig == 9) {
        *status = 'Z';
        snprintf(msg, msgsz, "slurm: job killed by SIGKILL (memory limit, ExitCode=0:9%s%s)",
                 reason && *reason ? " Reason=" : "", reason ? reason : "");
    } else if (strcmp(state, "FAILED") == 0 && (code != 0 || sig != 0)) {
        *status = 'E';
        if (sig)
            snprintf(msg, msgsz, "slurm: job failed, killed by signal %d", sig);
        else
            snprintf(msg, msgsz, "slurm: job failed with exit code %d", code);
    } else {
        *status = 'U';
        snprintf(msg, msgsz, "slurm: job ended %s (ExitCode=%s%s%s) without a worker report", state,
                 exit_code ? exit_code : "?", reason && *reason ? " Reason=" : "",
                 reason ? reason : "");
    }
    return JM_OK;
}

jm_rc_t jm_slurm_map_line(const char *line, char *status, char *msg, size_t msgsz)
{
    char state[64], code[32] = "", reason[128] = "";
    if (!jm_slurm_kv(line, "JobState", state, sizeof(state)))
        return JM_ERR_NOT_FOUND;
    (void)jm_slurm_kv(line, "ExitCode", code, sizeof(code));
    (void)jm_slurm_kv(line, "Reason", reason, sizeof(reason));
    return jm_slurm_map_exit(state, code[0] ? code : NULL, reason, status, msg, msgsz);
}

int jm_slurm_jobcomp_match(const char *line, const char *id)
{
    char v[64], a[64], t[64];
    const char *us = strchr(id, '_');
    if (us) {
        return jm_slurm_kv(line, "ArrayJobId", a, sizeof(a)) &&
               jm_slurm_kv(line, "ArrayTaskId", t, sizeof(t)) &&
               strncmp(a, id, (size_t)(us - id)) == 0 && a[us - id] == '\0' &&
               strcmp(t, us + 1) == 0;
    }
    return jm_slurm_kv(line, "JobId", v, sizeof(v)) && strcmp(v, id) == 0;
}

int jm_slurm_squeue_line(const char *line, char *id, size_t idsz, char *state, size_t statesz)
{
    const char *bar = strchr(line, '|');
    if (!bar || bar == line || (size_t)(bar - line) >= idsz)
        return -1;
    memcpy(id, line, (size_t)(bar - line));
    id[bar - line] = '\0';
    size_t n = strcspn(bar + 1, "| \n");
    if (n == 0 || n >= statesz)
        return -1;
    memcpy(state, bar + 1, n);
    state[n] = '\0';
    return 0;
}
