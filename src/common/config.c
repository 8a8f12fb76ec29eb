/*
 * config.c — the option table of every jobmon program and its four layers (default, file, env,
 * code).  libconfuse parses the file (syntax, unknown keys and types, with line numbers); this
 * module parses text from the environment and from code with the same rules, range-checks both,
 * and answers "which value, from where".
 *
 * It does not act on the values (the log level, Kafka properties, ... are applied by the
 * programs), does not watch the file for changes, and does not write files.
 */
#include <confuse.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "jobmon/config.h"
#include "jobmon/log.h"

/* Option flags. */
#define OPT_CONNINFO 0x1u /* a libpq conninfo: mask password=... and URI passwords */
#define OPT_PROPS    0x2u /* "key=value" items: mask values of keys naming a password/secret */

#define NO_RANGE 1, 0 /* min > max: unchecked */

typedef struct {
    const char *key; /* "section.key" */
    jm_config_type_t type;
    const char *def;     /* default, in the text syntax of jm_config_set() */
    double min, max;     /* inclusive range of INT/FLOAT values; unchecked when min > max */
    const char *choices; /* "a|b|c": allowed STR values (case-insensitive), or NULL */
    unsigned flags;
    const char *help;
} opt_t;

/* clang-format off */
static const opt_t opts[] = {
    {"kafka.brokers", JM_CONFIG_STR, "localhost:9092", NO_RANGE, NULL, 0,
     "bootstrap.servers: comma-separated host:port list"},
    {"kafka.topic", JM_CONFIG_STR, "jobmon.events", NO_RANGE, NULL, 0,
     "topic every event is produced to"},
    {"kafka.dlq_topic", JM_CONFIG_STR, "jobmon.dlq", NO_RANGE, NULL, 0,
     "dead-letter topic for rejected events"},
    {"kafka.properties", JM_CONFIG_LIST, "", NO_RANGE, NULL, OPT_PROPS,
     "\"key=value\" librdkafka properties passed to rd_kafka_conf_set()"},
    {"postgres.conninfo", JM_CONFIG_STR, "", NO_RANGE, NULL, OPT_CONNINFO,
     "libpq conninfo of the writer role (jobmon-fsm); empty = libpq defaults (PG* env)"},
    {"postgres.reader_conninfo", JM_CONFIG_STR, "", NO_RANGE, NULL, OPT_CONNINFO,
     "libpq conninfo of the read-only role (clients, distributors); empty = conninfo"},
    {"redis.host", JM_CONFIG_STR, "127.0.0.1", NO_RANGE, NULL, 0,
     "Redis host"},
    {"redis.port", JM_CONFIG_INT, "6379", 1, 65535, NULL, 0,
     "Redis TCP port"},
    {"heartbeat.workflow_run_interval", JM_CONFIG_INT, "30", 1, 86400, NULL, 0,
     "workflow run heartbeat and distributor cycle, seconds"},
    {"heartbeat.task_instance_interval", JM_CONFIG_INT, "90", 1, 86400, NULL, 0,
     "worker heartbeat, seconds"},
    {"heartbeat.report_by_buffer", JM_CONFIG_FLOAT, "3.1", 1.0, 100.0, NULL, 0,
     "deadline = now + interval * report_by_buffer"},
    {"worker.command_interrupt_timeout", JM_CONFIG_INT, "10", 0, 86400, NULL, 0,
     "grace between SIGINT and SIGKILL of a task command, seconds"},
    {"worker.spool_dir", JM_CONFIG_STR, "", NO_RANGE, NULL, 0,
     "where a worker spools events while Kafka is unreachable; empty = none"},
    {"worker.kafka_retry_timeout", JM_CONFIG_INT, "300", 0, 86400, NULL, 0,
     "how long a worker retries Kafka before giving up, seconds"},
    {"worker.local_report", JM_CONFIG_BOOL, "true", NO_RANGE, NULL, 0,
     "report through the distributor's channel when it offers one (--report-fd, or"
     " JOBMON_REPORT_ADDR over TCP)"},
    {"worker.report_connect_timeout_ms", JM_CONFIG_INT, "1000", 1, 60000, NULL, 0,
     "how long a worker tries to connect to its distributor's TCP report channel, ms"},
    {"distributor.worker_pool", JM_CONFIG_BOOL, "true", NO_RANGE, NULL, 0,
     "multiprocess: long-lived workers that run instances one after another"},
    {"distributor.report_listen", JM_CONFIG_STR, "", NO_RANGE, NULL, 0,
     "TCP report channel of plugins whose workers run on other hosts (slurm): HOST[:PORT] to"
     " listen on; empty = the address of this host's name (else 127.0.0.1), ephemeral port;"
     " off = none (workers publish to Kafka)"},
    {"distributor.report_max_connections", JM_CONFIG_INT, "1000", 1, 1000000, NULL, 0,
     "most workers connected to a distributor's TCP report channel at once"},
    {"distributor.reconcile_interval", JM_CONFIG_INT, "5", 1, 86400, NULL, 0,
     "how often a distributor reconciles its work list with the cluster, seconds"},
    {"fsm.consumers", JM_CONFIG_INT, "2", 1, 1024, NULL, 0,
     "consumer threads per jobmon-fsm process"},
    {"fsm.batch_max", JM_CONFIG_INT, "2000", 1, 1000000, NULL, 0,
     "most events applied in one PostgreSQL transaction"},
    {"fsm.batch_max_kbytes", JM_CONFIG_INT, "1024", 64, 1048576, NULL, 0,
     "most message bytes applied in one PostgreSQL transaction, KiB (bounds memory; bind "
     "chunks count twice)"},
    {"fsm.batch_linger_ms", JM_CONFIG_INT, "5", 0, 1000, NULL, 0,
     "after a batch's first event, wait up to this long for more (fewer, larger transactions)"},
    {"fsm.decode_ahead", JM_CONFIG_BOOL, "true", NO_RANGE, NULL, 0,
     "decode the next batch on a second thread while a transaction runs"},
    {"fsm.group_id", JM_CONFIG_STR, "jobmon-fsm", NO_RANGE, NULL, 0,
     "Kafka consumer group of jobmon-fsm"},
    {"reaper.poll_interval", JM_CONFIG_INT, "10", 1, 86400, NULL, 0,
     "reaper deadline scan, seconds"},
    {"reaper.retention_days", JM_CONFIG_INT, "0", 0, 36500, NULL, 0,
     "automatic retention: the reaper prunes finished workflows this many days after their last"
     " status change, with their logs (as jobmon prune); 0 = keep everything"},
    {"reaper.retention_rows", JM_CONFIG_INT, "50000", 1, 1000000, NULL, 0,
     "automatic retention: rows deleted per workflow.prune event"},
    {"client.max_concurrently_running", JM_CONFIG_INT, "10000", 0, 100000000, NULL, 0,
     "default workflow concurrency limit (0 pauses)"},
    {"client.max_attempts", JM_CONFIG_INT, "3", 1, 1000, NULL, 0,
     "default attempts per task"},
    {"client.fail_fast", JM_CONFIG_BOOL, "false", NO_RANGE, NULL, 0,
     "default of run --fail-fast: stop a run at the first fatal task"},
    {"client.chunk_size", JM_CONFIG_INT, "500", 1, 100000, NULL, 0,
     "tasks per bind event"},
    {"log.level", JM_CONFIG_STR, "info", NO_RANGE, "error|warn|info|debug", 0,
     "lowest level logged"},
};
/* clang-format on */
#define N_OPTS JM_ARRAY_LEN(opts)

