-- 011_prune.sql — retention: deleting a finished workflow with its logs (`jobmon prune`).
--
-- event_log and transition_log grow by ~1.4 kB per event (bench/RESULTS.md), so a database that
-- runs large workflows needs a way to let old ones go.  The unit of retention is a whole
-- workflow: its model rows and its log rows leave together, so what remains is still a log and
-- the state it replays to (ARCHITECTURE principle 4; `jobmon audit` of a re-bound workflow
-- replays from its last applied workflow.prune).  Shared content-addressed rows (tool,
-- task_template_version, queue) stay.
--
-- jobmon-fsm applies workflow.prune events (src/consumer/apply_operator.c); each deletes at most
-- the event's `rows`, so a workflow of millions of rows is deleted over many short transactions
-- instead of one that holds its partition for minutes.  The first one sets pruning_at; from then
-- on the client events that would revive the workflow (bind, run.start, reset, ...) are
-- rejected until the last chunk deletes the workflow row itself.

ALTER TABLE workflow ADD COLUMN IF NOT EXISTS pruning_at timestamptz;

-- Delete at most `budget` rows of workflow `wf`, children before parents: transition_log,
-- event_log, task_instance, task_edge, task, then (when everything else is gone) the few rows of
-- its runs, arrays, counts and the workflow itself.  Returns the rows deleted and whether the
-- workflow is gone.  Which rows of a table a chunk takes is not specified (ctid order); only
-- the end state is, and it does not depend on the chunking.
CREATE OR REPLACE FUNCTION jm_prune_chunk(wf bigint, budget int,
                                          OUT deleted bigint, OUT done boolean)
LANGUAGE plpgsql
AS $$
DECLARE
    t text;
    n bigint;
BEGIN
    deleted := 0;
    done := false;
    -- the large tables, a bounded number of rows each (task_edge has no workflow_id index: it
    -- is reached through the workflow's tasks, its primary key leading with downstream_id)
    FOREACH t IN ARRAY ARRAY['transition_log', 'event_log', 'task_instance', 'task_edge', 'task']
    LOOP
        EXECUTE format('DELETE FROM %1$I WHERE ctid = ANY (ARRAY(SELECT x.ctid FROM %1$I x %2$s'
                       ' LIMIT $2))', t,
                       CASE t WHEN 'task_edge'
                           THEN 'JOIN task k ON k.id = x.downstream_id WHERE k.workflow_id = $1'
                           ELSE 'WHERE x.workflow_id = $1' END)
            USING wf, budget - deleted;
        GET DIAGNOSTICS n = ROW_COUNT;
        deleted := deleted + n;
        IF deleted >= budget THEN RETURN; END IF;
    END LOOP;
    -- the few rows left, then the workflow itself
    FOREACH t IN ARRAY ARRAY['workflow_task_count', 'workflow_run', 'task_array'] LOOP
        EXECUTE format('DELETE FROM %I WHERE workflow_id = $1', t) USING wf;
        GET DIAGNOSTICS n = ROW_COUNT;
        deleted := deleted + n;
    END LOOP;
    DELETE FROM workflow WHERE id = wf;
    GET DIAGNOSTICS n = ROW_COUNT;
    deleted := deleted + n;
    done := true;
END
$$;
