/*
 * report.c — publish events for the worker and the distributor, confirm delivery, spool.
 *
 * A thin layer over jobmon/producer.h: it adds the "kept" list of events whose loss would lose
 * a result, the retry-then-spool policy of jm_report_finish(), spool files and their replay,
 * and a file sink for tests.  It does not decide what to publish.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobmon/jmtime.h"
#include "jobmon/log.h"
#include "jobmon/producer.h"
#include "worker/report.h"

struct jm_report_s {
    jm_producer_t *p; /* NULL in file mode */
    int fd;           /* events file, -1 with Kafka */
    char **kept;      /* encoded events to deliver or spool */
    size_t nkept, capkept;
};

char **jm_report_props(const jm_config_t *cfg, const char *extra_key, const char *extra_value)
{
    size_t n = 0;
    const char *const *items = jm_config_list(cfg, "kafka.properties", &n);
    char **v = jm_calloc(2 * n + 3, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        if (!eq)
            continue;
        v[k++] = jm_strndup(items[i], (size_t)(eq - items[i]));
        v[k++] = jm_strdup(eq + 1);
    }
    if (extra_key) {
        v[k++] = jm_strdup(extra_key);
        v[k++] = jm_strdup(extra_value);
    }
    v[k] = NULL;
    return v;
}

void jm_report_props_free(char **props)
{
    for (size_t i = 0; props && props[i]; i++)
        free(props[i]);
    free(props);
}

jm_report_t *jm_report_new(const jm_config_t *cfg, const char *events_file, int delivery_timeout_s,
                           jm_err_t *err)
{
    return jm_report_new_profile(cfg, events_file, delivery_timeout_s, JM_PRODUCER_THROUGHPUT, err);
}

jm_report_t *jm_report_new_profile(const jm_config_t *cfg, const char *events_file,
                                   int delivery_timeout_s, jm_producer_profile_t profile,
                                   jm_err_t *err)
{
    jm_report_t *r = jm_calloc(1, sizeof(*r));
    r->fd = -1;
    if (events_file) {
        r->fd = open(events_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (r->fd < 0) {
            jm_err_set(err, JM_ERR_IO, "%s: %s", events_file, strerror(errno));
            free(r);
            return NULL;
        }
        return r;
    }
    char tmo[32];
    snprintf(tmo, sizeof(tmo), "%d", delivery_timeout_s * 1000);
    char **props = jm_report_props(cfg, delivery_timeout_s > 0 ? "message.timeout.ms" : NULL, tmo);
    r->p = jm_producer_new_profile(jm_config_str(cfg, "kafka.brokers"), profile,
                                   (const char *const *)props, err);
    jm_report_props_free(props);
    if (!r->p) {
        free(r);
        return NULL;
    }
    jm_producer_set_topic(r->p, jm_config_str(cfg, "kafka.topic"));
    return r;
}

void jm_report_destroy(jm_report_t *r)
{
    if (!r)
        return;
    jm_producer_destroy(r->p);
    if (r->fd >= 0)
        close(r->fd);
    for (size_t i = 0; i < r->nkept; i++)
        free(r->kept[i]);
    free(r->kept);
    free(r);
}

static jm_rc_t write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return JM_ERR_IO;
        buf += w;
        len -= (size_t)w;
    }
    return JM_OK;
}

jm_rc_t jm_report_send(jm_report_t *r, jm_event_t *ev, int keep, jm_err_t *err)
{
    jm_rc_t rc;
    if (r->fd >= 0) {
        rc = jm_event_validate(ev, NULL, err);
        if (rc == JM_OK) {
            size_t len = 0;
            char *line = jm_event_encode(ev, &len);
            line = jm_realloc(line, len + 2);
            line[len] = '\n';
            line[len + 1] = '\0';
            rc = write_all(r->fd, line, len + 1);
            if (rc != JM_OK)
                jm_err_set(err, rc, "events file: %s", strerror(errno));
            free(line);
        }
        goto out;
    }
    rc = jm_producer_send(r->p, ev, err);
    if (rc == JM_OK && keep) {
        if (r->nkept == r->capkept) {
            r->capkept = r->capkept ? 2 * r->capkept : 4;
            r->kept = jm_realloc(r->kept, r->capkept * sizeof(*r->kept));
        }
        r->kept[r->nkept++] = jm_event_encode(ev, NULL);
    }
out:
    jm_event_destroy(ev);
    return rc;
}

void jm_report_poll(jm_report_t *r, int timeout_ms)
{
    if (r->p)
        jm_producer_poll(r->p, timeout_ms);
}

jm_rc_t jm_report_flush(jm_report_t *r, int timeout_ms, jm_err_t *err)
{
    if (!r->p)
        return JM_OK;
    return jm_producer_flush(r->p, timeout_ms, err);
}

static jm_rc_t resend_kept(jm_report_t *r, jm_err_t *err)
{
    for (size_t i = 0; i < r->nkept; i++) {
        jm_event_t *ev = NULL;
        jm_rc_t rc = jm_event_decode(r->kept[i], strlen(r->kept[i]), &ev, err);
        if (rc == JM_OK)
            rc = jm_producer_send(r->p, ev, err);
        jm_event_destroy(ev);
        if (rc != JM_OK)
            return rc;
    }
    return JM_OK;
}

