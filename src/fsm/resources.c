/*
 * resources.c — memory/runtime units, queue limits (validate, coerce) and resource scaling after
 * resource kills (reference §1.5, §3.8, §4.2).
 *
 * Numbers in text are parsed as exact decimals (fixed point, up to 9 fraction digits) so "1.1G"
 * and "0.1h" never suffer binary rounding; results round up to whole MiB / seconds.
 *
 * Not here: looking queues up (the caller builds jm_queue_t from the database or config), merging
 * resource defaults across levels (the client), or any I/O.
 */
#include "jobmon/resources.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_FRAC_DIGITS 9
#define MAX_EXACT       9007199254740992.0 /* 2^53: largest integer a double holds exactly */

/* A non-negative exact decimal: mant / 10^scale. */
typedef struct {
    uint64_t mant;
    uint64_t div; /* 10^scale */
} dec_t;

/* ---- decimals ---------------------------------------------------------------------------- */

static const char *skip_space(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

/* Parse digits[.digits] at *pp.  Returns 1 on success (advancing *pp), 0 if there is no number,
 * -1 on overflow or too many fraction digits. */
static int parse_dec(const char **pp, dec_t *d)
{
    const char *p = *pp;
    int digits = 0, frac = -1;
    d->mant = 0;
    d->div = 1;
    for (; isdigit((unsigned char)*p) || (*p == '.' && frac < 0); p++) {
        if (*p == '.') {
            frac = 0;
            continue;
        }
        if (d->mant > (UINT64_MAX - 9) / 10 || frac >= MAX_FRAC_DIGITS)
            return -1;
        d->mant = d->mant * 10 + (uint64_t)(*p - '0');
        digits++;
        if (frac >= 0) {
            frac++;
            d->div *= 10;
        }
    }
    if (digits == 0)
        return 0;
    *pp = p;
    return 1;
}

/* ceil(d * mult / denom) into *out; 0 on success, -1 on overflow. */
static int dec_scale(dec_t d, uint64_t mult, uint64_t denom, int64_t *out)
{
    unsigned __int128 num = (unsigned __int128)d.mant * mult;
    unsigned __int128 den = (unsigned __int128)d.div * denom;
    unsigned __int128 q = (num + den - 1) / den;
    if (q > INT64_MAX)
        return -1;
    *out = (int64_t)q;
    return 0;
}

/* ---- memory ------------------------------------------------------------------------------ */

static const struct {
    const char *unit;
    uint64_t kib;
} mem_units[] = {
    {"", 1024 * 1024},
    {"K", 1},
    {"KB", 1},
    {"KIB", 1},
    {"M", 1024},
    {"MB", 1024},
    {"MIB", 1024},
    {"G", 1024 * 1024},
    {"GB", 1024 * 1024},
    {"GIB", 1024 * 1024},
    {"T", 1024ULL * 1024 * 1024},
    {"TB", 1024ULL * 1024 * 1024},
    {"TIB", 1024ULL * 1024 * 1024},
};

/* KiB per unit for the unit text [u, u+n), or 0 if unknown. */
static uint64_t mem_unit_kib(const char *u, size_t n)
{
    for (size_t i = 0; i < JM_ARRAY_LEN(mem_units); i++)
        if (strlen(mem_units[i].unit) == n && strncasecmp(mem_units[i].unit, u, n) == 0)
            return mem_units[i].kib;
    return 0;
}

/* Length of s without trailing white space. */
static size_t trimmed_len(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return n;
}

jm_rc_t jm_res_parse_memory(const char *text, int64_t *mib, jm_err_t *err)
{
    const char *p = skip_space(text ? text : "");
    dec_t d;
    if (*p == '\0')
        return jm_err_set(err, JM_ERR_INVALID, "memory \"%s\": empty", text ? text : "");
    if (*p == '-')
        return jm_err_set(err, JM_ERR_INVALID, "memory \"%s\": must not be negative", text);
    int r = parse_dec(&p, &d);
    if (r == 0)
        return jm_err_set(err, JM_ERR_INVALID, "memory \"%s\": expected a number", text);
    if (r < 0)
        return jm_err_set(err, JM_ERR_INVALID, "memory \"%s\": number too large or too precise",
                          text);
    p = skip_space(p);
    size_t n = trimmed_len(p);
    uint64_t kib = mem_unit_kib(p, n);
    if (kib == 0)
        return jm_err_set(err, JM_ERR_INVALID, "memory \"%s\": unknown unit %.*s, use K, M, G or T",
                          text, (int)n, p);
    if (dec_scale(d, kib, 1024, mib) < 0)
        return jm_err_set(err, JM_ERR_INVALID, "memory \"%s\": too large", text);
    return JM_OK;
}

char *jm_res_format_memory(int64_t mib, char *buf, size_t len)
{
    if (mib > 0 && mib % 1024 == 0)
        snprintf(buf, len, "%" PRId64 "G", mib / 1024);
    else
        snprintf(buf, len, "%" PRId64 "M", mib);
    return buf;
}

/* ---- runtime ----------------------------------------------------------------------------- */

static uint64_t time_unit_seconds(char c)
{
    switch (tolower((unsigned char)c)) {
    case 'd': return 86400;
    case 'h': return 3600;
    case 'm': return 60;
    case 's': return 1;
    default: return 0;
    }
}

/* Parse an unsigned decimal integer field of a clock time; -1 if not all digits or too big. */
static int64_t clock_field(const char *s, size_t n)
{
    int64_t v = 0;
    if (n == 0 || n > 12)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "[D-]HH:MM:SS" → seconds. */
static jm_rc_t parse_clock(const char *text, const char *p, int64_t *seconds, jm_err_t *err)
{
    char buf[64], *fields[4], *s, *dash;
    int64_t v[3] = {0, 0, 0}, days = 0;
    int k = 0;
    size_t n = trimmed_len(p);
    if (n >= sizeof(buf))
        return jm_err_set(err, JM_ERR_INVALID, "runtime \"%s\": too long", text);
    memcpy(buf, p, n);
    buf[n] = '\0';
    s = buf;
    if ((dash = strchr(buf, '-')) != NULL) {
        *dash = '\0';
        days = clock_field(buf, strlen(buf));
        s = dash + 1;
    }
    while (k < 4) {
        fields[k++] = s;
        if ((s = strchr(s, ':')) == NULL)
            break;
        *s++ = '\0';
    }
    if (k == 2 && !dash)
        return jm_err_set(err, JM_ERR_INVALID,
                          "runtime \"%s\": ambiguous, use HH:MM:SS or units such as 1h30m", text);
    for (int i = 0; i < 3 && k == 3; i++)
        v[i] = clock_field(fields[i], strlen(fields[i]));
    if (k != 3 || days < 0 || v[0] < 0 || v[1] < 0 || v[2] < 0 || v[1] >= 60 || v[2] >= 60 ||
        (dash && v[0] >= 24))
        return jm_err_set(err, JM_ERR_INVALID,
                          "runtime \"%s\": expected HH:MM:SS or D-HH:MM:SS (digits only; "
                          "minutes and seconds below 60)",
                          text);
    *seconds = ((days * 24 + v[0]) * 60 + v[1]) * 60 + v[2];
    return JM_OK;
}

/* "1h30m", "90s", "2d", or a bare number of seconds → seconds. */
static jm_rc_t parse_units(const char *text, const char *p, int64_t *seconds, jm_err_t *err)
{
    int64_t total = 0;
    for (int parts = 0; *(p = skip_space(p)); parts++) {
        dec_t d;
        int64_t v;
        int r = parse_dec(&p, &d);
        if (r <= 0)
            return jm_err_set(err, JM_ERR_INVALID,
                              r < 0 ? "runtime \"%s\": number too large or too precise"
                                    : "runtime \"%s\": expected a number",
                              text);
        p = skip_space(p);
        uint64_t unit = time_unit_seconds(*p);
        if (*p == '\0' && parts == 0)
            unit = 1; /* a bare number is seconds */
        else if (unit == 0)
            return jm_err_set(err, JM_ERR_INVALID,
                              "runtime \"%s\": unknown unit at \"%s\", use d, h, m or s", text,
                              *p ? p : "(none)");
        else
            p++;
        if (dec_scale(d, unit, 1, &v) < 0 || __builtin_add_overflow(total, v, &total))
            return jm_err_set(err, JM_ERR_INVALID, "runtime \"%s\": too large", text);
    }
    *seconds = total;
    return JM_OK;
}

jm_rc_t jm_res_parse_runtime(const char *text, int64_t *seconds, jm_err_t *err)
{
    const char *p = skip_space(text ? text : "");
    if (*p == '\0')
        return jm_err_set(err, JM_ERR_INVALID, "runtime \"%s\": empty", text ? text : "");
    if (*p == '-')
        return jm_err_set(err, JM_ERR_INVALID, "runtime \"%s\": must not be negative", text);
    if (strchr(p, ':'))
        return parse_clock(text, p, seconds, err);
    return parse_units(text, p, seconds, err);
}

char *jm_res_format_runtime(int64_t seconds, char *buf, size_t len)
{
    const char *sign = seconds < 0 ? "-" : "";
    uint64_t s = seconds < 0 ? (uint64_t)0 - (uint64_t)seconds : (uint64_t)seconds;
    snprintf(buf, len, "%s%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64, sign, s / 3600, s / 60 % 60,
             s % 60);
    return buf;
}

/* ---- queues ------------------------------------------------------------------------------ */

/* Print a number as an integer when it is one, else with %g, into buf. */
static const char *num_str(double v, char *buf, size_t len)
{
    if (v == floor(v) && fabs(v) < MAX_EXACT)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%g", v);
    return buf;
}

static jm_rc_t check_limit(const json_t *v, const jm_limit_t *l, const char *queue, jm_err_t *err)
{
    char a[32], b[32];
    if (!json_is_number(v))
        return jm_err_set(err, JM_ERR_INVALID, "%s: expected a number for queue \"%s\"", l->key,
                          queue);
    double x = json_number_value(v);
    if (x < l->min)
        return jm_err_set(err, JM_ERR_INVALID, "%s %s is below the minimum %s of queue \"%s\"",
                          l->key, num_str(x, a, sizeof(a)), num_str(l->min, b, sizeof(b)), queue);
    if (x > l->max)
        return jm_err_set(err, JM_ERR_INVALID, "%s %s is above the maximum %s of queue \"%s\"",
                          l->key, num_str(x, a, sizeof(a)), num_str(l->max, b, sizeof(b)), queue);
    return JM_OK;
}

jm_rc_t jm_res_validate(const json_t *res, const jm_queue_t *q, jm_err_t *err)
{
    if (!json_is_object(res))
        return jm_err_set(err, JM_ERR_INVALID, "resources: expected an object");
    for (size_t i = 0; i < q->n; i++) {
        const json_t *v = json_object_get(res, q->limits[i].key);
        if (!v)
            continue;
        jm_rc_t rc = check_limit(v, &q->limits[i], q->name, err);
        if (rc != JM_OK)
            return rc;
    }
    return JM_OK;
}

/* Clip one value into [min, max]; a new reference, or NULL to keep the old one. */
static json_t *clip(const json_t *v, const jm_limit_t *l)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        double lo = ceil(l->min), hi = floor(l->max);
        if ((double)x < lo && lo > -MAX_EXACT)
            return json_integer((json_int_t)lo);
        if ((double)x > hi && hi < MAX_EXACT)
            return json_integer((json_int_t)hi);
        return NULL;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x < l->min || x > l->max)
            return json_real(x < l->min ? l->min : l->max);
    }
    return NULL;
}

