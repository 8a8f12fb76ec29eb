/*
 * progmain.h — start-up steps every jobmon program's main() shares (jobmon, jobmon-distributor,
 * jobmon-worker, jobmon-fsm).  Private to src/: the programs' option parsing stays in their
 * own main.c; this holds only what would otherwise be copied between them.
 */
#ifndef JOBMON_PROGMAIN_H
#define JOBMON_PROGMAIN_H

#include <stdint.h>

#include "jobmon/config.h"

/* Parse a decimal option value (strtoll syntax, nothing after it) of at least `min`.  0 on
 * success, -1 otherwise (*out untouched). */
int jm_main_parse_int(const char *s, int64_t min, int64_t *out);

/* jm_config_load(cfg, path) and, when it succeeds, apply log.level to the log threshold. */
JM_WUR jm_rc_t jm_main_load_config(jm_config_t *cfg, const char *path, jm_err_t *err);

#endif
