/*
 * plugin_slurm.c — submit task instances to Slurm with sbatch (job arrays for batches), track
 * them with squeue, cancel with scancel, and explain lost jobs from `scontrol show job -o` or,
 * once the job aged out of slurmctld (MinJobAge), the jobcomp/filetxt file.
 *
 * Every job runs `jobmon-worker --array-batch <file>`: the batch file (worker/batchfile.h)
 * maps the array step to its instance, so no command ever passes through a shell quoting
 * layer.  The job's own -o/-e files receive the worker's diagnostics; the command's output
 * goes where the worker writes it (the instance's stdout/stderr paths).  With the distributor's
 * TCP report channel (JM_WORKERS_REMOTE), sbatch runs with JOBMON_REPORT_ADDR/JOBMON_REPORT_TOKEN
 * added to its environment, which the job inherits (sbatch's default --export=ALL): the token
 * never shows on a command line, and jobs whose environment lacks it publish to Kafka.
 * Parsing lives in slurm_parse.c.  It does not install signal handlers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "distributors/plugin.h"
#include "distributors/slurm.h"
#include "jobmon/log.h"
#include "worker/batchfile.h"

extern char **environ;

typedef struct {
    char jobcomp[1024]; /* JobCompLoc, "" when unknown */
    uint64_t seq;
} slurm_t;

/* Run argv with environment envp (NULL = ours), capture stdout (NUL-terminated) and its exit
 * status. */
