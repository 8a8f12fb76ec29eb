-- 004_bind.sql — cheaper bind apply (issue 5).
--
-- event_log.raw keeps every event's bytes; a workflow.bind_tasks chunk is ~176 kB of JSON, so a
-- 1.5M-task bind stores ~3,000 such values.  PostgreSQL's default TOAST compression (pglz) costs
-- the FSM several times more CPU per byte than lz4 for a similar ratio on this JSON; lz4 applies
-- to values written from now on (older rows stay pglz and read the same).  Needs a server built
-- with lz4 (Debian's and the stack's are); the column's contents are unchanged either way.
ALTER TABLE event_log ALTER COLUMN raw SET COMPRESSION lz4;
