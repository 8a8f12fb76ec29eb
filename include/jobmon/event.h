/*
 * jobmon/event.h — the event envelope and its strict JSON codec.
 *
 * Every state change in jobmon is one event (schemas/events/README.md is the contract).  This
 * module builds events, encodes them to compact JSON and decodes/validates received bytes
 * against one table of payload rules per type (src/producer/event_spec.c).  It does not talk
 * to Kafka (see producer.h) and does not interpret payloads (the FSM does).
 */
#ifndef JOBMON_EVENT_H
#define JOBMON_EVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jobmon/common.h"

#define JM_EVENT_VERSION   1
#define JM_EVENT_MAX_BYTES (1024 * 1024) /* decode refuses larger input */
#define JM_EVENT_MAX_DEPTH 16            /* decode refuses deeper nesting of [ and { */
#define JM_EVENT_TOPIC     "jobmon.events"
#define JM_EVENT_DLQ_TOPIC "jobmon.dlq"

/* Every event type of the catalogue, in catalogue order. */
typedef enum {
    /* client */
    JM_EV_WORKFLOW_BIND = 0,
    JM_EV_WORKFLOW_BIND_TASKS,
    JM_EV_WORKFLOW_BOUND,
    JM_EV_RUN_START,
    JM_EV_RUN_STOP,
    JM_EV_WORKFLOW_RESUME,
    JM_EV_WORKFLOW_RESET,
    JM_EV_WORKFLOW_CONCURRENCY,
    JM_EV_TASK_SET_STATUS,
    JM_EV_WORKFLOW_PRUNE,
    /* distributor */
    JM_EV_RUN_STATUS,
    JM_EV_RUN_HEARTBEAT,
    JM_EV_TI_INSTANTIATED,
    JM_EV_TI_LAUNCHED,
    JM_EV_TI_SUBMIT_FAILED,
    JM_EV_TI_LAUNCH_HEARTBEAT,
    JM_EV_TI_KILLED,
    JM_EV_TI_TRIAGED,
    JM_EV_TI_REPORTS,
    /* worker */
    JM_EV_TI_RUNNING,
    JM_EV_TI_HEARTBEAT,
    JM_EV_TI_DONE,
    JM_EV_TI_ERROR,
    /* reaper */
    JM_EV_REAPER_OVERDUE,
    JM_EV_REAPER_RUN_LOST,
    JM_EV_REAPER_RUN_TIMEOUT,
    JM_EV__CNT
} jm_event_type_t;

/* Who published an event (envelope field producer.kind). */
typedef enum {
    JM_PRODUCER_CLIENT = 0,
    JM_PRODUCER_DISTRIBUTOR,
    JM_PRODUCER_WORKER,
    JM_PRODUCER_REAPER,
    JM_PRODUCER_FSM,
    JM_PRODUCER__CNT
} jm_producer_kind_t;

/* Why decoding failed: a stable kind for tests, metrics and the DLQ `reason` header. */
typedef enum {
    JM_EVE_NONE = 0,      /* no error */
    JM_EVE_TOO_LARGE,     /* input over JM_EVENT_MAX_BYTES */
    JM_EVE_TOO_DEEP,      /* nesting over JM_EVENT_MAX_DEPTH */
    JM_EVE_SYNTAX,        /* not JSON */
    JM_EVE_TRAILING,      /* bytes after the JSON value */
    JM_EVE_UTF8,          /* invalid UTF-8 */
    JM_EVE_DUPLICATE,     /* duplicate object key */
    JM_EVE_UNKNOWN_TYPE,  /* `type` is not in the catalogue */
    JM_EVE_VERSION,       /* `v` is not JM_EVENT_VERSION */
    JM_EVE_MISSING,       /* required field absent */
    JM_EVE_UNKNOWN_FIELD, /* field not in the spec */
    JM_EVE_WRONG_TYPE,    /* JSON type differs from the spec */
    JM_EVE_TOO_LONG,      /* string over its byte limit */
    JM_EVE_TOO_SHORT,     /* string under its minimum (e.g. an empty name) */
    JM_EVE_RANGE,         /* number outside its range (incl. int64 overflow) */
    JM_EVE_TOO_MANY,      /* array/object with too many entries, or too big */
    JM_EVE_TOO_FEW,       /* array with too few items */
    JM_EVE_BAD_UUID,      /* malformed event id */
    JM_EVE_BAD_TIMESTAMP, /* malformed `ts` */
    JM_EVE_BAD_HASH,      /* not 32 lower-case hex chars */
    JM_EVE_BAD_VALUE,     /* string not in its allowed set (status letter, enum) */
    JM_EVE__CNT
} jm_event_error_t;

