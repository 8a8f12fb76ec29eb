/*
 * journal.c — the per-run submission journal of jobmon-distributor (see distributor.h for
 * why), plus an in-memory map ti_id → state.  Append-only text, one record per line:
 *   I <ti_id>            instantiated (about to be submitted)
 *   S <ti_id> <did>      submitted with distributor id <did>
 * Unreadable lines (a torn last write) are skipped.  It publishes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "distributors/distributor.h"

typedef struct {
    int64_t ti_id; /* 0 = empty slot */
    int state;
    char *did;
} slot_t;

struct jm_journal_s {
    int fd;
    slot_t *slots;
    size_t cap, used;
    char *buf;
    size_t len, bcap;
};

static size_t hash_id(int64_t id, size_t cap)
{
    uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ULL;
    return (size_t)(x >> 17) & (cap - 1);
}

static slot_t *find(const jm_journal_t *j, int64_t id)
{
    for (size_t i = hash_id(id, j->cap);; i = (i + 1) & (j->cap - 1))
        if (j->slots[i].ti_id == id || j->slots[i].ti_id == 0)
            return &j->slots[i];
}

static void put(jm_journal_t *j, int kind, int64_t id, const char *did)
{
    if ((j->used + 1) * 2 > j->cap) {
        slot_t *old = j->slots;
        size_t oldcap = j->cap;
        j->cap = oldcap ? oldcap * 2 : 1024;
        j->slots = jm_calloc(j->cap, sizeof(slot_t));
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].ti_id)
                *find(j, old[i].ti_id) = old[i];
        free(old);
    }
    slot_t *s = find(j, id);
    if (!s->ti_id) {
        s->ti_id = id;
        j->used++;
    }
    if (kind >= s->state) {
        s->state = kind;
        if (did) {
            free(s->did);
            s->did = jm_strdup(did);
        }
    }
}

jm_journal_t *jm_journal_open(const char *path, jm_err_t *err)
{
    jm_journal_t *j = jm_calloc(1, sizeof(*j));
    j->cap = 1024;
    j->slots = jm_calloc(j->cap, sizeof(slot_t));
    FILE *f = fopen(path, "re");
    if (f) {
        char line[512], did[256];
        long long id;
        while (fgets(line, sizeof(line), f)) {
            if (!strchr(line, '\n'))
                continue; /* torn */
            if (sscanf(line, "S %lld %255s", &id, did) == 2 && id > 0)
                put(j, JM_JR_SUBMITTED, id, did);
            else if (sscanf(line, "I %lld", &id) == 1 && id > 0)
                put(j, JM_JR_INSTANTIATED, id, NULL);
        }
        fclose(f);
    }
    j->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (j->fd < 0) {
        jm_err_set(err, JM_ERR_IO, "%s: %s", path, strerror(errno));
        jm_journal_destroy(j);
        return NULL;
    }
    return j;
}

void jm_journal_destroy(jm_journal_t *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        close(j->fd);
    for (size_t i = 0; i < j->cap; i++)
        free(j->slots[i].did);
    free(j->slots);
    free(j->buf);
    free(j);
}

void jm_journal_add(jm_journal_t *j, int kind, int64_t ti_id, const char *did)
{
    char rec[400];
    int n = kind == JM_JR_SUBMITTED
                ? snprintf(rec, sizeof(rec), "S %lld %s\n", (long long)ti_id, did)
                : snprintf(rec, sizeof(rec), "I %lld\n", (long long)ti_id);
    if (n < 0 || (size_t)n >= sizeof(rec))
        return;
    if (j->len + (size_t)n > j->bcap) {
        j->bcap = (j->len + (size_t)n) * 2;
        j->buf = jm_realloc(j->buf, j->bcap);
    }
    memcpy(j->buf + j->len, rec, (size_t)n);
    j->len += (size_t)n;
    put(j, kind, ti_id, did);
}

jm_rc_t jm_journal_sync(jm_journal_t *j, jm_err_t *err)
{
    size_t off = 0;
    while (off < j->len) {
        ssize_t w = write(j->fd, j->buf + off, j->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return jm_err_set(err, JM_ERR_IO, "journal write: %s", strerror(errno));
        off += (size_t)w;
    }
    j->len = 0;
    if (fdatasync(j->fd) != 0)
        return jm_err_set(err, JM_ERR_IO, "journal fdatasync: %s", strerror(errno));
    return JM_OK;
}

int jm_journal_state(const jm_journal_t *j, int64_t ti_id, const char **did)
{
    const slot_t *s = find(j, ti_id);
    if (did)
        *did = s->ti_id ? s->did : NULL;
    return s->ti_id ? s->state : JM_JR_NONE;
}
