/* Unit tests for src/fsm: status letters and names, the transition tables (data-driven from
 * tests/data/transitions.tsv), task-instance side effects and the status classes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status_sql.h"
#include "jobmon/fsm.h"

/* ---- names and letters ------------------------------------------------------------------- */

START_TEST(test_letters_round_trip)
{
    static const char *const letters[] = {"QIORTXKDEZUWF", "GQIORDEAF", "GLBIORDESACHT",
                                          "GQIORDFAH"};
    for (int e = 0; e < JM_ENTITY__CNT; e++) {
        int n = jm_status_count((jm_entity_t)e);
        ck_assert_int_eq(n, (int)strlen(letters[e]));
        for (int s = 0; s < n; s++) {
            ck_assert_int_eq(jm_status_letter((jm_entity_t)e, s), letters[e][s]);
            ck_assert_int_eq(jm_status_from_letter((jm_entity_t)e, letters[e][s]), s);
            ck_assert_str_ne(jm_status_name((jm_entity_t)e, s), "?");
        }
        ck_assert_int_eq(jm_status_letter((jm_entity_t)e, n), '?');
        ck_assert_int_eq(jm_status_letter((jm_entity_t)e, -1), '?');
        ck_assert_str_eq(jm_status_name((jm_entity_t)e, n), "?");
        ck_assert_int_eq(jm_status_from_letter((jm_entity_t)e, 'x'), -1);
        ck_assert_int_eq(jm_status_from_letter((jm_entity_t)e, '\0'), -1);
    }
    ck_assert_int_eq(jm_status_from_letter(JM_ENTITY_TASK, 'T'), -1);
    ck_assert_int_eq(jm_status_from_letter(JM_ENTITY_WORKFLOW, 'E'), -1);
    ck_assert_int_eq(jm_status_count(JM_ENTITY__CNT), 0);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(jm_status_name(JM_ENTITY_TI, JM_TI_Q), "QUEUED");
    ck_assert_str_eq(jm_status_name(JM_ENTITY_TI, JM_TI_Z), "RESOURCE_ERROR");
    ck_assert_str_eq(jm_status_name(JM_ENTITY_TI, JM_TI_W), "NO_DISTRIBUTOR_ID");
    ck_assert_str_eq(jm_status_name(JM_ENTITY_TASK, JM_TASK_A), "ADJUSTING_RESOURCES");
    ck_assert_str_eq(jm_status_name(JM_ENTITY_RUN, JM_RUN_C), "COLD_RESUME");
    ck_assert_str_eq(jm_status_name(JM_ENTITY_RUN, JM_RUN_T), "TERMINATED");
    ck_assert_str_eq(jm_status_name(JM_ENTITY_WORKFLOW, JM_WF_H), "HALTED");
    ck_assert_str_eq(jm_entity_name(JM_ENTITY_TI), "task_instance");
    ck_assert_str_eq(jm_entity_name(JM_ENTITY_TASK), "task");
    ck_assert_str_eq(jm_entity_name(JM_ENTITY_RUN), "workflow_run");
    ck_assert_str_eq(jm_entity_name(JM_ENTITY_WORKFLOW), "workflow");
    ck_assert_str_eq(jm_entity_name(JM_ENTITY__CNT), "?");
    ck_assert_int_eq(jm_entity_from_name("workflow_run"), JM_ENTITY_RUN);
    ck_assert_int_eq(jm_entity_from_name("nope"), -1);
    ck_assert_int_eq(jm_entity_from_name(NULL), -1);
    ck_assert_str_eq(jm_transition_name(JM_TR_UNTIMELY), "untimely");
}
END_TEST

/* ---- transitions: one row per (entity, from, to) ----------------------------------------- */

static int parse_outcome(const char *s)
{
    for (int t = JM_TR_LEGAL; t <= JM_TR_ILLEGAL; t++)
        if (strcmp(s, jm_transition_name((jm_transition_t)t)) == 0)
            return t;
    return -1;
}