static const char *const source_names[] = {"default", "file", "env", "code"};
_Static_assert(JM_ARRAY_LEN(source_names) == JM_CONFIG_SRC__CNT, "source names");

static const char *const type_names[] = {"string", "int", "float", "bool", "list"};
_Static_assert(JM_ARRAY_LEN(type_names) == JM_CONFIG_TYPE__CNT, "type names");

/* One value of one key in one layer. */
typedef struct {
    int set;
    char *s;       /* STR, owned */
    int64_t i;     /* INT */
    double f;      /* FLOAT */
    int b;         /* BOOL */
    char **items;  /* LIST, NULL-terminated, owned */
    size_t nitems; /* LIST */
    char *origin;  /* file path or env variable, owned, may be NULL */
} layer_t;

struct jm_config_s {
    layer_t layer[N_OPTS][JM_CONFIG_SRC__CNT];
    char *file; /* the file the last load read, or NULL */
};

/* ---- the table ------------------------------------------------------------------------------ */

static const opt_t *opt_find(const char *key, size_t *idx)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        if (strcmp(opts[i].key, key) == 0) {
            if (idx)
                *idx = i;
            return &opts[i];
        }
    }
    return NULL;
}

static size_t opt_index(const char *key)
{
    size_t i = 0;
    const opt_t *o = opt_find(key, &i);
    if (!o)
        jm_log(JM_LOG_ERROR, "config", "unknown configuration key '%s'", key);
    JM_ASSERT(o != NULL);
    return i;
}

