/*
 * progmain.c — start-up steps shared by the programs' main(): option numbers, and loading the
 * configuration together with the log level it sets.  Does not print: main() reports errors.
 */
#include <stdlib.h>

#include "common/progmain.h"
#include "jobmon/log.h"

int jm_main_parse_int(const char *s, int64_t min, int64_t *out)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < min)
        return -1;
    *out = v;
    return 0;
}

jm_rc_t jm_main_load_config(jm_config_t *cfg, const char *path, jm_err_t *err)
{
    jm_log_level_t lvl;
    jm_rc_t rc = jm_config_load(cfg, path, err);
    if (rc == JM_OK && jm_log_level_parse(jm_config_str(cfg, "log.level"), &lvl) == JM_OK)
        jm_log_set_level(lvl);
    return rc;
}