/* Check one data line; returns 1 if it was a row, 0 for comments/blank lines. */
static int check_row(char *line, int lineno, int seen[JM_ENTITY__CNT][16][16])
{
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '#' || line[0] == '\0')
        return 0;
    char *save = NULL;
    char *ent = strtok_r(line, "\t", &save), *from = strtok_r(NULL, "\t", &save);
    char *to = strtok_r(NULL, "\t", &save), *exp = strtok_r(NULL, "\t", &save);
    ck_assert_msg(ent && from && to && exp, "line %d: too few columns", lineno);
    int e = jm_entity_from_name(ent);
    ck_assert_msg(e >= 0, "line %d: unknown entity %s", lineno, ent);
    int f = jm_status_from_letter((jm_entity_t)e, from[0]);
    int t = jm_status_from_letter((jm_entity_t)e, to[0]);
    int want = parse_outcome(exp);
    ck_assert_msg(f >= 0 && t >= 0 && want >= 0 && !from[1] && !to[1], "line %d: bad row", lineno);
    ck_assert_msg(!seen[e][f][t], "line %d: duplicate row", lineno);
    seen[e][f][t] = 1;
    jm_transition_t got = jm_fsm_check((jm_entity_t)e, f, t);
    ck_assert_msg((int)got == want, "line %d: %s %c->%c expected %s, got %s", lineno, ent, from[0],
                  to[0], exp, jm_transition_name(got));
    return 1;
}

START_TEST(test_transition_table)
{
    static int seen[JM_ENTITY__CNT][16][16];
    memset(seen, 0, sizeof(seen));
    FILE *fp = fopen(JM_TEST_DATADIR "/transitions.tsv", "r");
    ck_assert_msg(fp != NULL, "cannot open transitions.tsv");
    char line[512];
    int rows = 0, lineno = 0, expected = 0;
    while (fgets(line, sizeof(line), fp))
        rows += check_row(line, ++lineno, seen);
    fclose(fp);
    for (int e = 0; e < JM_ENTITY__CNT; e++)
        expected += jm_status_count((jm_entity_t)e) * jm_status_count((jm_entity_t)e);
    ck_assert_int_eq(expected, 13 * 13 + 9 * 9 + 13 * 13 + 9 * 9);
    ck_assert_int_eq(rows, expected);
}
END_TEST

START_TEST(test_transition_out_of_range)
{
    ck_assert_int_eq(jm_fsm_check(JM_ENTITY_TI, -1, JM_TI_I), JM_TR_ILLEGAL);
    ck_assert_int_eq(jm_fsm_check(JM_ENTITY_TI, JM_TI_Q, JM_TI__CNT), JM_TR_ILLEGAL);
    ck_assert_int_eq(jm_fsm_check(JM_ENTITY_TASK, JM_TASK_G, 9), JM_TR_ILLEGAL);
    ck_assert_int_eq(jm_fsm_check(JM_ENTITY__CNT, 0, 1), JM_TR_ILLEGAL);
    ck_assert_int_eq(jm_fsm_check(JM_ENTITY_RUN, JM_RUN_G, JM_RUN_L), JM_TR_LEGAL);
}
END_TEST

/* ---- task instance → task side effects --------------------------------------------------- */

static void ck_fx(jm_ti_status_t target, jm_task_status_t task, int n, int max,
                  jm_ti_status_t ti_want, jm_task_status_t task_want, int changed, int orphan,
                  jm_transition_t tr)
{
    jm_ti_effect_t fx = jm_fsm_ti_effect(target, task, n, max);
    ck_assert_msg(fx.ti_status == ti_want && fx.task_status == task_want &&
                      fx.task_changed == changed && fx.orphaned == orphan && fx.task_tr == tr,
                  "TI ->%c, task %c (%d/%d): got TI %c task %c changed %d orphan %d %s",
                  jm_status_letter(JM_ENTITY_TI, target), jm_status_letter(JM_ENTITY_TASK, task), n,
                  max, jm_status_letter(JM_ENTITY_TI, fx.ti_status),
                  jm_status_letter(JM_ENTITY_TASK, fx.task_status), fx.task_changed, fx.orphaned,
                  jm_transition_name(fx.task_tr));
}

