/*
 * event.c — build, encode and strictly decode events.
 *
 * Validation is one recursive walk over the rule table of event_spec.c; every failure carries
 * a stable kind (jm_event_error_t) and a message that starts with the JSON path.  Input is
 * bounded before jansson sees it (size, nesting depth).  This module does not interpret
 * payloads and does not talk to Kafka.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "jobmon/event.h"
#include "jobmon/jmtime.h"
#include "producer/event_int.h"

static const char *const error_names[JM_EVE__CNT] = {
    [JM_EVE_NONE] = "none",
    [JM_EVE_TOO_LARGE] = "too_large",
    [JM_EVE_TOO_DEEP] = "too_deep",
    [JM_EVE_SYNTAX] = "syntax",
    [JM_EVE_TRAILING] = "trailing",
    [JM_EVE_UTF8] = "utf8",
    [JM_EVE_DUPLICATE] = "duplicate",
    [JM_EVE_UNKNOWN_TYPE] = "unknown_type",
    [JM_EVE_VERSION] = "version",
    [JM_EVE_MISSING] = "missing",
    [JM_EVE_UNKNOWN_FIELD] = "unknown_field",
    [JM_EVE_WRONG_TYPE] = "wrong_type",
    [JM_EVE_TOO_LONG] = "too_long",
    [JM_EVE_TOO_SHORT] = "too_short",
    [JM_EVE_RANGE] = "range",
    [JM_EVE_TOO_MANY] = "too_many",
    [JM_EVE_TOO_FEW] = "too_few",
    [JM_EVE_BAD_UUID] = "bad_uuid",
    [JM_EVE_BAD_TIMESTAMP] = "bad_timestamp",
    [JM_EVE_BAD_HASH] = "bad_hash",
    [JM_EVE_BAD_VALUE] = "bad_value",
};
_Static_assert(JM_ARRAY_LEN(error_names) == JM_EVE__CNT, "error_names");

/* ---------------------------------------------------------------- names */

const char *jm_event_type_name(jm_event_type_t type)
{
    return ((unsigned)type < JM_EV__CNT) ? jm_event_specs[type].name : "?";
}

jm_rc_t jm_event_type_parse(const char *name, jm_event_type_t *out)
{
    for (int t = 0; name && t < JM_EV__CNT; t++)
        if (strcmp(jm_event_specs[t].name, name) == 0) {
            *out = (jm_event_type_t)t;
            return JM_OK;
        }
    return JM_ERR_NOT_FOUND;
}