/* Length of the section part of "section.key". */
static size_t opt_seclen(const opt_t *o)
{
    const char *dot = strchr(o->key, '.');
    JM_ASSERT(dot != NULL);
    return (size_t)(dot - o->key);
}

/* JOBMON_<SECTION>_<KEY>: new string, caller frees. */
static char *opt_env_name(const opt_t *o)
{
    char *name = jm_asprintf("JOBMON_%s", o->key);
    for (char *p = name + 7; *p; p++)
        *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    return name;
}

size_t jm_config_count(void)
{
    return N_OPTS;
}

const char *jm_config_key_at(size_t i)
{
    JM_ASSERT(i < N_OPTS);
    return opts[i].key;
}

jm_config_type_t jm_config_type(const char *key)
{
    return opts[opt_index(key)].type;
}

const char *jm_config_help(const char *key)
{
    return opts[opt_index(key)].help;
}

const char *jm_config_type_name(jm_config_type_t type)
{
    return (unsigned)type < JM_CONFIG_TYPE__CNT ? type_names[type] : "?";
}

const char *jm_config_source_name(jm_config_source_t src)
{
    return (unsigned)src < JM_CONFIG_SRC__CNT ? source_names[src] : "?";
}

/* ---- values --------------------------------------------------------------------------------- */

static void layer_clear(layer_t *l)
{
    free(l->s);
    if (l->items) {
        for (size_t k = 0; k < l->nitems; k++)
            free(l->items[k]);
        free(l->items);
    }
    free(l->origin);
    memset(l, 0, sizeof(*l));
}

static void layer_add_item(layer_t *l, const char *item, size_t len)
{
    l->items = jm_realloc(l->items, (l->nitems + 2) * sizeof(*l->items));
    l->items[l->nitems++] = jm_strndup(item, len);
    l->items[l->nitems] = NULL;
}

/* Range and choice checks shared by every layer.  `why` receives the reason on failure. */
static jm_rc_t opt_check(const opt_t *o, const layer_t *l, char *why, size_t whylen)
{
    if (o->min <= o->max) {
        double v = o->type == JM_CONFIG_INT ? (double)l->i : l->f;
        if (v < o->min || v > o->max) {
            snprintf(why, whylen, "%g is out of range [%g, %g]", v, o->min, o->max);
            return JM_ERR_INVALID;
        }
    }
    if (o->choices) {
        size_t n = strlen(l->s);
        for (const char *c = o->choices; *c;) {
            size_t clen = strcspn(c, "|");
            if (clen == n && strncasecmp(c, l->s, n) == 0)
                return JM_OK;
            c += clen + (c[clen] == '|');
        }
        snprintf(why, whylen, "'%s' is not one of %s", l->s, o->choices);
        return JM_ERR_INVALID;
    }
    return JM_OK;
}

/* Parse the text form of a value of type o->type into a cleared `l` (set on success). */
static jm_rc_t opt_parse(const opt_t *o, const char *text, layer_t *l, char *why, size_t whylen)
{
    char *end = NULL;
    jm_rc_t rc = JM_OK;

    errno = 0;
    switch (o->type) {
    case JM_CONFIG_STR: l->s = jm_strdup(text); break;
    case JM_CONFIG_INT: {
        long long v = strtoll(text, &end, 10);
        if (end == text || *end != '\0' || errno == ERANGE) {
            snprintf(why, whylen, "'%s' is not an integer", text);
            rc = JM_ERR_INVALID;
        }
        l->i = v;
        break;
    }
    case JM_CONFIG_FLOAT:
        l->f = strtod(text, &end);
        if (end == text || *end != '\0' || errno == ERANGE || !isfinite(l->f)) {
            snprintf(why, whylen, "'%s' is not a number", text);
            rc = JM_ERR_INVALID;
        }
        break;
    case JM_CONFIG_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};
        rc = JM_ERR_INVALID;
        for (size_t k = 0; k < JM_ARRAY_LEN(yes); k++) {
            if (strcasecmp(text, yes[k]) == 0) {
                l->b = 1;
                rc = JM_OK;
            } else if (strcasecmp(text, no[k]) == 0) {
                l->b = 0;
                rc = JM_OK;
            }
        }
        if (rc != JM_OK)
            snprintf(why, whylen, "'%s' is not a boolean (true/false/yes/no/on/off/1/0)", text);
        break;
    }
    case JM_CONFIG_LIST:
        /* Comma-separated, items trimmed, empty items dropped: "" is the empty list. */
        l->items = jm_calloc(1, sizeof(*l->items));
        for (const char *p = text; *p;) {
            size_t len = strcspn(p, ",");
            const char *b = p, *e = p + len;
            while (b < e && isspace((unsigned char)*b))
                b++;
            while (e > b && isspace((unsigned char)e[-1]))
                e--;
            if (e > b)
                layer_add_item(l, b, (size_t)(e - b));
            p += len + (p[len] == ',');
        }
        break;
    default: JM_ASSERT(0);
    }
    if (rc == JM_OK)
        rc = opt_check(o, l, why, whylen);
    if (rc == JM_OK)
        l->set = 1;
    else
        layer_clear(l);
    return rc;
}

