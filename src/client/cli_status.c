/*
 * cli_status.c — the read commands: `jobmon status [WF...]`, `tasks WF`, `task TASK`,
 * `deps TASK`, `logs WF`, `events WF|--task T`, `usage WF...`, `errors WF`.  Status comes from
 * Redis with PostgreSQL (the reader role) as the fallback (jm_status_get); everything else is read
 * from PostgreSQL.  Every command has `--json` (shapes in the contract of issue 5 / README "Using
 * the CLI").
 *
 * Deliberately read-only: nothing here publishes or writes.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli_status.h"
#include "client/cli_util.h"
#include "common/prune_sql.h"
#include "jobmon/jmtime.h"
#include "jobmon/resources.h"

typedef jm_cli_read_opts_t read_opts_t;

typedef struct {
    const char *name;
    const char *usage;
    const char *help;
    int min_args, max_args; /* positional arguments; max -1 = any */
    int64_t default_limit;
} read_cmd_t;

static const read_cmd_t read_cmds[] = {
    {"status",
     "jobmon status [WF...] [--json] [--limit N] [--user U | --all-users] [--active]\n"
     "       [--source auto|redis|pg]",
     "status of workflows (default: your recent ones; --all-users: everybody's; --active: only\n"
     "  those with an alive run): task counts per PENDING, SCHEDULED, RUNNING, DONE, FATAL.\n"
     "  From Redis, falling back to PostgreSQL.",
     0, -1, 5},
    {"tasks", "jobmon tasks WF [--status S[,S...]] [--limit N] [--json]",
     "tasks of workflow WF with status letter, user status and attempts; S is a user status\n"
     "  (PENDING, SCHEDULED, RUNNING, DONE, FATAL) or task letters (e.g. F or GQ)",
     1, 1, 0},
    {"task", "jobmon task TASK [--json]",
     "one task and its instances: status, distributor id, exit code, message, stderr tail,\n"
     "  log paths, resources",
     1, 1, 0},
    {"deps", "jobmon deps TASK [--json]", "upstream and downstream tasks of TASK with statuses", 1,
     1, 0},
    {"logs", "jobmon logs WF [--limit N] [--json]",
     "stdout/stderr paths of every task instance of WF (a file exists once its command\n"
     "  wrote to that stream: a silent command leaves none)",
     1, 1, 0},
    {"events", "jobmon events WF [--limit N] [--json] | jobmon events --task TASK [--json]",
     "the audit trail: every event applied to WF (or touching TASK) with the transitions it\n"
     "  caused, in apply order",
     0, 1, 0},
    {"errors", "jobmon errors WF [--all] [--lines N] [--limit N] [--json]",
     "why tasks of WF failed: for each task whose latest instance ended in error (E, Z, U, W,\n"
     "  F), that instance's exit code, message and the last N lines of its stderr (default\n"
     "  5, 0 = the whole stored tail; --json has it whole); --all: every errored instance,\n"
     "  retried ones too",
     1, 1, 1000},
    {"usage", "jobmon usage WF... [--template NAME] [--headroom PCT] [--json]",
     "memory and runtime used by the done instances of WF, per task template (min, median,\n"
     "  mean, p95, max; what was requested; instances killed for resources), and the\n"
     "  compute_resources to request: the largest use plus PCT % (default 20)",
     1, -1, 0},
};

static const read_cmd_t *find_read_cmd(const char *name)
{
    for (size_t i = 0; i < JM_ARRAY_LEN(read_cmds); i++)
        if (strcmp(read_cmds[i].name, name) == 0)
            return &read_cmds[i];
    return NULL;
}

static void read_usage(FILE *out, const read_cmd_t *c)
{
    fprintf(out, "usage: %s\n  %s\n", c->usage, c->help);
}

enum {
    OPT_JSON = 256,
    OPT_LIMIT,
    OPT_STATUS,
    OPT_TASK,
    OPT_SOURCE,
    OPT_USER,
    OPT_TEMPLATE,
    OPT_HEADROOM,
    OPT_ALL,
    OPT_LINES,
    OPT_ALL_USERS,
    OPT_ACTIVE
};

/* The one read command an option belongs to; NULL when every read command takes it. */
static const char *option_owner(int opt)
{
    switch (opt) {
    case 's':
    case OPT_STATUS: return "tasks";
    case OPT_TASK: return "events";
    case OPT_SOURCE:
    case OPT_USER:
    case OPT_ALL_USERS:
    case OPT_ACTIVE: return "status";
    case OPT_TEMPLATE:
    case OPT_HEADROOM: return "usage";
    case OPT_ALL:
    case OPT_LINES: return "errors";
    default: return NULL;
    }
}

