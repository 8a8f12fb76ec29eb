/*
 * hash.c — content hashes and derived ids (XXH3-128) that give jobmon's entities their identity.
 *
 * Framing: every hash starts with one tag byte naming what is hashed, then its fields in order.
 * A string is its 64-bit little-endian length followed by its bytes; a list is its 64-bit
 * little-endian count followed by its items; a hash is 16 bytes (hi then lo, each little-endian);
 * an integer is 8 bytes little-endian.  Changing any of this changes every id in every database,
 * so the known-answer tests in tests/check_hash.c pin the results.
 *
 * Deliberately not here: arg-id lookups (Jobmon hashes database arg ids; we hash names, so
 * identity does not depend on server-assigned ids) and any I/O.
 */
#define XXH_STATIC_LINKING_ONLY
#include "jobmon/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* Tag bytes: one per kind of hash, never reused. */
enum {
    TAG_TEMPLATE_VERSION = 'V',
    TAG_NODE = 'N',
    TAG_TASK = 'T',
    TAG_TASK_SET = 'S',
    TAG_DAG = 'G',
    TAG_WORKFLOW_ARGS = 'A',
    TAG_WORKFLOW_ID = 'W',
    TAG_TASK_ID = 'K',
    TAG_ARRAY_ID = 'Y',
    TAG_TI_ID = 'I',
};

struct jm_dag_hasher_s {
    XXH3_state_t *st;
    jm_hash_t last;
    int have_last;
};

/* ---- framing primitives ------------------------------------------------------------------ */

static void put_bytes(XXH3_state_t *st, const void *p, size_t n)
{
    if (n > 0)
        JM_ASSERT(XXH3_128bits_update(st, p, n) == XXH_OK);
}

static void put_u64(XXH3_state_t *st, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    put_bytes(st, b, sizeof(b));
}

static void put_tag(XXH3_state_t *st, unsigned char tag)
{
    put_bytes(st, &tag, 1);
}

static void put_str(XXH3_state_t *st, const char *s)
{
    JM_ASSERT(s != NULL);
    size_t n = strlen(s);
    put_u64(st, (uint64_t)n);
    put_bytes(st, s, n);
}

static void put_hash(XXH3_state_t *st, jm_hash_t h)
{
    put_u64(st, h.hi);
    put_u64(st, h.lo);
}

static void begin(XXH3_state_t *st, unsigned char tag)
{
    JM_ASSERT(XXH3_128bits_reset(st) == XXH_OK);
    put_tag(st, tag);
}

static jm_hash_t finish(const XXH3_state_t *st)
{
    XXH128_hash_t d = XXH3_128bits_digest(st);
    return (jm_hash_t){.hi = d.high64, .lo = d.low64};
}

/* ---- sorting helpers --------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_kv(const void *a, const void *b)
{
    const jm_kv_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static int cmp_hash_void(const void *a, const void *b)
{
    return jm_hash_cmp(a, b);
}

/* Hash a list of strings sorted (on a copy): count, then each string. */
static void put_sorted_strs(XXH3_state_t *st, const char *const *v, size_t n)
{
    put_u64(st, (uint64_t)n);
    if (n == 0)
        return;
    const char **copy = jm_malloc(n * sizeof(*copy));
    for (size_t i = 0; i < n; i++) {
        JM_ASSERT(v[i] != NULL);
        copy[i] = v[i];
    }
    qsort(copy, n, sizeof(*copy), cmp_str);
    for (size_t i = 0; i < n; i++)
        put_str(st, copy[i]);
    free(copy);
}

/* Hash (name, value) pairs sorted by name then value (on a copy): count, then name, value. */
static void put_sorted_kvs(XXH3_state_t *st, const jm_kv_t *kv, size_t n)
{
    put_u64(st, (uint64_t)n);
    if (n == 0)
        return;
    jm_kv_t *copy = jm_malloc(n * sizeof(*copy));
    for (size_t i = 0; i < n; i++) {
        JM_ASSERT(kv[i].name != NULL && kv[i].value != NULL);
        copy[i] = kv[i];
    }
    qsort(copy, n, sizeof(*copy), cmp_kv);
    for (size_t i = 0; i < n; i++) {
        put_str(st, copy[i].name);
        put_str(st, copy[i].value);
    }
    free(copy);
}

/* Sort hashes in place and put count, then each hash. */
static void put_sorted_hashes(XXH3_state_t *st, jm_hash_t *h, size_t n)
{
    put_u64(st, (uint64_t)n);
    if (n == 0)
        return;
    qsort(h, n, sizeof(*h), cmp_hash_void);
    for (size_t i = 0; i < n; i++)
        put_hash(st, h[i]);
}

/* ---- hash values ------------------------------------------------------------------------- */