/* The highest layer of key i that is set (the default always is). */
static const layer_t *effective(const jm_config_t *cfg, size_t i, jm_config_source_t *src)
{
    for (int s = JM_CONFIG_SRC__CNT - 1; s >= 0; s--) {
        if (cfg->layer[i][s].set) {
            if (src)
                *src = (jm_config_source_t)s;
            return &cfg->layer[i][s];
        }
    }
    JM_ASSERT(0);
    return NULL;
}

static const layer_t *effective_typed(const jm_config_t *cfg, const char *key,
                                      jm_config_type_t type)
{
    size_t i = opt_index(key);
    JM_ASSERT(opts[i].type == type);
    return effective(cfg, i, NULL);
}

jm_config_t *jm_config_new(void)
{
    jm_config_t *cfg = jm_calloc(1, sizeof(*cfg));
    char why[256];
    for (size_t i = 0; i < N_OPTS; i++) {
        jm_rc_t rc = opt_parse(&opts[i], opts[i].def, &cfg->layer[i][JM_CONFIG_SRC_DEFAULT], why,
                               sizeof(why));
        if (rc != JM_OK)
            jm_log(JM_LOG_ERROR, "config", "bad default of %s: %s", opts[i].key, why);
        JM_ASSERT(rc == JM_OK);
    }
    return cfg;
}

static void clear_layers(jm_config_t *cfg, jm_config_source_t src)
{
    for (size_t i = 0; i < N_OPTS; i++)
        layer_clear(&cfg->layer[i][src]);
}

void jm_config_destroy(jm_config_t *cfg)
{
    if (!cfg)
        return;
    for (int s = 0; s < JM_CONFIG_SRC__CNT; s++)
        clear_layers(cfg, (jm_config_source_t)s);
    free(cfg->file);
    free(cfg);
}

jm_rc_t jm_config_set(jm_config_t *cfg, const char *key, const char *value, jm_err_t *err)
{
    size_t i = 0;
    const opt_t *o = opt_find(key, &i);
    layer_t l = {0};
    char why[256];

    if (!o)
        return jm_err_set(err, JM_ERR_INVALID, "unknown configuration key '%s'", key);
    if (opt_parse(o, value, &l, why, sizeof(why)) != JM_OK)
        return jm_err_set(err, JM_ERR_INVALID, "%s: %s", key, why);
    layer_clear(&cfg->layer[i][JM_CONFIG_SRC_CODE]);
    cfg->layer[i][JM_CONFIG_SRC_CODE] = l;
    return JM_OK;
}

jm_rc_t jm_config_set_assignment(jm_config_t *cfg, const char *assignment, jm_err_t *err)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return jm_err_set(err, JM_ERR_INVALID, "expected section.key=value, got '%s'", assignment);
    char *key = jm_strndup(assignment, (size_t)(eq - assignment));
    jm_rc_t rc = jm_config_set(cfg, key, eq + 1, err);
    free(key);
    return rc;
}

const char *jm_config_str(const jm_config_t *cfg, const char *key)
{
    return effective_typed(cfg, key, JM_CONFIG_STR)->s;
}

int64_t jm_config_int(const jm_config_t *cfg, const char *key)
{
    return effective_typed(cfg, key, JM_CONFIG_INT)->i;
}

double jm_config_float(const jm_config_t *cfg, const char *key)
{
    return effective_typed(cfg, key, JM_CONFIG_FLOAT)->f;
}

