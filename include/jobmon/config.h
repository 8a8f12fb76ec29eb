/*
 * jobmon/config.h — the configuration of every jobmon program.
 *
 * One option table (src/common/config.c) lists every key as "section.key" with its type, default
 * and help.  Each key has up to four layers; the highest one that is set wins:
 *
 *   code     jm_config_set(cfg, "kafka.brokers", "h:9092")   (the CLI's --set)
 *   env      JOBMON_<SECTION>_<KEY>, upper-case, e.g. JOBMON_KAFKA_BROKERS, JOBMON_REDIS_PORT
 *   file     libconfuse syntax:  kafka { brokers = "127.0.0.1:19092" }
 *   default  the table
 *
 * The file is the first of: the explicit path given to jm_config_load() (the CLI's --config),
 * $JOBMON_CONFIG, $HOME/.config/jobmon/jobmon.conf, /etc/jobmon/jobmon.conf.  An explicit path or
 * $JOBMON_CONFIG that does not exist is an error; a missing user or system file is skipped.
 * JOBMON_CONFIG=/dev/null therefore means "no file".  In the file, libconfuse expands ${VAR} in
 * bare and double-quoted strings; single-quoted strings are literal (use them for passwords).
 *
 * Values given as text (env, code) are parsed and checked like file values: int = decimal
 * integer, float = decimal number, bool = true/false/yes/no/on/off/1/0, list = comma-separated
 * items (the file uses libconfuse's {"a", "b"}).  Numbers are range-checked against the table.
 *
 * Asking a getter for a key that is not in the table, or for the wrong type, is a programming
 * error (JM_ASSERT).  Keys given at run time (jm_config_set) are validated instead.
 */
#ifndef JOBMON_CONFIG_H
#define JOBMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "jobmon/common.h"

typedef struct jm_config_s jm_config_t;

typedef enum {
    JM_CONFIG_STR = 0,
    JM_CONFIG_INT,
    JM_CONFIG_FLOAT,
    JM_CONFIG_BOOL,
    JM_CONFIG_LIST, /* list of strings */
    JM_CONFIG_TYPE__CNT
} jm_config_type_t;

/* Where an effective value came from, lowest precedence first. */
typedef enum {
    JM_CONFIG_SRC_DEFAULT = 0,
    JM_CONFIG_SRC_FILE,
    JM_CONFIG_SRC_ENV,
    JM_CONFIG_SRC_CODE,
    JM_CONFIG_SRC__CNT
} jm_config_source_t;

/* A new configuration holding the defaults only (no file, no environment); caller destroys with
 * jm_config_destroy().  Never NULL. */
jm_config_t *jm_config_new(void);

/* Free cfg and everything it owns.  Accepts NULL. */
void jm_config_destroy(jm_config_t *cfg);

/* (Re)read the file and environment layers: the file is `path` when not NULL, else the search
 * described above; then every JOBMON_<SECTION>_<KEY> variable.  Previous file/env values are
 * dropped; values set in code are kept.  On failure the file and env layers are left empty and
 * err names the culprit:
 *   JM_ERR_NOT_FOUND  explicit path / $JOBMON_CONFIG missing
 *   JM_ERR_IO         the file exists but cannot be read
 *   JM_ERR_INVALID    syntax error, unknown key or bad value in the file ("file:line: ..."),
 *                     or a bad value in an environment variable (the message names it). */
JM_WUR jm_rc_t jm_config_load(jm_config_t *cfg, const char *path, jm_err_t *err);

/* Set `key` ("section.key") in the code layer from its text form (see above for the syntax of
 * each type).  JM_ERR_INVALID if the key is unknown or the value does not parse or is out of
 * range; cfg is unchanged then.  `value` is copied. */
JM_WUR jm_rc_t jm_config_set(jm_config_t *cfg, const char *key, const char *value, jm_err_t *err);

/* Parse "section.key=value" (the CLI's --set) and call jm_config_set(). */
JM_WUR jm_rc_t jm_config_set_assignment(jm_config_t *cfg, const char *assignment, jm_err_t *err);

/* Effective values.  The key must exist and have the matching type (else JM_ASSERT).
 * Strings are borrowed: valid until the next jm_config_load/jm_config_set on cfg or its
 * destruction. */
const char *jm_config_str(const jm_config_t *cfg, const char *key);
int64_t jm_config_int(const jm_config_t *cfg, const char *key);
double jm_config_float(const jm_config_t *cfg, const char *key);
int jm_config_bool(const jm_config_t *cfg, const char *key);
/* NULL-terminated array of items, *n (if n) receives the count.  Borrowed like strings. */
const char *const *jm_config_list(const jm_config_t *cfg, const char *key, size_t *n);

/* Which layer the effective value of `key` came from (key must exist). */
jm_config_source_t jm_config_source(const jm_config_t *cfg, const char *key);
/* Static name of a source: "default", "file", "env", "code".  Never NULL. */
const char *jm_config_source_name(jm_config_source_t src);
/* Detail of the source of `key`: the file path for FILE, the variable name for ENV, NULL for
 * DEFAULT and CODE.  Borrowed like strings. */
const char *jm_config_origin(const jm_config_t *cfg, const char *key);
/* Path of the file the last successful jm_config_load() read, or NULL.  Borrowed. */
const char *jm_config_file(const jm_config_t *cfg);

/* Iteration over the option table, in table order: for (i = 0; i < jm_config_count(); i++). */
size_t jm_config_count(void);
/* Static "section.key" of entry i (i < jm_config_count(), else JM_ASSERT). */
const char *jm_config_key_at(size_t i);
/* $name as a number >= 0 (tuning knobs outside the configuration file), else `def`. */
int jm_env_int(const char *name, int def);
/* Type and one-line help of a key (key must exist).  Help is static. */
jm_config_type_t jm_config_type(const char *key);
const char *jm_config_help(const char *key);
/* Static type name: "string", "int", "float", "bool", "list". */
const char *jm_config_type_name(jm_config_type_t type);

/* The effective value of `key` as text, secrets masked (password=*** in conninfo strings and
 * in list items whose key mentions password/secret).  Returns a new string, caller frees. */
char *jm_config_display(const jm_config_t *cfg, const char *key);

/* Print every effective value with its source to `out`:
 *   text:  kafka.brokers = 127.0.0.1:19092  (file /etc/jobmon/jobmon.conf)
 *   json:  {"kafka.brokers": {"value": "...", "source": "file", "origin": "/etc/..."}, ...}
 * Secrets are masked as in jm_config_display().  JM_ERR_IO if writing fails. */
JM_WUR jm_rc_t jm_config_show(const jm_config_t *cfg, FILE *out, int json, jm_err_t *err);

#endif
