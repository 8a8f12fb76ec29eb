/*
 * distributor.c — the run loop of jobmon-distributor (one process per workflow run).
 *
 * Work comes from committed state only: the run's instances in PostgreSQL (reader role),
 * read when the Redis doorbell jm:notify:run:<run_id> rings and at least every
 * distributor.reconcile_interval seconds, so a lost notification or a Redis outage only
 * delays.  Q instances are batched, instantiated, submitted through the plugin and launched;
 * K instances are terminated and reported killed; T instances are triaged with the plugin's
 * exit information (U when it cannot tell).  It heartbeats the run and the launched instances
 * the plugin still sees, re-publishes worker spool files of its workflow, and ends when the
 * run is terminal (D E S T A) or on SIGTERM (prints SHUTDOWN).
 *
 * One thread: poll() over a signalfd (SIGTERM, SIGHUP, SIGCHLD) and the Redis socket.
 * It never writes PostgreSQL or Redis.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distributors/distributor.h"
#include "distributors/reportsrv.h"
#include "jobmon/event.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"
#include "jobmon/pg.h"

#define BATCH_MAX  1000 /* items per event (catalogue limit) */
#define LOCAL_TICK 50   /* ms between plugin polls while local work is pending */

size_t jm_dist_batches(jm_dist_ti_t *const *tis, size_t n, size_t max, size_t *starts)
{
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        int brk = i == 0;
        if (!brk) {
            const jm_dist_ti_t *a = tis[i - 1], *b = tis[i];
            brk = a->array_id != b->array_id || a->batch_num != b->batch_num ||
                  strcmp(a->resources ? a->resources : "", b->resources ? b->resources : "") != 0 ||
                  i - starts[nb - 1] >= max;
        }
        if (brk)
            starts[nb++] = i;
    }
    starts[nb] = n;
    return nb;
}

/* ---- a set of ids (flags that need not survive a restart) ---- */
typedef struct {
    int64_t *v;
    size_t cap, used;
} idset_t;

static int idset_has(const idset_t *s, int64_t id)
{
    if (!s->cap)
        return 0;
    for (size_t i = ((uint64_t)id * 0x9E3779B97F4A7C15ULL >> 17) & (s->cap - 1);;
         i = (i + 1) & (s->cap - 1)) {
        if (s->v[i] == id)
            return 1;
        if (s->v[i] == 0)
            return 0;
    }
}

static void idset_add(idset_t *s, int64_t id)
{
    if (idset_has(s, id))
        return;
    if ((s->used + 1) * 2 > s->cap) {
        idset_t n = {.cap = s->cap ? s->cap * 2 : 1024};
        n.v = jm_calloc(n.cap, sizeof(int64_t));
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i])
                idset_add(&n, s->v[i]);
        free(s->v);
        *s = n;
    }
    size_t i = ((uint64_t)id * 0x9E3779B97F4A7C15ULL >> 17) & (s->cap - 1);
    while (s->v[i])
        i = (i + 1) & (s->cap - 1);
    s->v[i] = id;
    s->used++;
}

/* ---- state ---- */
typedef struct {
    const jm_dist_opts_t *o;
    jm_config_t *cfg;
    jm_plugin_env_t env;
    jm_plugin_t *pl;
    jm_report_t *r;
    jm_reportsrv_t *srv; /* TCP report channel of a plugin with remote workers, NULL = none */
    jm_journal_t *jr;
    jm_pg_t *pg;
    redisContext *sub;
    idset_t announced; /* ti.launched / ti.submit_failed published by this process */
    idset_t killed, triaged;
    int ordered; /* workers' reports go out through our producer after our own events */
    int ti_next_report_s, run_next_report_s;
    char run_status;
    int run_seen; /* its row was read once: missing afterwards means deleted */
} dist_t;

static jm_rc_t publish(dist_t *d, jm_event_type_t type, json_t *payload)
{
    jm_err_t err;
    jm_rc_t rc = jm_report_send(d->r, jm_event_new(type, d->o->workflow_id, payload), 0, &err);
    if (rc != JM_OK)
        jm_log(JM_LOG_ERROR, "distributor", "run %lld: %s not sent: %s", (long long)d->o->run_id,
               jm_event_type_name(type), err.msg);
    return rc;
}