int jm_cli_read_parse(int argc, char **argv, jm_cli_read_opts_t *o, char *msg, size_t msglen)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"status", required_argument, NULL, OPT_STATUS},
        {"task", required_argument, NULL, OPT_TASK},
        {"source", required_argument, NULL, OPT_SOURCE},
        {"user", required_argument, NULL, OPT_USER},
        {"template", required_argument, NULL, OPT_TEMPLATE},
        {"headroom", required_argument, NULL, OPT_HEADROOM},
        {"all", no_argument, NULL, OPT_ALL},
        {"lines", required_argument, NULL, OPT_LINES},
        {"all-users", no_argument, NULL, OPT_ALL_USERS},
        {"active", no_argument, NULL, OPT_ACTIVE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const read_cmd_t *c = find_read_cmd(argv[0]);
    int opt;
    JM_ASSERT(c != NULL);
    memset(o, 0, sizeof(*o));
    o->limit = c->default_limit;
    o->headroom = 20;
    o->lines = 5;
    msg[0] = '\0';
    optind = 0;
    opterr = 0;
    int li = -1;
    while ((opt = getopt_long(argc, argv, "hjl:s:", longopts, &li)) != -1) {
        const char *owner = option_owner(opt);
        if (owner && strcmp(owner, c->name) != 0) {
            if (li >= 0)
                snprintf(msg, msglen, "--%s is an option of jobmon %s", longopts[li].name, owner);
            else
                snprintf(msg, msglen, "-%c is an option of jobmon %s", opt, owner);
            return -1;
        }
        li = -1;
        switch (opt) {
        case 'j':
        case OPT_JSON: o->json = 1; break;
        case 'l':
        case OPT_LIMIT:
            if (jm_cli_parse_int(optarg, INT32_MAX, &o->limit) != 0) {
                snprintf(msg, msglen, "--limit: not a count: '%s'", optarg);
                return -1;
            }
            break;
        case 's':
        case OPT_STATUS: o->status = optarg; break;
        case OPT_TASK:
            if (jm_cli_parse_id(optarg, &o->task) != 0) {
                snprintf(msg, msglen, "--task: not a task id: '%s'", optarg);
                return -1;
            }
            break;
        case OPT_SOURCE:
            if (strcmp(optarg, "auto") && strcmp(optarg, "redis") && strcmp(optarg, "pg")) {
                snprintf(msg, msglen, "--source: auto, redis or pg, not '%s'", optarg);
                return -1;
            }
            o->source = optarg;
            break;
        case OPT_USER: o->user = optarg; break;
        case OPT_TEMPLATE: o->tmpl = optarg; break;
        case OPT_HEADROOM:
            if (jm_cli_parse_int(optarg, 1000, &o->headroom) != 0) {
                snprintf(msg, msglen, "--headroom: a percentage 0 to 1000, not '%s'", optarg);
                return -1;
            }
            break;
        case OPT_ALL_USERS:
        case OPT_ACTIVE: *(opt == OPT_ACTIVE ? &o->active : &o->all_users) = 1; break;
        case OPT_ALL: o->all = 1; break;
        case OPT_LINES:
            if (jm_cli_parse_int(optarg, INT32_MAX, &o->lines) != 0) {
                snprintf(msg, msglen, "--lines: not a count: '%s'", optarg);
                return -1;
            }
            break;
        case 'h': return 1;
        default: snprintf(msg, msglen, "unknown option '%s'", argv[optind - 1]); return -1;
        }
    }
    o->nargs = argc - optind;
    o->args = argv + optind;
    int min = c->min_args;
    if (strcmp(c->name, "events") == 0)
        min = o->task ? 0 : 1;
    if (o->nargs < min || (c->max_args >= 0 && o->nargs > c->max_args) ||
        (o->task && o->nargs > 0)) {
        snprintf(msg, msglen, o->nargs < min ? "missing argument" : "too many arguments");
        return -1;
    }
    for (int i = 0; i < o->nargs; i++) {
        int64_t id;
        if (jm_cli_parse_id(o->args[i], &id) != 0) {
            snprintf(msg, msglen, "not an id: '%s'", o->args[i]);
            return -1;
        }
    }
    if (o->user && o->all_users) {
        snprintf(msg, msglen, "give --user U or --all-users, not both");
        return -1;
    }
    if (o->nargs && (o->user || o->all_users || o->active)) {
        snprintf(msg, msglen, "--user, --all-users and --active choose workflows: not with ids");
        return -1;
    }
    if (o->status) {
        char letters[16];
        if (jm_cli_task_status_filter(o->status, letters, sizeof(letters)) != 0) {
            snprintf(msg, msglen, "--status: unknown status '%s'", o->status);
            return -1;
        }
    }
    return 0;
}

int jm_cli_task_status_filter(const char *spec, char *letters, size_t len)
{
    static const char *const bucket_letters[JM_USER__CNT] = {"GQIAE", "O", "R", "D", "F"};
    char *copy = jm_strdup(spec), *save = NULL;
    size_t k = 0;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int b = jm_user_status_parse(t);
        const char *add = b >= 0 ? bucket_letters[b] : t;
        for (const char *c = add; *c; c++) {
            if (b < 0 && jm_status_from_letter(JM_ENTITY_TASK, *c) < 0) {
                rc = -1;
                goto out;
            }
            if (!memchr(letters, *c, k) && k + 1 < len)
                letters[k++] = *c;
        }
    }
    if (k == 0)
        rc = -1;
out:
    if (len)
        letters[k < len ? k : len - 1] = '\0';
    free(copy);
    return rc;
}

/* ---- shared ---------------------------------------------------------------------------------- */

static jm_pg_t *reader(jm_status_ctx_t *ctx)
{
    jm_err_t err;
    jm_pg_t *pg = jm_status_ctx_pg(ctx, &err);
    if (!pg)
        fprintf(stderr, "jobmon: PostgreSQL unreachable: %s\n", err.msg);
    return pg;
}

/* Run a read query; print the error and return the exit code on failure. */
static int query(jm_status_ctx_t *ctx, const char *sql, int n, const char *const *params,
                 PGresult **res)
{
    jm_err_t err;
    jm_pg_t *pg = reader(ctx);
    *res = NULL;
    if (!pg)
        return JM_EXIT_UNAVAILABLE;
    if (jm_pg_exec(pg, sql, n, params, res, &err) != JM_OK) {
        fprintf(stderr, "jobmon: PostgreSQL: %s\n", err.msg);
        return jm_rc_to_exit(err.rc) == JM_EXIT_UNAVAILABLE ? JM_EXIT_UNAVAILABLE : JM_EXIT_FAILED;
    }
    return JM_EXIT_OK;
}

/* Run a query on one `what` ($1 = its id); no row is a usage error ("what id not found"). */
static int query_one(jm_status_ctx_t *ctx, const char *what, const char *sql, const char *id,
                     PGresult **res)
{
    const char *params[1] = {id};
    int code = query(ctx, sql, 1, params, res);
    if (code == JM_EXIT_OK && PQntuples(*res) == 0) {
        fprintf(stderr, "jobmon: %s %s not found\n", what, id);
        code = JM_EXIT_USAGE;
    }
    return code;
}