/* One event.  Fields are public: producers fill them via jm_event_new, consumers read them. */
typedef struct jm_event_s {
    int version;                      /* JM_EVENT_VERSION */
    char id[37];                      /* lower-case UUID, the dedup key */
    jm_event_type_t type;             /* */
    jm_producer_kind_t producer_kind; /* */
    char producer_host[256];          /* <= 255 bytes */
    int32_t producer_pid;             /* 0 .. 2^31-1 */
    int64_t ts_ms;                    /* epoch milliseconds (UTC) */
    int64_t workflow_id;              /* 1 .. 2^63-1, the partition key */
    json_t *payload;                  /* owned object; validated by decode */
} jm_event_t;

/* Static catalogue name ("ti.done"), or "?" when out of range.  Never NULL. */
const char *jm_event_type_name(jm_event_type_t type);
/* Catalogue name to type.  JM_ERR_NOT_FOUND when unknown (out untouched). */
jm_rc_t jm_event_type_parse(const char *name, jm_event_type_t *out) JM_WUR;
/* Static producer kind name ("worker"), or "?" when out of range. */
const char *jm_producer_kind_name(jm_producer_kind_t kind);
/* Producer kind name to enum.  JM_ERR_NOT_FOUND when unknown. */
jm_rc_t jm_producer_kind_parse(const char *name, jm_producer_kind_t *out) JM_WUR;
/* Static short name of an error kind ("missing", "utf8", ...), "?" when out of range. */
const char *jm_event_error_name(jm_event_error_t kind);
/* Error kind by its short name.  JM_ERR_NOT_FOUND when unknown. */
jm_rc_t jm_event_error_parse(const char *name, jm_event_error_t *out) JM_WUR;

/* Set the process-wide producer identity (kind; host from gethostname; pid from getpid) that
 * jm_event_new stamps on events.  Call once at start-up, before threads; default is client. */
void jm_event_set_producer(jm_producer_kind_t kind);

/* A new event with a fresh random id, ts = now and the process producer identity.
 * Takes ownership of `payload` (a JSON object, may be NULL for an empty object) in every case.
 * Returns a new event, caller destroys.  Does not validate: see jm_event_validate. */
jm_event_t *jm_event_new(jm_event_type_t type, int64_t workflow_id, json_t *payload);
/* Free an event and its payload.  Accepts NULL. */
void jm_event_destroy(jm_event_t *ev);

/* Check every field of `ev` (envelope and payload) against the catalogue rules.
 * JM_ERR_INVALID with a message naming the JSON path when not valid; `kind` (may be NULL)
 * receives the error kind. */
jm_rc_t jm_event_validate(const jm_event_t *ev, jm_event_error_t *kind, jm_err_t *err) JM_WUR;

/* Strictly decode `len` bytes (need not be NUL-terminated).  On success *out is a new event
 * (caller destroys).  On failure returns JM_ERR_INVALID, *out is NULL and `err` holds a message
 * naming the JSON path, e.g. "payload.items[3].ti_id: missing". */
jm_rc_t jm_event_decode(const void *buf, size_t len, jm_event_t **out, jm_err_t *err) JM_WUR;
/* As jm_event_decode, and `kind` (may be NULL) receives the error kind (JM_EVE_NONE on
 * success). */
jm_rc_t jm_event_decode_ex(const void *buf, size_t len, jm_event_t **out, jm_event_error_t *kind,
                           jm_err_t *err) JM_WUR;

/* Compact JSON of `ev` (envelope order: v,id,type,producer,ts,workflow_id,payload).  Returns a
 * new NUL-terminated string, caller frees with free(); *len (may be NULL) gets its length.
 * Does not validate.  For every valid event decode(encode(ev)) equals ev. */
char *jm_event_encode(const jm_event_t *ev, size_t *len);

/* Payload accessors, safe on validated payloads (a missing or mistyped key is a bug: they
 * JM_ASSERT).  Strings are borrowed from `obj`. */
int64_t jm_ev_int(const json_t *obj, const char *key);
/* NULL when the (nullable) field is JSON null. */
const char *jm_ev_str(const json_t *obj, const char *key);
int jm_ev_bool(const json_t *obj, const char *key);
/* Nullable id: 0 when null. */
int64_t jm_ev_int_or0(const json_t *obj, const char *key);
/* Borrowed array/object member. */
json_t *jm_ev_get(const json_t *obj, const char *key);

#endif