static json_t *run_payload(const dist_t *d)
{
    return json_pack("{sI}", "run_id", (json_int_t)d->o->run_id);
}

static jm_rc_t publish_run_status(dist_t *d, const char *status)
{
    json_t *p = run_payload(d);
    json_object_set_new(p, "status", json_string(status));
    return publish(d, JM_EV_RUN_STATUS, p);
}

/* Publish `type` for ti ids in chunks of BATCH_MAX; extra(i) adds per-item fields. */
typedef void (*item_fn)(json_t *item, size_t i, void *arg);
static void publish_items(dist_t *d, jm_event_type_t type, const int64_t *ids, size_t n,
                          int with_next_report, const char *error, item_fn fn, void *arg)
{
    for (size_t off = 0; off < n; off += BATCH_MAX) {
        json_t *p = run_payload(d), *items = json_array();
        if (with_next_report)
            json_object_set_new(p, "next_report_s", json_integer(d->ti_next_report_s));
        if (error)
            json_object_set_new(p, "error", json_string(error));
        for (size_t i = off; i < n && i < off + BATCH_MAX; i++) {
            json_t *it = json_pack("{sI}", "ti_id", (json_int_t)ids[i]);
            if (fn)
                fn(it, i, arg);
            json_array_append_new(items, it);
        }
        json_object_set_new(p, "items", items);
        (void)publish(d, type, p);
    }
}

static void add_did(json_t *item, size_t i, void *arg)
{
    char **dids = arg;
    json_object_set_new(item, "distributor_id", json_string(dids[i]));
}

/* ---- reading committed state ---- */
static const char SQL_TIS[] =
    "SELECT ti.id, ti.status, ti.task_id, coalesce(ti.array_id, 0), ti.batch_num, ti.step, "
    "ti.resources::text, ti.distributor_id, t.name, t.command "
    "FROM task_instance ti JOIN task t ON t.id = ti.task_id "
    "WHERE ti.run_id = $1 AND ti.status = ANY($2::text[]) "
    "ORDER BY ti.array_id NULLS FIRST, ti.batch_num, ti.step, ti.id";

/* A read query about our run ($1 = its id, $2 = `arg2` when not NULL) on the reader connection,
 * connecting first when there is none; a lost connection is dropped so the next call reconnects. */
static jm_rc_t query_run(dist_t *d, const char *sql, const char *arg2, PGresult **res,
                         jm_err_t *err)
{
    char run[32];
    const char *params[2] = {run, arg2};
    *res = NULL;
    if (!d->pg)
        d->pg = jm_pg_connect(jm_config_str(d->cfg, "postgres.reader_conninfo"),
                              jm_time_mono_ms() + 5000, err);
    if (!d->pg)
        return JM_ERR_UNAVAILABLE;
    snprintf(run, sizeof(run), "%lld", (long long)d->o->run_id);
    jm_rc_t rc = jm_pg_exec(d->pg, sql, arg2 ? 2 : 1, params, res, err);
    if (rc == JM_ERR_UNAVAILABLE) {
        jm_pg_destroy(d->pg);
        d->pg = NULL;
    }
    return rc;
}

static jm_rc_t read_tis(dist_t *d, const char *statuses, jm_dist_ti_t ***out, size_t *n,
                        jm_err_t *err)
{
    PGresult *res = NULL;
    *out = NULL;
    *n = 0;
    jm_rc_t rc = query_run(d, SQL_TIS, statuses, &res, err);
    if (rc != JM_OK)
        return rc;
    int rows = PQntuples(res);
    jm_dist_ti_t **v = jm_calloc((size_t)rows + 1, sizeof(*v));
    for (int i = 0; i < rows; i++) {
        jm_dist_ti_t *ti = jm_calloc(1, sizeof(*ti));
        ti->ti_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        ti->status = PQgetvalue(res, i, 1)[0];
        ti->task_id = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        ti->array_id = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        ti->batch_num = atoi(PQgetvalue(res, i, 4));
        ti->step = atoi(PQgetvalue(res, i, 5));
        ti->resources = jm_strdup(PQgetvalue(res, i, 6));
        if (!PQgetisnull(res, i, 7))
            ti->distributor_id = jm_strdup(PQgetvalue(res, i, 7));
        ti->name = jm_strdup(PQgetvalue(res, i, 8));
        ti->command = jm_strdup(PQgetvalue(res, i, 9));
        jm_dist_ti_parse_resources(ti);
        v[i] = ti;
    }
    PQclear(res);
    *out = v;
    *n = (size_t)rows;
    return JM_OK;
}

