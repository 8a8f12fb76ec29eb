/*
 * event_schema.c — JSON Schema (draft 2020-12) of each event type, generated from the rule table
 * of event_spec.c.  `make schemas` writes them to schemas/events/ and a unit test checks the
 * committed files equal this output, so the schemas cannot drift from the C codec.
 * Limits the schema language cannot say exactly (string limits are in BYTES, JSON Schema's
 * maxLength counts characters; the byte size of `resources`) are stated in descriptions.
 */
#include <string.h>

#include "producer/event_int.h"

#define UUID_PATTERN "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#define TS_PATTERN   "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,3})?Z$"
#define HEX_PATTERN  "^[0-9a-f]{32}$"

static json_t *field_schema(const jm_field_spec_t *f, jm_event_type_t type);

static json_t *string_schema(const char *pattern)
{
    return json_pack("{s:s, s:s}", "type", "string", "pattern", pattern);
}

static json_t *enum_schema(const jm_field_spec_t *f)
{
    json_t *e = json_array();
    if (f->kind == JM_FK_STATUS) {
        for (const char *p = f->set; *p; p++)
            json_array_append_new(e, json_stringn(p, 1));
    } else {
        for (const char *const *ch = f->choices; *ch; ch++)
            json_array_append_new(e, json_string(*ch));
    }
    return json_pack("{s:s, s:o}", "type", "string", "enum", e);
}

static json_t *scales_schema(const jm_field_spec_t *f)
{
    json_t *num = json_pack("{s:s, s:i}", "type", "number", "minimum", 0);
    json_t *list = json_pack("{s:s, s:i, s:i, s:O}", "type", "array", "minItems", 1, "maxItems",
                             100, "items", num);
    json_t *one = json_pack("{s:[o, o]}", "oneOf", num, list);
    return json_pack("{s:s, s:I, s:{s:i, s:i}, s:o}", "type", "object", "maxProperties",
                     (json_int_t)f->max, "propertyNames", "minLength", 1, "maxLength", 255,
                     "additionalProperties", one);
}

static json_t *object_schema(const jm_field_spec_t *fields, jm_event_type_t type)
{
    json_t *req = json_array(), *props = json_object();
    for (; fields->name; fields++) {
        json_array_append_new(req, json_string(fields->name));
        json_object_set_new(props, fields->name, field_schema(fields, type));
    }
    return json_pack("{s:s, s:b, s:o, s:o}", "type", "object", "additionalProperties", 0,
                     "required", req, "properties", props);
}

static json_t *kind_schema(const jm_field_spec_t *f, jm_event_type_t type)
{
    switch (f->kind) {
    case JM_FK_INT:
        return json_pack("{s:s, s:I, s:I}", "type", "integer", "minimum", (json_int_t)f->min,
                         "maximum", (json_int_t)f->max);
    case JM_FK_BOOL: return json_pack("{s:s}", "type", "boolean");
    case JM_FK_STR:
        return json_pack("{s:s, s:I, s:I}", "type", "string", "minLength", (json_int_t)f->min,
                         "maxLength", (json_int_t)f->max);
    case JM_FK_HEX32: return string_schema(HEX_PATTERN);
    case JM_FK_UUID: return string_schema(UUID_PATTERN);
    case JM_FK_TS: return string_schema(TS_PATTERN);
    case JM_FK_STATUS:
    case JM_FK_ENUM: return enum_schema(f);
    case JM_FK_STRMAP:
        return json_pack("{s:s, s:I, s:{s:i, s:i}, s:{s:s, s:i}}", "type", "object",
                         "maxProperties", (json_int_t)f->max, "propertyNames", "minLength", 1,
                         "maxLength", 255, "additionalProperties", "type", "string", "maxLength",
                         4096);
    case JM_FK_RESOURCES: return json_pack("{s:s}", "type", "object");
    case JM_FK_SCALES: return scales_schema(f);
    case JM_FK_ARRAY:
        return json_pack("{s:s, s:I, s:I, s:o}", "type", "array", "minItems", (json_int_t)f->min,
                         "maxItems", (json_int_t)f->max, "items", field_schema(f->elem, type));
    case JM_FK_OBJECT: return object_schema(f->fields, type);
    case JM_FK_PAYLOAD: return object_schema(jm_event_specs[type].payload, type);
    case JM_FK__CNT: break;
    }
    JM_ASSERT(!"unknown field kind");
    return NULL;
}

static json_t *field_schema(const jm_field_spec_t *f, jm_event_type_t type)
{
    json_t *s = kind_schema(f, type);
    JM_ASSERT(s);
    if (f->doc) {
        const char *unit = (f->kind == JM_FK_STR)         ? " (length limits in UTF-8 bytes)"
                           : (f->kind == JM_FK_RESOURCES) ? " (compact JSON <= "
                                                            "16384 bytes)"
                                                          : "";
        json_object_set_new(s, "description", json_sprintf("%s%s", f->doc, unit));
    }
    if (f->flags & JM_F_NULLABLE)
        s = json_pack("{s:[o, {s:s}]}", "anyOf", s, "type", "null");
    return s;
}

json_t *jm_event_schema(jm_event_type_t type)
{
    JM_ASSERT((unsigned)type < JM_EV__CNT);
    const jm_event_spec_t *es = &jm_event_specs[type];
    json_t *env = object_schema(jm_envelope_spec, type);
    json_t *props = json_object_get(env, "properties");
    json_object_set_new(props, "type", json_pack("{s:s}", "const", es->name));
    json_t *head = json_pack("{s:s}", "$schema", "https://json-schema.org/draft/2020-12/schema");
    json_object_set_new(head, "$id",
                        json_sprintf("https://jobmon.dev/schemas/events/%s.json", es->name));
    json_object_set_new(head, "title", json_string(es->name));
    json_object_set_new(head, "description", json_string(es->doc));
    json_object_set_new(head, "x-jobmon-publisher",
                        json_string(jm_producer_kind_names[es->publisher]));
    json_object_update(head, env);
    json_decref(env);
    return head;
}