/* The index of `name` in names[0..n), or -1 (also when name is NULL). */
static int name_index(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *jm_producer_kind_name(jm_producer_kind_t kind)
{
    return ((unsigned)kind < JM_PRODUCER__CNT) ? jm_producer_kind_names[kind] : "?";
}

jm_rc_t jm_producer_kind_parse(const char *name, jm_producer_kind_t *out)
{
    int k = name_index(jm_producer_kind_names, JM_PRODUCER__CNT, name);
    if (k < 0)
        return JM_ERR_NOT_FOUND;
    *out = (jm_producer_kind_t)k;
    return JM_OK;
}

const char *jm_event_error_name(jm_event_error_t kind)
{
    return ((unsigned)kind < JM_EVE__CNT) ? error_names[kind] : "?";
}

jm_rc_t jm_event_error_parse(const char *name, jm_event_error_t *out)
{
    int k = name_index(error_names, JM_EVE__CNT, name);
    if (k < 0)
        return JM_ERR_NOT_FOUND;
    *out = (jm_event_error_t)k;
    return JM_OK;
}

/* ---------------------------------------------------------------- construction */

static struct {
    int set;
    jm_producer_kind_t kind;
    char host[256];
    int32_t pid;
} identity;

void jm_event_set_producer(jm_producer_kind_t kind)
{
    JM_ASSERT((unsigned)kind < JM_PRODUCER__CNT);
    identity.kind = kind;
    if (gethostname(identity.host, sizeof(identity.host)) != 0)
        strcpy(identity.host, "unknown");
    identity.host[sizeof(identity.host) - 1] = '\0';
    identity.pid = (int32_t)getpid();
    identity.set = 1;
}

/* A random UUID (uuid_generate_random) made version 7 (RFC 9562): its first 48 bits are the
 * Unix time in ms, so ids increase with time and event_log's primary key grows at its right
 * edge instead of at random pages (and the dedup probe of a batch reads recent pages only). */
static void uuid_set_v7(uuid_t u, int64_t ms)
{
    for (int i = 0; i < 6; i++)
        u[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x70); /* version 7 */
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* variant 10 */
}

jm_event_t *jm_event_new(jm_event_type_t type, int64_t workflow_id, json_t *payload)
{
    jm_event_t *ev = jm_calloc(1, sizeof(*ev));
    uuid_t u;
    if (!identity.set)
        jm_event_set_producer(JM_PRODUCER_CLIENT);
    ev->ts_ms = jm_time_wall_ms();
    uuid_generate_random(u);
    uuid_set_v7(u, ev->ts_ms);
    uuid_unparse_lower(u, ev->id);
    ev->version = JM_EVENT_VERSION;
    ev->type = type;
    ev->producer_kind = identity.kind;
    memcpy(ev->producer_host, identity.host, sizeof(ev->producer_host));
    ev->producer_pid = identity.pid;
    ev->workflow_id = workflow_id;
    ev->payload = payload ? payload : json_object();
    JM_ASSERT(ev->payload);
    return ev;
}

void jm_event_destroy(jm_event_t *ev)
{
    if (!ev)
        return;
    json_decref(ev->payload);
    free(ev);
}

/* ---------------------------------------------------------------- validation walk */

typedef struct {
    char path[256];
    size_t len;
    jm_event_type_t type; /* selects the payload spec */
    jm_event_error_t kind;
    jm_err_t *err;
} vctx_t;

static jm_rc_t fail(vctx_t *c, jm_event_error_t kind, const char *fmt, ...) JM_PRINTF(3, 4);

static jm_rc_t fail(vctx_t *c, jm_event_error_t kind, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    c->kind = kind;
    return jm_err_set(c->err, JM_ERR_INVALID, "%s: %s", c->len ? c->path : "(root)", what);
}

/* Append ".key" (or "key" at the root) / "[i]" to the path; returns the length to restore. */
static size_t path_key(vctx_t *c, const char *key)
{
    size_t old = c->len;
    int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "%s%.64s", c->len ? "." : "", key);
    c->len += (n > 0) ? (size_t)n : 0;
    if (c->len >= sizeof(c->path))
        c->len = sizeof(c->path) - 1;
    return old;
}

static size_t path_index(vctx_t *c, size_t i)
{
    size_t old = c->len;
    int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "[%zu]", i);
    c->len += (n > 0) ? (size_t)n : 0;
    if (c->len >= sizeof(c->path))
        c->len = sizeof(c->path) - 1;
    return old;
}

static void path_pop(vctx_t *c, size_t old)
{
    c->len = old;
    c->path[old] = '\0';
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static jm_rc_t wrong_type(vctx_t *c, const char *want, const json_t *v)
{
    return fail(c, JM_EVE_WRONG_TYPE, "expected %s, got %s", want, json_type_name(v));
}

static int is_hex_lower(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static int is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int dash = (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash ? s[i] != '-' : !is_hex_lower(s[i]))
            return 0;
    }
    return 1;
}

static int is_hex32(const char *s, size_t n)
{
    if (n != 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_hex_lower(s[i]))
            return 0;
    return 1;
}

/* "YYYY-MM-DDTHH:MM:SS[.m[m[m]]]Z", a real calendar date, years 1970..9999. */
static int parse_ts(const char *s, size_t n, int64_t *ms)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    char back[32];
    size_t i = 0;
    for (; shape[i]; i++) {
        if (i >= n)
            return 0;
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return 0;
    }
    if (i < n && s[i] == '.') {
        size_t digits = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
        if (digits < 1 || digits > 3)
            return 0;
    }
    if (i + 1 != n || s[i] != 'Z' || strncmp(s, "1970", 4) < 0)
        return 0;
    if (jm_time_parse_iso(s, ms) != JM_OK)
        return 0;
    /* timegm normalises 02-31 to 03-03: the round trip must give the same second. */
    jm_time_format_iso(*ms, back, sizeof(back));
    return strncmp(back, s, 19) == 0;
}

