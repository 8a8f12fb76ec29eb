/*
 * wfcache.c — the Redis status hash's compare-and-set script and field names (wfcache.h).
 * No I/O here: the writer and the readers send it through their own connections.
 */
#include "common/wfcache.h"

const char jm_wfcache_cas_script[] =
    "local cur = redis.call('HGET', KEYS[1], 'version')\n"
    "local v = tonumber(ARGV[1])\n"
    "if cur and tonumber(cur) >= v then return 0 end\n"
    "local n = tonumber(ARGV[2])\n"
    "redis.call('HSET', KEYS[1], 'version', ARGV[1], unpack(ARGV, 3 + n))\n"
    "for i = 3, 2 + n do redis.call('PUBLISH', ARGV[i], ARGV[1]) end\n"
    "return 1\n";

const char *const jm_wfcache_count_fields[JM_TASK__CNT] = {"n_G", "n_Q", "n_I", "n_O", "n_R",
                                                           "n_D", "n_E", "n_A", "n_F"};
