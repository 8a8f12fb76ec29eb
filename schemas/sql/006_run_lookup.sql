-- 006_run_lookup.sql — an index for finding a workflow's runs.
--
-- workflow_run had only partial indexes on workflow_id (alive runs), yet several readers look up
-- all of a workflow's runs: the Redis cache refresh after every batch (cache.c read_sql: the
-- newest run of each dirty workflow), `jobmon status` (client/status.c), the ownership check of
-- workflow.reset/task.set_status (common/ownership_sql.h) and `jobmon run`'s resume lookups
-- (cli_run.c).  Each scanned the whole table: ~6 ms per lookup with 100k runs, growing with
-- every run ever started.  (workflow_id, created_at) serves the equality and the newest-first
-- order; a run row is written a handful of times, so the write cost is negligible.
CREATE INDEX IF NOT EXISTS workflow_run_workflow ON workflow_run (workflow_id, created_at);
