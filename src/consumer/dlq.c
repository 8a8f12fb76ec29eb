/*
 * dlq.c — dead letters: a message that cannot be decoded (or that a handler refused as invalid
 * input) is produced, byte for byte and with its key, to the dead-letter topic with headers that
 * say why and where it came from.  The caller flushes the producer before committing the batch,
 * so a dead letter is acknowledged by Kafka before its source offset is passed.
 * It does not record the event_log row (evlog.c does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/consumer_int.h"

jm_rc_t jm_dlq_send(jm_producer_t *p, const char *dlq_topic, const char *src_topic,
                    const jm_item_t *it, jm_err_t *err)
{
    char part[16], off[24], *key = NULL;
    snprintf(part, sizeof(part), "%d", (int)it->partition);
    snprintf(off, sizeof(off), "%lld", (long long)it->offset);
    if (it->key)
        key = jm_strndup(it->key, it->key_len);
    /* clang-format off */
    const char *headers[] = {"reason", it->reason,
                             "source_topic", src_topic,
                             "source_partition", part,
                             "source_offset", off,
                             "event_id", it->id,
                             NULL};
    /* clang-format on */
    jm_rc_t rc = jm_producer_send_raw(p, dlq_topic, key, it->raw, it->raw_len, headers, err);
    free(key);
    return rc;
}
