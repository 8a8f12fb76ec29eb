/*
 * transition.c — the legal / untimely / illegal tables of the four state machines.
 *
 * One matrix per entity: row = from, column = to, in enum (letter) order.  Each cell is
 *   'L' legal, 'u' untimely (a known race or a same-state repeat: ignore, state unchanged),
 *   '.' illegal.
 * The tables follow reference §2 (jobmon-behaviour.md) with these deliberate deviations:
 *   - TI T→E legal: a worker's late error after triage; Jobmon first moves T→R then R→E, we
 *     accept the direct move so one event makes one transition.
 *   - run B→E, I→E, O→E legal (as in Jobmon's FSM) and actually used: our reaper reaps runs that
 *     die while starting (Jobmon leaves them stuck, gotcha §10.6).
 *   - run I→C/H and O→C/H legal: a run still starting can be told to yield to a resume.
 *   - run B→S, I→S, O→S legal: a user's confirmed Ctrl-C (or `jobmon stop`) stops a run that has
 *     not reached R yet (Jobmon only stops from R, so an early Ctrl-C could not stop the run).
 *   - workflow I→H and O→H legal: the consequence of the previous rule (run C/H→T drives the
 *     workflow to H; the reference only lists Q→H and R→H).
 * Bulk bypasses of the FSM (resume termination, operator reset, force cleanup, triage sweep) are
 * not modelled here; the consumer applies them explicitly.
 *
 * Not here: side effects between entities (effect.c) and applying anything (the consumer).
 */
#include "jobmon/fsm.h"

/*                                 to: Q I O R T X K D E Z U W F */
static const char ti_table[JM_TI__CNT][JM_TI__CNT + 1] = {
    [JM_TI_Q] = ".L....L......", /* Q→I, Q→K (legacy) */
    [JM_TI_I] = "..LL..L....L.", /* I→O, I→R (race), I→K (legacy), I→W */
    [JM_TI_O] = "...L.LL..LL.L", /* O→R, O→X, O→K, O→Z, O→U, O→F */
    [JM_TI_R] = "..u.L.LLLLL..", /* R→T, R→K, R→D, R→E, R→Z, R→U; R→O untimely */
    [JM_TI_T] = "...L....LLL.L", /* T→R, T→Z, T→U, T→F; T→E is our deviation */
    [JM_TI_X] = "........L....", /* X→E */
    [JM_TI_K] = ".......Luuu.L", /* K→D, K→F; K→E, K→Z, K→U untimely */
    [JM_TI_D] = ".......u..u..", /* D→D already, D→U untimely */
    [JM_TI_E] = "..u.....u.u..", /* E→O, E→E, E→U untimely */
    [JM_TI_Z] = ".........uu..", /* Z→Z already, Z→U untimely */
    [JM_TI_U] = ".......uuuu..", /* U→D, U→E, U→Z untimely, U→U already */
    [JM_TI_W] = "...........u.", /* W→W already */
    [JM_TI_F] = "............u", /* F→F already */
};

/* Same-state is an untimely no-op for every task status. */
/*                                       to: G Q I O R D E A F */
static const char task_table[JM_TASK__CNT][JM_TASK__CNT + 1] = {
    [JM_TASK_G] = "uL.......",                            /* G→Q */
    [JM_TASK_Q] = ".uL......",                            /* Q→I */
    [JM_TASK_I] = "..uLL.L..",                            /* I→O, I→R, I→E */
    [JM_TASK_O] = "...uL.L..",                            /* O→R, O→E */
    [JM_TASK_R] = "....uLL..",                            /* R→D, R→E */
    [JM_TASK_D] = ".....u...", [JM_TASK_E] = "LL....uLL", /* E→G, E→Q (legacy), E→A, E→F */
    [JM_TASK_A] = ".L.....u.",                            /* A→Q */
    [JM_TASK_F] = "........u",
};

/*                                    to: G L B I O R D E S A C H T */
static const char run_table[JM_RUN__CNT][JM_RUN__CNT + 1] = {
    [JM_RUN_G] = ".L...........", /* G→L */
    [JM_RUN_L] = ".uL......L...", /* L→B, L→A; L→L untimely */
    [JM_RUN_B] = "...L...LL.LL.", /* B→I, B→E, B→C, B→H; B→S our deviation */
    [JM_RUN_I] = "....L..LL.LL.", /* I→O, I→E; I→S, I→C, I→H our deviation */
    [JM_RUN_O] = ".....L.LL.LL.", /* O→R, O→E; O→S, O→C, O→H our deviation */
    [JM_RUN_R] = ".....uLLL.LL.", /* R→D, R→E, R→S, R→C, R→H; R→R untimely */
    [JM_RUN_D] = ".............", [JM_RUN_E] = ".............", [JM_RUN_S] = ".............",
    [JM_RUN_A] = ".............", [JM_RUN_C] = "............L", /* C→T */
    [JM_RUN_H] = "............L",                               /* H→T */
    [JM_RUN_T] = ".............",
};

/*                                  to: G Q I O R D F A H */
static const char wf_table[JM_WF__CNT][JM_WF__CNT + 1] = {
    [JM_WF_G] = "uL.....L.",                          /* G→Q, G→A; G→G untimely */
    [JM_WF_Q] = "..L...L.L",                          /* Q→I, Q→F, Q→H */
    [JM_WF_I] = "...L..L.L",                          /* I→O, I→F; I→H our deviation */
    [JM_WF_O] = "....L.L.L",                          /* O→R, O→F; O→H our deviation */
    [JM_WF_R] = ".....LL.L",                          /* R→D, R→F, R→H */
    [JM_WF_D] = ".........", [JM_WF_F] = "L........", /* F→G */
    [JM_WF_A] = "L........",                          /* A→G */
    [JM_WF_H] = "L........",                          /* H→G */
};

static jm_transition_t cell(char c)
{
    switch (c) {
    case 'L': return JM_TR_LEGAL;
    case 'u': return JM_TR_UNTIMELY;
    default: return JM_TR_ILLEGAL;
    }
}

const char *jm_transition_name(jm_transition_t tr)
{
    switch (tr) {
    case JM_TR_LEGAL: return "legal";
    case JM_TR_UNTIMELY: return "untimely";
    case JM_TR_ILLEGAL: return "illegal";
    }
    return "?";
}

jm_transition_t jm_fsm_check(jm_entity_t entity, int from, int to)
{
    int n = jm_status_count(entity);
    if (from < 0 || from >= n || to < 0 || to >= n)
        return JM_TR_ILLEGAL;
    switch (entity) {
    case JM_ENTITY_TI: return cell(ti_table[from][to]);
    case JM_ENTITY_TASK: return cell(task_table[from][to]);
    case JM_ENTITY_RUN: return cell(run_table[from][to]);
    case JM_ENTITY_WORKFLOW: return cell(wf_table[from][to]);
    case JM_ENTITY__CNT: break;
    }
    return JM_TR_ILLEGAL;
}
