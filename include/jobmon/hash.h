/*
 * jobmon/hash.h — content hashes that give jobmon's entities their identity.
 *
 * Built on XXH3-128 (libxxhash).  Every input is framed (a tag byte, then each string as its
 * 64-bit little-endian length followed by its bytes), so ("ab","c") and ("a","bc") differ and
 * results are identical on every machine and every run.  Ids are the low 63 bits of a hash
 * (0 mapped to 1), so they are positive int64 values usable as PostgreSQL BIGINT keys.
 *
 * What feeds each hash (the identity rules of Jobmon, §1.3 of the behaviour reference):
 *   template version = H(template name, command_template, sorted node args, sorted task args,
 *                        sorted op args)
 *   node             = H(template version, node args as sorted (name, value) pairs)
 *   task             = H(node, task args as sorted (name, value) pairs)
 *                      (a plain-command task: H(node of the "command" pseudo-template, command))
 *   task set         = H(sorted task hashes)
 *   dag              = H(for each node in sorted order: node, then its sorted downstream nodes)
 *   workflow args    = H(workflow_args string)
 *   workflow id      = id(H(tool name, workflow args hash, task set hash, dag hash))
 *   task id          = id(H(workflow id, task hash))
 *   array id         = id(H(workflow id, template version))
 *   task instance id = id(H(task id, attempt))
 * op args never enter a hash: changing them on resume rewrites the command only.
 *
 * All functions are pure and thread-safe; strings must be non-NULL (NULL aborts via JM_ASSERT).
 * Framing details: a tag byte per kind of hash; lists are framed by their 64-bit LE count;
 * hashes enter as 16 bytes (hi then lo, each LE); integers as 8 bytes LE.  Hex is hi then lo.
 */
#ifndef JOBMON_HASH_H
#define JOBMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "jobmon/common.h"

typedef struct {
    uint64_t hi, lo;
} jm_hash_t;

#define JM_HASH_HEX_LEN 32

/* Write the 32 lower-case hex chars plus NUL into out. */
void jm_hash_hex(jm_hash_t h, char out[JM_HASH_HEX_LEN + 1]);
/* Parse exactly 32 hex chars.  JM_ERR_INVALID otherwise. */
jm_rc_t jm_hash_parse_hex(const char *s, jm_hash_t *out);
int jm_hash_eq(jm_hash_t a, jm_hash_t b);
/* Total order (for sorting). */
int jm_hash_cmp(const jm_hash_t *a, const jm_hash_t *b);
/* Low 63 bits as a positive id (0 becomes 1). */
int64_t jm_hash_to_id(jm_hash_t h);

/* A (name, value) pair of arguments; arrays of these are sorted by name internally (on a copy). */
typedef struct {
    const char *name;
    const char *value;
} jm_kv_t;

jm_hash_t jm_hash_template_version(const char *template_name, const char *command_template,
                                   const char *const *node_args, size_t n_node,
                                   const char *const *task_args, size_t n_task,
                                   const char *const *op_args, size_t n_op);
jm_hash_t jm_hash_node(jm_hash_t template_version, const jm_kv_t *node_args, size_t n);
jm_hash_t jm_hash_task(jm_hash_t node, const jm_kv_t *task_args, size_t n);
/* The "command" pseudo-template for plain-command tasks: template name "command", command
 * template "{command}", one node arg "command".  A plain-command task's node is that template's
 * node with command=<command> (so each distinct command is its own dag node), and its task hash
 * is that node with no task args. */
#define JM_HASH_COMMAND_TEMPLATE "command"
#define JM_HASH_COMMAND_ARG      "command"
jm_hash_t jm_hash_command_template_version(void);
jm_hash_t jm_hash_command_node(const char *command);
jm_hash_t jm_hash_command_task(const char *command);
jm_hash_t jm_hash_workflow_args(const char *workflow_args);
/* Sorts `tasks` in place. */
jm_hash_t jm_hash_task_set(jm_hash_t *tasks, size_t n);

/* Streaming dag hash: add nodes in ascending jm_hash_cmp order, each with its downstream node
 * hashes (sorted in place).  Returns JM_ERR_INVALID if nodes arrive out of order. */
typedef struct jm_dag_hasher_s jm_dag_hasher_t;
jm_dag_hasher_t *jm_dag_hasher_new(void); /* caller destroys */
jm_rc_t jm_dag_hasher_add(jm_dag_hasher_t *dh, jm_hash_t node, jm_hash_t *downstream, size_t n);
jm_hash_t jm_dag_hasher_digest(const jm_dag_hasher_t *dh);
void jm_dag_hasher_destroy(jm_dag_hasher_t *dh); /* accepts NULL */

int64_t jm_hash_workflow_id(const char *tool, jm_hash_t workflow_args, jm_hash_t task_set,
                            jm_hash_t dag);
int64_t jm_hash_task_id(int64_t workflow_id, jm_hash_t task);
int64_t jm_hash_array_id(int64_t workflow_id, jm_hash_t template_version);
int64_t jm_hash_ti_id(int64_t task_id, int attempt);

#endif
