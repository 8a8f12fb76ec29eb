/*
 * jobmon/pg.h — a PostgreSQL connection with jobmon's error classification.
 *
 * Every statement goes through jm_pg_exec(): text-format parameters only (never SQL pasted
 * together from values), and every failure is mapped to a jm_rc_t:
 *
 *   SQLSTATE                                          jm_rc_t             caller does
 *   40001 serialization, 40P01 deadlock,              JM_ERR_RETRY        roll back, back off,
 *   55P03 lock not available, 57014 query canceled                        retry the transaction
 *   class 08 (connection), 57P01..57P03 (shutdown),   JM_ERR_UNAVAILABLE  jm_pg_reconnect(), retry
 *   53300 too many connections, lost connection
 *   class 23 (integrity: unique, foreign key, ...)    JM_ERR_CONFLICT     the row changed under us
 *   class 22 (data exception: bad value for a type)   JM_ERR_INVALID      the input is bad
 *   42501 insufficient privilege, everything else     JM_ERR_INTERNAL     stop: a bug or a
 *                                                                         misconfigured role
 *
 * 42501 is deliberately JM_ERR_INTERNAL, not JM_ERR_INVALID: consumers dead-letter events that
 * fail with JM_ERR_INVALID, and a missing GRANT must stop them rather than dead-letter every
 * event.  It is not retriable either: waiting does not grant privileges.
 *
 * This module does not pool connections, prepare statements or know any table.
 */
#ifndef JOBMON_PG_H
#define JOBMON_PG_H

#include <libpq-fe.h>
#include <stdint.h>

#include "jobmon/common.h"

typedef struct jm_pg_s jm_pg_t;

/* Connect with `conninfo` (libpq keyword=value or URI; "" = libpq defaults and PG* variables).
 * `deadline_ms` is an absolute time on jm_time_mono_ms()'s clock until which failed attempts are
 * retried with jm_backoff_ms(); 0 means one attempt.  Each attempt is bounded by the time left
 * (connect_timeout, unless conninfo sets one).  Returns a new connection (caller destroys with
 * jm_pg_destroy), or NULL with JM_ERR_UNAVAILABLE and libpq's message in err. */
JM_WUR jm_pg_t *jm_pg_connect(const char *conninfo, int64_t deadline_ms, jm_err_t *err);

/* Close and free.  Accepts NULL. */
void jm_pg_destroy(jm_pg_t *pg);

/* The libpq connection, borrowed: valid until jm_pg_reconnect() or jm_pg_destroy().  For libpq
 * calls this module does not wrap (pipeline mode, COPY); do not PQfinish it. */
PGconn *jm_pg_conn(jm_pg_t *pg);

/* Drop the connection and connect again with the same conninfo (deadline as jm_pg_connect).  An
 * open transaction is lost.  JM_ERR_UNAVAILABLE on failure; pg stays usable for another try. */
JM_WUR jm_rc_t jm_pg_reconnect(jm_pg_t *pg, int64_t deadline_ms, jm_err_t *err);

/* The rc for a SQLSTATE (5 characters) as in the table above; NULL or malformed → INTERNAL.
 * Pure; exposed for tests. */
jm_rc_t jm_pg_sqlstate_rc(const char *sqlstate);

/* The rc for a result: JM_OK for a successful status (COMMAND_OK, TUPLES_OK, SINGLE_TUPLE, COPY_*,
 * PIPELINE_SYNC, EMPTY_QUERY), otherwise jm_pg_sqlstate_rc() of its SQLSTATE; no SQLSTATE (the
 * client detected the error) or a NULL result → JM_ERR_UNAVAILABLE if the connection is bad, else
 * JM_ERR_INTERNAL.  `res` and `conn` are borrowed; either may be NULL. */
jm_rc_t jm_pg_classify(const PGresult *res, PGconn *conn);

/* Run `sql` with `nparams` text parameters ($1..$n; a NULL element is SQL NULL), results in text
 * format.  On JM_OK, if `out` is not NULL it receives the result (caller owns it and must PQclear
 * it); on failure *out is set to NULL, the result is freed here, and err gets
 * "SQLSTATE: message".  Does not reconnect: after JM_ERR_UNAVAILABLE call jm_pg_reconnect() and
 * redo the whole transaction. */
JM_WUR jm_rc_t jm_pg_exec(jm_pg_t *pg, const char *sql, int nparams, const char *const *params,
                          PGresult **out, jm_err_t *err);
/* jm_pg_exec() through a statement prepared once per session under `name` (a string that
 * outlives pg; not starting with "jm_ap_", the FSM's own): no parse and plan on every call.
 * Prepared again after jm_pg_reconnect(); beyond 8 names it runs unprepared. */
JM_WUR jm_rc_t jm_pg_exec_prepared(jm_pg_t *pg, const char *name, const char *sql, int nparams,
                                   const char *const *params, PGresult **out, jm_err_t *err);
/* jm_pg_exec() of `sql` with one parameter: $1 = `id` in decimal. */
JM_WUR jm_rc_t jm_pg_exec_id(jm_pg_t *pg, const char *sql, int64_t id, PGresult **out,
                             jm_err_t *err);

/* BEGIN / COMMIT / ROLLBACK through jm_pg_exec().  A COMMIT that fails (e.g. 40001 at commit)
 * returns its classified rc; the transaction is then over.  COMMIT of a transaction in which a
 * statement had failed (PostgreSQL answers ROLLBACK) returns JM_ERR_INTERNAL: a caller bug. */
JM_WUR jm_rc_t jm_pg_begin(jm_pg_t *pg, jm_err_t *err);
JM_WUR jm_rc_t jm_pg_commit(jm_pg_t *pg, jm_err_t *err);
JM_WUR jm_rc_t jm_pg_rollback(jm_pg_t *pg, jm_err_t *err);

#endif
