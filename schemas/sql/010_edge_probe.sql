-- 010_edge_probe.sql — the FSM's edge prefetch as index probes whatever the statistics say
-- (issue 4).
--
-- jobmon-fsm reads, once per transaction, the downstream tasks of the ~1,500 tasks whose
-- instances the batch moves (AP_EDGES_PREFETCH, apply.c edges_fetch).  Planned as an ordinary
-- query it depended on task_edge's statistics, which are taken while workflows are being bound
-- (autoanalyze after the first chunks: few distinct upstream ids, task not analyzed at all).
-- With them `upstream_id = ANY($1)` became a (parallel) scan of all of task_edge filtered by the
-- array, or merge joins over all of task and task_edge: 83-156 ms per call at 100k tasks, 38-66 %
-- of the FSM's time in PostgreSQL, and O(the edges of every workflow ever bound) per transaction
-- (bench/RESULTS.md, 2026-11-26).  The right plan is always the same: per id one
-- task_edge_upstream probe, per edge one task_pkey probe.  A SQL function with its own planner
-- settings (not inlined, because of the SET clauses) gets that plan from any statistics; the
-- settings apply only while it runs.
CREATE OR REPLACE FUNCTION jm_task_downstream(ids bigint[])
RETURNS TABLE (upstream_id bigint, id bigint, pending_upstreams int, status char(1),
               workflow_id bigint, array_id bigint, resources jsonb, ti_seq int,
               num_attempts int, max_attempts int)
LANGUAGE sql STABLE
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET max_parallel_workers_per_gather = 0
AS $$
    SELECT e.upstream_id, t.id, t.pending_upstreams, t.status, t.workflow_id, t.array_id,
           t.resources, t.ti_seq, t.num_attempts, t.max_attempts
    FROM unnest(ids) u(id)
    JOIN task_edge e ON e.upstream_id = u.id
    JOIN task t ON t.id = e.downstream_id
    ORDER BY e.upstream_id, t.id
$$;
