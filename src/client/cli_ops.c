/*
 * cli_ops.c — the operator commands `jobmon stop WF`, `reset WF [--partial]`,
 * `task-update TASK... --status D|G [--recursive]` and `concurrency WF N [--template T]`.
 * Each looks up what it needs through the reader role, publishes ONE client event, prints a
 * one-line confirmation and, with --wait, waits until the FSM has applied it (event_log) and
 * reports the outcome.
 *
 * Deliberately no direct writes: the FSM decides whether the change is legal (a rejected event
 * is reported, exit 1).  `reset` and `task-update` first check reference §3.11's ownership (the
 * caller, as run.start names it, against the workflow's runs) and refuse with exit 2; `stop` and
 * `concurrency` check nothing (no auth, docs/decisions.md).  (`resume` lives in cli_run.c.)
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli_ops.h"
#include "client/cli_util.h"
#include "common/ownership_sql.h"
#include "common/status_sql.h"

#define TASK_UPDATE_MAX 10000

static const struct {
    const char *name, *usage, *help;
} op_help[] = {
    {"stop", "jobmon stop WF [--wait] [--timeout S] [--json]",
     "stop the alive run of workflow WF (run -> S); its distributor stops launching"},
    {"reset", "jobmon reset WF [--partial] [--wait] [--timeout S] [--json]",
     "reset workflow WF so the next run re-executes every task (--partial: keep DONE tasks);\n"
     "  only the user of its last errored run may (else exit 2)"},
    {"task-update", "jobmon task-update TASK... --status D|G [--recursive] [--wait] [--json]",
     "set tasks (all of one workflow) to D (done) or G (re-run; with everything downstream);\n"
     "  --recursive with D also marks the upstream tasks done; only the user of one of the\n"
     "  workflow's runs may (else exit 2)"},
    {"concurrency", "jobmon concurrency WF N [--template T] [--wait] [--json]",
     "limit workflow WF (or its template T's array) to N tasks queued or running; 0 pauses"},
};

static void op_usage(FILE *out, const char *cmd)
{
    for (size_t i = 0; i < JM_ARRAY_LEN(op_help); i++)
        if (strcmp(op_help[i].name, cmd) == 0)
            fprintf(out,
                    "usage: %s\n  %s\n  --wait waits until the change is applied (default "
                    "timeout 60 s)\n",
                    op_help[i].usage, op_help[i].help);
}

int jm_cli_ops_parse(int argc, char **argv, jm_cli_ops_opts_t *o, char *msg, size_t msglen)
{
    enum {
        OPT_WAIT = 256,
        OPT_TIMEOUT,
        OPT_PARTIAL,
        OPT_STATUS,
        OPT_RECURSIVE,
        OPT_TEMPLATE,
        OPT_JSON
    };
    static const struct option longopts[] = {
        {"wait", no_argument, NULL, OPT_WAIT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"partial", no_argument, NULL, OPT_PARTIAL},
        {"status", required_argument, NULL, OPT_STATUS},
        {"recursive", no_argument, NULL, OPT_RECURSIVE},
        {"template", required_argument, NULL, OPT_TEMPLATE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    int opt, is_stop = !strcmp(cmd, "stop"), is_reset = !strcmp(cmd, "reset"),
             is_upd = !strcmp(cmd, "task-update"), is_conc = !strcmp(cmd, "concurrency");
    memset(o, 0, sizeof(*o));
    o->timeout_s = 60;
    o->max_concurrent = -1;
    msg[0] = '\0';
    optind = 0;
    opterr = 0;
    JM_ASSERT(is_stop || is_reset || is_upd || is_conc);
    while ((opt = getopt_long(argc, argv, "hprs:t:", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_WAIT: o->wait = 1; break;
        case OPT_JSON: o->json = 1; break;
        case OPT_TIMEOUT:
            if (jm_cli_parse_int(optarg, 86400, &o->timeout_s) != 0) {
                snprintf(msg, msglen, "--timeout: not a number of seconds: '%s'", optarg);
                return -1;
            }
            break;
        case 'p':
        case OPT_PARTIAL:
            if (!is_reset)
                goto bad;
            o->partial = 1;
            break;
        case 's':
        case OPT_STATUS:
            if (!is_upd)
                goto bad;
            if (strcmp(optarg, "D") && strcmp(optarg, "G")) {
                snprintf(msg, msglen, "--status: D or G, not '%s'", optarg);
                return -1;
            }
            o->status = optarg;
            break;
        case 'r':
        case OPT_RECURSIVE:
            if (!is_upd)
                goto bad;
            o->recursive = 1;
            break;
        case 't':
        case OPT_TEMPLATE:
            if (!is_conc)
                goto bad;
            if (!*optarg || strlen(optarg) > 255) {
                snprintf(msg, msglen, "--template: 1 to 255 bytes");
                return -1;
            }
            o->template_name = optarg;
            break;
        case 'h': return 1;
        default:
        bad:
            snprintf(msg, msglen, "unknown option '%s'", argv[optind - 1]);
            return -1;
        }
    }
    int n = argc - optind;
    char **a = argv + optind;
    if (is_upd) {
        if (!o->status) {
            snprintf(msg, msglen, "--status D|G is required");
            return -1;
        }
        if (n < 1 || n > TASK_UPDATE_MAX) {
            snprintf(msg, msglen, n < 1 ? "missing TASK" : "at most 10000 tasks at once");
            return -1;
        }
        o->tasks = jm_calloc((size_t)n, sizeof(*o->tasks));
        o->n_tasks = (size_t)n;
        for (int i = 0; i < n; i++)
            if (jm_cli_parse_id(a[i], &o->tasks[i]) != 0) {
                snprintf(msg, msglen, "not a task id: '%s'", a[i]);
                return -1;
            }
        return 0;
    }
    if (n < 1 || n > (is_conc ? 2 : 1) || (is_conc && n != 2)) {
        snprintf(msg, msglen, n < (is_conc ? 2 : 1) ? "missing argument" : "too many arguments");
        return -1;
    }
    if (jm_cli_parse_id(a[0], &o->wf_id) != 0) {
        snprintf(msg, msglen, "not a workflow id: '%s'", a[0]);
        return -1;
    }
    if (is_conc && jm_cli_parse_int(a[1], INT32_MAX, &o->max_concurrent) != 0) {
        snprintf(msg, msglen, "not a task count: '%s'", a[1]);
        return -1;
    }
    return 0;
}

void jm_cli_ops_opts_free(jm_cli_ops_opts_t *o)
{
    free(o->tasks);
    o->tasks = NULL;
}

/* One id column (and a text column) of a query with `n` text parameters; -1 error printed,
 * 0 no row, 1 found. */
