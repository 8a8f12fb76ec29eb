/*
 * cli_audit.c — `jobmon audit [--json] [--keep] [--schema-dir DIR] WF`: check ARCHITECTURE
 * principle 4 for one workflow.  Creates a scratch schema, runs the migrations into it, replays
 * the workflow's event_log through the FSM's handlers (jm_replay_workflow), compares the rebuilt
 * rows with the live ones (jm_replay_diff) and drops the scratch schema.  Prints "identical"
 * (exit 0) or the tables that differ and the events whose outcome changed (exit 1).
 *
 * It needs the writer role (postgres.conninfo) because it creates and drops a schema; it never
 * writes the live schema.  Deliberately not here: repairing anything, or replaying into the live
 * schema.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cli_ops.h"
#include "client/cli_util.h"
#include "common/prune_sql.h"
#include "consumer/replay.h"
#include "jobmon/jmtime.h"
#include "jobmon/pg.h"

#define AUDIT_CONNECT_MS 5000

static void audit_usage(FILE *out)
{
    fprintf(out,
            "usage: jobmon audit [--json] [--keep] [--schema-dir DIR] WF\n"
            "  replay workflow WF's event_log into a fresh scratch schema (migrations from DIR,\n"
            "  default as for `jobmon db migrate`) and compare the rebuilt rows with the live\n"
            "  ones: prints \"identical\" (exit 0) or the differences (exit 1).\n"
            "  Connects as the WRITER role (postgres.conninfo): it creates and drops the scratch\n"
            "  schema jm_audit_<WF>_<pid>; the live schema is only read.\n"
            "  --keep   do not drop the scratch schema (its name is printed)\n");
}

/* PQexec of a statement without parameters; 0 ok, else -1 with a message. */
static int exec_simple(jm_pg_t *pg, const char *sql, char *msg, size_t len)
{
    PGresult *r = PQexec(jm_pg_conn(pg), sql);
    ExecStatusType s = PQresultStatus(r);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(msg, len, "%s", PQerrorMessage(jm_pg_conn(pg)));
    PQclear(r);
    return ok ? 0 : -1;
}

/* The first schema of pg's search_path (the live one); a new string or NULL. */
static char *current_schema(jm_pg_t *pg, jm_err_t *err)
{
    PGresult *r = NULL;
    char *s = NULL;
    if (jm_pg_exec(pg, "SELECT current_schema()", 0, NULL, &r, err) == JM_OK &&
        !PQgetisnull(r, 0, 0))
        s = jm_strdup(PQgetvalue(r, 0, 0));
    else if (r)
        jm_err_set(err, JM_ERR_INVALID, "no current schema (search_path)");
    PQclear(r);
    return s;
}

/* *state: 0 no such workflow (`pruned` then says when it was pruned, or is ""), 1 it exists,
 * 2 it is being pruned. */
