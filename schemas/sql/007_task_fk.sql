-- 007_task_fk.sql — no foreign-key trigger per task row.
--
-- task.workflow_id REFERENCES workflow (id) made PostgreSQL run its RI check (a SELECT ... FOR
-- KEY SHARE of the workflow row) once per inserted task: in a 300k-task bind ~20 % of the
-- backend's CPU (perf: AfterTriggerEndQuery / SPI) and 13.9 s -> 11.2 s bound_at when dropped
-- (bench/RESULTS.md, "Bind pipeline").  The FSM, the only writer of task, inserts tasks only in
-- the transaction that has just read their workflow (apply_bind.c: AP_BIND_CHUNK_GET; an
-- unknown workflow is rejected), and no workflow row is ever deleted, so the constraint checked
-- nothing the writer does not.  Numbered 007: 006 is taken on main (006_run_lookup.sql).
ALTER TABLE task DROP CONSTRAINT IF EXISTS task_workflow_id_fkey;