static void free_tis(jm_dist_ti_t **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        jm_dist_ti_free(v[i]);
    free(v);
}

static jm_rc_t read_run_status(dist_t *d, jm_err_t *err)
{
    PGresult *res = NULL;
    jm_rc_t rc = query_run(d, "SELECT status FROM workflow_run WHERE id = $1", NULL, &res, err);
    if (rc != JM_OK)
        return rc;
    d->run_status = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0)[0] : 0;
    d->run_seen |= d->run_status != 0;
    PQclear(res);
    return JM_OK;
}

/* ---- actions ---- */
/* Hand one batch (same array, FSM batch and resources) to the plugin: as an array where it can,
 * else one by one.  dids[i] stays NULL for an instance that was not submitted; *err holds the
 * last failure. */
static jm_rc_t plugin_submit(dist_t *d, jm_dist_ti_t **b, size_t n, char **dids, jm_err_t *err)
{
    if (d->pl->submit_array && n > 1 && b[0]->array_id)
        return d->pl->submit_array(d->pl, b, n, dids, err);
    jm_rc_t rc = JM_OK;
    for (size_t i = 0; i < n; i++) {
        jm_err_t e1;
        if (d->pl->submit(d->pl, b[i], &dids[i], &e1) != JM_OK) {
            dids[i] = NULL;
            jm_log(JM_LOG_WARN, "distributor", "ti %lld: submit failed: %s", (long long)b[i]->ti_id,
                   e1.msg);
            *err = e1;
            rc = e1.rc ? e1.rc : JM_ERR_INTERNAL;
        }
    }
    return rc;
}

/* ti.instantiated for the k instances being submitted, once (*done). */
static void announce_instantiated(dist_t *d, const int64_t *ids, size_t k, int *done)
{
    if (!*done)
        publish_items(d, JM_EV_TI_INSTANTIATED, ids, k, 0, NULL, NULL, NULL);
    *done = 1;
}

/* Submit `k` queued instances: journal them all (one fsync), announce them (ti.instantiated in
 * chunks of BATCH_MAX), submit batch by batch, then journal and announce the launches
 * together.  A run in progress releases a few tasks per FSM transaction, each in its own FSM
 * batch; doing the journal syncs and the Q→I confirmation once per read rather than once per
 * batch is what keeps the distributor off the critical path.
 * The FSM must see Q→I before a worker's ti.running.  A local plugin's submission only queues
 * (its commands start at its next poll), so its ti.instantiated waits until after the
 * submission and goes out with ti.launched (one FSM transaction for both, usually).  Workers
 * that report through our relay publish with our producer, on the workflow's partition, after
 * both: Kafka keeps that order, so there is no wait for the acknowledgement then; workers that
 * publish themselves (unordered) start only once it came. */
