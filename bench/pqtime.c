/*
 * bench/pqtime.c — an LD_PRELOAD shim that times every libpq statement round trip of the process
 * it is loaded into, per statement: PQexecPrepared by prepared name (with the SQL given to
 * PQprepare), PQexecParams / PQexec by the start of their SQL text.  At exit it writes one line
 * per statement, most total time first, to $PQTIME_OUT (default stderr).
 *
 * Used by bench/run_fsm_bench.sh (PROFILE=1) to see where jobmon-fsm's wall time goes without
 * touching the consumer or the shared PostgreSQL configuration (log_min_duration_statement and
 * pg_stat_statements need a superuser / a restart).  Round trip = client + network + server.
 * Not part of libjobmon; built by the script with `cc -shared -fPIC`.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STMTS 512
#define KEY_LEN   200

typedef struct {
    char key[KEY_LEN];
    char sql[KEY_LEN];
    uint64_t calls;
    double secs, max;
} stmt_t;

static stmt_t stmts[MAX_STMTS];
static size_t n_stmts;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static double t_start;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void squeeze(char *dst, const char *src, size_t n)
{
    size_t j = 0;
    int sp = 0;
    for (size_t i = 0; src && src[i] && j + 1 < n; i++) {
        char c = src[i];
        if (c == ' ' || c == '\n' || c == '\t') {
            if (!sp && j)
                dst[j++] = ' ';
            sp = 1;
            continue;
        }
        sp = 0;
        dst[j++] = c;
    }
    dst[j] = '\0';
}

static stmt_t *find(const char *key)
{
    for (size_t i = 0; i < n_stmts; i++)
        if (strcmp(stmts[i].key, key) == 0)
            return &stmts[i];
    if (n_stmts == MAX_STMTS)
        return NULL;
    stmt_t *s = &stmts[n_stmts++];
    snprintf(s->key, sizeof(s->key), "%s", key);
    return s;
}

static void account(const char *key, double dt)
{
    pthread_mutex_lock(&mu);
    stmt_t *s = find(key);
    if (s) {
        s->calls++;
        s->secs += dt;
        if (dt > s->max)
            s->max = dt;
    }
    pthread_mutex_unlock(&mu);
}

PGresult *PQprepare(PGconn *conn, const char *name, const char *query, int nParams,
                    const Oid *paramTypes)
{
    static PGresult *(*real)(PGconn *, const char *, const char *, int, const Oid *);
    if (!real)
        real = dlsym(RTLD_NEXT, "PQprepare");
    pthread_mutex_lock(&mu);
    stmt_t *s = find(name);
    if (s)
        squeeze(s->sql, query, sizeof(s->sql));
    pthread_mutex_unlock(&mu);
    return real(conn, name, query, nParams, paramTypes);
}

PGresult *PQexecPrepared(PGconn *conn, const char *name, int nParams,
                         const char *const *paramValues, const int *paramLengths,
                         const int *paramFormats, int resultFormat)
{
    static PGresult *(*real)(PGconn *, const char *, int, const char *const *, const int *,
                             const int *, int);
    if (!real)
        real = dlsym(RTLD_NEXT, "PQexecPrepared");
    double t0 = now();
    PGresult *r = real(conn, name, nParams, paramValues, paramLengths, paramFormats, resultFormat);
    account(name, now() - t0);
    return r;
}

PGresult *PQexecParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                       const char *const *paramValues, const int *paramLengths,
                       const int *paramFormats, int resultFormat)
{
    static PGresult *(*real)(PGconn *, const char *, int, const Oid *, const char *const *,
                             const int *, const int *, int);
    if (!real)
        real = dlsym(RTLD_NEXT, "PQexecParams");
    double t0 = now();
    PGresult *r = real(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,
                       resultFormat);
    char key[KEY_LEN];
    squeeze(key, command, 90);
    account(key, now() - t0);
    return r;
}

PGresult *PQexec(PGconn *conn, const char *query)
{
    static PGresult *(*real)(PGconn *, const char *);
    if (!real)
        real = dlsym(RTLD_NEXT, "PQexec");
    double t0 = now();
    PGresult *r = real(conn, query);
    char key[KEY_LEN];
    squeeze(key, query, 90);
    account(key, now() - t0);
    return r;
}

__attribute__((constructor)) static void pqtime_init(void)
{
    t_start = now();
}

static int by_secs(const void *a, const void *b)
{
    const stmt_t *x = a, *y = b;
    return x->secs < y->secs ? 1 : x->secs > y->secs ? -1 : 0;
}

__attribute__((destructor)) static void pqtime_report(void)
{
    const char *path = getenv("PQTIME_OUT");
    FILE *f = path ? fopen(path, "w") : stderr;
    if (!f)
        f = stderr;
    double total = 0, wall = now() - t_start;
    uint64_t calls = 0;
    qsort(stmts, n_stmts, sizeof(stmts[0]), by_secs);
    for (size_t i = 0; i < n_stmts; i++) {
        total += stmts[i].secs;
        calls += stmts[i].calls;
    }
    fprintf(f, "pqtime: process wall %.2f s, in libpq round trips %.2f s (%.0f%%), %llu calls\n",
            wall, total, wall > 0 ? 100.0 * total / wall : 0.0, (unsigned long long)calls);
    fprintf(f, "%8s %10s %9s %9s %6s  %s\n", "calls", "total s", "avg ms", "max ms", "share",
            "statement");
    for (size_t i = 0; i < n_stmts; i++) {
        const stmt_t *s = &stmts[i];
        if (!s->calls)
            continue;
        fprintf(f, "%8llu %10.3f %9.3f %9.2f %5.1f%%  %s%s%.120s\n", (unsigned long long)s->calls,
                s->secs, 1000.0 * s->secs / (double)s->calls, 1000.0 * s->max,
                total > 0 ? 100.0 * s->secs / total : 0.0, s->key, s->sql[0] ? ": " : "", s->sql);
    }
    if (f != stderr)
        fclose(f);
}
