/*
 * fuzz_event_decode.c — libFuzzer target for jm_event_decode.  Any input must decode or be
 * refused without a crash; a decoded event must re-encode to bytes that decode again to the
 * same encoding (a fixed point after one round).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobmon/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jm_event_t *ev = NULL, *ev2 = NULL;
    jm_event_error_t kind;
    size_t len1, len2;
    if (jm_event_decode_ex(data, size, &ev, &kind, NULL) != JM_OK) {
        JM_ASSERT(ev == NULL && kind != JM_EVE_NONE);
        return 0;
    }
    JM_ASSERT(kind == JM_EVE_NONE);
    char *s1 = jm_event_encode(ev, &len1);
    JM_ASSERT(jm_event_decode(s1, len1, &ev2, NULL) == JM_OK);
    JM_ASSERT(jm_event_validate(ev2, NULL, NULL) == JM_OK);
    char *s2 = jm_event_encode(ev2, &len2);
    JM_ASSERT(len1 == len2 && memcmp(s1, s2, len1) == 0);
    free(s1);
    free(s2);
    jm_event_destroy(ev);
    jm_event_destroy(ev2);
    return 0;
}