static void submit_queued(dist_t *d, jm_dist_ti_t **todo, size_t k)
{
    jm_err_t err;
    int64_t *ids = jm_calloc(k, sizeof(*ids)), *okids = jm_calloc(k, sizeof(*okids));
    char **dids = jm_calloc(k, sizeof(*dids)), **okdids = jm_calloc(k, sizeof(*okdids));
    size_t *starts = jm_calloc(k + 1, sizeof(*starts)), nok = 0, nbad = 0;
    int deferred = d->pl->workers == JM_WORKERS_LOCAL, announced = 0;
    for (size_t i = 0; i < k; i++) {
        ids[i] = todo[i]->ti_id;
        jm_journal_add(d->jr, JM_JR_INSTANTIATED, ids[i], NULL);
    }
    if (jm_journal_sync(d->jr, &err) != JM_OK) {
        jm_log(JM_LOG_ERROR, "distributor", "%s: not submitting", err.msg);
        goto out;
    }
    if (!deferred) {
        announce_instantiated(d, ids, k, &announced);
        if (!d->ordered && jm_report_flush(d->r, 30000, &err) != JM_OK)
            jm_log(JM_LOG_WARN, "distributor", "ti.instantiated not confirmed: %s", err.msg);
    }
    size_t nb = jm_dist_batches(todo, k, BATCH_MAX, starts);
    for (size_t b = 0; b < nb; b++) {
        size_t off = starts[b], n = starts[b + 1] - off, bad = 0;
        int64_t *badids = jm_calloc(n, sizeof(*badids));
        jm_rc_t rc = plugin_submit(d, todo + off, n, dids + off, &err);
        for (size_t i = off; i < off + n; i++) {
            if (dids[i]) {
                jm_journal_add(d->jr, JM_JR_SUBMITTED, ids[i], dids[i]);
                okids[nok] = ids[i];
                okdids[nok++] = dids[i];
            } else {
                badids[bad++] = ids[i];
            }
            idset_add(&d->announced, ids[i]);
        }
        if (bad) {
            announce_instantiated(d, ids, k, &announced); /* I before W */
            publish_items(d, JM_EV_TI_SUBMIT_FAILED, badids, bad, 0,
                          rc != JM_OK ? err.msg : "submission failed", NULL, NULL);
        }
        nbad += bad;
        free(badids);
    }
    if (jm_journal_sync(d->jr, &err) != JM_OK)
        jm_log(JM_LOG_ERROR, "distributor", "%s", err.msg);
    announce_instantiated(d, ids, k, &announced);
    if (nok)
        publish_items(d, JM_EV_TI_LAUNCHED, okids, nok, 1, NULL, add_did, okdids);
    if (deferred && !d->ordered && jm_report_flush(d->r, 30000, &err) != JM_OK)
        jm_log(JM_LOG_WARN, "distributor", "ti.instantiated not confirmed: %s", err.msg);
    jm_log(JM_LOG_INFO, "distributor", "run %lld: launched %zu, submit failed %zu (%zu batch(es))",
           (long long)d->o->run_id, nok, nbad, nb);
out:
    for (size_t i = 0; i < k; i++)
        free(dids[i]);
    free(dids);
    free(okdids);
    free(okids);
    free(ids);
    free(starts);
}

static void handle_queued(dist_t *d, jm_dist_ti_t **tis, size_t n)
{
    jm_dist_ti_t **todo = jm_calloc(n + 1, sizeof(*todo));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (tis[i]->status == 'Q' && jm_journal_state(d->jr, tis[i]->ti_id, NULL) == JM_JR_NONE)
            todo[k++] = tis[i];
    if (k)
        submit_queued(d, todo, k);
    free(todo);
}

/* Instances in I (or Q) that this process did not announce: the restart rules. */
static void handle_recovered(dist_t *d, jm_dist_ti_t **tis, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        jm_dist_ti_t *ti = tis[i];
        const char *did = NULL;
        if ((ti->status != 'I' && ti->status != 'Q') || idset_has(&d->announced, ti->ti_id))
            continue;
        int st = jm_journal_state(d->jr, ti->ti_id, &did);
        if (st == JM_JR_SUBMITTED) {
            char *dids[1] = {(char *)did};
            jm_log(JM_LOG_INFO, "distributor", "ti %lld: re-announcing launch as %s",
                   (long long)ti->ti_id, did);
            if (ti->status == 'Q') /* a local submission: we ended before announcing it */
                publish_items(d, JM_EV_TI_INSTANTIATED, &ti->ti_id, 1, 0, NULL, NULL, NULL);
            publish_items(d, JM_EV_TI_LAUNCHED, &ti->ti_id, 1, 1, NULL, add_did, dids);
            idset_add(&d->announced, ti->ti_id);
        } else if (ti->status == 'I' || st == JM_JR_INSTANTIATED) {
            /* still Q with only an I record: we crashed around the submission; fail it
             * through I so the task gets a new instance */
            if (ti->status == 'Q')
                publish_items(d, JM_EV_TI_INSTANTIATED, &ti->ti_id, 1, 0, NULL, NULL, NULL);
            publish_items(d, JM_EV_TI_SUBMIT_FAILED, &ti->ti_id, 1, 0,
                          "distributor restarted: submission state unknown, not resubmitted", NULL,
                          NULL);
            idset_add(&d->announced, ti->ti_id);
        }
    }
}

