/*
 * client_int.h — private structures of the client model (model.c, template.c, dag.c,
 * clusters.c, wffile.c, bind.c) and the stages of validation the bench times separately.
 * Not installed; libjobmon and its tests only.
 *
 * Memory layout (sized for 1.5M tasks / 10M edges): tasks live in fixed-size chunks (stable
 * handles, no per-task allocation); strings (names, argument values, plain commands) are
 * interned once in one arena; argument values are arrays of string ids; edges are (down, up)
 * pairs until validation turns them into two CSR adjacency arrays.  The only per-task map is
 * name -> index.
 */
#ifndef JOBMON_CLIENT_INT_H
#define JOBMON_CLIENT_INT_H

#include <jansson.h>
#include <stdint.h>

#include "jobmon/jobmon.h"

#define JM_NONE UINT32_MAX

/* Most tasks one workflow may hold (a test hook: the fuzzer lowers it). */
extern uint32_t jm_client_max_tasks;

/* ---- string interning (model.c) ---- */
typedef struct {
    char *buf; /* NUL-terminated strings back to back */
    size_t len, cap;
    size_t *off; /* id -> offset in buf */
    uint32_t n, cap_n;
    uint32_t *slots; /* open addressing: id + 1, 0 = empty */
    size_t n_slots;
} jm_strtab_t;

void jm_strtab_init(jm_strtab_t *st);
void jm_strtab_free(jm_strtab_t *st);
uint32_t jm_strtab_intern(jm_strtab_t *st, const char *s, size_t len);
/* Room for n strings in all without growing the hash table (the same size it would grow to). */
void jm_strtab_reserve(jm_strtab_t *st, size_t n);
static inline const char *jm_strtab_get(const jm_strtab_t *st, uint32_t id)
{
    return st->buf + st->off[id];
}

/* ---- defaults of one level ---- */
struct jm_defaults_s {
    char *cluster;           /* NULL = inherit */
    json_t *resources;       /* object or NULL */
    json_t *scales;          /* object or NULL */
    json_t *fallback_queues; /* array or NULL */
    int max_attempts;        /* 0 = inherit */
};
void jm_defaults_init(jm_defaults_t *d);
void jm_defaults_clear(jm_defaults_t *d);

/* ---- tools and templates (template.c) ---- */
typedef enum { JM_ARG_NODE = 1, JM_ARG_TASK = 2, JM_ARG_OP = 3 } jm_arg_kind_t;

typedef struct {
    size_t lit_off, lit_len; /* literal text before the placeholder, in tt->lits */
    int arg;                 /* index into args, -1 for the trailing literal */
} jm_segment_t;

struct jm_template_s {
    jm_tool_t *tool;
    char *name;
    char *command_template;
    size_t n_args; /* node args, then task args, then op args */
    size_t n_node, n_task, n_op;
    char **args;
    char *lits; /* unescaped literal text */
    size_t lit_total;
    jm_segment_t *seg;
    size_t n_seg;
    jm_hash_t hash;
    jm_defaults_t defaults;
    int64_t max_concurrently_running;
};

struct jm_tool_s {
    char *name;
    jm_template_t **tmpls;
    size_t n_tmpls, cap_tmpls;
    jm_defaults_t defaults;
};

/* Index of `name` among tt's args, or -1. */
int jm_template_arg_index(const jm_template_t *tt, const char *name);
jm_arg_kind_t jm_template_arg_kind(const jm_template_t *tt, size_t i);
/* Rendered length / rendering of a command from values indexed like tt->args. */
size_t jm_template_render_len(const jm_template_t *tt, const char *const *values);
void jm_template_render(const jm_template_t *tt, const char *const *values, char *out);
/* Default task name `<prefix>_<k>-<v>…` over node args, sanitised, truncated, into out (size
 * >= JM_TASK_NAME_DEFAULT_MAX + 1). */
void jm_template_default_name(const jm_template_t *tt, const char *prefix,
                              const char *const *values, char *out);
/* Name rule of §1.5 (tasks and templates).  JM_ERR_INVALID with "<what> ...". */
jm_rc_t jm_name_check(const char *name, const char *what, jm_err_t *err);
/* 1 when no two tasks of wf have the same name (explicit or default). */
int jm_workflow_names_unique(jm_workflow_t *wf);
/* jm_workflow_add_task with the task's name given (checked by the caller with jm_name_check), so
 * that its default name is not made for nothing; NULL = the default name. */
jm_task_t *jm_workflow_add_task_named(jm_workflow_t *wf, jm_template_t *tt, const jm_kv_t *args,
                                      size_t n, const char *name, jm_err_t *err);

/* ---- tasks, arrays, workflow (model.c) ---- */
struct jm_task_s {
    jm_workflow_t *wf;
    uint32_t idx;
    uint32_t tmpl;     /* index into wf->tmpls, JM_NONE for a plain command */
    uint32_t arr;      /* index into wf->arrays, JM_NONE if none */
    uint32_t name;     /* string id */
    uint64_t args;     /* offset into wf->argv; for a plain command: string id of the command */
    uint32_t defaults; /* index into wf->task_defaults, JM_NONE if none */
    uint32_t settings; /* resolved settings index (valid after validation) */
    jm_hash_t node, hash;
    int64_t id;
};

