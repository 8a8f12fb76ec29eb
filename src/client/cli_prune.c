/*
 * cli_prune.c — `jobmon prune`: retention.  Finds the finished workflows (D F A H, no alive run)
 * whose last status change is older than a cutoff, through the reader role, and has the FSM
 * delete each one with its logs by publishing workflow.prune events, one chunk of rows per
 * event, until the workflow row is gone (schemas/sql/011_prune.sql says what goes).
 *
 * The FSM decides and writes (ARCHITECTURE principle 1); this command only chooses, publishes
 * and waits.  Interrupted, it leaves a workflow "being pruned" (it takes no client event), and
 * the next `jobmon prune` finishes it first.  Deliberately not here: deleting shared rows (tools,
 * templates), or any direct write.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli_ops.h"
#include "client/cli_util.h"
#include "common/prune_sql.h"
#include "jobmon/jmtime.h"

#define PRUNE_ROWS_DEFAULT 50000
#define PRUNE_ROWS_MAX     1000000 /* the event's limit (event_spec.c) */
#define PRUNE_WF_MAX       10000   /* --workflow given at most this often */
#define PRUNE_WINDOW       4       /* events in flight per workflow */

static void prune_usage(FILE *out)
{
    fprintf(
        out,
        "usage: jobmon prune (--older-than AGE | --before TIME) [--workflow WF]... [--dry-run]\n"
        "                    [--rows N] [--timeout S] [--json]\n"
        "  delete the finished workflows (D F A H, no alive run) whose last status change is\n"
        "  older than AGE (e.g. 90d, 12h, 30m, 45s) or before TIME (YYYY-MM-DD or\n"
        "  YYYY-MM-DDTHH:MM:SSZ, UTC), with their runs, tasks, task instances and their\n"
        "  event_log and transition_log rows; tools and templates stay.  A workflow whose\n"
        "  pruning was interrupted is finished first, whatever its age.\n"
        "  --workflow WF  only this workflow (repeat for more)\n"
        "  --dry-run      list what would be deleted, delete nothing\n"
        "  --rows N       rows deleted per event, i.e. per FSM transaction (default %d)\n"
        "  --timeout S    give up when the FSM has not applied an event within S seconds\n"
        "                 (default 60)\n",
        PRUNE_ROWS_DEFAULT);
}

