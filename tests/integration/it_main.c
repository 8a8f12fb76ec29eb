/*
 * it_main.c — the integration-test runner: runs every suite in suites.def against the live local
 * stack and prints TAP, then a closing "N passed, N failed" line.  `check_integration SUITE...`
 * runs only the named suites.  Run it through tests/integration/run (or `make
 * check-integration`), which checks the stack is up and exports its settings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

#include "../check_runner.h"
#include "it.h"

static const jm_suite_entry_t suites[] = {
#define JM_SUITE(name) {#name, it_##name##_suite},
#include "suites.def"
#undef JM_SUITE
};

const char *it_env(const char *name)
{
    const char *v = getenv(name);
    ck_assert_msg(v && *v,
                  "environment variable %s is not set: run the tests through "
                  "tests/integration/run (eval \"$(scripts/stack env)\")",
                  name);
    return v;
}

const char *it_unique(void)
{
    static char buf[64];
    static unsigned seq;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(buf, sizeof(buf), "%ld-%lld-%u", (long)getpid(),
             (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000, ++seq);
    return buf;
}

int main(int argc, char **argv)
{
    SRunner *sr = jm_runner_run(suites, sizeof(suites) / sizeof(suites[0]), argc, argv);
    if (!sr) {
        fprintf(stderr, "check_integration: no such suite\n");
        return EXIT_FAILURE;
    }
    int run = srunner_ntests_run(sr);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    printf("integration: %d passed, %d failed\n", run - failed, failed);
    return failed || run == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
