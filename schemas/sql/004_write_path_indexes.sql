-- 004_write_path_indexes.sql — fewer indexes on the append-only logs the FSM writes per event.
--
-- Every applied event inserts one event_log row and ~1–2 transition_log rows; each index on them
-- is one more btree insert per row on the consumer's hot path (issue 4: PostgreSQL's profile was
-- btree descent/insert for these tables).  Readers use (workflow_id, applied_seq) and
-- (workflow_id, seq) plus the event_id primary key (dedup), which stay.  Dropped:
--   event_log.applied_seq UNIQUE        bigserial, unique by construction; no reader orders the
--                                       whole log (replay, cache, status go per workflow).
--   event_log_source                    (topic, partition, kafka_offset): no reader.
--   transition_log_entity               (entity, entity_id): random keys, the most expensive of
--                                       all; `jobmon events --task` now reads the task's
--                                       workflow through transition_log_workflow instead.
--   task_instance_batch                 (workflow_id, batch_num, step): no reader (the distributor
--                                       reads by run_id and status).
-- A status change of a task instance is not a HOT update (status is indexed), so every index of
-- task_instance gets an entry per change; the reaper's (status, report_by) index becomes a
-- partial index on report_by of the instances it scans (R, O), which instances in Q, I, D, ...
-- do not enter.
-- Nothing else changes; the tables' rows are untouched.

ALTER TABLE event_log DROP CONSTRAINT IF EXISTS event_log_applied_seq_key;
DROP INDEX IF EXISTS event_log_source;
DROP INDEX IF EXISTS transition_log_entity;
DROP INDEX IF EXISTS task_instance_batch;
CREATE INDEX IF NOT EXISTS task_instance_report_by ON task_instance (report_by)
    WHERE status IN ('R', 'O');
DROP INDEX IF EXISTS task_instance_status_report;
