-- 002_log.sql — the consume loop's own tables: partition ownership/offsets and the event log.
--
-- consumer_offset is the truth of "how far has the FSM applied each partition": it is updated in
-- the same transaction as the model changes, guarded by owner_epoch (bumped by each consumer that
-- is assigned the partition), so a zombie consumer's commit touches zero rows and is rolled back.
--
-- event_log records every event the FSM consumed, once (event_id is the dedup key), with its
-- outcome and the exact bytes received (raw) so the log can be replayed into an empty database.
-- Model tables (workflow, task, ...) are in 003_model.sql; this file knows nothing of them.

CREATE TABLE IF NOT EXISTS consumer_offset (
    topic       text   NOT NULL,
    partition   int    NOT NULL CHECK (partition >= 0),
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    owner_epoch bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, partition)
);

CREATE TABLE IF NOT EXISTS event_log (
    event_id     uuid        PRIMARY KEY,
    topic        text        NOT NULL,
    partition    int         NOT NULL,
    kafka_offset bigint      NOT NULL,
    workflow_id  bigint,                       -- NULL for an undecodable dead letter
    type         text,                         -- NULL when not even the type could be read
    outcome      text        NOT NULL
        CHECK (outcome IN ('applied', 'ignored', 'rejected', 'dead_letter')),
    reason       text,                         -- NULL when applied
    ts           timestamptz,                  -- the event's own time (NULL for dead letters)
    raw          bytea       NOT NULL,         -- the message value exactly as received
    applied_seq  bigserial   NOT NULL UNIQUE   -- apply order (replay order)
);

CREATE INDEX IF NOT EXISTS event_log_workflow_seq ON event_log (workflow_id, applied_seq);
CREATE INDEX IF NOT EXISTS event_log_source ON event_log (topic, partition, kafka_offset);

-- Grants: the stack sets default privileges for objects created by the migration role; these
-- explicit grants make the file correct on a database where it did not (roles may be absent on
-- a developer's scratch database, hence the guard).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobmon_fsm') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON consumer_offset, event_log TO jobmon_fsm;
        GRANT USAGE, SELECT ON SEQUENCE event_log_applied_seq_seq TO jobmon_fsm;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobmon_reader') THEN
        GRANT SELECT ON consumer_offset, event_log TO jobmon_reader;
    END IF;
END
$$;
