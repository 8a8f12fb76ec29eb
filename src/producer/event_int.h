/*
 * event_int.h — the data table that describes every event: envelope and per-type payloads.
 * One table drives decoding (event.c), the JSON Schemas (event_schema.c, gen_schemas) and the
 * tests.  Private to libjobmon and its tests.
 */
#ifndef JOBMON_EVENT_INT_H
#define JOBMON_EVENT_INT_H

#include <jansson.h>
#include <stdint.h>

#include "jobmon/event.h"

typedef enum {
    JM_FK_INT,       /* JSON integer in [min, max] */
    JM_FK_BOOL,      /* true / false */
    JM_FK_STR,       /* string of min..max bytes (valid UTF-8 by construction) */
    JM_FK_HEX32,     /* 32 lower-case hex chars */
    JM_FK_UUID,      /* lower-case 8-4-4-4-12 UUID */
    JM_FK_TS,        /* "YYYY-MM-DDTHH:MM:SS[.mmm]Z" */
    JM_FK_STATUS,    /* one letter of `set` */
    JM_FK_ENUM,      /* one string of `choices` */
    JM_FK_STRMAP,    /* object string -> string; <= max entries, keys <= 255, values <= 4096 */
    JM_FK_RESOURCES, /* any object whose compact JSON is <= max bytes */
    JM_FK_SCALES,    /* object key -> number >= 0 or [numbers >= 0] (1..100); <= max entries */
    JM_FK_ARRAY,     /* array of `elem`, min..max items */
    JM_FK_OBJECT,    /* object with exactly `fields` */
    JM_FK_PAYLOAD,   /* envelope only: an object checked against the type's payload spec */
    JM_FK__CNT
} jm_field_kind_t;

#define JM_F_NULLABLE 0x1u /* JSON null allowed */

typedef struct jm_field_spec_s {
    const char *name; /* NULL ends a field list */
    jm_field_kind_t kind;
    unsigned flags;
    int64_t min, max;                     /* int range, string bytes, items, entries */
    const char *set;                      /* JM_FK_STATUS letters */
    const char *const *choices;           /* JM_FK_ENUM, NULL-terminated */
    const struct jm_field_spec_s *elem;   /* JM_FK_ARRAY element (name unused) */
    const struct jm_field_spec_s *fields; /* JM_FK_OBJECT members, NULL-name terminated */
    const char *doc;                      /* one-line description for the schema */
} jm_field_spec_t;

typedef struct {
    jm_event_type_t type;
    const char *name;
    jm_producer_kind_t publisher;
    const jm_field_spec_t *payload; /* NULL-name terminated field list */
    const char *doc;
} jm_event_spec_t;

/* The envelope fields (v, id, type, producer, ts, workflow_id, payload). */
extern const jm_field_spec_t jm_envelope_spec[];
/* Indexed by jm_event_type_t. */
extern const jm_event_spec_t jm_event_specs[JM_EV__CNT];
/* Producer kind names, indexed by jm_producer_kind_t, NULL-terminated. */
extern const char *const jm_producer_kind_names[JM_PRODUCER__CNT + 1];

/* Number of fields in a NULL-name terminated list. */
size_t jm_field_count(const jm_field_spec_t *fields);

/* The JSON Schema (draft 2020-12) of one event type, envelope included.  New reference, caller
 * decrefs.  schemas/events/<type>.json holds its output (make schemas). */
json_t *jm_event_schema(jm_event_type_t type);

#endif
