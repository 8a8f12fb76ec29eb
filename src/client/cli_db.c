/*
 * cli_db.c — `jobmon db migrate [--schema-dir DIR] [--dry-run] [--json]`: apply the
 * schemas/sql/NNN_*.sql files not yet recorded in schema_migrations, in order, each in its own
 * transaction together with the INSERT of its row — the same contract as scripts/migrate (either
 * tool may be used on the same database).  Runs as the writer role (postgres.conninfo).
 *
 * Deliberately not here: down-migrations, editing or re-running an applied file.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/cli_ops.h"
#include "client/cli_util.h"
#include "jobmon/jmtime.h"
#include "jobmon/pg.h"

static void db_usage(FILE *out)
{
    fprintf(out, "usage: jobmon db migrate [--schema-dir DIR] [--dry-run] [--json]\n"
                 "  apply the pending schemas/sql/NNN_*.sql migrations as the writer role\n"
                 "  (postgres.conninfo); DIR defaults to $JOBMON_MIGRATIONS_DIR, the checkout's\n"
                 "  schemas/sql beside the jobmon binary, or <prefix>/share/jobmon/sql\n");
}

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

char *jm_cli_default_schema_dir(void)
{
    static const char *const fmts[] = {"%s/schemas/sql", "%s/../schemas/sql",
                                       "%s/../share/jobmon/sql"};
    char *p = jm_cli_locate("JOBMON_MIGRATIONS_DIR", fmts, JM_ARRAY_LEN(fmts), is_dir, 0);
    return p ? p : jm_strdup("/usr/local/share/jobmon/sql");
}

static int migration_name(const struct dirent *d)
{
    const char *n = d->d_name;
    size_t len = strlen(n);
    return len > 8 && n[0] >= '0' && n[0] <= '9' && n[1] >= '0' && n[1] <= '9' && n[2] >= '0' &&
           n[2] <= '9' && n[3] == '_' && strcmp(n + len - 4, ".sql") == 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, len = 0;
    char *buf = jm_malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0)
            buf = jm_realloc(buf, cap *= 2);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* PQexec (multi-statement) with an error message; 0 ok. */