/* The task `id` (task_sql, $1 = id; not found is a usage error), then detail_sql about it. */
static int query_task(jm_status_ctx_t *ctx, const char *task_sql, const char *detail_sql,
                      const char *id, PGresult **t, PGresult **detail)
{
    const char *params[1] = {id};
    int code = query_one(ctx, "task", task_sql, id, t);
    return code == JM_EXIT_OK ? query(ctx, detail_sql, 1, params, detail) : code;
}

/* --limit as a query parameter: the value, or INT32_MAX for 0 (no limit). */
static const char *limit_param(const read_opts_t *o, char *lim, size_t len)
{
    snprintf(lim, len, "%" PRId64, o->limit ? o->limit : INT32_MAX);
    return lim;
}

/* JM_EXIT_OK when workflow `id` exists; else the error printed and its exit code. */
static int workflow_exists(jm_status_ctx_t *ctx, const char *id)
{
    PGresult *res = NULL;
    int code = query_one(ctx, "workflow", "SELECT 1 FROM workflow WHERE id = $1", id, &res);
    PQclear(res);
    return code;
}

static json_t *jint_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null()
                                    : json_integer(strtoll(PQgetvalue(r, row, col), NULL, 10));
}

static json_t *jstr_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

static json_t *jjson_or_null(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    json_t *j = json_loads(PQgetvalue(r, row, col), JSON_DECODE_ANY, NULL);
    return j ? j : json_string(PQgetvalue(r, row, col));
}

static const char *val(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? "-" : PQgetvalue(r, row, col);
}

static const char *user_of(const char *letter)
{
    int b = jm_user_status_of_letter(letter[0]);
    return b < 0 ? "?" : jm_user_status_name((jm_user_status_t)b);
}

/* ---- status -------------------------------------------------------------------------------- */

/* When workflow `wf`, not found, was pruned ("at <ts> (event <id>)"), or "" (never pruned, or
 * PostgreSQL unreachable: the caller reports its own error). */
