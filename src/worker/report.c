/*
 * report.c — publish events for the worker and the distributor, confirm delivery, spool.
 *
 * A thin layer over jobmon/producer.h: it adds the "kept" list of events whose loss would lose
 * a result, the retry-then-spool policy of jm_report_finish(), spool files and their replay,
 * the local report channel between a worker and its distributor (protocol in report.h), and a
 * file sink for tests.  It does not decide what to publish.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobmon/jmtime.h"
#include "jobmon/log.h"
#include "jobmon/producer.h"
#include "worker/chan.h"
#include "worker/report.h"

#ifndef JM_PKGLIBDIR
#define JM_PKGLIBDIR "/usr/local/lib/jobmon"
#endif
#define KAFKA_MODULE "jobmon-kafka.so"
/* how long the worker waits for room in a TCP channel's socket before it gives up on it */
#define CHAN_SEND_TIMEOUT_MS 2000

enum { K_PENDING = 0, K_ACKED, K_REFUSED };

typedef struct {
    char *line;      /* encoded event */
    uint32_t seq;    /* its datagram number on the channel; 0 = sent to Kafka */
    int state;       /* K_*: the channel's answer */
    int64_t wf, ti;  /* its instance once deferred (jm_report_defer); 0 = the current one */
    int64_t sent_ms; /* when it was kept */
} kept_t;

struct jm_report_s {
    const jm_producer_ops_t *ops; /* set with p */
    jm_producer_t *p;             /* NULL in file mode and until a channel needs Kafka */
    int fd;                       /* events file, -1 otherwise */
    jm_chan_t *chan;              /* report channel, NULL = none or broken */
    uint32_t chan_sent;           /* datagrams sent on it */
    kept_t *kept;                 /* events to deliver or spool */
    size_t nkept, capkept;
    /* what a producer is made from (made late for a channel) */
    char *brokers, *topic;
    char **props;
    jm_producer_profile_t profile;
    jm_report_ack_fn ack_fn; /* distributor: delivery of forwarded events */
    void *ack_arg;
};

static const jm_producer_ops_t *g_ops;

void jm_report_set_producer_ops(const jm_producer_ops_t *ops)
{
    g_ops = ops;
}

/* jm_producer_ops from the first jobmon-kafka.so found.  RTLD_GLOBAL: the latency profile looks
 * up libsasl2 (librdkafka's dependency) in the global scope. */
static const jm_producer_ops_t *load_module(jm_err_t *err)
{
    char exe[4096], *cand[3] = {NULL, NULL, NULL};
    const char *env = getenv("JOBMON_KAFKA_MODULE");
    size_t nc = 0;
    if (env && *env)
        cand[nc++] = jm_strdup(env);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash = n > 0 ? (exe[n] = '\0', strrchr(exe, '/')) : NULL;
    if (slash) {
        *slash = '\0';
        cand[nc++] = jm_asprintf("%s/%s", exe, KAFKA_MODULE);
    }
    cand[nc++] = jm_strdup(JM_PKGLIBDIR "/" KAFKA_MODULE);
    const jm_producer_ops_t *ops = NULL;
    char why[512] = "not found";
    for (size_t i = 0; i < nc && !ops; i++) {
        if (access(cand[i], R_OK) != 0)
            continue;
        void *h = dlopen(cand[i], RTLD_NOW | RTLD_GLOBAL);
        ops = h ? dlsym(h, "jm_producer_ops") : NULL;
        if (!ops) {
            const char *e = dlerror();
            snprintf(why, sizeof(why), "%s: %s", cand[i], e ? e : "no jm_producer_ops");
        }
    }
    if (!ops)
        jm_err_set(err, JM_ERR_UNAVAILABLE, "Kafka module %s: %s (see JOBMON_KAFKA_MODULE)",
                   KAFKA_MODULE, why);
    for (size_t i = 0; i < nc; i++)
        free(cand[i]);
    return ops;
}

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

