/*
 * check_main.c — the one unit-test runner.  Runs every suite in suites.def and prints TAP.
 * `check_jobmon SUITE...` runs only the named suites.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#define JM_SUITE(name) Suite *jm_##name##_suite(void);
#include "suites.def"
#undef JM_SUITE

static const struct {
    const char *name;
    Suite *(*make)(void);
} suites[] = {
#define JM_SUITE(name) {#name, jm_##name##_suite},
#include "suites.def"
#undef JM_SUITE
};

static int wanted(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    SRunner *sr = NULL;
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        if (!wanted(suites[i].name, argc, argv))
            continue;
        if (!sr)
            sr = srunner_create(suites[i].make());
        else
            srunner_add_suite(sr, suites[i].make());
    }
    if (!sr)
        return EXIT_FAILURE;
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