static int run_capture_env(char *const *argv, char *const *envp, char **out, jm_err_t *err)
{
    int p[2];
    size_t len = 0, cap = 4096;
    char *buf = jm_malloc(cap);
    if (pipe2(p, O_CLOEXEC) != 0) {
        free(buf);
        return jm_err_set(err, JM_ERR_IO, "pipe: %s", strerror(errno)), -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawnattr_t at;
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setsigmask(&at, &none);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, &at, argv, envp ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(p[1]);
    if (e != 0) {
        close(p[0]);
        free(buf);
        return jm_err_set(err, JM_ERR_UNAVAILABLE, "%s: %s", argv[0], strerror(e)), -1;
    }
    for (;;) {
        if (len + 1 >= cap)
            buf = jm_realloc(buf, cap *= 2);
        ssize_t n = read(p[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(p[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    *out = buf;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static int run_capture(char *const *argv, char **out, jm_err_t *err)
{
    return run_capture_env(argv, NULL, out, err);
}

/* Our environment with the report channel's address and token when there is one (a new vector
 * of borrowed strings but for those two, which *own holds), or NULL. */
static char **report_env(const jm_plugin_env_t *env, char *own[2])
{
    if (!env->report_addr || !env->report_token)
        return NULL;
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    char **v = jm_calloc(n + 3, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "JOBMON_REPORT_", 14) != 0)
            v[k++] = environ[i];
    own[0] = v[k++] = jm_asprintf("JOBMON_REPORT_ADDR=%s", env->report_addr);
    own[1] = v[k++] = jm_asprintf("JOBMON_REPORT_TOKEN=%s", env->report_token);
    return v;
}

static jm_rc_t slurm_start(jm_plugin_t *pl, jm_err_t *err)
{
    slurm_t *s = pl->state;
    char *out = NULL;
    char *argv[] = {"scontrol", "show", "config", NULL};
    int rc = run_capture(argv, &out, err);
    if (rc != 0) {
        free(out);
        return err && err->rc ? err->rc
                              : jm_err_set(err, JM_ERR_UNAVAILABLE, "scontrol show config failed");
    }
    const char *env = getenv("JOBMON_SLURM_JOBCOMP");
    if (env && *env) {
        snprintf(s->jobcomp, sizeof(s->jobcomp), "%s", env);
    } else {
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
            if (strncmp(line, "JobCompLoc", 10) == 0) {
                char *eq = strchr(line, '=');
                if (eq) {
                    eq++;
                    while (*eq == ' ')
                        eq++;
                    snprintf(s->jobcomp, sizeof(s->jobcomp), "%s", eq);
                }
            }
    }
    free(out);
    return JM_OK;
}

static void slurm_stop(jm_plugin_t *pl)
{
    (void)pl; /* jobs keep running: a cluster is not a child of the distributor */
}

static char *shell_quote(const char *s)
{
    size_t n = strlen(s);
    char *q = jm_malloc(n * 4 + 3), *o = q;
    *o++ = '\'';
    for (; *s; s++) {
        if (*s == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *s;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return q;
}

static jm_rc_t submit_batch(jm_plugin_t *pl, jm_dist_ti_t *const *tis, size_t n, int array,
                            char **ids, jm_err_t *err)
{
    slurm_t *s = pl->state;
    const jm_plugin_env_t *env = pl->env;
    jm_rc_t rc = JM_OK;
    char *path = jm_asprintf("%s/batch-%lld-%llu.json", env->state_dir, (long long)tis[0]->ti_id,
                             (unsigned long long)++s->seq);
    jm_batch_item_t *items = jm_calloc(n, sizeof(*items));
    char *wrap = NULL, *qw = NULL, *qb = NULL, *qc = NULL, *out = NULL, *outp = NULL, *errp = NULL,
         **argv = NULL;
    for (size_t i = 0; i < n; i++)
        items[i] = (jm_batch_item_t){.step = (int64_t)i + 1,
                                     .ti_id = tis[i]->ti_id,
                                     .task_id = tis[i]->task_id,
                                     .name = tis[i]->name,
                                     .command = tis[i]->command,
                                     .stdout_path = tis[i]->stdout_path,
                                     .stderr_path = tis[i]->stderr_path,
                                     .memory_mb = tis[i]->memory_mb,
                                     .runtime_s = tis[i]->runtime_s};
    rc = jm_batchfile_write(path, env->workflow_id, env->run_id, items, n, err);
    if (rc != JM_OK)
        goto out;
    qw = shell_quote(env->worker_path);
    qb = shell_quote(path);
    qc = env->config_path ? shell_quote(env->config_path) : NULL;
    wrap = jm_asprintf("exec %s --array-batch %s%s%s%s", qw, qb, array ? "" : " --step 1",
                       qc ? " --config " : "", qc ? qc : "");
    outp = jm_asprintf("%s/slurm-%s.out", env->state_dir, array ? "%A_%a" : "%j");
    errp = jm_asprintf("%s/slurm-%s.err", env->state_dir, array ? "%A_%a" : "%j");
    char name[300];
    snprintf(name, sizeof(name), "%s%s", tis[0]->name ? tis[0]->name : "jobmon",
             array ? "-array" : "");
    jm_slurm_req_t req = {.job_name = name,
                          .partition = tis[0]->queue,
                          .memory_mb = tis[0]->memory_mb,
                          .runtime_s = tis[0]->runtime_s,
                          .cores = tis[0]->cores,
                          .array_n = array ? n : 0,
                          .out_path = outp,
                          .err_path = errp,
                          .wrap = wrap};
    argv = jm_slurm_sbatch_argv(&req);
    char *own[2] = {NULL, NULL}, **envp = report_env(env, own);
    int code = run_capture_env(argv, envp, &out, err);
    free(envp);
    free(own[0]);
    free(own[1]);
    char jobid[64];
    if (code < 0) {
        rc = err ? err->rc : JM_ERR_UNAVAILABLE;
        goto out;
    }
    if (code != 0 || jm_slurm_parse_sbatch(out, jobid, sizeof(jobid)) != JM_OK) {
        rc = jm_err_set(err, JM_ERR_UNAVAILABLE, "sbatch exited %d: %.200s", code, out);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = array ? jm_asprintf("%s_%zu", jobid, i + 1) : jm_strdup(jobid);
    jm_log(JM_LOG_DEBUG, "slurm", "submitted %zu instance(s) as job %s", n, jobid);
out:
    jm_plugin_argv_free(argv);
    free(out);
    free(outp);
    free(errp);
    free(wrap);
    free(qw);
    free(qb);
    free(qc);
    free(items);
    free(path);
    return rc;
}

static jm_rc_t slurm_submit(jm_plugin_t *pl, const jm_dist_ti_t *ti, char **id, jm_err_t *err)
{
    jm_dist_ti_t *one[1] = {(jm_dist_ti_t *)ti};
    return submit_batch(pl, one, 1, 0, id, err);
}

static jm_rc_t slurm_submit_array(jm_plugin_t *pl, jm_dist_ti_t *const *tis, size_t n, char **ids,
                                  jm_err_t *err)
{
    return submit_batch(pl, tis, n, 1, ids, err);
}

static jm_rc_t slurm_alive(jm_plugin_t *pl, const char *const *ids, size_t n, int *alive,
                           jm_err_t *err)
{
    (void)pl;
    char *out = NULL;
    char *argv[] = {"squeue", "-h", "-r", "--me", "--states=all", "-o", "%i|%T", NULL};
    for (size_t i = 0; i < n; i++)
        alive[i] = 0;
    int code = run_capture(argv, &out, err);
    if (code != 0) {
        free(out);
        return code < 0 ? JM_ERR_UNAVAILABLE
                        : jm_err_set(err, JM_ERR_UNAVAILABLE, "squeue exited %d", code);
    }
    char id[64], state[64];
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (jm_slurm_squeue_line(line, id, sizeof(id), state, sizeof(state)) != 0 ||
            !jm_slurm_state_alive(state))
            continue;
        for (size_t i = 0; i < n; i++)
            if (!alive[i] && strcmp(ids[i], id) == 0)
                alive[i] = 1;
    }
    free(out);
    return JM_OK;
}

static jm_rc_t slurm_terminate(jm_plugin_t *pl, const char *const *ids, size_t n, jm_err_t *err)
{
    (void)pl;
    if (n == 0)
        return JM_OK;
    char **argv = jm_calloc(n + 2, sizeof(*argv));
    argv[0] = "scancel";
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = (char *)ids[i];
    char *out = NULL;
    int code = run_capture(argv, &out, err);
    free(out);
    free(argv);
    if (code < 0)
        return JM_ERR_UNAVAILABLE;
    if (code != 0) /* scancel fails for jobs that already ended: not an error for us */
        jm_log(JM_LOG_INFO, "slurm", "scancel exited %d", code);
    return JM_OK;
}

static jm_rc_t slurm_exit_info(jm_plugin_t *pl, const char *id, char *status, char *msg,
                               size_t msgsz, jm_err_t *err)
{
    slurm_t *s = pl->state;
    char *out = NULL;
    char *argv[] = {"scontrol", "show", "job", "-o", (char *)id, NULL};
    int code = run_capture(argv, &out, err);
    jm_rc_t rc = JM_ERR_NOT_FOUND;
    if (code == 0)
        rc = jm_slurm_map_line(out, status, msg, msgsz);
    free(out);
    if (rc != JM_ERR_NOT_FOUND)
        return rc; /* JM_OK, or JM_ERR_RETRY while the job is alive */
    if (!s->jobcomp[0])
        return jm_err_set(err, JM_ERR_NOT_FOUND, "job %s: no exit information", id);
    FILE *f = fopen(s->jobcomp, "re");
    if (!f)
        return jm_err_set(err, JM_ERR_NOT_FOUND, "job %s: %s: %s", id, s->jobcomp, strerror(errno));
    char *line = NULL, *last = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0)
        if (jm_slurm_jobcomp_match(line, id)) {
            free(last);
            last = jm_strdup(line);
        }
    free(line);
    fclose(f);
    rc = last ? jm_slurm_map_line(last, status, msg, msgsz) : JM_ERR_NOT_FOUND;
    free(last);
    if (rc == JM_ERR_NOT_FOUND)
        jm_err_set(err, rc, "job %s: no exit information", id);
    return rc;
}

static void slurm_destroy(jm_plugin_t *pl)
{
    if (!pl)
        return;
    free(pl->state);
    free(pl);
}

jm_plugin_t *jm_plugin_slurm_new(const jm_plugin_env_t *env)
{
    jm_plugin_t *pl = jm_calloc(1, sizeof(*pl));
    *pl = (jm_plugin_t){
        .name = "slurm",
        .env = env,
        .workers = JM_WORKERS_REMOTE,
        .state = jm_calloc(1, sizeof(slurm_t)),
        .start = slurm_start,
        .stop = slurm_stop,
        .submit = slurm_submit,
        .submit_array = slurm_submit_array,
        .get_submitted_or_running = slurm_alive,
        .terminate = slurm_terminate,
        .get_remote_exit_info = slurm_exit_info,
        .destroy = slurm_destroy,
    };
    return pl;
}