json_t *jm_res_coerce(const json_t *res, const jm_queue_t *q)
{
    json_t *out = json_is_object(res) ? json_deep_copy(res) : json_object();
    JM_ASSERT(out != NULL);
    for (size_t i = 0; i < q->n; i++) {
        const json_t *v = json_object_get(out, q->limits[i].key);
        json_t *nv = v ? clip(v, &q->limits[i]) : NULL;
        if (nv)
            json_object_set_new(out, q->limits[i].key, nv);
    }
    json_object_set_new(out, "queue", json_string(q->name));
    return out;
}

/* ---- scaling ----------------------------------------------------------------------------- */

json_t *jm_res_default_scales(void)
{
    json_t *s = json_pack("{s:f, s:f}", "memory", 0.5, "runtime", 0.5);
    JM_ASSERT(s != NULL);
    return s;
}

/* ceil(v * (1 + s)), treating results within 1e-9 (relative) above an integer as that integer
 * so that 10 × 1.1 is 11, not 12; capped at 2^53. */
static json_int_t grow(double v, double s)
{
    double r = v * (1.0 + s), fl = floor(r);
    double c = (r - fl <= 1e-9 * fmax(1.0, fabs(r))) ? fl : ceil(r);
    return (json_int_t)fmin(c, MAX_EXACT);
}