static int lookup_n(jm_status_ctx_t *ctx, const char *sql, int n, const char *const *params,
                    int64_t *out, char *text, size_t text_len, int *code)
{
    jm_err_t err;
    PGresult *res = NULL;
    jm_pg_t *pg = jm_status_ctx_pg(ctx, &err);
    int found = -1;
    if (!pg) {
        fprintf(stderr, "jobmon: PostgreSQL unreachable: %s\n", err.msg);
        *code = JM_EXIT_UNAVAILABLE;
        return -1;
    }
    if (jm_pg_exec(pg, sql, n, params, &res, &err) != JM_OK) {
        fprintf(stderr, "jobmon: PostgreSQL: %s\n", err.msg);
        *code = err.rc == JM_ERR_UNAVAILABLE ? JM_EXIT_UNAVAILABLE : JM_EXIT_FAILED;
        goto out;
    }
    found = PQntuples(res) > 0;
    if (found && out)
        *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (found && text && PQnfields(res) > 1)
        snprintf(text, text_len, "%s", PQgetvalue(res, 0, 1));
out:
    PQclear(res);
    return found;
}

static int lookup(jm_status_ctx_t *ctx, const char *sql, const char *param, int64_t *out,
                  char *text, size_t text_len, int *code)
{
    const char *params[1] = {param};
    return lookup_n(ctx, sql, 1, params, out, text, text_len, code);
}

/* Reference §3.11 ownership, checked through the reader role before publishing so that the
 * user hears at once (the FSM checks the event's `user` again and is the authority): `reset`
 * needs the user of the workflow's most recent errored run, `task-update` the user of any of its
 * runs.  1 allowed; else 0 with the reason printed and *code = 2 (invalid input), or -1. */