static jm_rc_t check_value(vctx_t *c, const jm_field_spec_t *f, const json_t *v);
static jm_rc_t check_fields(vctx_t *c, const jm_field_spec_t *fields, const json_t *obj);

static jm_rc_t check_int(vctx_t *c, const jm_field_spec_t *f, const json_t *v)
{
    if (!json_is_integer(v))
        return wrong_type(c, "integer", v);
    json_int_t i = json_integer_value(v);
    if (i < f->min || i > f->max)
        return fail(c, JM_EVE_RANGE, "%lld out of range %lld..%lld", (long long)i,
                    (long long)f->min, (long long)f->max);
    return JM_OK;
}

static jm_rc_t check_str(vctx_t *c, const jm_field_spec_t *f, const json_t *v)
{
    if (!json_is_string(v))
        return wrong_type(c, "string", v);
    size_t n = json_string_length(v);
    if ((int64_t)n > f->max)
        return fail(c, JM_EVE_TOO_LONG, "string of %zu bytes over %lld", n, (long long)f->max);
    if ((int64_t)n < f->min)
        return fail(c, JM_EVE_TOO_SHORT, "string of %zu bytes under %lld", n, (long long)f->min);
    return JM_OK;
}

static jm_rc_t check_special_str(vctx_t *c, const jm_field_spec_t *f, const json_t *v)
{
    if (!json_is_string(v))
        return wrong_type(c, "string", v);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    int64_t ms;
    switch (f->kind) {
    case JM_FK_HEX32:
        return is_hex32(s, n) ? JM_OK : fail(c, JM_EVE_BAD_HASH, "not 32 lower-case hex chars");
    case JM_FK_UUID:
        return is_uuid(s, n) ? JM_OK : fail(c, JM_EVE_BAD_UUID, "not a lower-case UUID");
    case JM_FK_TS:
        return parse_ts(s, n, &ms)
                   ? JM_OK
                   : fail(c, JM_EVE_BAD_TIMESTAMP, "not YYYY-MM-DDTHH:MM:SS[.mmm]Z");
    case JM_FK_STATUS:
        if (n == 1 && s[0] && strchr(f->set, s[0]))
            return JM_OK;
        return fail(c, JM_EVE_BAD_VALUE, "status not one of \"%s\"", f->set);
    default: break;
    }
    for (const char *const *ch = f->choices; *ch; ch++)
        if (strlen(*ch) == n && memcmp(*ch, s, n) == 0)
            return JM_OK;
    return fail(c, JM_EVE_BAD_VALUE, "value \"%.32s\" not allowed", s);
}

/* Object keys of maps: non-empty, <= 255 bytes. */
static jm_rc_t check_map_key(vctx_t *c, const char *key)
{
    size_t n = strlen(key);
    if (n == 0)
        return fail(c, JM_EVE_TOO_SHORT, "empty key");
    if (n > 255)
        return fail(c, JM_EVE_TOO_LONG, "key of %zu bytes over 255", n);
    return JM_OK;
}

static jm_rc_t check_strmap(vctx_t *c, const jm_field_spec_t *f, const json_t *v)
{
    static const jm_field_spec_t val = {.kind = JM_FK_STR, .min = 0, .max = 4096};
    const char *key;
    json_t *x;
    if (!json_is_object(v))
        return wrong_type(c, "object", v);
    if ((int64_t)json_object_size(v) > f->max)
        return fail(c, JM_EVE_TOO_MANY, "%zu entries over %lld", json_object_size(v),
                    (long long)f->max);
    json_object_foreach((json_t *)v, key, x)
    {
        size_t old = path_key(c, key);
        jm_rc_t rc = check_map_key(c, key);
        if (rc == JM_OK)
            rc = check_str(c, &val, x);
        if (rc != JM_OK)
            return rc;
        path_pop(c, old);
    }
    return JM_OK;
}