void jm_hash_hex(jm_hash_t h, char out[JM_HASH_HEX_LEN + 1])
{
    snprintf(out, JM_HASH_HEX_LEN + 1, "%016llx%016llx", (unsigned long long)h.hi,
             (unsigned long long)h.lo);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

jm_rc_t jm_hash_parse_hex(const char *s, jm_hash_t *out)
{
    uint64_t w[2] = {0, 0};
    if (!s || strlen(s) != JM_HASH_HEX_LEN)
        return JM_ERR_INVALID;
    for (size_t i = 0; i < JM_HASH_HEX_LEN; i++) {
        int d = hex_digit(s[i]);
        if (d < 0)
            return JM_ERR_INVALID;
        w[i / 16] = (w[i / 16] << 4) | (uint64_t)d;
    }
    out->hi = w[0];
    out->lo = w[1];
    return JM_OK;
}

int jm_hash_eq(jm_hash_t a, jm_hash_t b)
{
    return a.hi == b.hi && a.lo == b.lo;
}

int jm_hash_cmp(const jm_hash_t *a, const jm_hash_t *b)
{
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return 0;
}

int64_t jm_hash_to_id(jm_hash_t h)
{
    int64_t id = (int64_t)(h.lo & (uint64_t)INT64_MAX);
    return id == 0 ? 1 : id;
}

/* ---- identity hashes --------------------------------------------------------------------- */

jm_hash_t jm_hash_template_version(const char *template_name, const char *command_template,
                                   const char *const *node_args, size_t n_node,
                                   const char *const *task_args, size_t n_task,
                                   const char *const *op_args, size_t n_op)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    begin(&st, TAG_TEMPLATE_VERSION);
    put_str(&st, template_name);
    put_str(&st, command_template);
    put_sorted_strs(&st, node_args, n_node);
    put_sorted_strs(&st, task_args, n_task);
    put_sorted_strs(&st, op_args, n_op);
    return finish(&st);
}

/* (tag, the parent's hash, sorted key/value args). */
static jm_hash_t hash_with_args(unsigned char tag, jm_hash_t parent, const jm_kv_t *args, size_t n)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    begin(&st, tag);
    put_hash(&st, parent);
    put_sorted_kvs(&st, args, n);
    return finish(&st);
}

jm_hash_t jm_hash_node(jm_hash_t template_version, const jm_kv_t *node_args, size_t n)
{
    return hash_with_args(TAG_NODE, template_version, node_args, n);
}

jm_hash_t jm_hash_task(jm_hash_t node, const jm_kv_t *task_args, size_t n)
{
    return hash_with_args(TAG_TASK, node, task_args, n);
}

jm_hash_t jm_hash_command_template_version(void)
{
    static const char *const node_args[] = {JM_HASH_COMMAND_ARG};
    return jm_hash_template_version(JM_HASH_COMMAND_TEMPLATE, "{" JM_HASH_COMMAND_ARG "}",
                                    node_args, 1, NULL, 0, NULL, 0);
}

jm_hash_t jm_hash_command_node(const char *command)
{
    jm_kv_t arg = {JM_HASH_COMMAND_ARG, command};
    return jm_hash_node(jm_hash_command_template_version(), &arg, 1);
}

jm_hash_t jm_hash_command_task(const char *command)
{
    return jm_hash_task(jm_hash_command_node(command), NULL, 0);
}

jm_hash_t jm_hash_workflow_args(const char *workflow_args)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    begin(&st, TAG_WORKFLOW_ARGS);
    put_str(&st, workflow_args);
    return finish(&st);
}

jm_hash_t jm_hash_task_set(jm_hash_t *tasks, size_t n)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    begin(&st, TAG_TASK_SET);
    put_sorted_hashes(&st, tasks, n);
    return finish(&st);
}

/* ---- dag --------------------------------------------------------------------------------- */

jm_dag_hasher_t *jm_dag_hasher_new(void)
{
    jm_dag_hasher_t *dh = jm_calloc(1, sizeof(*dh));
    dh->st = XXH3_createState();
    JM_ASSERT(dh->st != NULL);
    begin(dh->st, TAG_DAG);
    return dh;
}

jm_rc_t jm_dag_hasher_add(jm_dag_hasher_t *dh, jm_hash_t node, jm_hash_t *downstream, size_t n)
{
    if (dh->have_last && jm_hash_cmp(&dh->last, &node) >= 0)
        return JM_ERR_INVALID;
    dh->last = node;
    dh->have_last = 1;
    put_hash(dh->st, node);
    put_sorted_hashes(dh->st, downstream, n);
    return JM_OK;
}

jm_hash_t jm_dag_hasher_digest(const jm_dag_hasher_t *dh)
{
    return finish(dh->st);
}

void jm_dag_hasher_destroy(jm_dag_hasher_t *dh)
{
    if (!dh)
        return;
    XXH3_freeState(dh->st);
    free(dh);
}

/* ---- ids --------------------------------------------------------------------------------- */

int64_t jm_hash_workflow_id(const char *tool, jm_hash_t workflow_args, jm_hash_t task_set,
                            jm_hash_t dag)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    begin(&st, TAG_WORKFLOW_ID);
    put_str(&st, tool);
    put_hash(&st, workflow_args);
    put_hash(&st, task_set);
    put_hash(&st, dag);
    return jm_hash_to_id(finish(&st));
}

/* The id of something in a workflow: (tag, workflow id, its hash). */
static int64_t workflow_member_id(unsigned char tag, int64_t workflow_id, jm_hash_t h)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    begin(&st, tag);
    put_u64(&st, (uint64_t)workflow_id);
    put_hash(&st, h);
    return jm_hash_to_id(finish(&st));
}

int64_t jm_hash_task_id(int64_t workflow_id, jm_hash_t task)
{
    return workflow_member_id(TAG_TASK_ID, workflow_id, task);
}

int64_t jm_hash_array_id(int64_t workflow_id, jm_hash_t template_version)
{
    return workflow_member_id(TAG_ARRAY_ID, workflow_id, template_version);
}

int64_t jm_hash_ti_id(int64_t task_id, int attempt)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    begin(&st, TAG_TI_ID);
    put_u64(&st, (uint64_t)task_id);
    put_u64(&st, (uint64_t)(int64_t)attempt);
    return jm_hash_to_id(finish(&st));
}
