-- 001_plumbing: a scratch table for the stack plumbing test only
-- (tests/integration: the writer inserts, the reader selects and must fail to insert).
-- The real jobmon schema starts at 002.
CREATE TABLE plumbing_check (
    id bigserial PRIMARY KEY,
    note text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