static jm_rc_t check_scale_number(vctx_t *c, const json_t *v)
{
    if (!json_is_number(v))
        return wrong_type(c, "number", v);
    if (json_number_value(v) < 0)
        return fail(c, JM_EVE_RANGE, "negative scale");
    return JM_OK;
}

static jm_rc_t check_scale(vctx_t *c, const json_t *x)
{
    if (!json_is_array(x))
        return check_scale_number(c, x);
    if (json_array_size(x) < 1)
        return fail(c, JM_EVE_TOO_FEW, "empty scale list");
    if (json_array_size(x) > 100)
        return fail(c, JM_EVE_TOO_MANY, "%zu scales over 100", json_array_size(x));
    for (size_t i = 0; i < json_array_size(x); i++) {
        size_t old = path_index(c, i);
        jm_rc_t rc = check_scale_number(c, json_array_get(x, i));
        if (rc != JM_OK)
            return rc;
        path_pop(c, old);
    }
    return JM_OK;
}

static jm_rc_t check_scales(vctx_t *c, const jm_field_spec_t *f, const json_t *v)
{
    const char *key;
    json_t *x;
    if (!json_is_object(v))
        return wrong_type(c, "object", v);
    if ((int64_t)json_object_size(v) > f->max)
        return fail(c, JM_EVE_TOO_MANY, "%zu entries over %lld", json_object_size(v),
                    (long long)f->max);
    json_object_foreach((json_t *)v, key, x)
    {
        size_t old = path_key(c, key);
        jm_rc_t rc = check_map_key(c, key);
        if (rc == JM_OK)
            rc = check_scale(c, x);
        if (rc != JM_OK)
            return rc;
        path_pop(c, old);
    }
    return JM_OK;
}

static jm_rc_t check_resources(vctx_t *c, const jm_field_spec_t *f, const json_t *v)
{
    if (!json_is_object(v))
        return wrong_type(c, "object", v);
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT);
    if ((int64_t)n > f->max)
        return fail(c, JM_EVE_TOO_MANY, "%zu bytes over %lld", n, (long long)f->max);
    return JM_OK;
}

static jm_rc_t check_array(vctx_t *c, const jm_field_spec_t *f, const json_t *v)
{
    if (!json_is_array(v))
        return wrong_type(c, "array", v);
    size_t n = json_array_size(v);
    if ((int64_t)n < f->min)
        return fail(c, JM_EVE_TOO_FEW, "%zu items under %lld", n, (long long)f->min);
    if ((int64_t)n > f->max)
        return fail(c, JM_EVE_TOO_MANY, "%zu items over %lld", n, (long long)f->max);
    for (size_t i = 0; i < n; i++) {
        size_t old = path_index(c, i);
        jm_rc_t rc = check_value(c, f->elem, json_array_get(v, i));
        if (rc != JM_OK)
            return rc;
        path_pop(c, old);
    }
    return JM_OK;
}

static jm_rc_t check_value(vctx_t *c, const jm_field_spec_t *f, const json_t *v)
{
    if (json_is_null(v) && (f->flags & JM_F_NULLABLE))
        return JM_OK;
    switch (f->kind) {
    case JM_FK_INT: return check_int(c, f, v);
    case JM_FK_BOOL: return json_is_boolean(v) ? JM_OK : wrong_type(c, "boolean", v);
    case JM_FK_STR: return check_str(c, f, v);
    case JM_FK_HEX32:
    case JM_FK_UUID:
    case JM_FK_TS:
    case JM_FK_STATUS:
    case JM_FK_ENUM: return check_special_str(c, f, v);
    case JM_FK_STRMAP: return check_strmap(c, f, v);
    case JM_FK_RESOURCES: return check_resources(c, f, v);
    case JM_FK_SCALES: return check_scales(c, f, v);
    case JM_FK_ARRAY: return check_array(c, f, v);
    case JM_FK_OBJECT: return check_fields(c, f->fields, v);
    case JM_FK_PAYLOAD: return check_fields(c, jm_event_specs[c->type].payload, v);
    case JM_FK__CNT: break;
    }
    JM_ASSERT(!"unknown field kind");
    return JM_ERR_INTERNAL;
}