START_TEST(test_effect_follow)
{
    ck_fx(JM_TI_Q, JM_TASK_G, 1, 3, JM_TI_Q, JM_TASK_Q, 1, 0, JM_TR_LEGAL);
    ck_fx(JM_TI_Q, JM_TASK_A, 2, 3, JM_TI_Q, JM_TASK_Q, 1, 0, JM_TR_LEGAL);
    ck_fx(JM_TI_I, JM_TASK_Q, 1, 3, JM_TI_I, JM_TASK_I, 1, 0, JM_TR_LEGAL);
    ck_fx(JM_TI_O, JM_TASK_I, 1, 3, JM_TI_O, JM_TASK_O, 1, 0, JM_TR_LEGAL);
    ck_fx(JM_TI_R, JM_TASK_O, 1, 3, JM_TI_R, JM_TASK_R, 1, 0, JM_TR_LEGAL);
    ck_fx(JM_TI_R, JM_TASK_I, 1, 3, JM_TI_R, JM_TASK_R, 1, 0, JM_TR_LEGAL); /* race */
    ck_fx(JM_TI_D, JM_TASK_R, 1, 3, JM_TI_D, JM_TASK_D, 1, 0, JM_TR_LEGAL);
    /* T→R (late heartbeat): task already R, a same-state no-op */
    ck_fx(JM_TI_R, JM_TASK_R, 1, 3, JM_TI_R, JM_TASK_R, 0, 0, JM_TR_UNTIMELY);
    /* K→D with the task already done: no-op */
    ck_fx(JM_TI_D, JM_TASK_D, 1, 3, JM_TI_D, JM_TASK_D, 0, 0, JM_TR_UNTIMELY);
    /* a TI queued for a task that is running is an illegal task step */
    ck_fx(JM_TI_Q, JM_TASK_R, 1, 3, JM_TI_Q, JM_TASK_Q, 1, 0, JM_TR_ILLEGAL);
}
END_TEST

START_TEST(test_effect_no_task_change)
{
    static const jm_ti_status_t quiet[] = {JM_TI_T, JM_TI_X, JM_TI_K};
    static const jm_task_status_t tasks[] = {JM_TASK_O, JM_TASK_R, JM_TASK_D, JM_TASK_F};
    for (size_t i = 0; i < JM_ARRAY_LEN(quiet); i++)
        for (size_t j = 0; j < JM_ARRAY_LEN(tasks); j++)
            ck_fx(quiet[i], tasks[j], 1, 3, quiet[i], tasks[j], 0, 0, JM_TR_LEGAL);
}
END_TEST

START_TEST(test_effect_errors_retry)
{
    /* attempts left: plain retry (G), or resource retry (A) for Z */
    ck_fx(JM_TI_E, JM_TASK_R, 1, 3, JM_TI_E, JM_TASK_G, 1, 0, JM_TR_LEGAL);
    ck_fx(JM_TI_U, JM_TASK_R, 2, 3, JM_TI_U, JM_TASK_G, 1, 0, JM_TR_LEGAL);
    ck_fx(JM_TI_W, JM_TASK_I, 1, 3, JM_TI_W, JM_TASK_G, 1, 0, JM_TR_LEGAL);
    ck_fx(JM_TI_E, JM_TASK_O, 1, 3, JM_TI_E, JM_TASK_G, 1, 0, JM_TR_LEGAL); /* X→E */
    ck_fx(JM_TI_Z, JM_TASK_R, 1, 3, JM_TI_Z, JM_TASK_A, 1, 0, JM_TR_LEGAL);
    ck_fx(JM_TI_Z, JM_TASK_O, 2, 3, JM_TI_Z, JM_TASK_A, 1, 0, JM_TR_LEGAL);
    jm_ti_effect_t fx = jm_fsm_ti_effect(JM_TI_E, JM_TASK_R, 1, 3);
    ck_assert_int_eq(fx.task_via_error, 1);
    fx = jm_fsm_ti_effect(JM_TI_R, JM_TASK_O, 1, 3);
    ck_assert_int_eq(fx.task_via_error, 0);
    /* an error of a task that is merely queued is an illegal task step (Q→E) */
    ck_fx(JM_TI_E, JM_TASK_Q, 1, 3, JM_TI_E, JM_TASK_G, 1, 0, JM_TR_ILLEGAL);
}
END_TEST