static int is_nonneg_number(const json_t *x)
{
    return json_is_number(x) && json_number_value(x) >= 0;
}

static jm_rc_t check_scale(const char *key, const json_t *s, jm_err_t *err)
{
    int ok = is_nonneg_number(s) || (json_is_array(s) && json_array_size(s) > 0);
    for (size_t i = 0; ok && json_is_array(s) && i < json_array_size(s); i++)
        ok = is_nonneg_number(json_array_get(s, i));
    if (ok)
        return JM_OK;
    return jm_err_set(err, JM_ERR_INVALID,
                      "scale for %s: expected a number >= 0 or a non-empty list of numbers >= 0",
                      key);
}

static jm_rc_t check_scales(const json_t *scales, jm_err_t *err)
{
    const char *key;
    json_t *s;
    if (!json_is_object(scales))
        return jm_err_set(err, JM_ERR_INVALID, "resource scales: expected an object");
    json_object_foreach((json_t *)scales, key, s)
    {
        jm_rc_t rc = check_scale(key, s, err);
        if (rc != JM_OK)
            return rc;
    }
    return JM_OK;
}

/* The value of `v` scaled by `s` for `attempt`: a new reference. */
static json_t *scaled_value(const json_t *v, const json_t *s, int attempt)
{
    if (json_is_number(s))
        return json_integer(grow(json_number_value(v), json_number_value(s)));
    size_t n = json_array_size(s), i = (size_t)attempt - 1;
    return json_deep_copy(json_array_get(s, i < n ? i : n - 1));
}