static void pruned_at(jm_status_ctx_t *ctx, int64_t wf, char *out, size_t len)
{
    PGresult *r = NULL;
    jm_pg_t *pg = jm_status_ctx_pg(ctx, NULL);
    if (pg && jm_pg_exec_id(pg, JM_SQL_WF_PRUNED_AT, wf, &r, NULL) == JM_OK && PQntuples(r) > 0)
        snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

static int cmd_status(jm_status_ctx_t *ctx, read_opts_t *o)
{
    int code = JM_EXIT_OK, n = o->nargs;
    int64_t *ids = NULL;
    PGresult *res = NULL, *names = NULL;
    json_t *list = json_array();
    jm_err_t err;

    if (o->source)
        jm_status_ctx_set_source(ctx, strcmp(o->source, "redis") == 0 ? JM_STATUS_SRC_REDIS
                                      : strcmp(o->source, "pg") == 0  ? JM_STATUS_SRC_PG
                                                                      : JM_STATUS_SRC_AUTO);
    if (n > 0) {
        ids = jm_calloc((size_t)n, sizeof(*ids));
        for (int i = 0; i < n; i++)
            jm_cli_parse_id(o->args[i], &ids[i]);
    } else {
        char lim[24];
        limit_param(o, lim, sizeof(lim));
        const char *params[3] = {o->all_users ? NULL
                                 : o->user    ? o->user
                                              : jm_cli_user(),
                                 lim, o->active ? "true" : "false"};
        if ((code = query(ctx,
                          "SELECT w.id FROM workflow w WHERE ($1::text IS NULL OR w.user_name = $1)"
                          " AND (NOT $3::bool OR EXISTS (SELECT 1 FROM workflow_run r"
                          "  WHERE r.workflow_id = w.id AND r.status IN " JM_SQL_RUN_ALIVE "))"
                          " ORDER BY w.created_at DESC, w.id DESC LIMIT $2::int",
                          3, params, &res)) != JM_EXIT_OK)
            goto out;
        n = PQntuples(res);
        ids = jm_calloc((size_t)n + 1, sizeof(*ids));
        for (int i = 0; i < n; i++)
            ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    }
    if (!o->json) {
        /* names (and creation dates) are in PostgreSQL only; optional */
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(arr, json_integer(ids[i]));
        char *a = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        const char *params[1] = {a};
        jm_pg_t *pg = jm_status_ctx_pg(ctx, NULL);
        if (pg && jm_pg_exec(pg,
                             "SELECT id, name, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'),"
                             " user_name"
                             " FROM workflow WHERE id IN (SELECT "
                             "(jsonb_array_elements_text($1::jsonb))::bigint)",
                             1, params, &names, NULL) != JM_OK)
            names = NULL;
        free(a);
        printf("%-20s %-24s %-9s %-19s %7s  %-15s %-15s %-15s %-15s %-15s %s\n", "WF_ID", "WF_NAME",
               "WF_STATUS", "CREATED_DATE", "TASKS", "PENDING", "SCHEDULED", "RUNNING", "DONE",
               "FATAL", "USER");
    }
    for (int i = 0; i < n; i++) {
        jm_status_t st;
        jm_rc_t rc = jm_status_get(ctx, ids[i], &st, &err);
        if (rc != JM_OK) {
            char pruned[128] = "";
            if (rc == JM_ERR_NOT_FOUND)
                pruned_at(ctx, ids[i], pruned, sizeof(pruned));
            if (*pruned)
                fprintf(stderr, "jobmon: workflow %" PRId64 " was pruned %s\n", ids[i], pruned);
            else
                fprintf(stderr, "jobmon: workflow %" PRId64 ": %s\n", ids[i], err.msg);
            int c = jm_rc_to_exit(rc);
            if (c > code || code == JM_EXIT_OK)
                code = c;
            continue;
        }
        if (o->json) {
            json_array_append_new(list, jm_status_json(&st));
            continue;
        }
        const char *name = "", *created = "", *user = "";
        for (int r = 0; names && r < PQntuples(names); r++)
            if (strtoll(PQgetvalue(names, r, 0), NULL, 10) == ids[i]) {
                name = PQgetvalue(names, r, 1);
                created = PQgetvalue(names, r, 2);
                user = PQgetvalue(names, r, 3);
            }
        int64_t u[JM_USER__CNT];
        char cells[JM_USER__CNT][40];
        jm_status_user_counts(&st, u);
        for (int b = 0; b < JM_USER__CNT; b++)
            jm_status_format_count(cells[b], sizeof(cells[b]), u[b], st.total);
        printf("%-20" PRId64 " %-24.24s %-9s %-19s %7" PRId64
               "  %-15s %-15s %-15s %-15s %-15s %s\n",
               ids[i], name,
               jm_status_name(JM_ENTITY_WORKFLOW,
                              jm_status_from_letter(JM_ENTITY_WORKFLOW, st.workflow_status)),
               created, st.total, cells[0], cells[1], cells[2], cells[3], cells[4], user);
    }
    if (o->json) {
        if (o->nargs == 1)
            jm_cli_print_json(
                json_incref(json_array_size(list) ? json_array_get(list, 0) : json_null()));
        else
            jm_cli_print_json(json_incref(list));
    }
out:
    json_decref(list);
    PQclear(names);
    PQclear(res);
    free(ids);
    return code;
}

/* ---- tasks ---------------------------------------------------------------------------------- */

static int cmd_tasks(jm_status_ctx_t *ctx, read_opts_t *o)
{
    char letters[16] = "GQIORDEAF", lim[24];
    const char *params[3] = {o->args[0], letters, lim};
    PGresult *res = NULL;
    int code;
    if (o->status)
        jm_cli_task_status_filter(o->status, letters, sizeof(letters));
    limit_param(o, lim, sizeof(lim));
    if ((code = workflow_exists(ctx, o->args[0])) != JM_EXIT_OK)
        goto out;
    if ((code = query(ctx,
                      "SELECT id, name, status, num_attempts FROM task WHERE workflow_id = $1"
                      " AND strpos($2, status) > 0 ORDER BY id LIMIT $3::int",
                      3, params, &res)) != JM_EXIT_OK)
        goto out;
    int n = PQntuples(res);
    if (o->json) {
        json_t *list = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(
                list, json_pack("{so ss ss so}", "task_id", jint_or_null(res, i, 0), "name",
                                PQgetvalue(res, i, 1), "status", PQgetvalue(res, i, 2), "attempts",
                                jint_or_null(res, i, 3)));
        jm_cli_print_json(list);
        goto out;
    }
    printf("%-20s %-40s %-6s %-10s %s\n", "TASK_ID", "TASK_NAME", "STATUS", "USER", "RETRIES");
    for (int i = 0; i < n; i++) {
        int64_t att = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        printf("%-20s %-40s %-6s %-10s %" PRId64 "\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
               PQgetvalue(res, i, 2), user_of(PQgetvalue(res, i, 2)), att > 0 ? att - 1 : 0);
    }
out:
    PQclear(res);
    return code;
}

/* ---- task ----------------------------------------------------------------------------------- */

static int cmd_task(jm_status_ctx_t *ctx, read_opts_t *o)
{
    PGresult *t = NULL, *ti = NULL;
    int code = query_task(ctx,
                          "SELECT id, workflow_id, name, status, num_attempts, max_attempts,"
                          " command, resources::text, cluster FROM task WHERE id = $1",
                          "SELECT id, attempt, run_id, status, distributor_id, exit_code, message,"
                          " stderr_tail, stdout_path, stderr_path, resources::text, host,"
                          " wall_ms, cpu_ms, maxrss_kb, to_char(status_at AT TIME ZONE 'UTC',"
                          " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                          " FROM task_instance WHERE task_id = $1 ORDER BY attempt",
                          o->args[0], &t, &ti);
    if (code != JM_EXIT_OK)
        goto out;
    int n = PQntuples(ti);
    if (o->json) {
        json_t *inst = json_array();
        for (int i = 0; i < n; i++) {
            json_t *u = json_pack("{so so so}", "wall_ms", jint_or_null(ti, i, 12), "cpu_ms",
                                  jint_or_null(ti, i, 13), "maxrss_kb", jint_or_null(ti, i, 14));
            json_array_append_new(
                inst,
                json_pack("{so so so ss so so so so so so so so so so}", "task_instance_id",
                          jint_or_null(ti, i, 0), "attempt", jint_or_null(ti, i, 1), "run_id",
                          jint_or_null(ti, i, 2), "status", PQgetvalue(ti, i, 3), "distributor_id",
                          jstr_or_null(ti, i, 4), "exit_code", jint_or_null(ti, i, 5), "message",
                          jstr_or_null(ti, i, 6), "stderr_tail", jstr_or_null(ti, i, 7),
                          "stdout_path", jstr_or_null(ti, i, 8), "stderr_path",
                          jstr_or_null(ti, i, 9), "resources", jjson_or_null(ti, i, 10), "host",
                          jstr_or_null(ti, i, 11), "usage", u, "status_at",
                          jstr_or_null(ti, i, 15)));
        }
        jm_cli_print_json(
            json_pack("{so so ss ss so so ss so ss so}", "task_id", jint_or_null(t, 0, 0),
                      "workflow_id", jint_or_null(t, 0, 1), "name", PQgetvalue(t, 0, 2), "status",
                      PQgetvalue(t, 0, 3), "attempts", jint_or_null(t, 0, 4), "max_attempts",
                      jint_or_null(t, 0, 5), "command", PQgetvalue(t, 0, 6), "resources",
                      jjson_or_null(t, 0, 7), "cluster", PQgetvalue(t, 0, 8), "instances", inst));
        goto out;
    }
    printf("task %s %s (workflow %s): %s %s, attempts %s of %s\n  command: %s\n  resources: %s\n",
           PQgetvalue(t, 0, 0), PQgetvalue(t, 0, 2), PQgetvalue(t, 0, 1), PQgetvalue(t, 0, 3),
           user_of(PQgetvalue(t, 0, 3)), PQgetvalue(t, 0, 4), PQgetvalue(t, 0, 5),
           PQgetvalue(t, 0, 6), PQgetvalue(t, 0, 7));
    if (n == 0)
        printf("  no instances yet\n");
    for (int i = 0; i < n; i++) {
        printf("  instance %s attempt %s run %s: %s  distributor %s  exit %s  host %s\n"
               "    resources: %s\n    usage: wall %s ms, cpu %s ms, maxrss %s kB\n"
               "    stdout: %s\n    stderr: %s\n",
               val(ti, i, 0), val(ti, i, 1), val(ti, i, 2), val(ti, i, 3), val(ti, i, 4),
               val(ti, i, 5), val(ti, i, 11), val(ti, i, 10), val(ti, i, 12), val(ti, i, 13),
               val(ti, i, 14), val(ti, i, 8), val(ti, i, 9));
        if (!PQgetisnull(ti, i, 6) && *PQgetvalue(ti, i, 6))
            printf("    message: %s\n", PQgetvalue(ti, i, 6));
        if (!PQgetisnull(ti, i, 7) && *PQgetvalue(ti, i, 7)) {
            const char *tail = PQgetvalue(ti, i, 7);
            size_t len = strlen(tail);
            const char *from = len > 2000 ? tail + len - 2000 : tail;
            printf("    stderr tail:\n");
            for (const char *l = from; *l;) {
                const char *nl = strchr(l, '\n');
                int ll = (int)(nl ? nl - l : (long)strlen(l));
                printf("      | %.*s\n", ll, l);
                l = nl ? nl + 1 : l + ll;
            }
        }
    }
out:
    PQclear(ti);
    PQclear(t);
    return code;
}

/* ---- deps ------------------------------------------------------------------------------------ */

static int cmd_deps(jm_status_ctx_t *ctx, read_opts_t *o)
{
    PGresult *t = NULL, *res = NULL;
    int code = query_task(ctx, "SELECT id, name, status FROM task WHERE id = $1",
                          "SELECT 'upstream', t.id, t.name, t.status FROM task_edge e"
                          " JOIN task t ON t.id = e.upstream_id WHERE e.downstream_id = $1"
                          " UNION ALL SELECT 'downstream', t.id, t.name, t.status FROM task_edge e"
                          " JOIN task t ON t.id = e.downstream_id WHERE e.upstream_id = $1"
                          " ORDER BY 1 DESC, 2",
                          o->args[0], &t, &res);
    if (code != JM_EXIT_OK)
        goto out;
    int n = PQntuples(res);
    if (o->json) {
        json_t *up = json_array(), *down = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(strcmp(PQgetvalue(res, i, 0), "upstream") == 0 ? up : down,
                                  json_pack("{so ss ss}", "task_id", jint_or_null(res, i, 1),
                                            "name", PQgetvalue(res, i, 2), "status",
                                            PQgetvalue(res, i, 3)));
        jm_cli_print_json(json_pack("{so ss ss so so}", "task_id", jint_or_null(t, 0, 0), "name",
                                    PQgetvalue(t, 0, 1), "status", PQgetvalue(t, 0, 2), "upstream",
                                    up, "downstream", down));
        goto out;
    }
    printf("task %s %s: %s %s\n", PQgetvalue(t, 0, 0), PQgetvalue(t, 0, 1), PQgetvalue(t, 0, 2),
           user_of(PQgetvalue(t, 0, 2)));
    printf("%-10s %-20s %-40s %-6s %s\n", "DIRECTION", "TASK_ID", "TASK_NAME", "STATUS", "USER");
    for (int i = 0; i < n; i++)
        printf("%-10s %-20s %-40s %-6s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
               PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), user_of(PQgetvalue(res, i, 3)));
out:
    PQclear(res);
    PQclear(t);
    return code;
}