struct jm_array_s {
    jm_workflow_t *wf;
    uint32_t idx, tmpl;
    uint32_t first, count; /* tasks first .. first+count-1 */
    jm_defaults_t defaults;
};

/* Effective settings after precedence, normalisation and queue coercion. */
typedef struct {
    char *cluster;
    json_t *resources; /* queue + normalised values */
    json_t *scales;
    json_t *fallback_queues;
    int max_attempts;
    size_t json_len; /* compact JSON length of resources + scales + fallback + cluster */
} jm_settings_t;

#define JM_TASK_CHUNK_BITS 12
#define JM_TASK_CHUNK      (1u << JM_TASK_CHUNK_BITS)

struct jm_workflow_s {
    jm_tool_t *tool;
    int owns_tool;
    char *args;
    char *name;
    int64_t max_concurrently_running;
    json_t *attributes;
    jm_defaults_t defaults;
    jm_strtab_t strs;

    jm_template_t **tmpls; /* templates used by tasks, in first-use order */
    uint32_t n_tmpls, cap_tmpls;

    jm_task_t **chunks;
    uint32_t n_tasks, n_chunks;
    uint32_t *argv;
    uint64_t n_argv, cap_argv;
    uint32_t *edges; /* pairs (down, up) */
    uint64_t n_edges, cap_edges;
    jm_array_t **arrays;
    uint32_t n_arrays, cap_arrays;
    jm_defaults_t **task_defaults;
    uint32_t n_task_defaults, cap_task_defaults;

    uint32_t *name_slots; /* task idx + 1, high bit = ambiguous; 0 = empty */
    size_t n_name_slots;
    int names_dirty;

    /* results of validation */
    int valid;
    uint32_t *up_off, *up;     /* CSR: upstream tasks of each task */
    uint32_t *down_off, *down; /* CSR: downstream tasks */
    uint32_t *topo;            /* a topological order */
    jm_settings_t *settings;
    uint32_t n_settings, cap_settings;
    jm_hash_t args_hash, task_set_hash, dag_hash;
    int64_t id;
    int64_t *array_ids; /* per template index */
};

static inline jm_task_t *jm_wf_task(const jm_workflow_t *wf, uint32_t i)
{
    return &wf->chunks[i >> JM_TASK_CHUNK_BITS][i & (JM_TASK_CHUNK - 1)];
}
static inline const char *jm_wf_str(const jm_workflow_t *wf, uint32_t id)
{
    return jm_strtab_get(&wf->strs, id);
}
void jm_workflow_invalidate(jm_workflow_t *wf);
/* Task index by name; JM_NONE when unknown; *ambiguous set when several tasks share it. */
uint32_t jm_workflow_lookup(jm_workflow_t *wf, const char *name, int *ambiguous);
/* Values of a templated task's args as a borrowed pointer array (`vals` has tt->n_args). */
void jm_task_values(const jm_task_t *t, const char **vals);
const jm_template_t *jm_task_template(const jm_task_t *t);
/* Add a (down, up) edge by index. */
void jm_workflow_edge(jm_workflow_t *wf, uint32_t down, uint32_t up);

/* ---- clusters.c ---- */
/* Merge levels into `out` (tool lowest … task highest; NULL levels skipped), normalise units,
 * check cluster and queue, coerce to the queue limits (one warning naming `who`). */
jm_rc_t jm_settings_resolve(jm_settings_t *out, const jm_defaults_t *const *levels, size_t n,
                            const char *who, jm_err_t *err);
void jm_settings_free(jm_settings_t *s);
/* Check a cluster name exists.  JM_ERR_INVALID otherwise. */
jm_rc_t jm_cluster_check(const char *cluster, jm_err_t *err);

/* ---- bind.c ---- */
/* The next bind event already encoded, like jm_bind_next_event (same events, equal JSON) but
 * chunks are written without jansson and validated as the file comment of bind.c says.  JM_OK
 * with *out a new buffer (caller frees; NUL-terminated, *len without the NUL) and *type, or with
 * *out NULL at the end; JM_ERR_INVALID for a task the catalogue refuses (nothing to send). */
jm_rc_t jm_bind_next_encoded(jm_bind_iter_t *it, char **out, size_t *len, jm_event_type_t *type,
                             jm_err_t *err);

/* ---- dag.c: validation stages (each requires the previous) ---- */
jm_rc_t jm_workflow_check_structure(jm_workflow_t *wf, jm_err_t *err);  /* CSR, cycles, limits */
jm_rc_t jm_workflow_compute_identity(jm_workflow_t *wf, jm_err_t *err); /* hashes, duplicates */
jm_rc_t jm_workflow_resolve_settings(jm_workflow_t *wf, jm_err_t *err);

#endif