static void handle_killed(dist_t *d, jm_dist_ti_t **tis, size_t n)
{
    int64_t *ids = jm_calloc(n + 1, sizeof(*ids));
    const char **dids = jm_calloc(n + 1, sizeof(*dids));
    size_t k = 0, nd = 0;
    for (size_t i = 0; i < n; i++) {
        if (tis[i]->status != 'K' || idset_has(&d->killed, tis[i]->ti_id))
            continue;
        const char *did = tis[i]->distributor_id;
        if (!did)
            (void)jm_journal_state(d->jr, tis[i]->ti_id, &did);
        if (did)
            dids[nd++] = did;
        ids[k++] = tis[i]->ti_id;
        idset_add(&d->killed, tis[i]->ti_id);
    }
    if (k) {
        jm_err_t err;
        if (nd && d->pl->terminate(d->pl, dids, nd, &err) != JM_OK)
            jm_log(JM_LOG_WARN, "distributor", "terminate: %s", err.msg);
        publish_items(d, JM_EV_TI_KILLED, ids, k, 0, NULL, NULL, NULL);
    }
    free(ids);
    free(dids);
}

typedef struct {
    char *status;
    char (*msg)[512];
} triage_t;

static void add_triage(json_t *item, size_t i, void *arg)
{
    triage_t *t = arg;
    char s[2] = {t->status[i], 0};
    json_object_set_new(item, "status", json_string(s));
    json_object_set_new(item, "message", json_string(t->msg[i]));
}

static void handle_triage(dist_t *d, jm_dist_ti_t **tis, size_t n)
{
    int64_t *ids = jm_calloc(n + 1, sizeof(*ids));
    triage_t t = {jm_calloc(n + 1, 1), jm_calloc(n + 1, sizeof(*t.msg))};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        jm_dist_ti_t *ti = tis[i];
        if (ti->status != 'T' || idset_has(&d->triaged, ti->ti_id))
            continue;
        const char *did = ti->distributor_id;
        jm_err_t err;
        jm_rc_t rc = did ? d->pl->get_remote_exit_info(d->pl, did, &t.status[k], t.msg[k],
                                                       sizeof(t.msg[k]), &err)
                         : JM_ERR_NOT_FOUND;
        if (rc == JM_ERR_RETRY)
            continue; /* still alive on the cluster: ask again next time */
        if (rc == JM_OK && t.status[k] == 'E') {
            /* the job failed but its worker's report never arrived: the catalogue allows
             * Z/U/F for triage, so report U with the explanation */
            t.status[k] = 'U';
        } else if (rc != JM_OK) {
            t.status[k] = 'U';
            snprintf(t.msg[k], sizeof(t.msg[k]), "lost: no exit information (%.400s)",
                     did ? err.msg : "no distributor id");
        }
        ids[k++] = ti->ti_id;
        idset_add(&d->triaged, ti->ti_id);
    }
    if (k)
        publish_items(d, JM_EV_TI_TRIAGED, ids, k, 0, NULL, add_triage, &t);
    free(ids);
    free(t.status);
    free(t.msg);
}

static void launch_heartbeat(dist_t *d, jm_dist_ti_t **tis, size_t n)
{
    const char **dids = jm_calloc(n + 1, sizeof(*dids));
    int64_t *ids = jm_calloc(n + 1, sizeof(*ids)), *live = jm_calloc(n + 1, sizeof(*live));
    int *alive = jm_calloc(n + 1, sizeof(*alive));
    size_t k = 0, nl = 0;
    for (size_t i = 0; i < n; i++)
        if (tis[i]->status == 'O' && tis[i]->distributor_id) {
            dids[k] = tis[i]->distributor_id;
            ids[k++] = tis[i]->ti_id;
        }
    jm_err_t err;
    if (k && d->pl->get_submitted_or_running(d->pl, dids, k, alive, &err) == JM_OK) {
        for (size_t i = 0; i < k; i++)
            if (alive[i])
                live[nl++] = ids[i];
        if (nl)
            publish_items(d, JM_EV_TI_LAUNCH_HEARTBEAT, live, nl, 1, NULL, NULL, NULL);
    } else if (k) {
        jm_log(JM_LOG_WARN, "distributor", "launch heartbeat: %s", err.msg);
    }
    free(dids);
    free(ids);
    free(live);
    free(alive);
}