static const jm_field_spec_t *find_field(const jm_field_spec_t *fields, const char *key)
{
    for (; fields->name; fields++)
        if (strcmp(fields->name, key) == 0)
            return fields;
    return NULL;
}

static jm_rc_t check_fields(vctx_t *c, const jm_field_spec_t *fields, const json_t *obj)
{
    const char *key;
    json_t *x;
    if (!json_is_object(obj))
        return wrong_type(c, "object", obj);
    json_object_foreach((json_t *)obj, key, x)
    {
        if (!find_field(fields, key)) {
            path_key(c, key);
            return fail(c, JM_EVE_UNKNOWN_FIELD, "unknown field");
        }
    }
    for (; fields->name; fields++) {
        size_t old = path_key(c, fields->name);
        x = json_object_get(obj, fields->name);
        if (!x)
            return fail(c, JM_EVE_MISSING, "missing");
        jm_rc_t rc = check_value(c, fields, x);
        if (rc != JM_OK)
            return rc;
        path_pop(c, old);
    }
    return JM_OK;
}

/* The whole envelope: version and type first (they decide how to read the rest). */
static jm_rc_t check_root(vctx_t *c, const json_t *root)
{
    if (!json_is_object(root))
        return wrong_type(c, "object", root);
    const json_t *v = json_object_get(root, "v");
    const json_t *t = json_object_get(root, "type");
    size_t old = path_key(c, "v");
    if (!v)
        return fail(c, JM_EVE_MISSING, "missing");
    if (!json_is_integer(v))
        return wrong_type(c, "integer", v);
    if (json_integer_value(v) != JM_EVENT_VERSION)
        return fail(c, JM_EVE_VERSION, "unsupported version %lld",
                    (long long)json_integer_value(v));
    path_pop(c, old);
    path_key(c, "type");
    if (!t)
        return fail(c, JM_EVE_MISSING, "missing");
    if (!json_is_string(t))
        return wrong_type(c, "string", t);
    if (jm_event_type_parse(json_string_value(t), &c->type) != JM_OK)
        return fail(c, JM_EVE_UNKNOWN_TYPE, "unknown event type \"%.64s\"", json_string_value(t));
    path_pop(c, old);
    return check_fields(c, jm_envelope_spec, root);
}

/* ---------------------------------------------------------------- decode */

/* Deepest nesting of [ and { outside strings; stops counting once over the limit. */
static int nesting_too_deep(const unsigned char *p, size_t len)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = p[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '{' || ch == '[') {
            if (++depth > JM_EVENT_MAX_DEPTH)
                return 1;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return 0;
}

static jm_event_error_t map_json_error(const json_error_t *je)
{
    switch (json_error_code(je)) {
    case json_error_invalid_utf8: return JM_EVE_UTF8;
    case json_error_end_of_input_expected: return JM_EVE_TRAILING;
    case json_error_duplicate_key: return JM_EVE_DUPLICATE;
    case json_error_numeric_overflow: return JM_EVE_RANGE;
    case json_error_stack_overflow: return JM_EVE_TOO_DEEP;
    default: return JM_EVE_SYNTAX;
    }
}

static jm_event_t *event_from_json(vctx_t *c, json_t *root)
{
    jm_event_t *ev = jm_calloc(1, sizeof(*ev));
    const json_t *producer = json_object_get(root, "producer");
    ev->version = JM_EVENT_VERSION;
    ev->type = c->type;
    snprintf(ev->id, sizeof(ev->id), "%s", jm_ev_str(root, "id"));
    JM_ASSERT(jm_producer_kind_parse(jm_ev_str(producer, "kind"), &ev->producer_kind) == JM_OK);
    snprintf(ev->producer_host, sizeof(ev->producer_host), "%s", jm_ev_str(producer, "host"));
    ev->producer_pid = (int32_t)jm_ev_int(producer, "pid");
    JM_ASSERT(jm_time_parse_iso(jm_ev_str(root, "ts"), &ev->ts_ms) == JM_OK);
    ev->workflow_id = jm_ev_int(root, "workflow_id");
    ev->payload = json_incref(json_object_get(root, "payload"));
    return ev;
}

