-- 005_hotpath.sql — fewer index insertions on jobmon-fsm's write path (issue 4).
--
-- A task_instance status change is never a HOT update, so each new row version is inserted into
-- every index of the table; event_log gets one insertion per index for every event.  Each index
-- below was checked against its readers (src/, tests/, bench/):
--
-- task_instance_status_report (status, report_by): its only reader is the reaper's overdue scan
--   (reaper.c: status IN ('R','O') AND report_by < $1).  A partial index on report_by for those
--   statuses serves it and gets no entry for row versions in any other status (most versions the
--   FSM writes end in D or in Q/I).
-- task_instance_batch (workflow_id, batch_num, step): no reader by batch (the distributor reads by
--   run_id and status: task_instance_run_status; the scheduler keeps batch numbers in
--   workflow.batches), but it was the only index leading with workflow_id, which the run-start
--   hand-over (AP_WF_OLD_TIS: a workflow's unfinished instances of earlier runs) and the CLI's
--   per-workflow reads need: without one they scan every instance of every workflow.  Replaced
--   by task_instance_workflow (workflow_id, status), same width, what those readers filter on.
-- task_ready (workflow_id, id) WHERE ready: the same rows as task_ready_status
--   (workflow_id, status, id) with the same predicate, which serves every reader of both
--   (AP_WF_SCHEDULABLE, AP_SCHED_PICK, AP_SCHED_PICK_FAST, AP_SCHED_READY).
-- event_log UNIQUE (applied_seq): applied_seq comes from its own sequence, so the constraint
--   only costs an insertion; every reader filters by workflow_id first (replay.c, cache.c,
--   status.c, cli_status.c, tests) and uses event_log_workflow_seq.
--
-- Kept on purpose: event_log_source (topic, partition, kafka_offset) — integration tests and
-- operators look events up by topic/offset; without it those polling queries scan the whole
-- event_log, which is what made the suites crawl when an earlier attempt dropped it.
-- transition_log_entity — `jobmon events --task`.
--
-- Plain CREATE/DROP INDEX: the migration runs in one transaction (scripts/migrate), so it holds
-- write locks on these tables while the partial index is built; run it with the FSM stopped on a
-- large database.

DROP INDEX IF EXISTS task_instance_status_report;
CREATE INDEX IF NOT EXISTS task_instance_overdue ON task_instance (report_by)
    WHERE status IN ('R', 'O');
DROP INDEX IF EXISTS task_instance_batch;
CREATE INDEX IF NOT EXISTS task_instance_workflow ON task_instance (workflow_id, status);
DROP INDEX IF EXISTS task_ready;
ALTER TABLE event_log DROP CONSTRAINT IF EXISTS event_log_applied_seq_key;