/* ---- Redis doorbell ---- */
static void sub_close(dist_t *d)
{
    if (d->sub)
        redisFree(d->sub);
    d->sub = NULL;
}

static void sub_connect(dist_t *d)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout(jm_config_str(d->cfg, "redis.host"),
                                              (int)jm_config_int(d->cfg, "redis.port"), tv);
    if (!c || c->err) {
        jm_log(JM_LOG_DEBUG, "distributor", "redis: %s (polling only)", c ? c->errstr : "?");
        if (c)
            redisFree(c);
        return;
    }
    char chan[64];
    snprintf(chan, sizeof(chan), "jm:notify:run:%lld", (long long)d->o->run_id);
    redisReply *rep = redisCommand(c, "SUBSCRIBE %s", chan);
    if (!rep) {
        redisFree(c);
        return;
    }
    freeReplyObject(rep);
    d->sub = c;
}

/* Consume what the socket holds; 1 if a notification arrived. */
static int sub_drain(dist_t *d)
{
    int rang = 0;
    if (redisBufferRead(d->sub) != REDIS_OK) {
        sub_close(d);
        return 1; /* read the state anyway: we may have missed something */
    }
    void *rep = NULL;
    while (redisGetReplyFromReader(d->sub, &rep) == REDIS_OK && rep) {
        freeReplyObject(rep);
        rep = NULL;
        rang = 1;
    }
    return rang;
}

static int run_terminal(char s)
{
    return s && strchr("DESTA", s) != NULL;
}

static char *default_state_dir(int64_t run_id)
{
    const char *base = getenv("JOBMON_STATE_DIR");
    if (base && *base)
        return jm_asprintf("%s/run-%lld", base, (long long)run_id);
    const char *home = getenv("HOME");
    if (home && *home)
        return jm_asprintf("%s/.local/state/jobmon/run-%lld", home, (long long)run_id);
    return jm_asprintf("/tmp/jobmon-%d/run-%lld", (int)getuid(), (long long)run_id);
}

static void mkdirs(const char *dir)
{
    char *p = jm_strdup(dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            (void)mkdir(p, 0777);
            *s = '/';
        }
    (void)mkdir(p, 0777);
    free(p);
}

static char *default_worker_path(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char *p = jm_asprintf("%s/jobmon-worker", exe);
            if (access(p, X_OK) == 0)
                return p;
            free(p);
        }
    }
    return jm_strdup("/usr/local/bin/jobmon-worker");
}

/* 1 when the plugin's workers run elsewhere and distributor.report_listen is not "off". */
static int report_server_wanted(const dist_t *d)
{
    return d->pl->workers == JM_WORKERS_REMOTE &&
           strcasecmp(jm_config_str(d->cfg, "distributor.report_listen"), "off") != 0;
}

/* The TCP report channel for a plugin with remote workers; when it cannot listen, the workers
 * publish to Kafka (logged). */
static void open_report_server(dist_t *d)
{
    if (!report_server_wanted(d))
        return;
    jm_err_t e;
    d->srv = jm_reportsrv_new(
        d->r, d->o->workflow_id, d->o->run_id, jm_config_str(d->cfg, "distributor.report_listen"),
        (size_t)jm_config_int(d->cfg, "distributor.report_max_connections"), &e);
    if (!d->srv) {
        jm_log(JM_LOG_WARN, "distributor", "%s: workers publish to Kafka", e.msg);
        return;
    }
    d->env.report_addr = jm_reportsrv_addr(d->srv);
    d->env.report_token = jm_reportsrv_token(d->srv);
}

/* Our publisher, and the plugin's: workers that report through us (local channels or the TCP
 * one) wait for the acknowledgement of their events, so no linger then. */
static jm_rc_t open_report(dist_t *d, jm_err_t *err)
{
    int relayed = d->pl->workers == JM_WORKERS_LOCAL || report_server_wanted(d);
    d->r = jm_report_new_profile(d->cfg, d->o->events_file, 0,
                                 relayed ? JM_PRODUCER_LATENCY : JM_PRODUCER_THROUGHPUT, err);
    if (!d->r)
        return err ? err->rc : JM_ERR_UNAVAILABLE;
    d->env.report = d->r;
    d->ordered =
        d->pl->workers == JM_WORKERS_LOCAL && jm_config_bool(d->cfg, "worker.local_report");
    open_report_server(d);
    return JM_OK;
}