int jm_config_bool(const jm_config_t *cfg, const char *key)
{
    return effective_typed(cfg, key, JM_CONFIG_BOOL)->b;
}

const char *const *jm_config_list(const jm_config_t *cfg, const char *key, size_t *n)
{
    const layer_t *l = effective_typed(cfg, key, JM_CONFIG_LIST);
    if (n)
        *n = l->nitems;
    return (const char *const *)l->items;
}

jm_config_source_t jm_config_source(const jm_config_t *cfg, const char *key)
{
    jm_config_source_t src = JM_CONFIG_SRC_DEFAULT;
    effective(cfg, opt_index(key), &src);
    return src;
}

const char *jm_config_origin(const jm_config_t *cfg, const char *key)
{
    return effective(cfg, opt_index(key), NULL)->origin;
}

const char *jm_config_file(const jm_config_t *cfg)
{
    return cfg->file;
}

/* ---- the file ------------------------------------------------------------------------------- */

/* libconfuse reports through a callback without user data; a parse runs on one thread. */
static _Thread_local char parse_error[JM_ERR_MSG_MAX];
static _Thread_local const char *parse_path = "";

static void on_parse_error(cfg_t *c, const char *fmt, va_list ap)
{
    char msg[256];
    if (parse_error[0])
        return; /* keep the first */
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* sections carry the line but not the file name */
    snprintf(parse_error, sizeof(parse_error), "%s:%d: %s", parse_path, c ? c->line : 0, msg);
}

static const opt_t *opt_find_in_section(const char *section, const char *name)
{
    size_t slen = strlen(section);
    for (size_t i = 0; i < N_OPTS; i++)
        if (opt_seclen(&opts[i]) == slen && strncmp(opts[i].key, section, slen) == 0 &&
            strcmp(opts[i].key + slen + 1, name) == 0)
            return &opts[i];
    return NULL;
}

/* Read value(s) of a parsed libconfuse option into a cleared layer, with our checks. */
static jm_rc_t read_file_value(const opt_t *o, cfg_opt_t *co, layer_t *l, char *why, size_t wl)
{
    jm_rc_t rc = JM_OK;
    switch (o->type) {
    case JM_CONFIG_STR: l->s = jm_strdup(cfg_opt_getnstr(co, 0)); break;
    case JM_CONFIG_INT: l->i = cfg_opt_getnint(co, 0); break;
    case JM_CONFIG_FLOAT: l->f = cfg_opt_getnfloat(co, 0); break;
    case JM_CONFIG_BOOL: l->b = cfg_opt_getnbool(co, 0) ? 1 : 0; break;
    case JM_CONFIG_LIST:
        l->items = jm_calloc(1, sizeof(*l->items));
        for (unsigned k = 0; k < cfg_opt_size(co); k++) {
            const char *item = cfg_opt_getnstr(co, k);
            layer_add_item(l, item, strlen(item));
        }
        break;
    default: JM_ASSERT(0);
    }
    rc = opt_check(o, l, why, wl);
    if (rc == JM_OK)
        l->set = 1;
    else
        layer_clear(l);
    return rc;
}

/* libconfuse validation callback: runs right after a value is parsed, so errors carry the line. */
static int validate_cb(cfg_t *sec, cfg_opt_t *co)
{
    const opt_t *o = opt_find_in_section(sec->name, co->name);
    layer_t l = {0};
    char why[256];
    if (!o)
        return 0;
    if (read_file_value(o, co, &l, why, sizeof(why)) != JM_OK) {
        cfg_error(sec, "%s: %s", o->key, why);
        return -1;
    }
    layer_clear(&l);
    return 0;
}

static cfg_opt_t opt_to_confuse(const opt_t *o)
{
    const char *name = o->key + opt_seclen(o) + 1;
    cfg_opt_t co;
    switch (o->type) {
    case JM_CONFIG_STR: co = (cfg_opt_t)CFG_STR(name, NULL, CFGF_NODEFAULT); break;
    case JM_CONFIG_INT: co = (cfg_opt_t)CFG_INT(name, 0, CFGF_NODEFAULT); break;
    case JM_CONFIG_FLOAT: co = (cfg_opt_t)CFG_FLOAT(name, 0, CFGF_NODEFAULT); break;
    case JM_CONFIG_BOOL: co = (cfg_opt_t)CFG_BOOL(name, cfg_false, CFGF_NODEFAULT); break;
    case JM_CONFIG_LIST: co = (cfg_opt_t)CFG_STR_LIST(name, NULL, CFGF_NODEFAULT); break;
    default: JM_ASSERT(0);
    }
    co.validcb = validate_cb;
    return co;
}