jm_rc_t jm_report_finish(jm_report_t *r, int retry_timeout_s, const char *spool_dir,
                         int64_t workflow_id, int64_t ti_id, jm_err_t *err)
{
    if (!r->p)
        return JM_OK;
    int64_t deadline = jm_time_mono_ms() + (int64_t)retry_timeout_s * 1000;
    jm_rc_t rc;
    for (unsigned attempt = 0;; attempt++) {
        int64_t left = deadline - jm_time_mono_ms();
        rc = jm_producer_flush(r->p, (int)(left > 1000 ? left : 1000), err);
        if (rc == JM_OK)
            return JM_OK;
        left = deadline - jm_time_mono_ms();
        if (left <= 0)
            break;
        jm_log(JM_LOG_WARN, "report", "ti %lld: delivery not confirmed (%s), retrying",
               (long long)ti_id, err ? err->msg : "");
        int64_t pause = jm_backoff_ms(attempt, 200, 5000);
        jm_time_sleep_ms(pause < left ? pause : left, NULL);
        if (resend_kept(r, err) != JM_OK)
            continue;
    }
    if (r->nkept == 0)
        return rc;
    if (!spool_dir || !*spool_dir)
        return jm_err_set(err, JM_ERR_IO, "ti %lld: Kafka unreachable and no worker.spool_dir",
                          (long long)ti_id);
    char *path = NULL;
    rc = jm_spool_write(spool_dir, workflow_id, ti_id, r->kept, r->nkept, &path, err);
    if (rc != JM_OK)
        return rc;
    jm_log(JM_LOG_WARN, "report", "ti %lld: Kafka unreachable, report spooled to %s",
           (long long)ti_id, path);
    jm_err_set(err, JM_ERR_UNAVAILABLE, "spooled to %s", path);
    free(path);
    return JM_ERR_UNAVAILABLE;
}

jm_rc_t jm_spool_write(const char *spool_dir, int64_t workflow_id, int64_t ti_id,
                       char *const *lines, size_t n, char **path_out, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    char *path = NULL, *tmp = NULL;
    int fd = -1;
    (void)mkdir(spool_dir, 0777);
    /* the id of the first kept event makes the name unique (a retried ti has a new ti id) */
    char uniq[48] = "x";
    const char *idp = n > 0 ? strstr(lines[0], "\"id\":\"") : NULL;
    if (idp)
        snprintf(uniq, sizeof(uniq), "%.36s", idp + 6);
    path = jm_asprintf("%s/%lld-%lld-%s.jmspool", spool_dir, (long long)workflow_id,
                       (long long)ti_id, uniq);
    tmp = jm_asprintf("%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = jm_err_set(err, JM_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < n && rc == JM_OK; i++) {
        rc = write_all(fd, lines[i], strlen(lines[i]));
        if (rc == JM_OK)
            rc = write_all(fd, "\n", 1);
    }
    if (rc != JM_OK || fsync(fd) != 0) {
        rc = jm_err_set(err, JM_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = jm_err_set(err, JM_ERR_IO, "rename %s: %s", path, strerror(errno));
        goto out;
    }
    if (path_out) {
        *path_out = path;
        path = NULL;
    }
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(tmp);
    free(path);
    return rc;
}

/* Send every line of one spool file.  JM_ERR_INVALID if a line does not decode. */
static jm_rc_t replay_file(jm_report_t *r, const char *path, jm_err_t *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return jm_err_set(err, JM_ERR_IO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    jm_rc_t rc = JM_OK;
    while (rc == JM_OK && (len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        jm_event_t *ev = NULL;
        rc = jm_event_decode(line, (size_t)len, &ev, err);
        if (rc == JM_OK)
            rc = jm_report_send(r, ev, 0, err);
    }
    free(line);
    fclose(f);
    return rc;
}

jm_rc_t jm_spool_replay(jm_report_t *r, const char *spool_dir, int64_t workflow_id, int *files,
                        jm_err_t *err)
{
    int count = 0;
    jm_rc_t rc = JM_OK;
    size_t n = 0, cap = 0;
    char **sent = NULL;
    if (!spool_dir || !*spool_dir)
        goto out;
    DIR *d = opendir(spool_dir);
    if (!d)
        goto out; /* nothing spooled yet */
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "%lld-", (long long)workflow_id);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 8 || strcmp(de->d_name + l - 8, ".jmspool") != 0)
            continue;
        if (workflow_id && strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char *path = jm_asprintf("%s/%s", spool_dir, de->d_name);
        jm_err_t e2;
        jm_rc_t frc = replay_file(r, path, &e2);
        if (frc == JM_ERR_INVALID) {
            char *bad = jm_asprintf("%s.bad", path);
            jm_log(JM_LOG_ERROR, "spool", "%s: %s (renamed to .bad)", path, e2.msg);
            (void)rename(path, bad);
            free(bad);
            free(path);
            continue;
        }
        if (frc != JM_OK) {
            jm_log(JM_LOG_WARN, "spool", "%s: %s", path, e2.msg);
            free(path);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            sent = jm_realloc(sent, cap * sizeof(*sent));
        }
        sent[n++] = path;
        count++;
    }
    closedir(d);
    if (n > 0) {
        rc = jm_report_flush(r, 10000, err);
        for (size_t i = 0; i < n; i++) {
            if (rc == JM_OK) {
                jm_log(JM_LOG_INFO, "spool", "re-published %s", sent[i]);
                unlink(sent[i]);
            }
            free(sent[i]);
        }
    }
out:
    free(sent);
    if (files)
        *files = count;
    return rc;
}