static int wf_state(jm_pg_t *pg, int64_t wf, int *state, char *pruned, size_t len, jm_err_t *err)
{
    static const char sql[] =
        "SELECT (SELECT CASE WHEN pruning_at IS NULL THEN 1 ELSE 2 END FROM workflow"
        "         WHERE id = $1::bigint),"
        " (" JM_SQL_WF_PRUNED_AT ")";
    PGresult *r = NULL;
    jm_rc_t rc = jm_pg_exec_id(pg, sql, wf, &r, err);
    if (rc == JM_OK) {
        *state = PQgetisnull(r, 0, 0) ? 0 : atoi(PQgetvalue(r, 0, 0));
        snprintf(pruned, len, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return rc;
}

static void print_result(int json, int64_t wf, const jm_replay_stats_t *st, int n_diff,
                         const char *diff, const char *kept)
{
    int identical = n_diff == 0 && st->outcome_mismatch == 0;
    if (json) {
        json_t *tables = json_array();
        char *copy = jm_strdup(diff), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(tables, json_string(t));
        free(copy);
        json_t *o = json_pack(
            "{sI sb sI sI sI sI sI so so}", "workflow_id", (json_int_t)wf, "identical", identical,
            "events", (json_int_t)st->events, "applied", (json_int_t)st->applied, "ignored",
            (json_int_t)st->ignored, "rejected", (json_int_t)st->rejected, "outcome_mismatches",
            (json_int_t)st->outcome_mismatch, "differences", tables, "first_mismatch",
            st->outcome_mismatch ? json_string(st->first_mismatch) : json_null());
        if (kept)
            json_object_set_new(o, "scratch_schema", json_string(kept));
        jm_cli_print_json(o);
        return;
    }
    printf("workflow %" PRId64 ": replayed %zu events (applied %zu, ignored %zu, rejected %zu)\n",
           wf, st->events, st->applied, st->ignored, st->rejected);
    if (kept)
        printf("scratch schema kept: %s\n", kept);
    if (identical) {
        printf("identical\n");
        return;
    }
    if (n_diff)
        printf("differences in: %s\n", diff);
    if (st->outcome_mismatch)
        printf("outcome mismatches: %zu (first: %s)\n", st->outcome_mismatch, st->first_mismatch);
}

int jm_cli_cmd_audit(jm_cli_t *cli, int argc, char **argv)
{
    enum { OPT_JSON = 256, OPT_KEEP, OPT_DIR };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"keep", no_argument, NULL, OPT_KEEP},
        {"schema-dir", required_argument, NULL, OPT_DIR},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = cli->json, keep = 0, opt, code = JM_EXIT_OK, created = 0, state = 0, n_diff = 0;
    const char *dir_opt = NULL;
    char *dir = NULL, *live = NULL, *scratch_q = NULL, schema[96], sql[512], msg[2048],
         diff[512] = "", pruned[128] = "";
    int64_t wf = 0;
    jm_pg_t *src = NULL, *dst = NULL;
    jm_replay_stats_t st;
    jm_err_t err;

    memset(&st, 0, sizeof(st));
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_JSON: json = 1; break;
        case OPT_KEEP: keep = 1; break;
        case OPT_DIR: dir_opt = optarg; break;
        case 'h': audit_usage(stdout); return JM_EXIT_OK;
        default:
            fprintf(stderr, "jobmon audit: unknown option '%s'\n", argv[optind - 1]);
            audit_usage(stderr);
            return JM_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || jm_cli_parse_id(argv[optind], &wf) != 0) {
        fprintf(stderr, "jobmon audit: expected one workflow id\n");
        audit_usage(stderr);
        return JM_EXIT_USAGE;
    }
    const char *ci = jm_config_str(cli->cfg, "postgres.conninfo");
    src = jm_pg_connect(ci, jm_time_mono_ms() + AUDIT_CONNECT_MS, &err);
    if (src)
        dst = jm_pg_connect(ci, jm_time_mono_ms() + AUDIT_CONNECT_MS, &err);
    if (!src || !dst) {
        fprintf(stderr, "jobmon: PostgreSQL (writer, postgres.conninfo) unreachable: %s\n",
                err.msg);
        code = JM_EXIT_UNAVAILABLE;
        goto out;
    }
    if (!(live = current_schema(src, &err)) ||
        wf_state(src, wf, &state, pruned, sizeof(pruned), &err) != JM_OK) {
        fprintf(stderr, "jobmon: audit: %s\n", err.msg);
        code = jm_rc_to_exit(err.rc);
        goto out;
    }
    if (state != 1) {
        fprintf(stderr, "jobmon: workflow %" PRId64 " %s%s\n", wf,
                state     ? "is being pruned"
                : *pruned ? "was pruned "
                          : "not found",
                state ? "" : pruned);
        code = JM_EXIT_USAGE;
        goto out;
    }
    snprintf(schema, sizeof(schema), "jm_audit_%" PRId64 "_%d", wf, (int)getpid());
    scratch_q = PQescapeIdentifier(jm_pg_conn(dst), schema, strlen(schema));
    JM_ASSERT(scratch_q);
    snprintf(sql, sizeof(sql),
             "SET client_min_messages = warning; CREATE SCHEMA %s; SET search_path = %s", scratch_q,
             scratch_q);
    if (exec_simple(dst, sql, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "jobmon: audit: cannot create the scratch schema (writer role needed): %s",
                msg);
        code = JM_EXIT_FAILED;
        goto out;
    }
    created = 1;
    dir = dir_opt ? jm_strdup(dir_opt) : jm_cli_default_schema_dir();
    if (jm_cli_migrate_fresh(dst, dir, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "jobmon: audit: migrating the scratch schema: %s", msg);
        code = JM_EXIT_FAILED;
        goto out;
    }
    if (jm_replay_workflow(src, dst, wf, &st, &err) != JM_OK) {
        fprintf(stderr, "jobmon: audit: replay: %s\n", err.msg);
        code = jm_rc_to_exit(err.rc) == JM_EXIT_UNAVAILABLE ? JM_EXIT_UNAVAILABLE : JM_EXIT_FAILED;
        goto out;
    }
    if (jm_replay_diff(src, live, schema, wf, &n_diff, diff, sizeof(diff), &err) != JM_OK) {
        fprintf(stderr, "jobmon: audit: compare: %s\n", err.msg);
        code = jm_rc_to_exit(err.rc) == JM_EXIT_UNAVAILABLE ? JM_EXIT_UNAVAILABLE : JM_EXIT_FAILED;
        goto out;
    }
    print_result(json, wf, &st, n_diff, diff, keep ? schema : NULL);
    code = n_diff == 0 && st.outcome_mismatch == 0 ? JM_EXIT_OK : JM_EXIT_FAILED;
out:
    jm_pg_destroy(dst);
    if (created && !keep && src) {
        snprintf(sql, sizeof(sql), "SET client_min_messages = warning; DROP SCHEMA %s CASCADE",
                 scratch_q);
        if (exec_simple(src, sql, msg, sizeof(msg)) != 0)
            fprintf(stderr, "jobmon: audit: could not drop scratch schema %s: %s", schema, msg);
    }
    PQfreemem(scratch_q);
    jm_pg_destroy(src);
    free(live);
    free(dir);
    return code;
}