/* libconfuse option arrays built from the table; all owned by the returned root array, which
 * free_confuse_opts() releases. */
static cfg_opt_t *build_confuse_opts(void)
{
    cfg_opt_t *root = jm_calloc(N_OPTS + 1, sizeof(*root));
    size_t nsec = 0;
    for (size_t i = 0; i < N_OPTS; i++) {
        size_t slen = opt_seclen(&opts[i]);
        int seen = 0;
        for (size_t s = 0; s < nsec && !seen; s++)
            seen = strlen(root[s].name) == slen && strncmp(root[s].name, opts[i].key, slen) == 0;
        if (seen)
            continue;
        cfg_opt_t *sub = jm_calloc(N_OPTS + 1, sizeof(*sub));
        size_t nsub = 0;
        for (size_t j = i; j < N_OPTS; j++)
            if (opt_seclen(&opts[j]) == slen && strncmp(opts[j].key, opts[i].key, slen) == 0)
                sub[nsub++] = opt_to_confuse(&opts[j]);
        sub[nsub] = (cfg_opt_t)CFG_END();
        root[nsec++] = (cfg_opt_t)CFG_SEC(jm_strndup(opts[i].key, slen), sub, CFGF_NONE);
    }
    root[nsec] = (cfg_opt_t)CFG_END();
    return root;
}

static void free_confuse_opts(cfg_opt_t *root)
{
    for (cfg_opt_t *s = root; s->name; s++) {
        free((char *)s->name);
        free(s->subopts);
    }
    free(root);
}

static jm_rc_t load_file(jm_config_t *cfg, const char *path, jm_err_t *err)
{
    cfg_opt_t *root_opts = build_confuse_opts();
    cfg_t *c = cfg_init(root_opts, CFGF_NONE);
    jm_rc_t rc = JM_OK;
    char why[256];

    cfg_set_error_function(c, on_parse_error);
    parse_error[0] = '\0';
    parse_path = path;
    errno = 0;
    switch (cfg_parse(c, path)) {
    case CFG_SUCCESS: break;
    case CFG_FILE_ERROR:
        rc = jm_err_set(err, JM_ERR_IO, "cannot read config file %s: %s", path,
                        strerror(errno ? errno : EIO));
        goto out;
    default:
        rc = jm_err_set(err, JM_ERR_INVALID, "%s",
                        parse_error[0] ? parse_error : "config file parse error");
        goto out;
    }
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_t *o = &opts[i];
        char *secname = jm_strndup(o->key, opt_seclen(o));
        cfg_t *sec = cfg_getsec(c, secname);
        cfg_opt_t *co = sec ? cfg_getopt(sec, o->key + strlen(secname) + 1) : NULL;
        free(secname);
        if (!co || (cfg_opt_size(co) == 0 && !(co->flags & CFGF_MODIFIED)))
            continue;
        layer_t *l = &cfg->layer[i][JM_CONFIG_SRC_FILE];
        if (read_file_value(o, co, l, why, sizeof(why)) != JM_OK) {
            /* validate_cb already checked; kept for values libconfuse did not call it for */
            rc = jm_err_set(err, JM_ERR_INVALID, "%s: %s: %s", path, o->key, why);
            goto out;
        }
        l->origin = jm_strdup(path);
    }
out:
    parse_path = "";
    cfg_free(c);
    free_confuse_opts(root_opts);
    return rc;
}

/* Which file to read: see config.h.  *path is NULL when there is none, else a new string. */
static jm_rc_t choose_file(const char *explicit_path, char **path, jm_err_t *err)
{
    struct stat st;
    const char *env = getenv("JOBMON_CONFIG");
    const char *home = getenv("HOME");

    *path = NULL;
    if (explicit_path || (env && *env)) {
        const char *p = explicit_path ? explicit_path : env;
        if (stat(p, &st) != 0)
            return jm_err_set(err, errno == ENOENT ? JM_ERR_NOT_FOUND : JM_ERR_IO,
                              "config file %s%s: %s", p, explicit_path ? "" : " ($JOBMON_CONFIG)",
                              strerror(errno));
        if (S_ISDIR(st.st_mode)) /* libconfuse's scanner exit()s on read errors */
            return jm_err_set(err, JM_ERR_INVALID, "config file %s is a directory", p);
        *path = jm_strdup(p);
        return JM_OK;
    }
    if (home && *home) {
        char *p = jm_asprintf("%s/.config/jobmon/jobmon.conf", home);
        if (stat(p, &st) == 0 && !S_ISDIR(st.st_mode)) {
            *path = p;
            return JM_OK;
        }
        free(p);
    }
    if (stat("/etc/jobmon/jobmon.conf", &st) == 0 && !S_ISDIR(st.st_mode))
        *path = jm_strdup("/etc/jobmon/jobmon.conf");
    return JM_OK;
}