static int owner_precheck(jm_status_ctx_t *ctx, const char *cmd, int64_t wf, const char *user,
                          int *code)
{
    char w[24], row[300] = "";
    int64_t last = 0;
    snprintf(w, sizeof(w), "%" PRId64, wf);
    const char *params[2] = {w, user};
    /* last errored run id; "t|f <its user>" (owns any run, then the name: it may hold spaces) */
    int f = lookup_n(ctx,
                     "SELECT coalesce(id, 0), CASE WHEN owns_a_run THEN 't' ELSE 'f' END"
                     " || ' ' || coalesce(user_name, '') FROM (" JM_SQL_WF_OWNERSHIP ") o",
                     2, params, &last, row, sizeof(row), code);
    if (f <= 0)
        return -1;
    const char *last_user = row[0] ? row + 2 : "";
    if (!strcmp(cmd, "task-update") && row[0] != 't')
        fprintf(stderr,
                "jobmon: task-update: user %s started no run of workflow %s; only the user of one"
                " of its runs may update its tasks\n",
                user, w);
    else if (!strcmp(cmd, "reset") && !last)
        fprintf(stderr,
                "jobmon: reset: workflow %s has no errored run; only the user of its last errored"
                " run may reset it\n",
                w);
    else if (!strcmp(cmd, "reset") && strcmp(last_user, user) != 0)
        fprintf(stderr,
                "jobmon: reset: workflow %s's last errored run %" PRId64
                " was started by %s, not %s; only that user may reset it\n",
                w, last, last_user, user);
    else
        return 1;
    *code = JM_EXIT_USAGE;
    return 0;
}

/* lookup() about workflow `wf_text` that must find a row: 1 found, else 0 or -1 with *code set
 * ("jobmon: workflow WF <missing>" printed and missing_code when there is no row). */
static int lookup_wf(jm_status_ctx_t *ctx, const char *sql, const char *wf_text, int64_t *out,
                     const char *missing, int missing_code, int *code)
{
    int f = lookup(ctx, sql, wf_text, out, NULL, 0, code);
    if (f == 0) {
        fprintf(stderr, "jobmon: workflow %s %s\n", wf_text, missing);
        *code = missing_code;
    }
    return f;
}