/* Set up the Kafka producer if there is none yet. */
static jm_rc_t ensure_producer(jm_report_t *r, jm_err_t *err)
{
    if (r->p)
        return JM_OK;
    if (!g_ops && !(g_ops = load_module(err)))
        return JM_ERR_UNAVAILABLE;
    r->p = g_ops->new_profile(r->brokers, r->profile, (const char *const *)r->props, err);
    if (!r->p)
        return err ? err->rc : JM_ERR_INVALID;
    r->ops = g_ops;
    r->ops->set_topic(r->p, r->topic);
    if (r->ack_fn)
        r->ops->set_dr_cb(r->p, r->ack_fn, r->ack_arg);
    return JM_OK;
}

static jm_report_t *report_alloc(const jm_config_t *cfg, int delivery_timeout_s,
                                 jm_producer_profile_t profile)
{
    jm_report_t *r = jm_calloc(1, sizeof(*r));
    char tmo[32];
    r->fd = -1;
    r->profile = profile;
    r->brokers = jm_strdup(jm_config_str(cfg, "kafka.brokers"));
    r->topic = jm_strdup(jm_config_str(cfg, "kafka.topic"));
    snprintf(tmo, sizeof(tmo), "%d", delivery_timeout_s * 1000);
    r->props = jm_report_props(cfg, delivery_timeout_s > 0 ? "message.timeout.ms" : NULL, tmo);
    return r;
}