jm_rc_t jm_dist_run(const jm_dist_opts_t *o, jm_config_t *cfg, jm_err_t *err)
{
    dist_t dd = {.o = o, .cfg = cfg}, *d = &dd;
    jm_rc_t rc = JM_OK;
    char *state_dir = o->state_dir ? jm_strdup(o->state_dir) : default_state_dir(o->run_id);
    char *worker = o->worker_path ? jm_strdup(o->worker_path) : default_worker_path();
    char *jpath = jm_asprintf("%s/journal", state_dir);
    int sfd = -1, started = 0;
    double buf = jm_config_float(cfg, "heartbeat.report_by_buffer");
    int64_t run_iv = jm_config_int(cfg, "heartbeat.workflow_run_interval") * 1000;
    int64_t rec_iv = jm_config_int(cfg, "distributor.reconcile_interval") * 1000;
    const char *spool = jm_config_str(cfg, "worker.spool_dir");
    d->ti_next_report_s = (int)ceil(jm_config_int(cfg, "heartbeat.task_instance_interval") * buf);
    d->run_next_report_s = (int)ceil(jm_config_int(cfg, "heartbeat.workflow_run_interval") * buf);

    mkdirs(state_dir);
    jm_event_set_producer(JM_PRODUCER_DISTRIBUTOR);
    jm_report_set_producer_ops(&jm_producer_ops);
    d->env = (jm_plugin_env_t){.workflow_id = o->workflow_id,
                               .run_id = o->run_id,
                               .cluster = o->cluster,
                               .worker_path = worker,
                               .config_path = o->config_path,
                               .state_dir = state_dir,
                               .parallelism = o->parallelism,
                               .worker_pool = jm_config_bool(cfg, "distributor.worker_pool"),
                               .next_report_s = d->ti_next_report_s};
    d->pl = jm_plugin_new(o->plugin ? o->plugin : o->cluster, &d->env, err);
    if (!d->pl) {
        rc = JM_ERR_INVALID;
        goto out;
    }
    rc = open_report(d, err);
    if (rc != JM_OK)
        goto out;
    d->jr = jm_journal_open(jpath, err);
    if (!d->jr) {
        rc = JM_ERR_IO;
        goto out;
    }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGINT, SIG_IGN); /* Ctrl-C belongs to the parent `jobmon run` */
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

    /* Subscribe before anything can be queued for us: a doorbell rung before SUBSCRIBE is
     * lost, and the first read would then wait for the reconcile interval. */
    sub_connect(d);
    (void)publish_run_status(d, "I");
    rc = d->pl->start(d->pl, err);
    if (rc != JM_OK)
        goto out;
    started = 1;
    (void)publish_run_status(d, "O");
    if (jm_report_flush(d->r, 30000, err) != JM_OK) {
        rc = JM_ERR_UNAVAILABLE;
        goto out;
    }
    fprintf(stderr, "ALIVE\n");
    fflush(stderr);
    (void)publish_run_status(d, "R");
    jm_log(JM_LOG_INFO, "distributor", "run %lld of workflow %lld: %s plugin, state %s",
           (long long)o->run_id, (long long)o->workflow_id, d->pl->name, state_dir);

    int64_t now = jm_time_mono_ms(), next_rec = now, next_hb = now;
    int first = 1, stop = 0, wake = 1;
    struct pollfd *pfd = NULL; /* signals, Redis, delivery reports, the plugin's */
    size_t cap_pfd = 0;
    while (!stop) {
        now = jm_time_mono_ms();
        int hb = now >= next_hb, rec = now >= next_rec;
        if (hb || rec || wake) {
            jm_dist_ti_t **tis = NULL;
            size_t n = 0;
            jm_err_t e2;
            if (rec && !d->sub)
                sub_connect(d); /* before the read, so nothing rung in between is missed */
            if (read_run_status(d, &e2) != JM_OK) {
                jm_log(JM_LOG_WARN, "distributor", "postgres: %s", e2.msg);
            } else if (run_terminal(d->run_status)) {
                jm_log(JM_LOG_INFO, "distributor", "run %lld is %c: done", (long long)o->run_id,
                       d->run_status);
                break;
            } else if (!d->run_status && d->run_seen) {
                /* not yet applied is normal at start-up; gone after that is not */
                jm_log(JM_LOG_WARN, "distributor",
                       "run %lld is gone from PostgreSQL (pruned, or another database): stopping",
                       (long long)o->run_id);
                break;
            } else if (read_tis(d, hb || first ? "{Q,I,O,K,T}" : "{Q,I,K,T}", &tis, &n, &e2) !=
                       JM_OK) {
                jm_log(JM_LOG_WARN, "distributor", "postgres: %s", e2.msg);
            } else {
                handle_recovered(d, tis, n);
                handle_killed(d, tis, n);
                handle_triage(d, tis, n);
                handle_queued(d, tis, n);
                if (hb)
                    launch_heartbeat(d, tis, n);
                free_tis(tis, n);
                first = 0;
            }
            if (hb) {
                json_t *p = run_payload(d);
                json_object_set_new(p, "next_report_s", json_integer(d->run_next_report_s));
                (void)publish(d, JM_EV_RUN_HEARTBEAT, p);
                next_hb = now + run_iv;
            }
            if (rec) {
                int files = 0;
                if (jm_spool_replay(d->r, spool, o->workflow_id, &files, &e2) != JM_OK)
                    jm_log(JM_LOG_WARN, "distributor", "spool: %s", e2.msg);
                next_rec = now + rec_iv;
            }
            wake = 0;
        }
        /* delivery reports first: a local plugin's relay publishes what waited for them */
        jm_report_poll(d->r, 0);
        if (d->pl->poll)
            d->pl->poll(d->pl);
        if (d->srv)
            jm_reportsrv_poll(d->srv);

        now = jm_time_mono_ms();
        int64_t next = next_hb < next_rec ? next_hb : next_rec;
        int timeout = (int)(next > now ? next - now : 0);
        if ((d->pl->poll || (d->srv && jm_reportsrv_busy(d->srv))) && timeout > LOCAL_TICK)
            timeout = LOCAL_TICK; /* start queued workers, publish held reports promptly */
        size_t nsrv = d->srv ? jm_reportsrv_pollfds(d->srv, NULL, 0) : 0;
        size_t nfds = 3 + nsrv + (d->pl->pollfds ? d->pl->pollfds(d->pl, NULL, 0) : 0);
        if (nfds > cap_pfd) {
            cap_pfd = nfds * 2;
            pfd = jm_realloc(pfd, cap_pfd * sizeof(*pfd));
        }
        pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = d->sub ? d->sub->fd : -1, .events = POLLIN};
        pfd[2] = (struct pollfd){.fd = jm_report_wakeup_fd(d->r), .events = POLLIN};
        if (d->srv)
            nsrv = jm_reportsrv_pollfds(d->srv, pfd + 3, nsrv);
        nfds = 3 + nsrv;
        if (d->pl->pollfds)
            nfds += d->pl->pollfds(d->pl, pfd + nfds, cap_pfd - nfds);
        if (poll(pfd, (nfds_t)nfds, timeout) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si))
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP)
                    stop = 1;
        }
        if (d->sub && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
            wake |= sub_drain(d);
    }
    free(pfd);
    if (stop)
        jm_log(JM_LOG_INFO, "distributor", "run %lld: SIGTERM, stopping", (long long)o->run_id);
out:
    if (started)
        d->pl->stop(d->pl);
    jm_reportsrv_destroy(d->srv); /* publishes what it holds */
    if (d->r && jm_report_flush(d->r, 30000, err) != JM_OK && rc == JM_OK)
        jm_log(JM_LOG_ERROR, "distributor", "final flush: %s", err ? err->msg : "");
    if (d->pl)
        d->pl->destroy(d->pl);
    sub_close(d);
    jm_pg_destroy(d->pg);
    jm_journal_destroy(d->jr);
    jm_report_destroy(d->r);
    free(d->announced.v);
    free(d->killed.v);
    free(d->triaged.v);
    if (sfd >= 0)
        close(sfd);
    free(jpath);
    free(worker);
    free(state_dir);
    return rc;
}
