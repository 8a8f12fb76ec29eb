/*
 * apply_sql.c — the SQL of every statement the handlers run, prepared once per connection
 * (jm_apply_new / jm_apply_reset).  Lists travel as one array or jsonb parameter so that a whole
 * batch item list is one statement (unnest / jsonb_to_recordset), never one statement per item.
 * Times are always parameters taken from the event ($ts), never now().
 * The AP_FLUSH_* statements write what the handlers applied in memory during the transaction
 * (apply_int.h); AP_SCHED_INSERT, AP_TI_SET_RUNNING and AP_TI_SET_RESULT are kept as the
 * one-row reference of their flush statements (not executed any more), and AP_FLUSH_REPORT_BY,
 * AP_FLUSH_TI_STATUS, AP_FLUSH_RUNNING, AP_FLUSH_RESULT and AP_TI_SET_LAUNCHED as the per-kind
 * reference of AP_FLUSH_TI_ROWS (not executed either).
 */
#include "common/ownership_sql.h"
#include "common/status_sql.h"
#include "consumer/apply_int.h"

/* Generic conditional transition: $1 ids, $2 from letters, $3 to letters, $4 ts, $5 event id. */
#define TR_SQL(table, entity, wfcol)                                                               \
    "WITH x AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(id, f, t)),"       \
    " u AS (UPDATE " table " e SET status = x.t, status_at = $4::timestamptz FROM x"               \
    "       WHERE e.id = x.id AND e.status = x.f RETURNING e.id, e." wfcol " AS wf, x.f, x.t),"    \
    " l AS (INSERT INTO transition_log (entity, entity_id, workflow_id, from_status, to_status,"   \
    "       event_id, at) SELECT '" entity "', id, wf, f, t, $5::uuid, $4::timestamptz FROM u"     \
    "       ORDER BY id)"                                                                          \
    " SELECT id FROM u"

#define STATUS_SQL(table) "SELECT id, status FROM " table " WHERE id = ANY($1::bigint[])"