int jm_cli_parse_age(const char *s, int64_t *ms)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    static const struct {
        char unit;
        int64_t ms;
    } units[] = {{'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}, {'w', 604800000}};
    if (end == s || v < 0 || v > 100000 || !end[0] || end[1])
        return -1;
    for (size_t i = 0; i < JM_ARRAY_LEN(units); i++)
        if (end[0] == units[i].unit) {
            *ms = v * units[i].ms;
            return 0;
        }
    return -1;
}

/* TIME as epoch ms: a date (midnight UTC) or an ISO timestamp.  0, or -1 when malformed. */
static int parse_before(const char *s, int64_t *ms)
{
    char buf[40];
    if (strlen(s) == 10) { /* YYYY-MM-DD */
        snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
        s = buf;
    }
    return jm_time_parse_iso(s, ms) == JM_OK ? 0 : -1;
}

int jm_cli_prune_parse(int argc, char **argv, int64_t now_ms, jm_cli_prune_opts_t *o, char *msg,
                       size_t msglen)
{
    enum { OPT_OLDER = 256, OPT_BEFORE, OPT_WF, OPT_DRY, OPT_ROWS, OPT_TIMEOUT, OPT_JSON };
    static const struct option longopts[] = {
        {"older-than", required_argument, NULL, OPT_OLDER},
        {"before", required_argument, NULL, OPT_BEFORE},
        {"workflow", required_argument, NULL, OPT_WF},
        {"dry-run", no_argument, NULL, OPT_DRY},
        {"rows", required_argument, NULL, OPT_ROWS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt, have_cutoff = 0;
    int64_t v;
    memset(o, 0, sizeof(*o));
    o->rows = PRUNE_ROWS_DEFAULT;
    o->timeout_s = 60;
    msg[0] = '\0';
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_OLDER:
            if (jm_cli_parse_age(optarg, &v) != 0) {
                snprintf(msg, msglen, "--older-than: not an age like 90d, 12h, 30m: '%s'", optarg);
                return -1;
            }
            o->cutoff_ms = now_ms - v;
            have_cutoff++;
            break;
        case OPT_BEFORE:
            if (parse_before(optarg, &o->cutoff_ms) != 0) {
                snprintf(msg, msglen, "--before: not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ: '%s'",
                         optarg);
                return -1;
            }
            have_cutoff++;
            break;
        case OPT_WF:
            if (o->n_wf == PRUNE_WF_MAX || jm_cli_parse_id(optarg, &v) != 0) {
                snprintf(msg, msglen, "--workflow: not a workflow id (or more than %d): '%s'",
                         PRUNE_WF_MAX, optarg);
                return -1;
            }
            o->wf = jm_realloc(o->wf, (o->n_wf + 1) * sizeof(*o->wf));
            o->wf[o->n_wf++] = v;
            break;
        case OPT_DRY: o->dry_run = 1; break;
        case OPT_JSON: o->json = 1; break;
        case OPT_ROWS:
            if (jm_cli_parse_int(optarg, PRUNE_ROWS_MAX, &o->rows) != 0 || o->rows < 1) {
                snprintf(msg, msglen, "--rows: 1 to %d, not '%s'", PRUNE_ROWS_MAX, optarg);
                return -1;
            }
            break;
        case OPT_TIMEOUT:
            if (jm_cli_parse_int(optarg, 86400, &o->timeout_s) != 0 || o->timeout_s < 1) {
                snprintf(msg, msglen, "--timeout: 1 to 86400 seconds, not '%s'", optarg);
                return -1;
            }
            break;
        case 'h': return 1;
        default: snprintf(msg, msglen, "unknown option '%s'", argv[optind - 1]); return -1;
        }
    }
    if (jm_cli_no_operands(argc, argv, msg, msglen) != 0)
        return -1;
    if (have_cutoff != 1) {
        snprintf(msg, msglen, "give one of --older-than AGE or --before TIME");
        return -1;
    }
    return 0;
}

void jm_cli_prune_opts_free(jm_cli_prune_opts_t *o)
{
    free(o->wf);
    o->wf = NULL;
}

/* The workflows to prune, unfinished prunes first, then oldest first. */
static const char candidates_sql[] = JM_SQL_PRUNE_CANDIDATES;

typedef struct {
    jm_status_ctx_t *ctx;
    jm_producer_t *p;
    const jm_cli_prune_opts_t *o;
    char cutoff[40];
} prune_t;

/* 1 when workflow `wf` still has its row, 0 when gone, -1 on error (err set). */
static int wf_present(prune_t *pr, const char *wf, jm_err_t *err)
{
    jm_pg_t *pg = jm_status_ctx_pg(pr->ctx, err);
    PGresult *r = NULL;
    const char *p[1] = {wf};
    if (!pg ||
        jm_pg_exec(pg, "SELECT 1 FROM workflow WHERE id = $1::bigint", 1, p, &r, err) != JM_OK) {
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r);
    PQclear(r);
    return n > 0;
}

/* Publish `n` workflow.prune events for workflow `id` and wait for each in turn (one partition:
 * the FSM applies them in order).  *applied counts those applied; stops at the first that is not,
 * with its outcome in `outcome`. */
static jm_rc_t prune_some(prune_t *pr, int64_t id, int n, int *applied, char *outcome,
                          size_t outcome_len, char *reason, size_t reason_len, jm_err_t *err)
{
    char ids[PRUNE_WINDOW][37];
    jm_rc_t rc = JM_OK;
    for (int k = 0; k < n && rc == JM_OK; k++) {
        json_t *pl = json_pack("{ss sI ss}", "finished_before", pr->cutoff, "rows",
                               (json_int_t)pr->o->rows, "user", jm_cli_user());
        rc = jm_cli_publish(pr->p, JM_EV_WORKFLOW_PRUNE, id, pl, ids[k], err);
    }
    for (int k = 0; k < n && rc == JM_OK; k++) {
        rc = jm_cli_wait_event(pr->ctx, ids[k], pr->o->timeout_s * 1000, outcome, outcome_len,
                               reason, reason_len, err);
        if (rc != JM_OK || strcmp(outcome, "applied") != 0)
            break;
        (*applied)++;
    }
    return rc;
}

/* Have workflow `id` pruned: one event first (it is the one the FSM may refuse), then windows of
 * PRUNE_WINDOW events in flight, so that the FSM is not idle while this process polls, until
 * the workflow row is gone (events beyond the last chunk are recorded as ignored).  JM_OK with
 * *events the events applied, and *gone 1 (pruned, or found gone) or 0 with the FSM's reason for
 * refusing; an error when Kafka or PostgreSQL failed or an event was not applied in time. */
static jm_rc_t prune_one(prune_t *pr, int64_t id, const char *wf, int *events, int *gone,
                         char *reason, size_t reason_len, jm_err_t *err)
{
    char outcome[32];
    *events = 0;
    *gone = 0;
    reason[0] = '\0';
    for (int n = 1;; n = PRUNE_WINDOW) {
        jm_rc_t rc =
            prune_some(pr, id, n, events, outcome, sizeof(outcome), reason, reason_len, err);
        if (rc != JM_OK)
            return rc;
        if (strcmp(outcome, "applied") != 0) { /* refused, or (ignored) gone already */
            *gone = strcmp(outcome, "ignored") == 0;
            if (*gone)
                reason[0] = '\0';
            return JM_OK;
        }
        int present = wf_present(pr, wf, err);
        *gone = present == 0;
        if (present <= 0)
            return present < 0 ? err->rc : JM_OK;
    }
}

static void report(const jm_cli_prune_opts_t *o, json_t *out, PGresult *r, int i,
                   const char *result, int events, const char *reason, int64_t ms)
{
    const char *id = PQgetvalue(r, i, 0), *st = PQgetvalue(r, i, 1), *at = PQgetvalue(r, i, 2),
               *tasks = PQgetvalue(r, i, 3), *name = PQgetvalue(r, i, 4);
    if (o->json) {
        json_array_append_new(out, json_pack("{sI ss ss sI ss ss si sI ss?}", "workflow_id",
                                             (json_int_t)strtoll(id, NULL, 10), "status", st,
                                             "finished_at", at, "tasks",
                                             (json_int_t)strtoll(tasks, NULL, 10), "name", name,
                                             "result", result, "events", events, "ms",
                                             (json_int_t)ms, "reason", *reason ? reason : NULL));
        return;
    }
    printf("workflow %s (%s, %s, finished %s, %s tasks): %s", id, name, st, at, tasks, result);
    if (!o->dry_run)
        printf(" in %d event(s), %.1f s", events, (double)ms / 1000.0);
    printf("%s%s\n", *reason ? ": " : "", reason);
}

int jm_cli_cmd_prune(jm_cli_t *cli, int argc, char **argv)
{
    jm_cli_prune_opts_t o;
    jm_err_t err;
    char msg[256], reason[512];
    prune_t pr = {0};
    PGresult *r = NULL;
    json_t *out = json_array();
    int code = JM_EXIT_OK, done = 0, refused = 0;

    int pr_rc = jm_cli_prune_parse(argc, argv, jm_time_wall_ms(), &o, msg, sizeof(msg));
    if (pr_rc != 0) {
        if (pr_rc < 0)
            fprintf(stderr, "jobmon prune: %s\n", msg);
        prune_usage(pr_rc < 0 ? stderr : stdout);
        jm_cli_prune_opts_free(&o);
        json_decref(out);
        return pr_rc < 0 ? JM_EXIT_USAGE : JM_EXIT_OK;
    }
    o.json |= cli->json;
    pr.o = &o;
    pr.ctx = jm_status_ctx_new_config(cli->cfg);
    jm_time_format_iso(o.cutoff_ms, pr.cutoff, sizeof(pr.cutoff));

    jm_pg_t *pg = jm_status_ctx_pg(pr.ctx, &err);
    char *ids = o.n_wf ? jm_cli_id_array(o.wf, o.n_wf) : NULL;
    const char *params[2] = {pr.cutoff, ids};
    if (!pg || jm_pg_exec(pg, candidates_sql, 2, params, &r, &err) != JM_OK) {
        fprintf(stderr, "jobmon: PostgreSQL: %s\n", err.msg);
        code = jm_rc_to_exit(err.rc);
        goto out;
    }
    if (!o.dry_run && PQntuples(r) > 0 && !(pr.p = jm_cli_producer(cli->cfg, &err))) {
        fprintf(stderr, "jobmon: Kafka producer: %s\n", err.msg);
        code = JM_EXIT_USAGE;
        goto out;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        int events = 0, ok = 0;
        int64_t t0 = jm_time_mono_ms();
        reason[0] = '\0';
        if (o.dry_run) {
            report(&o, out, r, i, PQgetvalue(r, i, 5)[0] == 't' ? "being pruned" : "would prune", 0,
                   "", 0);
            continue;
        }
        int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        jm_rc_t rc =
            prune_one(&pr, id, PQgetvalue(r, i, 0), &events, &ok, reason, sizeof(reason), &err);
        if (rc != JM_OK) {
            fprintf(stderr, "jobmon: workflow %" PRId64 ": %s\n", id, err.msg);
            code = jm_rc_to_exit(rc);
            goto out;
        }
        done += ok;
        refused += !ok;
        report(&o, out, r, i, ok ? "pruned" : "refused", events, ok ? "" : reason,
               jm_time_mono_ms() - t0);
    }
    if (!o.json)
        printf("%d workflow(s) %s%s%s\n", o.dry_run ? PQntuples(r) : done,
               o.dry_run ? "would be pruned" : "pruned", refused ? ", refused: " : "",
               refused ? "see above" : "");
    if (refused)
        code = JM_EXIT_FAILED;
out:
    if (o.json && code != JM_EXIT_USAGE && code != JM_EXIT_UNAVAILABLE)
        jm_cli_print_json(out);
    else
        json_decref(out);
    free(ids);
    PQclear(r);
    jm_producer_destroy(pr.p);
    jm_status_ctx_destroy(pr.ctx);
    jm_cli_prune_opts_free(&o);
    return code;
}