static int exec_simple(PGconn *c, const char *sql, char *msg, size_t len)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY;
    if (!ok)
        snprintf(msg, len, "%s", PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

int jm_cli_migrate_fresh(jm_pg_t *pg, const char *dir, char *msg, size_t len)
{
    struct dirent **files = NULL;
    PGconn *c = jm_pg_conn(pg);
    int n = scandir(dir, &files, migration_name, alphasort), rc = 0;
    if (n < 0) {
        snprintf(msg, len, "cannot read %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (n == 0) {
        snprintf(msg, len, "no NNN_*.sql migration in %s\n", dir);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        char *path = jm_asprintf("%s/%s", dir, files[i]->d_name);
        char *sql = read_file(path);
        if (!sql) {
            snprintf(msg, len, "cannot read %s: %s\n", path, strerror(errno));
            rc = -1;
        } else if (exec_simple(c, sql, msg, len) != 0) {
            char m2[1024];
            snprintf(m2, sizeof(m2), "%s: %s", files[i]->d_name, msg);
            snprintf(msg, len, "%s", m2);
            rc = -1;
        }
        free(sql);
        free(path);
    }
    for (int i = 0; i < n; i++)
        free(files[i]);
    free(files);
    return rc;
}

int jm_cli_cmd_db(jm_cli_t *cli, int argc, char **argv)
{
    enum { OPT_DIR = 256, OPT_DRY, OPT_JSON };
    static const struct option longopts[] = {
        {"schema-dir", required_argument, NULL, OPT_DIR},
        {"dry-run", no_argument, NULL, OPT_DRY},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir_opt = NULL;
    char *dir = NULL, msg[1024];
    int dry = 0, json = cli->json, opt, code = JM_EXIT_OK, n = 0;
    struct dirent **files = NULL;
    jm_pg_t *pg = NULL;
    PGresult *res = NULL;
    jm_err_t err;
    json_t *applied = json_array(), *pending = json_array();

    if (argc < 2 || strcmp(argv[1], "migrate") != 0) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            db_usage(stdout);
            goto out;
        }
        db_usage(stderr);
        code = JM_EXIT_USAGE;
        goto out;
    }
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_DIR: dir_opt = optarg; break;
        case OPT_DRY: dry = 1; break;
        case OPT_JSON: json = 1; break;
        case 'h': db_usage(stdout); goto out;
        default:
            fprintf(stderr, "jobmon db migrate: unknown option '%s'\n",
                    argv[optind] /* = (argv + 1)[optind - 1] */);
            db_usage(stderr);
            code = JM_EXIT_USAGE;
            goto out;
        }
    }
    if (optind < argc - 1) {
        fprintf(stderr, "jobmon db migrate: unexpected argument '%s'\n",
                argv[optind + 1] /* = (argv + 1)[optind] */);
        code = JM_EXIT_USAGE;
        goto out;
    }
    dir = dir_opt ? jm_strdup(dir_opt) : jm_cli_default_schema_dir();
    n = scandir(dir, &files, migration_name, alphasort);
    if (n < 0) {
        fprintf(stderr, "jobmon: db migrate: cannot read %s: %s\n", dir, strerror(errno));
        code = JM_EXIT_USAGE;
        n = 0;
        goto out;
    }
    pg =
        jm_pg_connect(jm_config_str(cli->cfg, "postgres.conninfo"), jm_time_mono_ms() + 5000, &err);
    if (!pg) {
        fprintf(stderr, "jobmon: PostgreSQL unreachable: %s\n", err.msg);
        code = JM_EXIT_UNAVAILABLE;
        goto out;
    }
    PGconn *c = jm_pg_conn(pg);
    if (exec_simple(c,
                    "SET client_min_messages = warning;"
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now())",
                    msg, sizeof(msg)) != 0) {
        fprintf(stderr, "jobmon: db migrate: %s", msg);
        code = JM_EXIT_FAILED;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        char version[256];
        snprintf(version, sizeof(version), "%.*s", (int)(strlen(files[i]->d_name) - 4),
                 files[i]->d_name);
        const char *params[1] = {version};
        PQclear(res);
        res = NULL;
        if (jm_pg_exec(pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params, &res,
                       &err) != JM_OK) {
            fprintf(stderr, "jobmon: db migrate: %s\n", err.msg);
            code =
                jm_rc_to_exit(err.rc) == JM_EXIT_UNAVAILABLE ? JM_EXIT_UNAVAILABLE : JM_EXIT_FAILED;
            goto out;
        }
        if (PQntuples(res) > 0)
            continue;
        if (dry) {
            json_array_append_new(pending, json_string(version));
            if (!json)
                printf("pending %s\n", version);
            continue;
        }
        char *path = jm_asprintf("%s/%s", dir, files[i]->d_name);
        char *sql = read_file(path);
        if (!sql) {
            fprintf(stderr, "jobmon: db migrate: cannot read %s: %s\n", path, strerror(errno));
            free(path);
            code = JM_EXIT_FAILED;
            goto out;
        }
        int ok = exec_simple(c, "BEGIN", msg, sizeof(msg)) == 0 &&
                 exec_simple(c, sql, msg, sizeof(msg)) == 0;
        free(sql);
        if (ok) {
            PQclear(res);
            res = NULL;
            ok = jm_pg_exec(pg, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, params,
                            NULL, &err) == JM_OK;
            if (!ok)
                snprintf(msg, sizeof(msg), "%s\n", err.msg);
        }
        if (ok)
            ok = exec_simple(c, "COMMIT", msg, sizeof(msg)) == 0;
        if (!ok) {
            char ignore[64];
            exec_simple(c, "ROLLBACK", ignore, sizeof(ignore));
            fprintf(stderr, "jobmon: db migrate: %s: %s", path, msg);
            free(path);
            code = JM_EXIT_FAILED;
            goto out;
        }
        free(path);
        json_array_append_new(applied, json_string(version));
        if (!json)
            printf("applied %s\n", version);
    }
    if (json)
        jm_cli_print_json(json_pack("{sO sO}", "applied", applied, "pending", pending));
    else if (json_array_size(applied) == 0 && json_array_size(pending) == 0)
        printf("schema up to date (%s)\n", dir);
out:
    for (int i = 0; i < n; i++)
        free(files[i]);
    free(files);
    PQclear(res);
    jm_pg_destroy(pg);
    free(dir);
    json_decref(applied);
    json_decref(pending);
    return code;
}