int jm_cli_cmd_ops(jm_cli_t *cli, int argc, char **argv)
{
    jm_cli_ops_opts_t o;
    jm_err_t err;
    char msg[256], wf_text[24], event_id[37] = "", outcome[32] = "", reason[512] = "", what[160];
    jm_status_ctx_t *ctx = NULL;
    jm_producer_t *p = NULL;
    json_t *pl = NULL;
    jm_event_type_t type;
    int code = JM_EXIT_OK;
    const char *cmd = argv[0];
    const char *user = jm_cli_user(); /* as run.start: the runs' user_name */

    int r = jm_cli_ops_parse(argc, argv, &o, msg, sizeof(msg));
    if (r != 0) {
        if (r < 0)
            fprintf(stderr, "jobmon %s: %s\n", cmd, msg);
        op_usage(r < 0 ? stderr : stdout, cmd);
        jm_cli_ops_opts_free(&o);
        return r < 0 ? JM_EXIT_USAGE : JM_EXIT_OK;
    }
    o.json |= cli->json;
    ctx = jm_status_ctx_new_config(cli->cfg);

    if (!strcmp(cmd, "task-update")) {
        /* every task must exist and belong to one workflow */
        json_t *ids = json_array();
        for (size_t i = 0; i < o.n_tasks; i++)
            json_array_append_new(ids, json_integer(o.tasks[i]));
        char *arr = json_dumps(ids, JSON_COMPACT);
        json_decref(ids);
        char counts[64] = "";
        int64_t nwf = 0;
        int f = lookup(ctx,
                       "SELECT count(DISTINCT workflow_id), count(*)::text || ' '"
                       " || coalesce(min(workflow_id), 0)::text FROM task WHERE id IN"
                       " (SELECT DISTINCT (jsonb_array_elements_text($1::jsonb))::bigint)",
                       arr, &nwf, counts, sizeof(counts), &code);
        free(arr);
        if (f < 0)
            goto out;
        long long found = 0, wf = 0;
        sscanf(counts, "%lld %lld", &found, &wf);
        size_t distinct = 0;
        for (size_t i = 0; i < o.n_tasks; i++) { /* distinct ids given */
            size_t j = 0;
            while (j < i && o.tasks[j] != o.tasks[i])
                j++;
            distinct += j == i;
        }
        if ((size_t)found != distinct) {
            fprintf(stderr, "jobmon: task-update: %zu of the tasks do not exist\n",
                    distinct - (size_t)found);
            code = JM_EXIT_USAGE;
            goto out;
        }
        if (nwf != 1) {
            fprintf(stderr,
                    "jobmon: task-update: the tasks belong to %" PRId64
                    " workflows; update one workflow at a time\n",
                    nwf);
            code = JM_EXIT_USAGE;
            goto out;
        }
        o.wf_id = wf;
        if (owner_precheck(ctx, cmd, o.wf_id, user, &code) <= 0)
            goto out;
        json_t *tl = json_array();
        for (size_t i = 0; i < o.n_tasks; i++)
            json_array_append_new(tl, json_integer(o.tasks[i]));
        pl = json_pack("{so ss sb ss}", "task_ids", tl, "status", o.status, "recursive",
                       o.recursive, "user", user);
        type = JM_EV_TASK_SET_STATUS;
        snprintf(what, sizeof(what), "%zu task(s) of workflow %" PRId64 " set to %s%s", o.n_tasks,
                 o.wf_id, o.status, o.recursive ? " (recursive)" : "");
    } else {
        snprintf(wf_text, sizeof(wf_text), "%" PRId64, o.wf_id);
        if (lookup_wf(ctx, "SELECT id FROM workflow WHERE id = $1", wf_text, NULL, "not found",
                      JM_EXIT_USAGE, &code) <= 0)
            goto out;
        if (!strcmp(cmd, "stop")) {
            int64_t run = 0;
            if (lookup_wf(ctx,
                          "SELECT id FROM workflow_run WHERE workflow_id = $1"
                          " AND status IN " JM_SQL_RUN_ALIVE " LIMIT 1",
                          wf_text, &run, "has no alive run", JM_EXIT_FAILED, &code) <= 0)
                goto out;
            pl = json_pack("{sI}", "run_id", (json_int_t)run);
            type = JM_EV_RUN_STOP;
            snprintf(what, sizeof(what), "stop of workflow %" PRId64 " run %" PRId64, o.wf_id, run);
        } else if (!strcmp(cmd, "reset")) {
            if (owner_precheck(ctx, cmd, o.wf_id, user, &code) <= 0)
                goto out;
            pl = json_pack("{sb ss}", "partial", o.partial, "user", user);
            type = JM_EV_WORKFLOW_RESET;
            snprintf(what, sizeof(what), "%sreset of workflow %" PRId64,
                     o.partial ? "partial " : "", o.wf_id);
        } else {
            pl =
                json_pack("{sI so}", "max_concurrently_running", (json_int_t)o.max_concurrent,
                          "template", o.template_name ? json_string(o.template_name) : json_null());
            type = JM_EV_WORKFLOW_CONCURRENCY;
            snprintf(what, sizeof(what), "concurrency of workflow %" PRId64 "%s%s = %" PRId64,
                     o.wf_id, o.template_name ? " template " : "",
                     o.template_name ? o.template_name : "", o.max_concurrent);
        }
    }
    if (!(p = jm_cli_producer(cli->cfg, &err))) {
        fprintf(stderr, "jobmon: Kafka producer: %s\n", err.msg);
        code = JM_EXIT_USAGE;
        goto out;
    }
    jm_rc_t rc = jm_cli_publish(p, type, o.wf_id, pl, event_id, &err);
    pl = NULL;
    if (rc != JM_OK) {
        fprintf(stderr, "jobmon: cannot publish %s: %s\n", jm_event_type_name(type), err.msg);
        code = jm_rc_to_exit(rc);
        goto out;
    }
    if (o.wait) {
        rc = jm_cli_wait_event(ctx, event_id, o.timeout_s * 1000, outcome, sizeof(outcome), reason,
                               sizeof(reason), &err);
        if (rc != JM_OK) {
            fprintf(stderr, "jobmon: %s\n", err.msg);
            code = rc == JM_ERR_UNAVAILABLE ? JM_EXIT_UNAVAILABLE : JM_EXIT_FAILED;
            goto out;
        }
        if (strcmp(outcome, "applied") != 0)
            code = JM_EXIT_FAILED;
    }
    if (o.json) {
        jm_cli_print_json(json_pack("{ss sI ss so so}", "event_id", event_id, "workflow_id",
                                    (json_int_t)o.wf_id, "type", jm_event_type_name(type),
                                    "outcome", *outcome ? json_string(outcome) : json_null(),
                                    "reason", *reason ? json_string(reason) : json_null()));
    } else if (!o.wait) {
        printf("%s requested (event %s)\n", what, event_id);
    } else {
        printf("%s %s%s%s (event %s)\n", what, outcome, *reason ? ": " : "", reason, event_id);
    }
out:
    json_decref(pl);
    jm_producer_destroy(p);
    jm_status_ctx_destroy(ctx);
    jm_cli_ops_opts_free(&o);
    return code;
}
