/*
 * check_runner.h — the suite selection and TAP run shared by the two test runners
 * (tests/check_main.c, tests/integration/it_main.c).  Each keeps its own suite table and exit
 * policy; what is here would otherwise be copied between them.
 */
#ifndef JOBMON_CHECK_RUNNER_H
#define JOBMON_CHECK_RUNNER_H

#include <check.h>
#include <stddef.h>
#include <string.h>

typedef struct {
    const char *name;
    Suite *(*make)(void);
} jm_suite_entry_t;

static inline int jm_runner_wanted(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

/* Run the suites named in argv[1..] (every one when none is named) with TAP on stdout.  Returns
 * the runner (caller frees it with srunner_free), or NULL when no suite matched. */
static inline SRunner *jm_runner_run(const jm_suite_entry_t *suites, size_t n, int argc,
                                     char **argv)
{
    SRunner *sr = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!jm_runner_wanted(suites[i].name, argc, argv))
            continue;
        if (!sr)
            sr = srunner_create(suites[i].make());
        else
            srunner_add_suite(sr, suites[i].make());
    }
    if (!sr)
        return NULL;
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_SILENT);
    return sr;
}

#endif