int jm_env_int(const char *name, int def)
{
    const char *v = getenv(name);
    char *end;
    long n = v && *v ? strtol(v, &end, 10) : -1;
    return n >= 0 && n <= INT_MAX && *end == '\0' ? (int)n : def;
}

static jm_rc_t load_env(jm_config_t *cfg, jm_err_t *err)
{
    char why[256];
    for (size_t i = 0; i < N_OPTS; i++) {
        char *name = opt_env_name(&opts[i]);
        const char *v = getenv(name);
        layer_t *l = &cfg->layer[i][JM_CONFIG_SRC_ENV];
        if (v && opt_parse(&opts[i], v, l, why, sizeof(why)) != JM_OK) {
            jm_rc_t rc = jm_err_set(err, JM_ERR_INVALID, "%s: %s", name, why);
            free(name);
            return rc;
        }
        if (v)
            l->origin = name;
        else
            free(name);
    }
    return JM_OK;
}

jm_rc_t jm_config_load(jm_config_t *cfg, const char *path, jm_err_t *err)
{
    char *file = NULL;
    jm_rc_t rc;

    clear_layers(cfg, JM_CONFIG_SRC_FILE);
    clear_layers(cfg, JM_CONFIG_SRC_ENV);
    free(cfg->file);
    cfg->file = NULL;

    rc = choose_file(path, &file, err);
    if (rc == JM_OK && file)
        rc = load_file(cfg, file, err);
    if (rc == JM_OK)
        rc = load_env(cfg, err);
    if (rc != JM_OK) {
        clear_layers(cfg, JM_CONFIG_SRC_FILE);
        clear_layers(cfg, JM_CONFIG_SRC_ENV);
        free(file);
        return rc;
    }
    jm_log(JM_LOG_DEBUG, "config", "loaded %s", file ? file : "(no file)");
    cfg->file = file;
    return JM_OK;
}

/* ---- display -------------------------------------------------------------------------------- */

/* Copy of a libpq conninfo (keyword=value or URI) with passwords replaced by ***. */
static char *mask_conninfo(const char *s)
{
    /* Each mask turns "password<sp>=<sp>value" (>= 9 chars) into "password=***" (12) and starts
     * a token, so there are at most n/9 + 2 of them, each growing the text by at most 3. */
    size_t n = strlen(s);
    char *out = jm_malloc(n + 3 * (n / 9 + 2) + 1), *o = out;
    const char *p = s;

    /* URI userinfo: postgresql://user:password@host/db */
    if (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0) {
        const char *auth = strstr(s, "://") + 3;
        const char *auth_end = auth + strcspn(auth, "/?");
        const char *at = NULL, *colon = NULL;
        for (const char *q = auth; q < auth_end; q++)
            if (*q == '@')
                at = q;
        if (at)
            colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon) {
            memcpy(o, s, (size_t)(colon + 1 - s));
            o += colon + 1 - s;
            memcpy(o, "***", 3);
            o += 3;
            p = at;
        }
    }
    while (*p) {
        int at_token = p == s || isspace((unsigned char)p[-1]) || p[-1] == '?' || p[-1] == '&';
        if (at_token && strncasecmp(p, "password", 8) == 0) {
            const char *q = p + 8;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q == '=') {
                for (q++; *q == ' ' || *q == '\t'; q++)
                    ;
                if (*q == '\'') {
                    for (q++; *q && *q != '\''; q++)
                        if (*q == '\\' && q[1])
                            q++;
                    if (*q == '\'')
                        q++;
                } else {
                    while (*q && !isspace((unsigned char)*q) && *q != '&')
                        q++;
                }
                memcpy(o, "password=***", 12);
                o += 12;
                p = q;
                continue;
            }
        }
        *o++ = *p++;
    }
    *o = '\0';
    return out;
}