const char *const jm_ap_sql[AP_SQL__CNT] = {
    [AP_TR_TI] = TR_SQL("task_instance", "task_instance", "workflow_id"),
    /* Task: also $6 attempt mode (0 keep, 1 queue: +1, 2 reset).  The per-status counters are
     * kept in memory by the caller (jm_ap_transition) and written once per transaction. */
    [AP_TR_TASK] =
        "WITH x AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(id, f, t)),"
        " u AS (UPDATE task e SET status = x.t, status_at = $4::timestamptz,"
        "         num_attempts = CASE $6::int WHEN 1 THEN e.num_attempts + 1 WHEN 2 THEN 0"
        "                        ELSE e.num_attempts END,"
        "         ti_seq = CASE $6::int WHEN 1 THEN e.ti_seq + 1 ELSE e.ti_seq END"
        "       FROM x WHERE e.id = x.id AND e.status = x.f"
        "       RETURNING e.id, e.workflow_id AS wf, x.f, x.t),"
        " l AS (INSERT INTO transition_log (entity, entity_id, workflow_id, from_status, to_status,"
        "       event_id, at) SELECT 'task', id, wf, f, t, $5::uuid, $4::timestamptz FROM u"
        "       ORDER BY id)"
        " SELECT id, wf FROM u",
    [AP_TR_RUN] = TR_SQL("workflow_run", "workflow_run", "workflow_id"),
    [AP_TR_WF] = TR_SQL("workflow", "workflow", "id"),
    [AP_STATUS_TI] = STATUS_SQL("task_instance"),
    [AP_STATUS_TASK] = STATUS_SQL("task"),
    [AP_STATUS_RUN] = STATUS_SQL("workflow_run"),
    [AP_STATUS_WF] = STATUS_SQL("workflow"),

    /* $1 wf */
    [AP_WF_GET] = "SELECT status, max_concurrently_running, bound_at IS NOT NULL, total_tasks"
                  " FROM workflow WHERE id = $1::bigint",
    /* $1 run, $2 ts */
    [AP_RUN_GET] = "SELECT workflow_id, status, fail_fast, resume_mode,"
                   " heartbeat_by < $2::timestamptz,"
                   " COALESCE(timeout_at <= $2::timestamptz, false)"
                   " FROM workflow_run WHERE id = $1::bigint",
    /* $1 wf */
    [AP_RUN_ALIVE] = "SELECT id, status, fail_fast FROM workflow_run"
                     " WHERE workflow_id = $1::bigint AND status IN " JM_SQL_RUN_ALIVE,
    /* $1 ti ids, $2 wf, $3 ts */
    [AP_TI_LOAD] = "SELECT ti.id, ti.status, ti.task_id, ti.run_id, ti.attempt,"
                   " COALESCE(ti.report_by < $3::timestamptz, false),"
                   " t.status, t.num_attempts, t.max_attempts, t.ti_seq"
                   " FROM task_instance ti JOIN task t ON t.id = ti.task_id"
                   " WHERE ti.id = ANY($1::bigint[]) AND ti.workflow_id = $2::bigint",

    /* ---- bind ---- */
    /* $1 name, $2 ts */
    [AP_TOOL_INS] = "INSERT INTO tool (name, created_at) VALUES ($1, $2::timestamptz)"
                    " ON CONFLICT DO NOTHING",
    /* $1 templates jsonb, $2 ts */
    [AP_TTV_INS] =
        "INSERT INTO task_template_version (hash, template_name, command_template, node_args,"
        " task_args, op_args, created_at)"
        " SELECT t->>'hash', t->>'name', t->>'command_template',"
        "  ARRAY(SELECT jsonb_array_elements_text(t->'node_args')),"
        "  ARRAY(SELECT jsonb_array_elements_text(t->'task_args')),"
        "  ARRAY(SELECT jsonb_array_elements_text(t->'op_args')), $2::timestamptz"
        " FROM jsonb_array_elements($1::jsonb) t ON CONFLICT DO NOTHING",
    /* $1 wf, $2 tool, $3 args hash, $4 task hash, $5 dag hash, $6 name, $7 limit, $8 total,
     * $9 user, $10 attributes, $11 ts, $12 event id.  Re-bind: mutable fields overwritten,
     * attributes merged, binding progress restarted. */
    [AP_WF_INS] =
        "WITH w AS (INSERT INTO workflow AS w (id, tool, workflow_args_hash, task_hash, dag_hash,"
        "   name, status, max_concurrently_running, total_tasks, user_name, attributes,"
        "   created_at, status_at, bind_recheck)"
        "  VALUES ($1::bigint, $2, $3, $4, $5, $6, 'G', $7::int, $8::int, $9, $10::jsonb,"
        "   $11::timestamptz, $11::timestamptz, false)"
        "  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
        "   max_concurrently_running = EXCLUDED.max_concurrently_running,"
        "   total_tasks = EXCLUDED.total_tasks, attributes = w.attributes || EXCLUDED.attributes,"
        "   chunks_expected = NULL, bound_at = NULL, bind_recheck = true"
        "  RETURNING id, (xmax = 0) AS ins, status),"
        " l AS (INSERT INTO transition_log (entity, entity_id, workflow_id, from_status, to_status,"
        "   event_id, at) SELECT 'workflow', id, id, NULL, 'G', $12::uuid, $11::timestamptz"
        "   FROM w WHERE ins)"
        " SELECT ins, status FROM w",
    [AP_WF_REBIND] = "SELECT 1", /* unused */
    /* $1 templates jsonb, $2 wf */
    [AP_ARRAY_UPSERT] =
        "INSERT INTO task_array AS a (id, workflow_id, template_name, ttv_hash,"
        " max_concurrently_running)"
        " SELECT (t->>'array_id')::bigint, $2::bigint, t->>'name', t->>'hash',"
        "  (t->>'max_concurrently_running')::int FROM jsonb_array_elements($1::jsonb) t"
        " ON CONFLICT (id) DO UPDATE SET"
        "  max_concurrently_running = EXCLUDED.max_concurrently_running",
    /* $1 tasks jsonb, $2 wf, $3 ts, $4 event id.  Inserts new tasks in G (+ counts; their
     * creation is bind_event_id = $4, no transition_log row: 008_bind_rows.sql) and edges;
     * existing tasks get their mutable fields; returns (id, status) of existing ones.
     * A new task's pending_upstreams is provisionally its number of upstream tasks (what it is
     * when they all arrive and none is D), so that AP_PENDING_RECOMPUTE at the end of the bind
     * rewrites only the rows where that guess was wrong (none in a first bind) and the ready
     * indexes never see the non-root tasks. */
    [AP_TASKS_UPSERT] =
        "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(task_id bigint, name text,"
        "   command text, template text, array_id bigint, node_hash text, max_attempts int,"
        "   resources jsonb, resource_scales jsonb, fallback_queues jsonb, cluster text,"
        "   upstream jsonb)),"
        " i AS (INSERT INTO task AS t (id, workflow_id, name, command, template, array_id,"
        "   node_hash, status, max_attempts, resources, resource_scales, fallback_queues,"
        "   cluster, status_at, pending_upstreams, bind_event_id)"
        "  SELECT task_id, $2::bigint, name, command, template, array_id, node_hash, 'G',"
        "   max_attempts, resources, resource_scales,"
        "   ARRAY(SELECT jsonb_array_elements_text(fallback_queues)), cluster, $3::timestamptz,"
        "   (SELECT count(DISTINCT u) FROM jsonb_array_elements_text(upstream) u), $4::uuid"
        "  FROM x ORDER BY task_id"
        "  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, command = EXCLUDED.command,"
        "   template = EXCLUDED.template, array_id = EXCLUDED.array_id,"
        "   max_attempts = EXCLUDED.max_attempts, resources = EXCLUDED.resources,"
        "   resource_scales = EXCLUDED.resource_scales,"
        "   fallback_queues = EXCLUDED.fallback_queues, cluster = EXCLUDED.cluster"
        "   WHERE t.workflow_id = EXCLUDED.workflow_id"
        "  RETURNING id, (xmax = 0) AS ins, status),"
        " c AS (INSERT INTO workflow_task_count AS c (workflow_id, status, n)"
        "   SELECT $2::bigint, 'G', count(*) FROM i WHERE ins HAVING count(*) > 0"
        "   ON CONFLICT (workflow_id, status) DO UPDATE SET n = c.n + EXCLUDED.n),"
        " e AS (INSERT INTO task_edge (workflow_id, upstream_id, downstream_id)"
        "   SELECT $2::bigint, u::bigint, x.task_id FROM x,"
        "   jsonb_array_elements_text(x.upstream) u ON CONFLICT DO NOTHING)"
        " SELECT id, status FROM i WHERE NOT ins ORDER BY id",
    /* $1 wf, $2 the chunk's task ids: the workflow's status and whether any of the ids is a
     * task already (of any workflow); when none is, the chunk is copied (apply_bind.c). */
    /* $1 wf, $2 upstream ids of a copied chunk's tasks (not in the chunk itself), NULL for a
     * chunk that took the general statement: the bind's final recompute becomes necessary
     * (bind_recheck, 008_bind_rows.sql) when one of them is not a task or is D, or for NULL. */
    [AP_BIND_RECHECK] =
        "UPDATE workflow SET bind_recheck = true WHERE id = $1::bigint AND NOT bind_recheck"
        " AND ($2::bigint[] IS NULL OR EXISTS (SELECT 1 FROM unnest($2::bigint[]) u(id)"
        "  WHERE NOT EXISTS (SELECT 1 FROM task t WHERE t.id = u.id AND t.status <> 'D')))",
    [AP_BIND_CHUNK_GET] = "SELECT status, EXISTS (SELECT 1 FROM task WHERE id = ANY($2::bigint[]))"
                          " FROM workflow WHERE id = $1::bigint",
    [AP_TASKS_RESET_REBIND] = "SELECT 1", /* unused */
    [AP_EDGES_INS] = "SELECT 1",          /* unused: edges go with AP_TASKS_UPSERT */
    /* $1 wf: binding progress.  The tasks are counted only once workflow.bound was seen and
     * binding is not complete (before that the count cannot matter: counting after every chunk
     * made a bind O(n²)); otherwise the count column is NULL. */
    [AP_WF_CHUNK] = "SELECT chunks_expected IS NOT NULL, bound_at IS NOT NULL, total_tasks,"
                    " CASE WHEN chunks_expected IS NOT NULL AND bound_at IS NULL THEN"
                    "  (SELECT count(*) FROM task t WHERE t.workflow_id = w.id) END, bind_recheck"
                    " FROM workflow w WHERE id = $1::bigint",
    /* $1 wf, $2 chunks */
    [AP_WF_BOUND] = "UPDATE workflow SET chunks_expected = $2::int WHERE id = $1::bigint"
                    " RETURNING id",
    /* $1 wf, $2 task ids (NULL = all tasks of the workflow), $3 ts or NULL (sets bound_at).
     * pending_upstreams = upstream edges whose task exists and is not D.  All tasks: one
     * set-based join (the first branch, gated by $2 IS NULL) that keeps only the tasks whose
     * count differs (none in a first bind: the UPDATE then looks up no row); a list: per task
     * (the second, gated by $2 IS NOT NULL). */
    [AP_PENDING_RECOMPUTE] =
        "WITH p AS (SELECT d.id, count(u.id)::int AS n FROM task d"
        "   LEFT JOIN task_edge e ON e.downstream_id = d.id"
        "   LEFT JOIN task u ON u.id = e.upstream_id AND u.status <> 'D'"
        "   WHERE d.workflow_id = $1::bigint AND $2::bigint[] IS NULL GROUP BY d.id"
        "   HAVING count(u.id) <> d.pending_upstreams"
        "  UNION ALL"
        "  SELECT t.id, (SELECT count(*) FROM task_edge e JOIN task u"
        "    ON u.id = e.upstream_id WHERE e.downstream_id = t.id AND u.status <> 'D')::int"
        "   FROM task t WHERE $2::bigint[] IS NOT NULL AND t.workflow_id = $1::bigint"
        "   AND t.id = ANY($2::bigint[])),"
        " u AS (UPDATE task t SET pending_upstreams = p.n FROM p"
        "   WHERE t.id = p.id AND t.pending_upstreams <> p.n RETURNING t.id)"
        " UPDATE workflow SET bound_at = COALESCE($3::timestamptz, bound_at)"
        " WHERE id = $1::bigint RETURNING (SELECT count(*) FROM u)",

    /* ---- runs ---- */
    /* $1 run, $2 wf, $3 cluster, $4 user, $5 host, $6 fail_fast, $7 timeout_s, $8 resume,
     * $9 ts, $10 event id, $11 heartbeat seconds */
    [AP_RUN_INS] =
        "WITH r AS (INSERT INTO workflow_run (id, workflow_id, status, cluster, user_name, host,"
        "   fail_fast, timeout_at, heartbeat_by, resume_mode, created_at, status_at)"
        "  VALUES ($1::bigint, $2::bigint, 'B', $3, $4, $5, $6::boolean,"
        "   CASE WHEN $7::int > 0 THEN $9::timestamptz + make_interval(secs => $7::int) END,"
        "   $9::timestamptz + make_interval(secs => $11::int), $8, $9::timestamptz,"
        "   $9::timestamptz)"
        "  ON CONFLICT (id) DO NOTHING RETURNING id)"
        " INSERT INTO transition_log (entity, entity_id, workflow_id, from_status, to_status,"
        "  event_id, at) SELECT 'workflow_run', id, $2::bigint, NULL, 'B', $10::uuid,"
        "  $9::timestamptz FROM r RETURNING entity_id",
    /* $1 run, $2 ts, $3 seconds: only alive, not draining (reference: C/H do not extend) */
    [AP_RUN_HEARTBEAT] = "UPDATE workflow_run SET heartbeat_by = GREATEST(heartbeat_by,"
                         " $2::timestamptz + make_interval(secs => $3::int))"
                         " WHERE id = $1::bigint AND status IN ('L','B','I','O','R') RETURNING id",

    /* ---- scheduler ---- */
    /* $1 wf, $2 capacity (the workflow limit minus its active tasks, counted by the caller with
     * the transaction's pending count deltas), $3 the workflow's last batch number: ready tasks
     * under the workflow and array limits, grouped into batches of equal (array, resources) of at
     * most 500, numbered after $3 by first task id; step = 0-based rank by task id inside the
     * batch.  A (resource retry) first, then by id. */
    [AP_SCHED_PICK] =
        "WITH w AS (SELECT $2::bigint AS cap, $3::int AS batches),"
        " act AS (SELECT array_id, count(*) AS n FROM task WHERE workflow_id = $1::bigint"
        "   AND status IN ('Q','I','O','R') AND array_id IS NOT NULL GROUP BY array_id),"
        " ready AS (SELECT t.id, t.array_id, t.resources, t.status, t.ti_seq, t.num_attempts,"
        "   t.max_attempts,"
        "   row_number() OVER (PARTITION BY t.array_id ORDER BY (t.status = 'A') DESC, t.id)"
        "   AS arank FROM task t WHERE t.workflow_id = $1::bigint AND t.status IN ('G','A')"
        "   AND t.pending_upstreams = 0 AND (SELECT cap FROM w) > 0),"
        " ok AS (SELECT r.* FROM ready r LEFT JOIN task_array a ON a.id = r.array_id"
        "   LEFT JOIN act ON act.array_id = r.array_id WHERE r.array_id IS NULL"
        "   OR r.arank <= COALESCE(a.max_concurrently_running, 2147483647) - COALESCE(act.n, 0)),"
        " picked AS (SELECT * FROM ok ORDER BY (status = 'A') DESC, id LIMIT (SELECT cap FROM w)),"
        " g AS (SELECT p.*, row_number() OVER (PARTITION BY array_id, resources ORDER BY id) - 1"
        "   AS rn FROM picked p),"
        " g2 AS (SELECT g.*, min(id) OVER (PARTITION BY array_id, resources, rn / 500)"
        "   AS first_id FROM g)"
        " SELECT id, status, ti_seq + 1, (SELECT batches FROM w) + dense_rank() OVER"
        "   (ORDER BY first_id), rn % 500, num_attempts, max_attempts FROM g2 ORDER BY id",
    /* $1 wf, $2 capacity (> 0), $3 last batch number, when no array limit can bind: the first $2
     * ready tasks (A first, then by id) by two bounded scans of task_ready_status, laid out as
     * AP_SCHED_PICK. */
    [AP_SCHED_PICK_FAST] =
        "WITH picked AS (SELECT * FROM ((SELECT id, array_id, resources, status, ti_seq,"
        "   num_attempts, max_attempts FROM task"
        "   WHERE workflow_id = $1::bigint AND status = 'A' AND pending_upstreams = 0"
        "   ORDER BY id LIMIT $2::int) UNION ALL (SELECT id, array_id, resources, status, ti_seq,"
        "   num_attempts, max_attempts"
        "   FROM task WHERE workflow_id = $1::bigint AND status = 'G' AND pending_upstreams = 0"
        "   ORDER BY id LIMIT $2::int)) c ORDER BY (status = 'A') DESC, id LIMIT $2::int),"
        " g AS (SELECT p.*, row_number() OVER (PARTITION BY array_id, resources ORDER BY id) - 1"
        "   AS rn FROM picked p),"
        " g2 AS (SELECT g.*, min(id) OVER (PARTITION BY array_id, resources, rn / 500)"
        "   AS first_id FROM g)"
        " SELECT id, status, ti_seq + 1, $3::int + dense_rank() OVER (ORDER BY first_id),"
        "   rn % 500, num_attempts, max_attempts FROM g2 ORDER BY id",
    /* $1 ti ids, $2 task ids, $3 attempts, $4 batch nums, $5 steps, $6 wf, $7 run, $8 ts.
     * Returns the new ids in id order.  workflow.batches and the transition_log rows are
     * written by the caller (pending state, jm_apply_flush). */
    [AP_SCHED_INSERT] =
        "WITH x AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[],"
        "   $5::int[]) AS x(id, task_id, attempt, batch_num, step)),"
        " i AS (INSERT INTO task_instance (id, task_id, workflow_id, run_id, attempt, status,"
        "   array_id, batch_num, step, resources, created_at, status_at)"
        "  SELECT x.id, x.task_id, $6::bigint, $7::bigint, x.attempt, 'Q', t.array_id,"
        "   x.batch_num, x.step, t.resources, $8::timestamptz, $8::timestamptz"
        "  FROM x JOIN task t ON t.id = x.task_id ORDER BY x.id RETURNING id)"
        " SELECT id FROM i ORDER BY id",

    /* ---- task instance fields ---- */
    /* $1 ids, $2 distributor ids, $3 ts, $4 seconds */
    [AP_TI_SET_LAUNCHED] = "UPDATE task_instance ti SET distributor_id = x.d,"
                           " report_by = $3::timestamptz + make_interval(secs => $4::int)"
                           " FROM unnest($1::bigint[], $2::text[]) AS x(id, d) WHERE ti.id = x.id",
    /* $1 ids, $2 ts, $3 seconds, $4 status the rows must still be in */
    [AP_TI_SET_REPORT_BY] =
        "UPDATE task_instance SET report_by = $2::timestamptz + make_interval(secs => $3::int)"
        " WHERE id = ANY($1::bigint[]) AND status = $4 RETURNING id",
    /* $1 id, $2 host, $3 pid, $4 distributor id, $5 ts, $6 seconds, $7 stdout, $8 stderr */
    [AP_TI_SET_RUNNING] = "UPDATE task_instance SET host = $2, pid = $3::int,"
                          " distributor_id = COALESCE(NULLIF($4, ''), distributor_id),"
                          " report_by = $5::timestamptz + make_interval(secs => $6::int),"
                          " stdout_path = $7, stderr_path = $8 WHERE id = $1::bigint",
    /* $1 id, $2 exit code, $3 message, $4 stdout tail, $5 stderr tail, $6 wall, $7 cpu, $8 rss */
    [AP_TI_SET_RESULT] =
        "UPDATE task_instance SET exit_code = $2::int, message = COALESCE($3, message),"
        " stdout_tail = $4, stderr_tail = $5, wall_ms = $6::bigint, cpu_ms = $7::bigint,"
        " maxrss_kb = $8::bigint WHERE id = $1::bigint",
    /* $1 ids, $2 messages */
    [AP_TI_SET_MESSAGE] =
        "UPDATE task_instance ti SET message = x.m FROM unnest($1::bigint[], $2::text[])"
        " AS x(id, m) WHERE ti.id = x.id",

    /* $1 task ids that became D: decrement their downstreams */
    [AP_DOWNSTREAM_DONE] =
        "UPDATE task t SET pending_upstreams = t.pending_upstreams - x.n"
        " FROM (SELECT downstream_id AS id, count(*)::int AS n FROM task_edge"
        "   WHERE upstream_id = ANY($1::bigint[]) GROUP BY downstream_id) x"
        " WHERE t.id = x.id AND t.pending_upstreams > 0 RETURNING t.id, t.pending_upstreams,"
        " t.status, t.workflow_id, t.array_id, t.resources, t.ti_seq, t.num_attempts,"
        " t.max_attempts",
    /* $1 run, $2 statuses: the run's instances in those statuses with their task */
    [AP_RUN_TIS_STATUS] =
        "SELECT ti.id, ti.status, ti.task_id, t.status, ti.attempt, t.ti_seq"
        " FROM task_instance ti JOIN task t ON t.id = ti.task_id"
        " WHERE ti.run_id = $1::bigint AND ti.status = ANY($2::text[]) ORDER BY ti.id",
    /* $1 wf, $2 statuses */
    [AP_WF_TASKS_STATUS] = "SELECT id, status FROM task WHERE workflow_id = $1::bigint"
                           " AND status = ANY($2::text[]) ORDER BY id",
    /* $1 wf: per-status counts (status NULL when none yet; the caller adds the transaction's
     * pending deltas), the workflow limit, whether an array limit is below it (only then can an
     * array limit bind), the alive run (id, status, fail_fast; NULL when none) and the stored
     * workflow.batches — everything jm_ap_progress needs in one trip */
    [AP_WF_COUNTS] =
        "SELECT c.status, c.n, w.max_concurrently_running, EXISTS (SELECT 1 FROM task_array a"
        "  WHERE a.workflow_id = w.id AND a.max_concurrently_running < w.max_concurrently_running),"
        " r.id, r.status, r.fail_fast, w.batches"
        " FROM workflow w LEFT JOIN LATERAL (SELECT id, status, fail_fast FROM workflow_run"
        "  WHERE workflow_id = w.id AND status IN " JM_SQL_RUN_ALIVE " LIMIT 1) r ON true"
        " LEFT JOIN workflow_task_count c ON c.workflow_id = w.id"
        " WHERE w.id = $1::bigint",
    /* $1 wf: any ready task (capacity aside) */
    [AP_WF_SCHEDULABLE] = "SELECT EXISTS (SELECT 1 FROM task WHERE workflow_id = $1::bigint"
                          " AND status IN ('G','A') AND pending_upstreams = 0)",
    /* $1 run: instances not finished */
    [AP_RUN_LIVE_TIS] = "SELECT count(*) FROM task_instance WHERE run_id = $1::bigint"
                        " AND status IN ('Q','I','O','R','T','X','K')",
    /* $1 task ids: what scaling needs */
    [AP_TASK_SCALE_LOAD] =
        "SELECT t.id, t.resources, t.resource_scales, t.fallback_queues, t.num_attempts,"
        " (SELECT COALESCE(jsonb_object_agg(q.name, q.limits), '{}') FROM queue q"
        "  WHERE q.cluster = t.cluster)"
        " FROM task t WHERE t.id = ANY($1::bigint[]) ORDER BY t.id",
    /* $1 ids, $2 resources (json text) */
    [AP_TASK_SET_RESOURCES] =
        "UPDATE task t SET resources = x.r::jsonb FROM unnest($1::bigint[], $2::text[])"
        " AS x(id, r) WHERE t.id = x.id",
    /* $1 wf, $2 limit */
    [AP_WF_SET_LIMIT] = "UPDATE workflow SET max_concurrently_running = $2::int"
                        " WHERE id = $1::bigint RETURNING id",
    /* $1 wf, $2 template name, $3 limit */
    [AP_ARRAY_SET_LIMIT] = "UPDATE task_array SET max_concurrently_running = $3::int"
                           " WHERE workflow_id = $1::bigint AND template_name = $2 RETURNING id",
    /* $1 wf, $2 task ids, $3 recursive: the tasks and (if recursive) all their descendants */
    [AP_TASK_DOWNSTREAM_CLOSURE] =
        "WITH RECURSIVE d(id) AS (SELECT unnest($2::bigint[])"
        "  UNION SELECT e.downstream_id FROM task_edge e JOIN d ON e.upstream_id = d.id"
        "  WHERE $3::boolean)"
        " SELECT t.id, t.status FROM task t JOIN d ON d.id = t.id"
        " WHERE t.workflow_id = $1::bigint ORDER BY t.id",
    /* $1 task ids: their unfinished instances */
    [AP_TASKS_ACTIVE_TIS] = "SELECT id, status FROM task_instance WHERE task_id = ANY($1::bigint[])"
                            " AND status IN ('Q','I','O','R','T','X') ORDER BY id",
    /* $1 wf, $2 user: the most recent errored run (id, user; NULLs if none) and whether $2
     * started any run of the workflow (reference §3.11 ownership) */
    [AP_WF_OWNERSHIP] = JM_SQL_WF_OWNERSHIP,
    [AP_WF_COUNTS_INIT] = "SELECT 1", /* unused */
    /* $1 ids, $2 run: hand instances to the new alive run */
    [AP_TI_ADOPT] = "UPDATE task_instance SET run_id = $2::bigint WHERE id = ANY($1::bigint[])",
    /* $1 wf, $2 new run: unfinished instances of earlier runs, and whether each still drives
     * its task (newest instance of an active task) */
    [AP_WF_OLD_TIS] =
        "SELECT ti.id, ti.status, ti.attempt = t.ti_seq AND t.status IN ('Q','I','O','R')"
        " FROM task_instance ti JOIN task t ON t.id = ti.task_id"
        " WHERE ti.workflow_id = $1::bigint AND ti.run_id <> $2::bigint"
        " AND ti.status IN ('Q','I','O','R','T','X','K') ORDER BY ti.id",
    /* $1 tool, $2 workflow args hash, $3 wf: another workflow with the same args (§1.4) */
    /* ---- per-transaction flush (jm_apply_flush) ---- */
    /* $1 wfs, $2 statuses, $3 deltas (a 0 delta still creates the row, as a per-event apply
     * would have when the status was entered and left again) */
    [AP_FLUSH_COUNTS] =
        "INSERT INTO workflow_task_count AS c (workflow_id, status, n)"
        " SELECT wf, s, d FROM unnest($1::bigint[], $2::text[], $3::int[]) AS x(wf, s, d)"
        " ORDER BY wf, s ON CONFLICT (workflow_id, status) DO UPDATE SET n = c.n + EXCLUDED.n",
    /* $1 wfs, $2 highest batch numbers handed out */
    [AP_FLUSH_BATCHES] = "UPDATE workflow w SET batches = GREATEST(w.batches, x.b)"
                         " FROM unnest($1::bigint[], $2::int[]) AS x(id, b) WHERE w.id = x.id",
    /* $1 ti ids, $2 report_by: coalesced ti.heartbeat (the newest per instance) */
    [AP_FLUSH_REPORT_BY] =
        "UPDATE task_instance ti SET report_by = x.r"
        " FROM unnest($1::bigint[], $2::timestamptz[]) AS x(id, r) WHERE ti.id = x.id",
    /* $1 ids, $2 stored statuses, $3 new statuses, $4 status_at: status changes applied in
     * memory (the caller checks that every row was still in its stored status) */
    [AP_FLUSH_TI_STATUS] =
        "UPDATE task_instance e SET status = x.t, status_at = x.at FROM unnest($1::bigint[],"
        " $2::text[], $3::text[], $4::timestamptz[]) AS x(id, f, t, at)"
        " WHERE e.id = x.id AND e.status = x.f",
    /* the same for tasks, $5 num_attempts, $6 ti_seq, $7 pending_upstreams (NULL: unchanged),
     * as this transaction knows them */
    [AP_FLUSH_TASK_STATUS] =
        "UPDATE task e SET status = x.t, status_at = x.at, num_attempts = x.na, ti_seq = x.sq,"
        " pending_upstreams = COALESCE(x.pu, e.pending_upstreams)"
        " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::int[],"
        " $6::int[], $7::int[]) AS x(id, f, t, at, na, sq, pu) WHERE e.id = x.id AND e.status = "
        "x.f",
    /* $1 entities, $2 ids, $3 wfs, $4 from, $5 to, $6 event ids, $7 at: pending
     * transition_log rows, inserted in their order.  Not executed any more: flush_tlog (apply.c)
     * writes the same rows with a binary COPY; kept as its one-statement reference. */
    [AP_FLUSH_TLOG] =
        "INSERT INTO transition_log (entity, entity_id, workflow_id, from_status, to_status,"
        " event_id, at) SELECT e, id, wf, f, t, ev, at FROM unnest($1::text[], $2::bigint[],"
        " $3::bigint[], $4::text[], $5::text[], $6::uuid[], $7::timestamptz[])"
        " WITH ORDINALITY AS x(e, id, wf, f, t, ev, at, ord) ORDER BY ord",
    /* AP_TI_SET_RUNNING's parameters, one array each ($5 ts, $6 seconds), one row per instance */
    [AP_FLUSH_RUNNING] =
        "UPDATE task_instance ti SET host = x.h, pid = x.p::int,"
        " distributor_id = COALESCE(NULLIF(x.d, ''), ti.distributor_id),"
        " report_by = x.ts::timestamptz + make_interval(secs => x.s::int),"
        " stdout_path = x.o, stderr_path = x.e FROM unnest($1::bigint[], $2::text[], $3::text[],"
        " $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])"
        " AS x(id, h, p, d, ts, s, o, e) WHERE ti.id = x.id",
    /* AP_TI_SET_RESULT's parameters, one array each */
    [AP_FLUSH_RESULT] =
        "UPDATE task_instance ti SET exit_code = x.c::int, message = COALESCE(x.m, ti.message),"
        " stdout_tail = x.so, stderr_tail = x.se, wall_ms = x.w::bigint, cpu_ms = x.cp::bigint,"
        " maxrss_kb = x.r::bigint FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],"
        " $5::text[], $6::text[], $7::text[], $8::text[]) AS x(id, c, m, so, se, w, cp, r)"
        " WHERE ti.id = x.id",
    /* $1 ti ids: AP_TI_LOAD's columns (report_by not compared) + the workflow, for
     * jm_apply_hint */
    [AP_TI_PREFETCH] = "SELECT ti.id, ti.status, ti.task_id, ti.run_id, ti.attempt, false,"
                       " t.status, t.num_attempts, t.max_attempts, t.ti_seq, ti.workflow_id"
                       " FROM task_instance ti JOIN task t ON t.id = ti.task_id"
                       " WHERE ti.id = ANY($1::bigint[])",
    /* AP_SCHED_INSERT for the instances queued in memory (apply_int.h): $1 ids, $2 task ids,
     * $3 attempts, $4 batch nums, $5 steps, $6 wfs, $7 runs, $8 created_at */
    [AP_FLUSH_TI_INSERT] =
        "INSERT INTO task_instance (id, task_id, workflow_id, run_id, attempt, status, array_id,"
        " batch_num, step, resources, created_at, status_at)"
        " SELECT x.id, x.task_id, x.wf, x.run, x.attempt, 'Q', t.array_id, x.b, x.s, t.resources,"
        " x.at, x.at FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[], $5::int[],"
        " $6::bigint[], $7::bigint[], $8::timestamptz[]) AS x(id, task_id, attempt, b, s, wf, run,"
        " at) JOIN task t ON t.id = x.task_id ORDER BY x.id",
    /* $1 wf, $2 n: the first $2 ready tasks (A first, then by id), for the tracked ready set */
    [AP_SCHED_READY] =
        "SELECT id, status, ti_seq, num_attempts, max_attempts, array_id, resources FROM"
        " ((SELECT id, status, ti_seq, num_attempts, max_attempts, array_id, resources FROM task"
        "   WHERE workflow_id = $1::bigint AND status = 'A' AND pending_upstreams = 0"
        "   ORDER BY id LIMIT $2::int) UNION ALL (SELECT id, status, ti_seq, num_attempts,"
        "   max_attempts, array_id, resources FROM task WHERE workflow_id = $1::bigint"
        "   AND status = 'G' AND pending_upstreams = 0 ORDER BY id LIMIT $2::int)) c"
        " ORDER BY (status = 'A') DESC, id LIMIT $2::int",
    /* $1 task ids: their downstream tasks (ordered by upstream id, then id), for
     * jm_apply_hint: per id one task_edge_upstream probe and per edge one task_pkey probe, in a
     * function with its own planner settings (010_edge_probe.sql): as a join in this statement
     * the plan followed statistics taken during binds and scanned all of task_edge. */
    [AP_EDGES_PREFETCH] = "SELECT * FROM jm_task_downstream($1::bigint[])",
    /* $1 ids, $2 pending_upstreams (as this transaction knows them) */
    [AP_FLUSH_PENDING] = "UPDATE task t SET pending_upstreams = x.n"
                         " FROM unnest($1::bigint[], $2::int[]) AS x(id, n) WHERE t.id = x.id",
    /* Everything pending for task instances, one row each (flush_ti_rows): $1 ids; $2 stored and
     * $3 new status, $4 status_at (NULL: no status change; else the row must still be in $2);
     * $5 report_by of ti.heartbeat / ti.launched, the last one (NULL: none); $6 running flag,
     * $7..$13 AP_TI_SET_RUNNING's $2..$8; $14 result flag, $15..$21 AP_TI_SET_RESULT's $2..$8;
     * $22 launched flag, $23 its distributor id.  $5 wins over running's report_by (the caller
     * clears $5 when a ti.running follows), running's non-empty distributor id over launched's
     * (the caller writes a row first when ti.launched follows a pending change of it).  Returns
     * whether each updated row had a status change. */
    [AP_FLUSH_TI_ROWS] =
        "UPDATE task_instance e SET status = COALESCE(x.t, e.status),"
        " status_at = COALESCE(x.at, e.status_at),"
        " host = CASE WHEN x.hr THEN x.h ELSE e.host END,"
        " pid = CASE WHEN x.hr THEN x.p::int ELSE e.pid END,"
        " distributor_id = CASE WHEN x.hr AND x.d <> '' THEN x.d WHEN x.hl THEN x.ld"
        "  ELSE e.distributor_id END,"
        " report_by = COALESCE(x.rb, CASE WHEN x.hr THEN x.rts::timestamptz"
        "  + make_interval(secs => x.rs::int) END, e.report_by),"
        " stdout_path = CASE WHEN x.hr THEN x.o ELSE e.stdout_path END,"
        " stderr_path = CASE WHEN x.hr THEN x.e ELSE e.stderr_path END,"
        " exit_code = CASE WHEN x.hx THEN x.c::int ELSE e.exit_code END,"
        " message = CASE WHEN x.hx THEN COALESCE(x.m, e.message) ELSE e.message END,"
        " stdout_tail = CASE WHEN x.hx THEN x.so ELSE e.stdout_tail END,"
        " stderr_tail = CASE WHEN x.hx THEN x.se ELSE e.stderr_tail END,"
        " wall_ms = CASE WHEN x.hx THEN x.w::bigint ELSE e.wall_ms END,"
        " cpu_ms = CASE WHEN x.hx THEN x.cp::bigint ELSE e.cpu_ms END,"
        " maxrss_kb = CASE WHEN x.hx THEN x.r::bigint ELSE e.maxrss_kb END"
        " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[],"
        "  $5::timestamptz[], $6::boolean[], $7::text[], $8::text[], $9::text[], $10::text[],"
        "  $11::text[], $12::text[], $13::text[], $14::boolean[], $15::text[], $16::text[],"
        "  $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::boolean[],"
        "  $23::text[])"
        "  AS x(id, f, t, at, rb, hr, h, p, d, rts, rs, o, e, hx, c, m, so, se, w, cp, r, hl, ld)"
        " WHERE e.id = x.id AND (x.f IS NULL OR e.status = x.f) RETURNING x.f IS NOT NULL",
    [AP_WF_ARGS_TAKEN] = "SELECT id FROM workflow WHERE tool = $1 AND workflow_args_hash = $2"
                         " AND id <> $3::bigint ORDER BY id LIMIT 1",
    /* workflow.prune (011_prune.sql).  $1 wf: is it being pruned (client events are refused) */
    [AP_WF_PRUNING] = "SELECT 1 FROM workflow WHERE id = $1::bigint AND pruning_at IS NOT NULL",
    /* $1 wf, $2 finished_before: status, being pruned, finished before, has an alive run */
    [AP_WF_PRUNE_GET] = "SELECT w.status, w.pruning_at IS NOT NULL, w.status_at < $2::timestamptz,"
                        " EXISTS (SELECT 1 FROM workflow_run r WHERE r.workflow_id = w.id"
                        "  AND r.status IN " JM_SQL_RUN_ALIVE ")"
                        " FROM workflow w WHERE w.id = $1::bigint",
    /* $1 wf, $2 ts */
    [AP_WF_PRUNE_MARK] = "UPDATE workflow SET pruning_at = $2::timestamptz WHERE id = $1::bigint",
    /* $1 wf, $2 rows at most: rows deleted, workflow gone */
    [AP_WF_PRUNE_CHUNK] = "SELECT deleted, done FROM jm_prune_chunk($1::bigint, $2::int)",
    /* $1 wf: tasks not D nor active whose latest instance was killed for resources (Z) and whose
     * memory and runtime do not exceed that instance's: they get its memory and runtime back (a
     * re-bind wrote the file's) and are returned, to be scaled */
    [AP_WF_RESOURCE_KILLED] =
        "UPDATE task t SET resources = t.resources || jsonb_strip_nulls(jsonb_build_object("
        "  'memory', ti.resources->'memory', 'runtime', ti.resources->'runtime'))"
        " FROM task_instance ti WHERE ti.task_id = t.id AND ti.attempt = t.ti_seq"
        " AND t.workflow_id = $1::bigint AND t.status IN ('G','A','E','F') AND ti.status = 'Z'"
        " AND coalesce((t.resources->>'memory')::bigint <= (ti.resources->>'memory')::bigint, true)"
        " AND coalesce((t.resources->>'runtime')::bigint <= (ti.resources->>'runtime')::bigint,"
        "  true) RETURNING t.id",
};