START_TEST(test_effect_attempts_exhausted)
{
    static const jm_ti_status_t errs[] = {JM_TI_W, JM_TI_E, JM_TI_U, JM_TI_Z};
    for (size_t i = 0; i < JM_ARRAY_LEN(errs); i++) {
        ck_fx(errs[i], JM_TASK_R, 3, 3, errs[i], JM_TASK_F, 1, 0, JM_TR_LEGAL);
        ck_fx(errs[i], JM_TASK_R, 4, 3, errs[i], JM_TASK_F, 1, 0, JM_TR_LEGAL);
    }
    ck_fx(JM_TI_Z, JM_TASK_R, 1, 1, JM_TI_Z, JM_TASK_F, 1, 0, JM_TR_LEGAL);
    /* TI F: task fatal whatever the attempts */
    ck_fx(JM_TI_F, JM_TASK_R, 1, 3, JM_TI_F, JM_TASK_F, 1, 0, JM_TR_LEGAL);
    ck_fx(JM_TI_F, JM_TASK_O, 1, 3, JM_TI_F, JM_TASK_F, 1, 0, JM_TR_LEGAL);
}
END_TEST

START_TEST(test_effect_orphan_rule)
{
    static const jm_ti_status_t fails[] = {JM_TI_W, JM_TI_E, JM_TI_U, JM_TI_Z, JM_TI_F};
    for (size_t i = 0; i < JM_ARRAY_LEN(fails); i++) {
        ck_fx(fails[i], JM_TASK_D, 1, 3, JM_TI_F, JM_TASK_D, 0, 1, JM_TR_LEGAL);
        ck_fx(fails[i], JM_TASK_F, 3, 3, JM_TI_F, JM_TASK_F, 0, 1, JM_TR_LEGAL);
        /* not orphaned while the task is still going */
        jm_ti_effect_t fx = jm_fsm_ti_effect(fails[i], JM_TASK_R, 1, 3);
        ck_assert_int_eq(fx.orphaned, 0);
        ck_assert_int_eq(fx.ti_status, fails[i]);
    }
}
END_TEST

/* Every TI target × a few task states: invariants that hold across the board. */
START_TEST(test_effect_matrix_invariants)
{
    static const jm_task_status_t tasks[] = {JM_TASK_G, JM_TASK_Q, JM_TASK_O,
                                             JM_TASK_R, JM_TASK_D, JM_TASK_F};
    for (int t = 0; t < JM_TI__CNT; t++)
        for (size_t j = 0; j < JM_ARRAY_LEN(tasks); j++) {
            jm_ti_effect_t fx = jm_fsm_ti_effect((jm_ti_status_t)t, tasks[j], 1, 3);
            ck_assert_int_eq(fx.task_changed, fx.task_status != tasks[j]);
            ck_assert(fx.ti_status == (jm_ti_status_t)t ||
                      (fx.orphaned && fx.ti_status == JM_TI_F));
            if (fx.orphaned)
                ck_assert(!fx.task_changed);
            ck_assert(fx.task_status != JM_TASK_E); /* E is never a resting state */
        }
}
END_TEST

/* ---- status classes ---------------------------------------------------------------------- */

static int members(int (*pred)(int), int n, char *out, const char *letters)
{
    int k = 0;
    for (int s = 0; s < n; s++)
        if (pred(s))
            out[k++] = letters[s];
    out[k] = '\0';
    return k;
}