/* ---- logs ------------------------------------------------------------------------------------ */

static int cmd_logs(jm_status_ctx_t *ctx, read_opts_t *o)
{
    char lim[24];
    const char *params[2] = {o->args[0], lim};
    PGresult *res = NULL;
    int code;
    limit_param(o, lim, sizeof(lim));
    if ((code = query(ctx,
                      "SELECT t.id, t.name, ti.id, ti.attempt, ti.status, ti.distributor_id,"
                      " ti.stdout_path, ti.stderr_path FROM task_instance ti"
                      " JOIN task t ON t.id = ti.task_id WHERE ti.workflow_id = $1"
                      " ORDER BY t.id, ti.attempt LIMIT $2::int",
                      2, params, &res)) != JM_EXIT_OK)
        goto out;
    int n = PQntuples(res);
    if (o->json) {
        json_t *list = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(
                list,
                json_pack("{so ss so so ss so so so}", "task_id", jint_or_null(res, i, 0), "name",
                          PQgetvalue(res, i, 1), "task_instance_id", jint_or_null(res, i, 2),
                          "attempt", jint_or_null(res, i, 3), "status", PQgetvalue(res, i, 4),
                          "distributor_id", jstr_or_null(res, i, 5), "stdout_path",
                          jstr_or_null(res, i, 6), "stderr_path", jstr_or_null(res, i, 7)));
        jm_cli_print_json(list);
        goto out;
    }
    printf("%-20s %-30s %-20s %-6s %-14s %s\n", "TASK_ID", "TASK_NAME", "TI_ID", "STATUS",
           "DISTRIBUTOR_ID", "STDOUT / STDERR");
    for (int i = 0; i < n; i++)
        printf("%-20s %-30s %-20s %-6s %-14s %s\n%94s %s\n", val(res, i, 0), val(res, i, 1),
               val(res, i, 2), val(res, i, 4), val(res, i, 5), val(res, i, 6), "", val(res, i, 7));
out:
    PQclear(res);
    return code;
}

/* ---- events ---------------------------------------------------------------------------------- */

/* The transitions matching tl_where (transition_log) and the creations of the bound tasks matching
 * task_where (task.bind_event_id; 008_bind_rows.sql), as (k, seq, entity, entity_id, from_status,
 * to_status, event_id, at): within one event the creations (k 0, by task id) come first. */
