-- 009_hot_rows.sql — less work per row the FSM writes on its hot path (issues 4 and 6).
--
-- Plain CREATE/DROP INDEX inside the migration's one transaction (scripts/migrate): it holds
-- write locks while the new indexes are built, which on a large database (millions of
-- transition_log rows) takes a while: run it with the FSM stopped.
--
-- jobmon-fsm is the only writer of these tables and validates every id it writes (docs/
-- decisions.md, "No foreign keys on the FSM's hot rows"), so the constraints below only cost a
-- trigger per row inserted (an SPI query plus a FOR KEY SHARE row lock, i.e. a WAL record and a
-- dirtied page of the referenced row):
--   task_instance.task_id -> task: AP_SCHED_INSERT and AP_FLUSH_TI_INSERT insert only instances
--     of tasks they join (`JOIN task t ON t.id = x.task_id`), so a missing task is impossible;
--   task_instance.run_id -> workflow_run: instances are created for the workflow's alive run
--     that the handler just read (run.start, the scheduler) or adopted by a new run
--     (AP_TI_ADOPT, the same);
--   task.workflow_id -> workflow: tasks are inserted by workflow.bind_tasks after the handler
--     read the workflow row (an unknown workflow is rejected before any write).
-- Nothing deletes workflow, task or workflow_run rows (no ON DELETE action is lost).  The FKs
-- of the rarely written rows (task_array, workflow_run -> workflow) are kept.
ALTER TABLE task_instance DROP CONSTRAINT IF EXISTS task_instance_task_id_fkey;
ALTER TABLE task_instance DROP CONSTRAINT IF EXISTS task_instance_run_id_fkey;
ALTER TABLE task DROP CONSTRAINT IF EXISTS task_workflow_id_fkey;

-- task_instance_overdue (report_by) WHERE status IN ('R','O') -> task_instance_live
-- (workflow_id, id) WHERE status IN ('R','O'): report_by changes with every ti.heartbeat and
-- ti.launch_heartbeat, the most frequent events of a long run; with report_by in an index such
-- an update can never be HOT, so each heartbeat added an entry to every index of task_instance.
-- Its only reader is the reaper's overdue scan (reaper.c ti_sql: status IN ('R','O') AND
-- report_by < $1 ORDER BY workflow_id, id LIMIT 20000): the new index serves the status filter
-- and the order, report_by is checked on the row (the live instances, one heap fetch each, once
-- per reaper interval).
DROP INDEX IF EXISTS task_instance_overdue;
CREATE INDEX IF NOT EXISTS task_instance_live ON task_instance (workflow_id, id)
    WHERE status IN ('R', 'O');

-- transition_log_entity btree (entity, entity_id) -> transition_log_entity_id hash (entity_id):
-- every task writes ~11 transition_log rows (dummy 100k run: 1.1M rows), each an insertion at a
-- random place of the btree (the ids are hashes); with the COPY of transition_log that was ~30 %
-- of the FSM backend's CPU (perf, 2026-11-26).  Inserting 400k rows (bench/RESULTS.md): table +
-- (workflow_id, seq) alone 0.9 s, + the btree (entity, entity_id) 2.3-2.5 s, + a btree
-- (entity_id) 1.5-2.2 s, + a hash (entity_id) 1.4-1.6 s.  Every reader looks ids up by equality
-- and filters entity on the row: `jobmon events --task` (cli_status.c by_task: entity_id = $1 OR
-- entity_id IN (SELECT …)), tests/e2e/e2e.sh, the integration tests (it_consumer joins
-- workflow_run for its range of run ids).  Ids of different entities do not collide in practice
-- (64-bit hashes; run ids are the client's).
DROP INDEX IF EXISTS transition_log_entity;
CREATE INDEX IF NOT EXISTS transition_log_entity_id ON transition_log USING hash (entity_id);

-- fillfactor 80 on task and task_instance: an update's new row version then usually fits on its
-- own page (required for HOT: the heartbeat updates above) instead of going to a page at the
-- end of the table.  Status changes stay non-HOT (status is in task_workflow_status,
-- task_ready_status, task_instance_run_status, task_instance_workflow) but still stay on their
-- page.  It applies to pages written from now on; existing pages keep their layout.
ALTER TABLE task SET (fillfactor = 80);
ALTER TABLE task_instance SET (fillfactor = 80);
