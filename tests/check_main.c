/*
 * check_main.c — the one unit-test runner.  Runs every suite in suites.def and prints TAP.
 * `check_jobmon SUITE...` runs only the named suites.
 */
#include <check.h>
#include <stdlib.h>

#include "check_runner.h"

#define JM_SUITE(name) Suite *jm_##name##_suite(void);
#include "suites.def"
#undef JM_SUITE

static const jm_suite_entry_t suites[] = {
#define JM_SUITE(name) {#name, jm_##name##_suite},
#include "suites.def"
#undef JM_SUITE
};

int main(int argc, char **argv)
{
    SRunner *sr = jm_runner_run(suites, sizeof(suites) / sizeof(suites[0]), argc, argv);
    if (!sr)
        return EXIT_FAILURE;
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
