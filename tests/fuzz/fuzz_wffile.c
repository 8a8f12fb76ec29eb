/*
 * fuzz_wffile.c — libFuzzer target for the workflow file parser: any input must either load or
 * fail with JM_ERR_INVALID and a message; a loaded workflow is validated and, when valid, its
 * bind events are generated twice — by the reference iterator and by the fast encoder
 * jm_workflow_bind sends with — and each fast event must decode to the reference payload (no
 * crash, no leak, no sanitizer report).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "client/client_int.h"
#include "jobmon/jobmon.h"
#include "jobmon/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jm_err_t err = {0};
    jm_log_set_level(JM_LOG_ERROR);
    jm_client_max_tasks = 20000;
    jm_workflow_t *wf = jm_workflow_load_buffer(data, size, &err);
    if (!wf) {
        JM_ASSERT(err.rc == JM_ERR_INVALID && err.msg[0]);
        return 0;
    }
    if (jm_workflow_validate(wf, &err) == JM_OK) {
        jm_bind_iter_t *it = jm_bind_iter_new(wf, "fuzz"), *fast = jm_bind_iter_new(wf, "fuzz");
        jm_event_t *ev, *dec;
        char *buf;
        size_t len;
        jm_event_type_t type;
        while (jm_bind_next_event(it, &ev, &err) == JM_OK && ev) {
            JM_ASSERT(jm_event_validate(ev, NULL, &err) == JM_OK);
            JM_ASSERT(jm_bind_next_encoded(fast, &buf, &len, &type, &err) == JM_OK && buf);
            JM_ASSERT(type == ev->type && jm_event_decode(buf, len, &dec, &err) == JM_OK);
            JM_ASSERT(json_equal(dec->payload, ev->payload));
            jm_event_destroy(dec);
            free(buf);
            jm_event_destroy(ev);
        }
        JM_ASSERT(jm_bind_next_encoded(fast, &buf, &len, &type, &err) == JM_OK && !buf);
        jm_bind_iter_destroy(fast);
        jm_bind_iter_destroy(it);
    }
    jm_workflow_destroy(wf);
    return 0;
}