jm_rc_t jm_event_decode_ex(const void *buf, size_t len, jm_event_t **out, jm_event_error_t *kind,
                           jm_err_t *err)
{
    vctx_t c = {.err = err, .kind = JM_EVE_NONE};
    json_error_t je;
    json_t *root = NULL;
    jm_rc_t rc = JM_OK;

    *out = NULL;
    if (len > JM_EVENT_MAX_BYTES) {
        rc = fail(&c, JM_EVE_TOO_LARGE, "%zu bytes over %d", len, JM_EVENT_MAX_BYTES);
        goto out;
    }
    if (nesting_too_deep(buf, len)) {
        rc = fail(&c, JM_EVE_TOO_DEEP, "nesting deeper than %d", JM_EVENT_MAX_DEPTH);
        goto out;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        rc = fail(&c, map_json_error(&je), "json: %s (line %d, column %d)", je.text, je.line,
                  je.column);
        goto out;
    }
    rc = check_root(&c, root);
    if (rc == JM_OK)
        *out = event_from_json(&c, root);
out:
    json_decref(root);
    if (kind)
        *kind = c.kind;
    return rc;
}

jm_rc_t jm_event_decode(const void *buf, size_t len, jm_event_t **out, jm_err_t *err)
{
    return jm_event_decode_ex(buf, len, out, NULL, err);
}

/* ---------------------------------------------------------------- encode */

static json_t *event_to_json(const jm_event_t *ev)
{
    char ts[32];
    json_t *payload = ev->payload ? json_incref(ev->payload) : json_object();
    json_t *root =
        json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:s, s:I, s:o}", "v", ev->version, "id",
                  ev->id, "type", jm_event_type_name(ev->type), "producer", "kind",
                  jm_producer_kind_name(ev->producer_kind), "host", ev->producer_host, "pid",
                  (int)ev->producer_pid, "ts", jm_time_format_iso(ev->ts_ms, ts, sizeof(ts)),
                  "workflow_id", (json_int_t)ev->workflow_id, "payload", payload);
    JM_ASSERT(root); /* only fails on invalid UTF-8 in id/host, which we never store */
    return root;
}

char *jm_event_encode(const jm_event_t *ev, size_t *len)
{
    json_t *root = event_to_json(ev);
    char *s = json_dumps(root, JSON_COMPACT);
    JM_ASSERT(s);
    json_decref(root);
    if (len)
        *len = strlen(s);
    return s;
}

jm_rc_t jm_event_validate(const jm_event_t *ev, jm_event_error_t *kind, jm_err_t *err)
{
    vctx_t c = {.err = err, .kind = JM_EVE_NONE};
    json_t *root = event_to_json(ev);
    jm_rc_t rc = check_root(&c, root);
    json_decref(root);
    if (kind)
        *kind = c.kind;
    return rc;
}

/* ---------------------------------------------------------------- accessors */

json_t *jm_ev_get(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    JM_ASSERT(v);
    return v;
}

int64_t jm_ev_int(const json_t *obj, const char *key)
{
    json_t *v = jm_ev_get(obj, key);
    JM_ASSERT(json_is_integer(v));
    return json_integer_value(v);
}

int64_t jm_ev_int_or0(const json_t *obj, const char *key)
{
    json_t *v = jm_ev_get(obj, key);
    return json_is_null(v) ? 0 : jm_ev_int(obj, key);
}

const char *jm_ev_str(const json_t *obj, const char *key)
{
    json_t *v = jm_ev_get(obj, key);
    if (json_is_null(v))
        return NULL;
    JM_ASSERT(json_is_string(v));
    return json_string_value(v);
}

int jm_ev_bool(const json_t *obj, const char *key)
{
    json_t *v = jm_ev_get(obj, key);
    JM_ASSERT(json_is_boolean(v));
    return json_is_true(v);
}