jm_report_t *jm_report_new_profile(const jm_config_t *cfg, const char *events_file,
                                   int delivery_timeout_s, jm_producer_profile_t profile,
                                   jm_err_t *err)
{
    jm_report_t *r = report_alloc(cfg, delivery_timeout_s, profile);
    if (events_file) {
        r->fd = open(events_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (r->fd < 0) {
            jm_err_set(err, JM_ERR_IO, "%s: %s", events_file, strerror(errno));
            jm_report_destroy(r);
            return NULL;
        }
        return r;
    }
    if (ensure_producer(r, err) != JM_OK) {
        jm_report_destroy(r);
        return NULL;
    }
    return r;
}

jm_report_t *jm_report_new_channel(const jm_config_t *cfg, int chan_fd, int delivery_timeout_s,
                                   jm_producer_profile_t profile, jm_err_t *err)
{
    (void)err;
    jm_report_t *r = report_alloc(cfg, delivery_timeout_s, profile);
    r->chan = jm_chan_new(chan_fd, 0);
    return r;
}

jm_report_t *jm_report_new_remote(const jm_config_t *cfg, const char *addr, const char *token,
                                  int connect_timeout_ms, int delivery_timeout_s,
                                  jm_producer_profile_t profile)
{
    jm_report_t *r = report_alloc(cfg, delivery_timeout_s, profile);
    jm_err_t err;
    int fd = jm_chan_connect(addr, connect_timeout_ms, &err);
    if (fd < 0) {
        jm_log(JM_LOG_WARN, "report", "%s; publishing to Kafka directly", err.msg);
        return r;
    }
    r->chan = jm_chan_new(fd, 1);
    char *hello = jm_asprintf("T %s", token);
    if (jm_chan_send(r->chan, hello, strlen(hello), CHAN_SEND_TIMEOUT_MS) != 0) {
        jm_log(JM_LOG_WARN, "report", "report channel to %s: %s; publishing to Kafka directly",
               addr, strerror(errno));
        jm_chan_free(r->chan);
        r->chan = NULL;
    }
    free(hello);
    return r;
}

void jm_report_destroy(jm_report_t *r)
{
    if (!r)
        return;
    if (r->p)
        r->ops->destroy(r->p);
    if (r->fd >= 0)
        close(r->fd);
    jm_chan_free(r->chan);
    for (size_t i = 0; i < r->nkept; i++)
        free(r->kept[i].line);
    free(r->kept);
    free(r->brokers);
    free(r->topic);
    jm_report_props_free(r->props);
    free(r);
}

int jm_report_chan_fd(const jm_report_t *r)
{
    return jm_chan_fd(r->chan);
}

jm_chan_t *jm_report_chan(jm_report_t *r)
{
    return r->chan;
}

void jm_report_next(jm_report_t *r)
{
    for (size_t i = 0; i < r->nkept; i++)
        free(r->kept[i].line);
    r->nkept = 0;
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

static void chan_close(jm_report_t *r, const char *why)
{
    if (!r->chan)
        return;
    jm_log(JM_LOG_WARN, "report", "report channel: %s; publishing to Kafka directly", why);
    jm_chan_free(r->chan);
    r->chan = NULL;
}

/* Drop the kept events whose line is gone (acknowledged, or written to a spool file). */
static void drop_gone(jm_report_t *r)
{
    size_t k = 0;
    for (size_t i = 0; i < r->nkept; i++)
        if (r->kept[i].line)
            r->kept[k++] = r->kept[i];
    r->nkept = k;
}

/* Drop the kept events the channel acknowledged. */
static void drop_acked(jm_report_t *r)
{
    for (size_t i = 0; i < r->nkept; i++)
        if (r->kept[i].state == K_ACKED) {
            free(r->kept[i].line);
            r->kept[i].line = NULL;
        }
    drop_gone(r);
}

/* Apply an answer ("A n" / "N n") to the kept events: 'A' or 'N', 0 when it is none. */
static char apply_answer(jm_report_t *r, const char *buf, size_t len)
{
    char kind = 0, msg[32];
    unsigned long seq = 0;
    if (len == 0 || len >= sizeof(msg))
        return 0;
    memcpy(msg, buf, len);
    msg[len] = '\0';
    if (sscanf(msg, "%c %lu", &kind, &seq) != 2 || (kind != 'A' && kind != 'N'))
        return 0;
    for (size_t i = 0; i < r->nkept; i++)
        if (r->kept[i].seq == seq)
            r->kept[i].state = kind == 'A' ? K_ACKED : K_REFUSED;
    return kind;
}

int jm_report_chan_answer(jm_report_t *r, const char *buf, size_t len)
{
    char kind = apply_answer(r, buf, len);
    if (kind == 'A')
        drop_acked(r); /* a deferred instance's event, delivered: nothing left to do for it */
    return kind != 0;
}

/* Read the answers waiting on the channel. */
static void chan_read_acks(jm_report_t *r)
{
    char *buf = NULL;
    size_t len = 0;
    int got;
    while (r->chan && (got = jm_chan_recv(r->chan, &buf, &len)) != 0) {
        if (got < 0) {
            chan_close(r, errno ? strerror(errno) : "closed by the distributor");
            return;
        }
        (void)apply_answer(r, buf, len);
        free(buf);
    }
}

/* Send one message: its number, or 0 when it did not go (the caller uses Kafka). */
static uint32_t chan_send(jm_report_t *r, const char *line, size_t len)
{
    if (!r->chan)
        return 0;
    if (jm_chan_send(r->chan, line, len, CHAN_SEND_TIMEOUT_MS) == 0)
        return ++r->chan_sent;
    int e = errno;
    if (e == EAGAIN || e == EMSGSIZE || e == ENOBUFS) { /* this event only: nothing of it went */
        jm_log(JM_LOG_WARN, "report", "report channel: %s", strerror(e));
    } else {
        chan_read_acks(r); /* answers that arrived before the end still count */
        chan_close(r, strerror(e));
    }
    return 0;
}

static void keep(jm_report_t *r, char *line, uint32_t seq)
{
    if (r->nkept == r->capkept) {
        r->capkept = r->capkept ? 2 * r->capkept : 4;
        r->kept = jm_realloc(r->kept, r->capkept * sizeof(*r->kept));
    }
    r->kept[r->nkept++] = (kept_t){.line = line, .seq = seq, .sent_ms = jm_time_mono_ms()};
}

jm_rc_t jm_report_defer(jm_report_t *r, int64_t workflow_id, int64_t ti_id, int retry_timeout_s,
                        size_t max_kept)
{
    if (r->fd >= 0)
        return JM_OK;
    for (size_t i = 0; i < r->nkept; i++)
        if (!r->kept[i].ti) {
            r->kept[i].wf = workflow_id;
            r->kept[i].ti = ti_id;
        }
    chan_read_acks(r);
    drop_acked(r);
    int64_t too_old = jm_time_mono_ms() - (int64_t)retry_timeout_s * 1000;
    int settle = !r->chan || r->nkept > max_kept;
    for (size_t i = 0; i < r->nkept && !settle; i++)
        settle = !r->kept[i].seq || r->kept[i].state == K_REFUSED || r->kept[i].sent_ms < too_old;
    return settle ? JM_ERR_RETRY : JM_OK;
}

/* Send the kept events to Kafka again, but those the distributor already acknowledged; with
 * `channel_only`, only those sent over the channel, which are then counted as sent to Kafka. */
static jm_rc_t resend_kept(jm_report_t *r, int channel_only, jm_err_t *err)
{
    for (size_t i = 0; i < r->nkept; i++) {
        kept_t *k = &r->kept[i];
        if (k->state == K_ACKED || (channel_only && !k->seq))
            continue;
        jm_event_t *ev = NULL;
        jm_rc_t rc = jm_event_decode(k->line, strlen(k->line), &ev, err);
        if (rc == JM_OK)
            rc = r->ops->send(r->p, ev, err);
        jm_event_destroy(ev);
        if (rc != JM_OK)
            return rc;
        if (channel_only)
            *k = (kept_t){.line = k->line, .wf = k->wf, .ti = k->ti, .sent_ms = k->sent_ms};
    }
    return JM_OK;
}

jm_rc_t jm_report_send(jm_report_t *r, jm_event_t *ev, int keep_it, jm_err_t *err)
{
    jm_rc_t rc;
    char *line = NULL;
    size_t len = 0;
    uint32_t seq = 0;
    if (r->fd >= 0 || r->chan) {
        rc = jm_event_validate(ev, NULL, err);
        if (rc != JM_OK)
            goto out;
        line = jm_event_encode(ev, &len);
    }
    if (r->fd >= 0) {
        line = jm_realloc(line, len + 2);
        line[len] = '\n';
        line[len + 1] = '\0';
        rc = write_all(r->fd, line, len + 1);
        if (rc != JM_OK)
            jm_err_set(err, rc, "events file: %s", strerror(errno));
        goto out;
    }
    seq = chan_send(r, line, len);
    if (seq == 0) {
        /* what the channel took but did not confirm goes to Kafka before this event (a copy
         * the distributor relays later is a duplicate): the FSM refuses a ti.done for an
         * instance it has not seen running */
        rc = ensure_producer(r, err);
        if (rc == JM_OK && r->chan_sent)
            rc = resend_kept(r, 1, err);
        if (rc == JM_OK) {
            rc = r->ops->send(r->p, ev, err);
        } else if (keep_it) {
            /* no Kafka here at all: jm_report_finish spools it */
            jm_log(JM_LOG_WARN, "report", "%s: %s (kept for the spool)",
                   jm_event_type_name(ev->type), err ? err->msg : "");
            rc = JM_OK;
        }
    } else {
        rc = JM_OK;
    }
    if (rc == JM_OK && keep_it) {
        keep(r, line ? line : jm_event_encode(ev, NULL), seq);
        line = NULL;
    }
out:
    free(line);
    jm_event_destroy(ev);
    return rc;
}

void jm_report_poll(jm_report_t *r, int timeout_ms)
{
    chan_read_acks(r);
    if (r->p)
        r->ops->poll(r->p, timeout_ms);
}

jm_rc_t jm_report_flush(jm_report_t *r, int timeout_ms, jm_err_t *err)
{
    if (!r->p)
        return JM_OK;
    return r->ops->flush(r->p, timeout_ms, err);
}

/* Wait until the distributor has acknowledged every kept event sent over the channel.
 * JM_OK, or JM_ERR_UNAVAILABLE (refused, channel broken, or not before deadline). */
static jm_rc_t chan_wait_acks(jm_report_t *r, int64_t deadline, jm_err_t *err)
{
    for (;;) {
        chan_read_acks(r);
        size_t pending = 0, refused = 0;
        for (size_t i = 0; i < r->nkept; i++) {
            pending += r->kept[i].seq && r->kept[i].state == K_PENDING;
            refused += r->kept[i].seq && r->kept[i].state == K_REFUSED;
        }
        if (refused)
            return jm_err_set(err, JM_ERR_UNAVAILABLE, "%zu event(s) refused by the distributor",
                              refused);
        if (!pending)
            return JM_OK;
        int64_t left = deadline - jm_time_mono_ms();
        if (!r->chan || left <= 0)
            return jm_err_set(err, JM_ERR_UNAVAILABLE, "%zu event(s) not acknowledged (%s)",
                              pending, !r->chan ? "channel closed" : "timeout");
        struct pollfd pfd = {.fd = jm_chan_fd(r->chan), .events = POLLIN};
        if (poll(&pfd, 1, (int)(left < 1000 ? left : 1000)) < 0 && errno != EINTR)
            chan_close(r, strerror(errno));
    }
}

/* 1 when a kept event was neither sent on the channel nor to a producer. */
static int unsent(const jm_report_t *r)
{
    for (size_t i = 0; i < r->nkept; i++)
        if (!r->kept[i].seq)
            return 1;
    return 0;
}

static int chan_used(const jm_report_t *r)
{
    for (size_t i = 0; i < r->nkept; i++)
        if (r->kept[i].seq)
            return 1;
    return 0;
}

/* The instance a kept event belongs to: its own once deferred, else the current one. */
static int64_t kept_ti(const kept_t *k, int64_t current_ti)
{
    return k->ti ? k->ti : current_ti;
}

/* Write the kept events to spool files, one per instance (the current one is workflow_id /
 * ti_id).  `rc` is returned when there is nothing to spool. */
static jm_rc_t spool_kept(jm_report_t *r, const char *spool_dir, int64_t workflow_id, int64_t ti_id,
                          jm_rc_t rc, jm_err_t *err)
{
    if (r->nkept == 0)
        return rc;
    if (!spool_dir || !*spool_dir)
        return jm_err_set(err, JM_ERR_IO, "ti %lld: Kafka unreachable and no worker.spool_dir",
                          (long long)ti_id);
    char **lines = jm_calloc(r->nkept, sizeof(*lines));
    for (size_t i = 0; i < r->nkept; i++) {
        if (!r->kept[i].line)
            continue; /* in an earlier file */
        int64_t ti = kept_ti(&r->kept[i], ti_id);
        int64_t wf = r->kept[i].ti ? r->kept[i].wf : workflow_id;
        size_t n = 0;
        for (size_t j = i; j < r->nkept; j++)
            if (r->kept[j].line && kept_ti(&r->kept[j], ti_id) == ti)
                lines[n++] = r->kept[j].line;
        char *path = NULL;
        rc = jm_spool_write(spool_dir, wf, ti, lines, n, &path, err);
        if (rc != JM_OK)
            break;
        jm_log(JM_LOG_WARN, "report", "ti %lld: Kafka unreachable, report spooled to %s",
               (long long)ti, path);
        jm_err_set(err, JM_ERR_UNAVAILABLE, "spooled to %s", path);
        free(path);
        for (size_t j = i; j < r->nkept; j++)
            if (r->kept[j].line && kept_ti(&r->kept[j], ti_id) == ti) {
                free(r->kept[j].line);
                r->kept[j].line = NULL;
            }
        rc = JM_ERR_UNAVAILABLE;
    }
    free(lines);
    drop_gone(r);
    return rc;
}

jm_rc_t jm_report_finish(jm_report_t *r, int retry_timeout_s, const char *spool_dir,
                         int64_t workflow_id, int64_t ti_id, jm_err_t *err)
{
    if (r->fd >= 0)
        return JM_OK;
    jm_rc_t rc = JM_OK;
    /* Kafka is needed when the channel did not confirm everything, or when a kept event went
     * nowhere (neither the channel nor a producer took it) */
    int need_kafka = !r->p && unsent(r);
    if (chan_used(r)) {
        rc = chan_wait_acks(r, jm_time_mono_ms() + (int64_t)retry_timeout_s * 1000, err);
        if (rc != JM_OK) {
            jm_log(JM_LOG_WARN, "report", "ti %lld: report channel: %s", (long long)ti_id,
                   err ? err->msg : "");
            chan_close(r, "no acknowledgement");
            need_kafka = 1;
        }
    }
    if (need_kafka) {
        rc = ensure_producer(r, err);
        if (rc == JM_OK)
            rc = resend_kept(r, 0, err);
        if (rc != JM_OK)
            goto spool; /* no Kafka here at all: keep the result on disk */
    }
    if (!r->p)
        return JM_OK; /* all of it acknowledged through the channel */
    int64_t deadline = jm_time_mono_ms() + (int64_t)retry_timeout_s * 1000;
    for (unsigned attempt = 0;; attempt++) {
        int64_t left = deadline - jm_time_mono_ms();
        rc = r->ops->flush(r->p, (int)(left > 1000 ? left : 1000), err);
        if (rc == JM_OK)
            return JM_OK;
        left = deadline - jm_time_mono_ms();
        if (left <= 0)
            break;
        jm_log(JM_LOG_WARN, "report", "ti %lld: delivery not confirmed (%s), retrying",
               (long long)ti_id, err ? err->msg : "");
        int64_t pause = jm_backoff_ms(attempt, 200, 5000);
        jm_time_sleep_ms(pause < left ? pause : left, NULL);
        if (resend_kept(r, 0, err) != JM_OK)
            continue;
    }
spool:
    return spool_kept(r, spool_dir, workflow_id, ti_id, rc, err);
}

/* ---- the distributor's end ---- */
void jm_report_set_ack_cb(jm_report_t *r, jm_report_ack_fn fn, void *arg)
{
    r->ack_fn = fn;
    r->ack_arg = arg;
    if (r->p)
        r->ops->set_dr_cb(r->p, fn, arg);
}

/* Publish an encoded event tracked by `token` (events file: write it and answer at once). */
static jm_rc_t send_encoded(jm_report_t *r, int64_t wf, const void *buf, size_t len, uint64_t token,
                            jm_err_t *err)
{
    if (r->fd >= 0) {
        jm_rc_t rc = write_all(r->fd, buf, len);
        if (rc == JM_OK)
            rc = write_all(r->fd, "\n", 1);
        if (rc != JM_OK)
            jm_err_set(err, rc, "events file: %s", strerror(errno));
        if (r->ack_fn)
            r->ack_fn(r->ack_arg, token, rc == JM_OK);
        return rc;
    }
    return r->ops->send_tracked(r->p, wf, buf, len, token, err);
}

jm_rc_t jm_report_forward(jm_report_t *r, const void *buf, size_t len, uint64_t token,
                          jm_err_t *err)
{
    jm_event_t *ev = NULL;
    jm_rc_t rc = jm_event_decode(buf, len, &ev, err);
    if (rc == JM_OK)
        rc = jm_event_validate(ev, NULL, err);
    int64_t wf = ev ? ev->workflow_id : 0;
    jm_event_destroy(ev);
    if (rc != JM_OK)
        return rc;
    return send_encoded(r, wf, buf, len, token, err);
}

jm_rc_t jm_report_send_tracked(jm_report_t *r, jm_event_t *ev, uint64_t token, jm_err_t *err)
{
    size_t len = 0;
    jm_rc_t rc = jm_event_validate(ev, NULL, err);
    if (rc == JM_OK) {
        char *line = jm_event_encode(ev, &len);
        rc = send_encoded(r, ev->workflow_id, line, len, token, err);
        free(line);
    }
    jm_event_destroy(ev);
    return rc;
}

int jm_report_wakeup_fd(jm_report_t *r)
{
    return r->p ? r->ops->wakeup_fd(r->p) : -1;
}

int jm_report_chan_ack(jm_chan_t *c, uint32_t n, int ok)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%c %lu", ok ? 'A' : 'N', (unsigned long)n);
    if (jm_chan_send(c, buf, (size_t)len, 0) == 0)
        return 0;
    jm_log(JM_LOG_DEBUG, "report", "channel answer %u not sent: %s", n, strerror(errno));
    return -1;
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