/* Copy of a "key=value" property with the value masked if the key names a secret. */
static char *mask_property(const char *item)
{
    const char *eq = strchr(item, '=');
    if (eq) {
        char *k = jm_strndup(item, (size_t)(eq - item));
        int secret = strcasestr(k, "password") || strcasestr(k, "secret");
        free(k);
        if (secret)
            return jm_asprintf("%.*s=***", (int)(eq - item), item);
    }
    return jm_strdup(item);
}

static char *mask_item(const opt_t *o, const char *s)
{
    if (o->flags & OPT_CONNINFO)
        return mask_conninfo(s);
    if (o->flags & OPT_PROPS)
        return mask_property(s);
    return jm_strdup(s);
}

char *jm_config_display(const jm_config_t *cfg, const char *key)
{
    size_t i = opt_index(key);
    const opt_t *o = &opts[i];
    const layer_t *l = effective(cfg, i, NULL);

    switch (o->type) {
    case JM_CONFIG_STR: return mask_item(o, l->s);
    case JM_CONFIG_INT: return jm_asprintf("%lld", (long long)l->i);
    case JM_CONFIG_FLOAT: return jm_asprintf("%g", l->f);
    case JM_CONFIG_BOOL: return jm_strdup(l->b ? "true" : "false");
    case JM_CONFIG_LIST: {
        char *acc = jm_strdup("");
        for (size_t k = 0; k < l->nitems; k++) {
            char *item = mask_item(o, l->items[k]);
            char *next = jm_asprintf("%s%s%s", acc, k ? "," : "", item);
            free(item);
            free(acc);
            acc = next;
        }
        return acc;
    }
    default: JM_ASSERT(0);
    }
    return NULL;
}

static json_t *json_value(const jm_config_t *cfg, size_t i)
{
    const opt_t *o = &opts[i];
    const layer_t *l = effective(cfg, i, NULL);
    json_t *v = NULL;
    char *s = NULL;

    switch (o->type) {
    case JM_CONFIG_STR:
        s = mask_item(o, l->s);
        v = json_string(s);
        break;
    case JM_CONFIG_INT: v = json_integer((json_int_t)l->i); break;
    case JM_CONFIG_FLOAT: v = json_real(l->f); break;
    case JM_CONFIG_BOOL: v = json_boolean(l->b); break;
    case JM_CONFIG_LIST:
        v = json_array();
        for (size_t k = 0; k < l->nitems; k++) {
            s = mask_item(o, l->items[k]);
            json_array_append_new(v, json_string(s));
            free(s);
            s = NULL;
        }
        break;
    default: JM_ASSERT(0);
    }
    free(s);
    JM_ASSERT(v != NULL); /* jansson fails only on allocation or invalid UTF-8 */
    return v;
}

jm_rc_t jm_config_show(const jm_config_t *cfg, FILE *out, int json, jm_err_t *err)
{
    jm_rc_t rc = JM_OK;
    json_t *root = NULL;

    if (json) {
        root = json_object();
        for (size_t i = 0; i < N_OPTS; i++) {
            jm_config_source_t src = JM_CONFIG_SRC_DEFAULT;
            const layer_t *l = effective(cfg, i, &src);
            json_t *entry = json_pack("{s:o, s:s}", "value", json_value(cfg, i), "source",
                                      jm_config_source_name(src));
            JM_ASSERT(entry != NULL);
            if (l->origin)
                json_object_set_new(entry, "origin", json_string(l->origin));
            json_object_set_new(root, opts[i].key, entry);
        }
        if (json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) !=
                0 ||
            fputc('\n', out) == EOF)
            rc = jm_err_set(err, JM_ERR_IO, "cannot write configuration: %s", strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < N_OPTS; i++) {
        jm_config_source_t src = JM_CONFIG_SRC_DEFAULT;
        const layer_t *l = effective(cfg, i, &src);
        char *v = jm_config_display(cfg, opts[i].key);
        int w =
            fprintf(out, "%s = %s  (%s%s%s)\n", opts[i].key, *v ? v : "\"\"",
                    jm_config_source_name(src), l->origin ? " " : "", l->origin ? l->origin : "");
        free(v);
        if (w < 0) {
            rc = jm_err_set(err, JM_ERR_IO, "cannot write configuration: %s", strerror(errno));
            goto out;
        }
    }
out:
    json_decref(root);
    return rc;
}