static int p_ti_error(int s)
{
    return jm_ti_is_error((jm_ti_status_t)s);
}
static int p_ti_terminal(int s)
{
    return jm_ti_is_terminal((jm_ti_status_t)s);
}
static int p_task_active(int s)
{
    return jm_task_status_is_active((jm_task_status_t)s);
}
static int p_run_alive(int s)
{
    return jm_run_is_alive((jm_run_status_t)s);
}
static int p_run_active(int s)
{
    return jm_run_is_active((jm_run_status_t)s);
}
static int p_run_terminal(int s)
{
    return jm_run_is_terminal((jm_run_status_t)s);
}
static int p_wf_finished(int s)
{
    return jm_wf_is_finished((jm_wf_status_t)s);
}

/* The letters of an SQL set such as "('D','F')", in the order of `letters`. */
static void sql_members(const char *sql, char *out, const char *letters)
{
    int k = 0;
    for (const char *l = letters; *l; l++) {
        char quoted[4] = {'\'', *l, '\'', '\0'};
        if (strstr(sql, quoted))
            out[k++] = *l;
    }
    out[k] = '\0';
}

START_TEST(test_status_classes)
{
    char buf[16];
    members(p_ti_error, JM_TI__CNT, buf, "QIORTXKDEZUWF");
    ck_assert_str_eq(buf, "EZUW");
    members(p_ti_terminal, JM_TI__CNT, buf, "QIORTXKDEZUWF");
    ck_assert_str_eq(buf, "DEZUWF");
    members(p_task_active, JM_TASK__CNT, buf, "GQIORDEAF");
    ck_assert_str_eq(buf, "QIOR");
    members(p_run_alive, JM_RUN__CNT, buf, "GLBIORDESACHT");
    ck_assert_str_eq(buf, "LBIORCH");
    members(p_run_active, JM_RUN__CNT, buf, "GLBIORDESACHT");
    ck_assert_str_eq(buf, "BIOR");
    members(p_run_terminal, JM_RUN__CNT, buf, "GLBIORDESACHT");
    ck_assert_str_eq(buf, "DESAT");
    members(p_wf_finished, JM_WF__CNT, buf, "GQIORDFAH");
    ck_assert_str_eq(buf, "DFAH");
}
END_TEST

/* common/status_sql.h spells the same sets for SQL. */
START_TEST(test_status_sql_sets)
{
    char c[16], sql[16];
    members(p_run_alive, JM_RUN__CNT, c, "GLBIORDESACHT");
    sql_members(JM_SQL_RUN_ALIVE, sql, "GLBIORDESACHT");
    ck_assert_str_eq(sql, c);
    members(p_run_active, JM_RUN__CNT, c, "GLBIORDESACHT");
    sql_members(JM_SQL_RUN_ACTIVE, sql, "GLBIORDESACHT");
    ck_assert_str_eq(sql, c);
    members(p_wf_finished, JM_WF__CNT, c, "GQIORDFAH");
    sql_members(JM_SQL_WF_FINISHED, sql, "GQIORDFAH");
    ck_assert_str_eq(sql, c);
}
END_TEST

START_TEST(test_wf_for_run)
{
    static const struct {
        char run, wf;
    } map[] = {{'G', 0},   {'L', 'G'}, {'B', 'Q'}, {'I', 'I'}, {'O', 'O'}, {'R', 'R'}, {'D', 'D'},
               {'E', 'F'}, {'S', 'F'}, {'A', 'A'}, {'C', 0},   {'H', 0},   {'T', 'H'}};
    ck_assert_int_eq(JM_ARRAY_LEN(map), JM_RUN__CNT);
    for (size_t i = 0; i < JM_ARRAY_LEN(map); i++) {
        int run = jm_status_from_letter(JM_ENTITY_RUN, map[i].run);
        int wf = jm_wf_status_for_run((jm_run_status_t)run);
        if (!map[i].wf)
            ck_assert_int_eq(wf, -1);
        else
            ck_assert_int_eq(jm_status_letter(JM_ENTITY_WORKFLOW, wf), map[i].wf);
    }
}
END_TEST