/* A copy of res with every key that has a scale scaled. */
static jm_rc_t apply_scales(const json_t *res, const json_t *scales, int attempt, json_t **out,
                            jm_err_t *err)
{
    const char *key;
    json_t *v, *copy = json_deep_copy(res);
    JM_ASSERT(copy != NULL);
    json_object_foreach(copy, key, v)
    {
        const json_t *s = json_object_get(scales, key);
        if (!s)
            continue;
        if (!json_is_number(v)) {
            jm_err_set(err, JM_ERR_INVALID, "%s: expected a number to scale", key);
            json_decref(copy); /* owns key */
            return JM_ERR_INVALID;
        }
        json_object_set_new(copy, key, scaled_value(v, s, attempt));
    }
    *out = copy;
    return JM_OK;
}

/* The first of queue, fallbacks... that accepts res strictly; NULL if none does. */
static const jm_queue_t *first_fit(const json_t *res, const jm_queue_t *queue,
                                   const jm_queue_t *fallbacks, size_t n_fallback)
{
    if (jm_res_validate(res, queue, NULL) == JM_OK)
        return queue;
    for (size_t i = 0; i < n_fallback; i++)
        if (jm_res_validate(res, &fallbacks[i], NULL) == JM_OK)
            return &fallbacks[i];
    return NULL;
}