#define TRANSITIONS_SQL(tl_where, task_where)                                                      \
    "SELECT 0 AS k, id AS seq, 'task'::text AS entity, id AS entity_id,"                           \
    " NULL::char(1) AS from_status, 'G'::char(1) AS to_status, bind_event_id AS event_id,"         \
    " NULL::timestamptz AS at FROM task WHERE bind_event_id IS NOT NULL AND " task_where           \
    " UNION ALL SELECT 1, seq, entity, entity_id, from_status, to_status, event_id, at"            \
    " FROM transition_log WHERE " tl_where

static int cmd_events(jm_status_ctx_t *ctx, read_opts_t *o)
{
    /* Per workflow: every event (also those that changed nothing), each transition it caused.
     * A bound task's creation (NULL -> G) is its row's bind_event_id, not a transition_log row
     * (008_bind_rows.sql): listed first among its event's transitions, in task id order, as the
     * bind wrote them into transition_log before. */
    static const char by_wf[] =
        "SELECT e.event_id, e.type, tl.entity, tl.entity_id, tl.from_status, tl.to_status,"
        " e.outcome, to_char(coalesce(e.ts, tl.at) AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), e.reason"
        " FROM event_log e LEFT JOIN (" TRANSITIONS_SQL(
            "workflow_id = $1", "workflow_id = $1") ") tl ON tl.event_id = e.event_id"
                                                    " WHERE e.workflow_id = $1 ORDER BY "
                                                    "e.applied_seq, tl.k, tl.seq LIMIT $2::int";
    /* Per task: the transitions of the task and its instances, with their events.  The
     * ANY(...) condition (the task's and its instances' ids) lets transition_log_entity_id find
     * the rows; the OR alone was a sequential scan of the whole transition_log. */
    static const char by_task[] =
        "SELECT e.event_id, e.type, tl.entity, tl.entity_id, tl.from_status, tl.to_status,"
        " e.outcome, to_char(coalesce(e.ts, tl.at) AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), e.reason"
        " FROM (" TRANSITIONS_SQL(
            "entity_id = ANY (ARRAY(SELECT $1::bigint UNION ALL"
            "  SELECT id FROM task_instance WHERE task_id = $1::bigint))"
            " AND ((entity = 'task' AND entity_id = $1::bigint) OR (entity = 'task_instance'"
            "  AND entity_id IN (SELECT id FROM task_instance WHERE task_id = $1::bigint)))",
            "id = $1::bigint") ") tl JOIN event_log e ON e.event_id = tl.event_id"
                               " ORDER BY e.applied_seq, tl.k, tl.seq LIMIT $2::int";
    char id[24], lim[24];
    const char *params[2] = {id, lim};
    PGresult *res = NULL;
    int code;
    snprintf(id, sizeof(id), "%s", o->task ? "" : o->args[0]);
    if (o->task)
        snprintf(id, sizeof(id), "%" PRId64, o->task);
    limit_param(o, lim, sizeof(lim));
    if ((code = query(ctx, o->task ? by_task : by_wf, 2, params, &res)) != JM_EXIT_OK)
        goto out;
    int n = PQntuples(res);
    if (o->json) {
        json_t *list = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(
                list,
                json_pack("{ss so so so so so ss so so}", "event_id", PQgetvalue(res, i, 0), "type",
                          jstr_or_null(res, i, 1), "entity", jstr_or_null(res, i, 2), "entity_id",
                          jint_or_null(res, i, 3), "from", jstr_or_null(res, i, 4), "to",
                          jstr_or_null(res, i, 5), "outcome", PQgetvalue(res, i, 6), "at",
                          jstr_or_null(res, i, 7), "reason", jstr_or_null(res, i, 8)));
        jm_cli_print_json(list);
        goto out;
    }
    printf("%-24s %-20s %-9s %-13s %-20s %-7s %s\n", "AT", "TYPE", "OUTCOME", "ENTITY", "ENTITY_ID",
           "CHANGE", "EVENT_ID");
    for (int i = 0; i < n; i++) {
        char change[16];
        if (PQgetisnull(res, i, 5))
            snprintf(change, sizeof(change), "-");
        else
            snprintf(change, sizeof(change), "%s->%s",
                     PQgetisnull(res, i, 4) ? "" : PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
        printf("%-24s %-20s %-9s %-13s %-20s %-7s %s%s%s\n", val(res, i, 7), val(res, i, 1),
               PQgetvalue(res, i, 6), val(res, i, 2), val(res, i, 3), change, PQgetvalue(res, i, 0),
               PQgetisnull(res, i, 8) ? "" : "  ",
               PQgetisnull(res, i, 8) ? "" : PQgetvalue(res, i, 8));
    }
out:
    PQclear(res);
    return code;
}

/* ---- usage ----------------------------------------------------------------------------------- */

void jm_cli_usage_suggest(int64_t max_kb, int64_t max_ms, int64_t headroom_pct, int64_t *mib,
                          int64_t *seconds)
{
    double f = 1.0 + (double)headroom_pct / 100.0;
    *mib = max_kb > 0 ? (int64_t)ceil((double)max_kb * f / 1024.0) : 0;
    *seconds = max_ms > 0 ? (int64_t)ceil((double)max_ms * f / 1000.0) : 0;
}

/* Per template (NULL for plain commands): done, resource-killed (Z), then over the done
 * instances min/median/mean/p95/max of maxrss_kb (cols 3-7) and of wall_ms (8-12), CPU time in
 * percent of wall time (13: 200 = two cores busy), and the largest request of any instance: memory
 * MiB, runtime s, cores (14-16). */
#define USAGE_STATS(col)                                                                           \
    "min(" col ") FILTER (WHERE d), percentile_disc(0.5) WITHIN GROUP (ORDER BY " col ")"          \
    " FILTER (WHERE d), round(avg(" col ") FILTER (WHERE d))::bigint, percentile_disc(0.95)"       \
    " WITHIN GROUP (ORDER BY " col ") FILTER (WHERE d), max(" col ") FILTER (WHERE d),"
/* clang-format off */
static const char usage_sql[] =
    "WITH i AS (SELECT t.template, ti.status = 'D' AS d, ti.status, ti.maxrss_kb, ti.wall_ms,"
    "  ti.cpu_ms, ti.resources FROM task_instance ti JOIN task t ON t.id = ti.task_id"
    "  WHERE ti.workflow_id = ANY ($1::bigint[]) AND ($2::text IS NULL OR t.template = $2))"
    " SELECT template, count(*) FILTER (WHERE d), count(*) FILTER (WHERE status = 'Z'),"
    USAGE_STATS("maxrss_kb")
    USAGE_STATS("wall_ms")
    " round(100 * sum(cpu_ms) FILTER (WHERE d)"
    "  / nullif(sum(wall_ms) FILTER (WHERE d), 0))::bigint,"
    " max((resources->>'memory')::bigint), max((resources->>'runtime')::bigint),"
    " max((resources->>'cores')::bigint)"
    " FROM i GROUP BY template ORDER BY template NULLS LAST";
/* clang-format on */

#define USAGE_ROW_FMT "%-24s %6s %6s  %-7s %-7s %-7s %-7s  %-9s %-9s %-9s %-9s %5s  %s\n"

/* "512M", "1.5G" (from KiB) */
static char *fmt_kb(PGresult *r, int row, int col, char *buf, size_t len)
{
    if (PQgetisnull(r, row, col))
        return strcpy(buf, "-");
    double kb = strtod(PQgetvalue(r, row, col), NULL);
    if (kb >= 1024.0 * 1024.0)
        snprintf(buf, len, "%.1fG", kb / (1024.0 * 1024.0));
    else
        snprintf(buf, len, "%.0fM", ceil(kb / 1024.0));
    return buf;
}

/* "2.5s" under a minute, else HH:MM:SS (from ms) */
static char *fmt_ms(PGresult *r, int row, int col, int64_t scale, char *buf, size_t len)
{
    if (PQgetisnull(r, row, col))
        return strcpy(buf, "-");
    int64_t ms = strtoll(PQgetvalue(r, row, col), NULL, 10) * scale;
    if (ms < 60000)
        snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
    else
        jm_res_format_runtime((ms + 999) / 1000, buf, len);
    return buf;
}

static int64_t col_i64(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static json_t *usage_stats_json(PGresult *r, int row, int first)
{
    return json_pack("{so so so so so}", "min", jint_or_null(r, row, first), "median",
                     jint_or_null(r, row, first + 1), "mean", jint_or_null(r, row, first + 2),
                     "p95", jint_or_null(r, row, first + 3), "max",
                     jint_or_null(r, row, first + 4));
}

static json_t *usage_row_json(PGresult *r, int i, int64_t mib, int64_t sec)
{
    char mem[32], rt[32];
    json_t *sugg = json_object();
    if (mib > 0)
        json_object_set_new(sugg, "memory",
                            json_string(jm_res_format_memory(mib, mem, sizeof(mem))));
    if (sec > 0)
        json_object_set_new(sugg, "runtime",
                            json_string(jm_res_format_runtime(sec, rt, sizeof(rt))));
    return json_pack("{so so so so so so s{so so so} so}", "template", jstr_or_null(r, i, 0),
                     "done", jint_or_null(r, i, 1), "resource_killed", jint_or_null(r, i, 2),
                     "memory_kb", usage_stats_json(r, i, 3), "runtime_ms",
                     usage_stats_json(r, i, 8), "cpu_percent", jint_or_null(r, i, 13), "requested",
                     "memory", jint_or_null(r, i, 14), "runtime", jint_or_null(r, i, 15), "cores",
                     jint_or_null(r, i, 16), "suggested", sugg);
}

static void usage_row_text(PGresult *r, int i, int64_t mib, int64_t sec)
{
    char b[10][32], sugg[64] = "-";
    if (mib > 0 || sec > 0)
        snprintf(sugg, sizeof(sugg), "memory %s runtime %s",
                 mib > 0 ? jm_res_format_memory(mib, b[8], sizeof(b[8])) : "-",
                 sec > 0 ? jm_res_format_runtime(sec, b[9], sizeof(b[9])) : "-");
    char req[32] = "-";
    if (!PQgetisnull(r, i, 14))
        jm_res_format_memory(col_i64(r, i, 14), req, sizeof(req));
    printf(USAGE_ROW_FMT, PQgetisnull(r, i, 0) ? "(command)" : PQgetvalue(r, i, 0),
           PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), fmt_kb(r, i, 4, b[0], 32),
           fmt_kb(r, i, 6, b[1], 32), fmt_kb(r, i, 7, b[2], 32), req, fmt_ms(r, i, 9, 1, b[3], 32),
           fmt_ms(r, i, 11, 1, b[4], 32), fmt_ms(r, i, 12, 1, b[5], 32),
           fmt_ms(r, i, 15, 1000, b[6], 32), val(r, i, 13), sugg);
}

/* The positional ids (checked by the parser) as a PostgreSQL array literal; caller frees. */
static char *ids_array(const read_opts_t *o)
{
    int64_t *v = jm_calloc((size_t)o->nargs + 1, sizeof(*v));
    for (int i = 0; i < o->nargs; i++)
        jm_cli_parse_id(o->args[i], &v[i]);
    char *ids = jm_cli_id_array(v, (size_t)o->nargs);
    free(v);
    return ids;
}

static int cmd_usage(jm_status_ctx_t *ctx, read_opts_t *o)
{
    char *ids = ids_array(o);
    const char *params[2] = {ids, o->tmpl};
    PGresult *res = NULL;
    int code = query(ctx,
                     "SELECT x FROM unnest($1::bigint[]) x WHERE NOT EXISTS"
                     " (SELECT 1 FROM workflow w WHERE w.id = x) LIMIT 1",
                     1, params, &res);
    if (code == JM_EXIT_OK && PQntuples(res) > 0) {
        fprintf(stderr, "jobmon: workflow %s not found\n", PQgetvalue(res, 0, 0));
        code = JM_EXIT_USAGE;
    }
    PQclear(res);
    res = NULL;
    if (code != JM_EXIT_OK || (code = query(ctx, usage_sql, 2, params, &res)) != JM_EXIT_OK)
        goto out;
    int n = PQntuples(res);
    json_t *list = o->json ? json_array() : NULL;
    if (!o->json)
        printf(USAGE_ROW_FMT, "TEMPLATE", "DONE", "KILLED", "MEM_MED", "MEM_P95", "MEM_MAX",
               "MEM_REQ", "RUN_MED", "RUN_P95", "RUN_MAX", "RUN_REQ", "CPU%",
               "SUGGESTED (max + headroom)");
    for (int i = 0; i < n; i++) {
        int64_t mib, sec;
        jm_cli_usage_suggest(col_i64(res, i, 7), col_i64(res, i, 12), o->headroom, &mib, &sec);
        if (list)
            json_array_append_new(list, usage_row_json(res, i, mib, sec));
        else
            usage_row_text(res, i, mib, sec);
    }
    if (list)
        jm_cli_print_json(list);
out:
    PQclear(res);
    free(ids);
    return code;
}

/* ---- errors ---------------------------------------------------------------------------------- */

/* Errored instances of workflow $1 ($2 rows at most): the latest instance of each task when it
 * ended in error, or (--all) every errored instance; in task and attempt order. */
#define ERRORS_SQL(which)                                                                          \
    "SELECT t.id, t.name, t.status, ti.id, ti.attempt, ti.status, ti.exit_code, ti.message,"       \
    " ti.stderr_tail, to_char(ti.status_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"  \
    " FROM task_instance ti JOIN task t ON t.id = ti.task_id WHERE ti.workflow_id = $1"            \
    " AND ti.status IN ('E','Z','U','W','F')" which " ORDER BY t.id, ti.attempt LIMIT $2::int"
static const char errors_latest_sql[] = ERRORS_SQL(" AND ti.attempt = t.ti_seq");
static const char errors_all_sql[] = ERRORS_SQL("");

static void error_text(PGresult *r, int i, int64_t lines)
{
    printf("task %s %s (%s): instance %s, attempt %s: %s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
           user_of(PQgetvalue(r, i, 2)), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
           PQgetvalue(r, i, 5));
    if (!PQgetisnull(r, i, 6))
        printf(", exit code %s", PQgetvalue(r, i, 6));
    printf(", at %s\n", PQgetvalue(r, i, 9));
    if (!PQgetisnull(r, i, 7) && *PQgetvalue(r, i, 7))
        printf("  message: %s\n", PQgetvalue(r, i, 7));
    if (!PQgetisnull(r, i, 8))
        jm_cli_print_lines(stdout, "  | ", jm_cli_tail_lines(PQgetvalue(r, i, 8), lines));
}

static int cmd_errors(jm_status_ctx_t *ctx, read_opts_t *o)
{
    char lim[24];
    const char *params[2] = {o->args[0], lim};
    PGresult *res = NULL;
    int code;
    limit_param(o, lim, sizeof(lim));
    if ((code = workflow_exists(ctx, o->args[0])) != JM_EXIT_OK)
        goto out;
    if ((code = query(ctx, o->all ? errors_all_sql : errors_latest_sql, 2, params, &res)) !=
        JM_EXIT_OK)
        goto out;
    int n = PQntuples(res);
    if (o->json) {
        json_t *list = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(
                list,
                json_pack("{so ss ss so so ss so so so ss}", "task_id", jint_or_null(res, i, 0),
                          "name", PQgetvalue(res, i, 1), "task_status", PQgetvalue(res, i, 2),
                          "task_instance_id", jint_or_null(res, i, 3), "attempt",
                          jint_or_null(res, i, 4), "status", PQgetvalue(res, i, 5), "exit_code",
                          jint_or_null(res, i, 6), "message", jstr_or_null(res, i, 7),
                          "stderr_tail", jstr_or_null(res, i, 8), "at", PQgetvalue(res, i, 9)));
        jm_cli_print_json(list);
        goto out;
    }
    for (int i = 0; i < n; i++)
        error_text(res, i, o->lines);
    if (n == 0)
        printf("no task of workflow %s has %s\n", o->args[0],
               o->all ? "an errored instance" : "failed in its latest instance");
out:
    PQclear(res);
    return code;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

int jm_cli_cmd_read(jm_cli_t *cli, int argc, char **argv)
{
    const read_cmd_t *c = find_read_cmd(argv[0]);
    read_opts_t o;
    char msg[256];
    int r = jm_cli_read_parse(argc, argv, &o, msg, sizeof(msg));
    if (r == 1) {
        read_usage(stdout, c);
        return JM_EXIT_OK;
    }
    if (r < 0) {
        fprintf(stderr, "jobmon %s: %s\n", argv[0], msg);
        read_usage(stderr, c);
        return JM_EXIT_USAGE;
    }
    o.json |= cli->json;
    jm_status_ctx_t *ctx = jm_status_ctx_new_config(cli->cfg);
    int code;
    if (strcmp(c->name, "status") == 0)
        code = cmd_status(ctx, &o);
    else if (strcmp(c->name, "tasks") == 0)
        code = cmd_tasks(ctx, &o);
    else if (strcmp(c->name, "task") == 0)
        code = cmd_task(ctx, &o);
    else if (strcmp(c->name, "deps") == 0)
        code = cmd_deps(ctx, &o);
    else if (strcmp(c->name, "logs") == 0)
        code = cmd_logs(ctx, &o);
    else if (strcmp(c->name, "usage") == 0)
        code = cmd_usage(ctx, &o);
    else if (strcmp(c->name, "errors") == 0)
        code = cmd_errors(ctx, &o);
    else
        code = cmd_events(ctx, &o);
    jm_status_ctx_destroy(ctx);
    return code;
}