/* Every workflow change driven by a legal run change must itself be legal in the workflow FSM. */
START_TEST(test_run_drives_legal_workflow_moves)
{
    for (int from = 0; from < JM_RUN__CNT; from++)
        for (int to = 0; to < JM_RUN__CNT; to++) {
            if (from == to || jm_fsm_check(JM_ENTITY_RUN, from, to) != JM_TR_LEGAL)
                continue;
            int wf_from = jm_wf_status_for_run((jm_run_status_t)from);
            int wf_to = jm_wf_status_for_run((jm_run_status_t)to);
            if (wf_from < 0 || wf_to < 0 || wf_from == wf_to)
                continue;
            ck_assert_msg(
                jm_fsm_check(JM_ENTITY_WORKFLOW, wf_from, wf_to) == JM_TR_LEGAL,
                "run %c->%c drives workflow %c->%c", jm_status_letter(JM_ENTITY_RUN, from),
                jm_status_letter(JM_ENTITY_RUN, to), jm_status_letter(JM_ENTITY_WORKFLOW, wf_from),
                jm_status_letter(JM_ENTITY_WORKFLOW, wf_to));
        }
    /* a run that yields to a resume (→C/H→T) drives its workflow from where it was to H */
    for (int from = 0; from < JM_RUN__CNT; from++) {
        if (jm_fsm_check(JM_ENTITY_RUN, from, JM_RUN_C) != JM_TR_LEGAL)
            continue;
        int wf_from = jm_wf_status_for_run((jm_run_status_t)from);
        ck_assert_int_eq(jm_fsm_check(JM_ENTITY_WORKFLOW, wf_from, JM_WF_H), JM_TR_LEGAL);
    }
}
END_TEST

START_TEST(test_resumable_and_user_status)
{
    ck_assert(jm_wf_is_resumable(1, 0));
    ck_assert(!jm_wf_is_resumable(1, 1));
    ck_assert(!jm_wf_is_resumable(0, 0));
    ck_assert(jm_wf_is_ready_to_link(1, JM_WF_F));
    ck_assert(jm_wf_is_ready_to_link(1, JM_WF_G));
    ck_assert(jm_wf_is_ready_to_link(1, JM_WF_H));
    ck_assert(!jm_wf_is_ready_to_link(1, JM_WF_D));
    ck_assert(!jm_wf_is_ready_to_link(1, JM_WF_R));
    ck_assert(!jm_wf_is_ready_to_link(1, JM_WF_Q));
    ck_assert(!jm_wf_is_ready_to_link(0, JM_WF_F));
    static const char *const user[] = {"PENDING", "PENDING", "PENDING", "SCHEDULED", "RUNNING",
                                       "DONE",    "PENDING", "PENDING", "FATAL"};
    for (int s = 0; s < JM_TASK__CNT; s++)
        ck_assert_str_eq(jm_task_user_status((jm_task_status_t)s), user[s]);
    ck_assert_str_eq(jm_task_user_status(JM_TASK__CNT), "?");
}
END_TEST

Suite *jm_fsm_suite(void);
Suite *jm_fsm_suite(void)
{
    Suite *s = suite_create("fsm");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_letters_round_trip);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_transition_table);
    tcase_add_test(tc, test_transition_out_of_range);
    tcase_add_test(tc, test_effect_follow);
    tcase_add_test(tc, test_effect_no_task_change);
    tcase_add_test(tc, test_effect_errors_retry);
    tcase_add_test(tc, test_effect_attempts_exhausted);
    tcase_add_test(tc, test_effect_orphan_rule);
    tcase_add_test(tc, test_effect_matrix_invariants);
    tcase_add_test(tc, test_status_classes);
    tcase_add_test(tc, test_status_sql_sets);
    tcase_add_test(tc, test_wf_for_run);
    tcase_add_test(tc, test_run_drives_legal_workflow_moves);
    tcase_add_test(tc, test_resumable_and_user_status);
    suite_add_tcase(s, tc);
    return s;
}
