/*
 * api_diamond.c — the diamond of examples/diamond.json built with the C API (jobmon.h):
 * a -> b, c -> d.  Validates it and prints the ids and commands; with a broker address as
 * argv[1] it also binds it (publishes the bind events and waits for the acknowledgements).
 *
 *   examples/api_diamond [BROKERS]
 */
#include <stdio.h>
#include <stdlib.h>

#include "jobmon/jobmon.h"

int main(int argc, char **argv)
{
    jm_err_t err = {0};
    int rc = JM_EXIT_USAGE;
    jm_producer_t *p = NULL;
    jm_tool_t *tool = jm_tool_new("examples");
    const char *node_args[] = {"step"}, *task_args[] = {"release"};
    jm_template_t *tt = jm_template_new(tool, "step", "echo {step} {release}", node_args, 1,
                                        task_args, 1, NULL, 0, &err);
    if (!tt)
        goto out;
    jm_workflow_t *wf = jm_workflow_new(tool, "api-diamond-1"); /* fixed args: re-runs resume */
    (void)jm_workflow_set_name(wf, "diamond (C API)", NULL);
    jm_defaults_set_cluster(jm_workflow_defaults(wf), "sequential");
    jm_defaults_set_resource(jm_workflow_defaults(wf), "memory", "256M");
    jm_defaults_set_resource(jm_workflow_defaults(wf), "runtime", "10m");

    jm_task_t *t[4];
    const char *steps[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        jm_kv_t args[] = {{"step", steps[i]}, {"release", "1"}};
        if (!(t[i] = jm_workflow_add_task(wf, tt, args, 2, &err)) ||
            jm_task_set_name(t[i], steps[i], &err) != JM_OK)
            goto out_wf;
    }
    if (jm_task_add_upstream(t[1], t[0], &err) != JM_OK ||
        jm_task_add_upstream(t[2], t[0], &err) != JM_OK ||
        jm_task_add_upstream(t[3], t[1], &err) != JM_OK ||
        jm_task_add_upstream(t[3], t[2], &err) != JM_OK)
        goto out_wf;
    if (jm_workflow_validate(wf, &err) != JM_OK)
        goto out_wf;
    printf("workflow %lld\n", (long long)jm_workflow_id(wf));
    for (int i = 0; i < 4; i++) {
        char *cmd = jm_task_command(t[i]);
        printf("  task %-2s id %-20lld %s\n", jm_task_name(t[i]), (long long)jm_task_id(t[i]), cmd);
        free(cmd);
    }
    rc = JM_EXIT_OK;
    if (argc > 1) {
        jm_bind_result_t res;
        if (!(p = jm_producer_new(argv[1], NULL, &err)) ||
            jm_workflow_bind(wf, p, &res, &err) != JM_OK) {
            rc = jm_rc_to_exit(err.rc);
            goto out_wf;
        }
        printf("bound: %zu tasks, %zu events\n", res.total_tasks, res.events);
    }
out_wf:
    jm_producer_destroy(p);
    jm_workflow_destroy(wf);
out:
    if (err.rc != JM_OK) {
        fprintf(stderr, "api_diamond: %s\n", err.msg);
        rc = jm_rc_to_exit(err.rc);
    }
    jm_tool_destroy(tool);
    return rc;
}