jm_rc_t jm_res_scale(const json_t *res, const json_t *scales, int attempt, const jm_queue_t *queue,
                     const jm_queue_t *fallbacks, size_t n_fallback, json_t **out,
                     const char **queue_name, jm_err_t *err)
{
    json_t *scaled = NULL;
    jm_rc_t rc = JM_ERR_INVALID;
    *out = NULL;
    if (!json_is_object(res)) {
        jm_err_set(err, rc, "resources: expected an object");
        goto out;
    }
    if (attempt < 1) {
        jm_err_set(err, rc, "resource scaling: attempt %d, expected >= 1", attempt);
        goto out;
    }
    if ((rc = check_scales(scales, err)) != JM_OK ||
        (rc = apply_scales(res, scales, attempt, &scaled, err)) != JM_OK)
        goto out;
    const jm_queue_t *q = first_fit(scaled, queue, fallbacks, n_fallback);
    if (!q)
        q = n_fallback > 0 ? &fallbacks[n_fallback - 1] : queue;
    *out = jm_res_coerce(scaled, q); /* a no-op clip when q accepted it */
    if (queue_name)
        *queue_name = q->name;
out:
    json_decref(scaled);
    return rc;
}

/* ---- user input -------------------------------------------------------------------------- */

static jm_rc_t norm_memory(const json_t *v, json_t **nv, jm_err_t *err)
{
    int64_t mib;
    if (json_is_string(v)) {
        jm_rc_t rc = jm_res_parse_memory(json_string_value(v), &mib, err);
        if (rc != JM_OK)
            return rc;
    } else if (json_is_number(v) && json_number_value(v) >= 0 &&
               json_number_value(v) * 1024 < MAX_EXACT) {
        mib = (int64_t)ceil(json_number_value(v) * 1024); /* bare number: GiB (exact: ×2^10) */
    } else {
        return jm_err_set(err, JM_ERR_INVALID,
                          "memory: expected a size such as \"8G\" or a number of GiB >= 0");
    }
    *nv = json_integer(mib);
    return JM_OK;
}

static jm_rc_t norm_runtime(const json_t *v, json_t **nv, jm_err_t *err)
{
    int64_t sec;
    if (json_is_string(v)) {
        jm_rc_t rc = jm_res_parse_runtime(json_string_value(v), &sec, err);
        if (rc != JM_OK)
            return rc;
    } else if (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) < MAX_EXACT) {
        sec = (int64_t)ceil(json_number_value(v));
    } else {
        return jm_err_set(
            err, JM_ERR_INVALID,
            "runtime: expected a duration such as \"1h\" or a number of seconds >= 0");
    }
    *nv = json_integer(sec);
    return JM_OK;
}

static jm_rc_t norm_cores(const json_t *v, json_t **nv, jm_err_t *err)
{
    const char *s = json_string_value(v);
    double x = json_is_number(v) ? json_number_value(v) : -1;
    if (s && *s && strspn(s, "0123456789") == strlen(s) && strlen(s) < 10)
        x = (double)strtoll(s, NULL, 10);
    if (x < 0 || x != floor(x) || x >= MAX_EXACT)
        return jm_err_set(err, JM_ERR_INVALID, "cores: expected a whole number >= 0");
    *nv = json_integer((json_int_t)x);
    return JM_OK;
}

/* Canonical value of one key: a new reference in *nv. */
static jm_rc_t norm_value(const char *key, json_t *v, json_t **nv, jm_err_t *err)
{
    if (strcmp(key, "memory") == 0)
        return norm_memory(v, nv, err);
    if (strcmp(key, "runtime") == 0)
        return norm_runtime(v, nv, err);
    if (strcmp(key, "cores") == 0)
        return norm_cores(v, nv, err);
    if (strcmp(key, "queue") == 0 && !json_is_string(v))
        return jm_err_set(err, JM_ERR_INVALID, "queue: expected a string");
    *nv = json_incref(v);
    return JM_OK;
}

jm_rc_t jm_res_normalise(const json_t *in, json_t **out, jm_err_t *err)
{
    const char *key;
    json_t *v, *res = json_object();
    jm_rc_t rc = JM_OK;
    *out = NULL;
    if (!json_is_object(in)) {
        rc = jm_err_set(err, JM_ERR_INVALID, "resources: expected an object");
        goto out;
    }
    json_object_foreach((json_t *)in, key, v)
    {
        json_t *nv = NULL;
        if ((rc = norm_value(key, v, &nv, err)) != JM_OK)
            goto out;
        json_object_set_new(res, key, nv);
    }
    *out = res;
    res = NULL;
out:
    json_decref(res);
    return rc;
}
