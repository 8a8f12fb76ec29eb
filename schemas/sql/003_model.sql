-- 003_model.sql — the model tables written by the FSM handlers (src/consumer/apply*.c, sched.c).
--
-- Only jobmon-fsm writes these rows, and only while applying an event: every time below comes
-- from an event's `ts`, every id from an event (workflow_id, task_id, array_id: content hashes
-- by the client; run_id: chosen by the client) or is derived (task_instance.id =
-- jm_hash_ti_id(task_id, attempt)).  Replaying the event log into an empty schema therefore
-- reproduces these rows exactly.  Names are unqualified: the file runs in the current
-- search_path (tests create one schema each).
--
-- Columns other modules read (keep stable):
--   workflow(id, status, max_concurrently_running, total_tasks, bound_at, status_at)
--   workflow_run(id, workflow_id, status, heartbeat_by, timeout_at, status_at)
--   workflow_task_count(workflow_id, status, n)       -- per task status, same txn as changes
--   task_instance(id, task_id, workflow_id, run_id, status, report_by, distributor_id,
--                 array_id, batch_num, step, resources)
--   task(id, workflow_id, status, num_attempts, max_attempts, pending_upstreams, array_id)
--
-- Tables and columns:
--   tool(name, created_at)
--   task_template_version(hash, template_name, command_template, node_args, task_args,
--                         op_args, created_at)
--   workflow(id, tool, workflow_args_hash, task_hash, dag_hash, name, status,
--            max_concurrently_running, total_tasks, chunks_expected, chunks_seen, tasks_bound,
--            bound_at, user_name, attributes, batches, created_at, status_at)
--       bound_at NOT NULL = binding complete; batches = last batch_num handed out.
--   task_array(id, workflow_id, template_name, ttv_hash, max_concurrently_running)
--       ("array" is reserved in SQL, hence task_array)
--   workflow_run(id, workflow_id, status, cluster, user_name, host, fail_fast, timeout_at,
--                heartbeat_by, resume_mode, created_at, status_at)
--   task(id, workflow_id, name, command, template, array_id, node_hash, status, num_attempts,
--        max_attempts, ti_seq, pending_upstreams, resources, resource_scales, fallback_queues,
--        cluster, status_at)
--       num_attempts = attempts used in the current retry budget (reset to 0 on resume/reset);
--       ti_seq = instances ever created (never reset): the newest instance is
--       jm_hash_ti_id(id, ti_seq), so ids stay unique across resets.
--   task_edge(workflow_id, upstream_id, downstream_id)
--   task_instance(id, task_id, workflow_id, run_id, attempt, status, array_id, batch_num, step,
--                 resources, distributor_id, report_by, host, pid, stdout_path, stderr_path,
--                 exit_code, message, stdout_tail, stderr_tail, wall_ms, cpu_ms, maxrss_kb,
--                 created_at, status_at)
--       attempt = the task's ti_seq when created; message = last error description.
--   queue(cluster, name, limits)
--   transition_log(seq, entity, entity_id, workflow_id, from_status, to_status, event_id, at)
--       entity in 'workflow','workflow_run','task','task_instance'; from_status NULL on create.
--   workflow_task_count(workflow_id, status, n)
--
-- Status letters (Jobmon's):
--   workflow      G Q I O R D F A H
--   workflow_run  G L B I O R D E S A C H T      alive: L B I O R C H
--   task          G Q I O R D E A F              active: Q I O R
--   task_instance Q I O R T X K D E Z U W F

CREATE TABLE IF NOT EXISTS tool (
    name       text        PRIMARY KEY,
    created_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS task_template_version (
    hash             text        PRIMARY KEY,
    template_name    text        NOT NULL,
    command_template text        NOT NULL,
    node_args        text[]      NOT NULL,
    task_args        text[]      NOT NULL,
    op_args          text[]      NOT NULL,
    created_at       timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS workflow (
    id                       bigint      PRIMARY KEY,
    tool                     text        NOT NULL REFERENCES tool (name),
    workflow_args_hash       text        NOT NULL,
    task_hash                text        NOT NULL,
    dag_hash                 text        NOT NULL,
    name                     text        NOT NULL,
    status                   char(1)     NOT NULL CHECK (status IN ('G','Q','I','O','R','D','F','A','H')),
    max_concurrently_running int         NOT NULL CHECK (max_concurrently_running >= 0),
    total_tasks              int         NOT NULL,
    chunks_expected          int,
    chunks_seen              int         NOT NULL DEFAULT 0,
    tasks_bound              int         NOT NULL DEFAULT 0,
    bound_at                 timestamptz,
    user_name                text        NOT NULL,
    attributes               jsonb       NOT NULL DEFAULT '{}',
    batches                  int         NOT NULL DEFAULT 0,
    created_at               timestamptz NOT NULL,
    status_at                timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS workflow_status ON workflow (status);
-- Same tool and workflow_args with different tasks is refused (reference §1.4).
CREATE INDEX IF NOT EXISTS workflow_args ON workflow (tool, workflow_args_hash);

CREATE TABLE IF NOT EXISTS task_array (
    id                       bigint  PRIMARY KEY,
    workflow_id              bigint  NOT NULL REFERENCES workflow (id),
    template_name            text    NOT NULL,
    ttv_hash                 text    NOT NULL,
    max_concurrently_running int     NOT NULL CHECK (max_concurrently_running >= 0)
);
CREATE INDEX IF NOT EXISTS task_array_workflow ON task_array (workflow_id, template_name);

CREATE TABLE IF NOT EXISTS workflow_run (
    id           bigint      PRIMARY KEY,
    workflow_id  bigint      NOT NULL REFERENCES workflow (id),
    status       char(1)     NOT NULL
        CHECK (status IN ('G','L','B','I','O','R','D','E','S','A','C','H','T')),
    cluster      text        NOT NULL,
    user_name    text        NOT NULL,
    host         text        NOT NULL,
    fail_fast    boolean     NOT NULL,
    timeout_at   timestamptz,
    heartbeat_by timestamptz NOT NULL,
    resume_mode  text        NOT NULL CHECK (resume_mode IN ('none','cold','hot')),
    created_at   timestamptz NOT NULL,
    status_at    timestamptz NOT NULL
);
-- At most one alive run per workflow.
CREATE UNIQUE INDEX IF NOT EXISTS workflow_run_one_alive ON workflow_run (workflow_id)
    WHERE status IN ('L','B','I','O','R','C','H');
CREATE INDEX IF NOT EXISTS workflow_run_heartbeat ON workflow_run (heartbeat_by)
    WHERE status IN ('L','B','I','O','R','C','H');

CREATE TABLE IF NOT EXISTS task (
    id                bigint      PRIMARY KEY,
    workflow_id       bigint      NOT NULL REFERENCES workflow (id),
    name              text        NOT NULL,
    command           text        NOT NULL,
    template          text,
    array_id          bigint,
    node_hash         text        NOT NULL,
    status            char(1)     NOT NULL CHECK (status IN ('G','Q','I','O','R','D','E','A','F')),
    num_attempts      int         NOT NULL DEFAULT 0,
    max_attempts      int         NOT NULL,
    ti_seq            int         NOT NULL DEFAULT 0,
    pending_upstreams int         NOT NULL DEFAULT 0,
    resources         jsonb       NOT NULL,
    resource_scales   jsonb       NOT NULL,
    fallback_queues   text[]      NOT NULL,
    cluster           text        NOT NULL,
    status_at         timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS task_workflow_status ON task (workflow_id, status);
CREATE INDEX IF NOT EXISTS task_ready ON task (workflow_id, id)
    WHERE status IN ('G','A') AND pending_upstreams = 0;
-- The scheduler's bounded pick (A first, then G, by id, LIMIT capacity).
CREATE INDEX IF NOT EXISTS task_ready_status ON task (workflow_id, status, id)
    WHERE status IN ('G','A') AND pending_upstreams = 0;

CREATE TABLE IF NOT EXISTS task_edge (
    workflow_id   bigint NOT NULL,
    upstream_id   bigint NOT NULL,
    downstream_id bigint NOT NULL,
    PRIMARY KEY (downstream_id, upstream_id)
);
CREATE INDEX IF NOT EXISTS task_edge_upstream ON task_edge (upstream_id);

CREATE TABLE IF NOT EXISTS task_instance (
    id             bigint      PRIMARY KEY,
    task_id        bigint      NOT NULL REFERENCES task (id),
    workflow_id    bigint      NOT NULL,
    run_id         bigint      NOT NULL REFERENCES workflow_run (id),
    attempt        int         NOT NULL,
    status         char(1)     NOT NULL
        CHECK (status IN ('Q','I','O','R','T','X','K','D','E','Z','U','W','F')),
    array_id       bigint,
    batch_num      int         NOT NULL,
    step           int         NOT NULL,
    resources      jsonb       NOT NULL,
    distributor_id text,
    report_by      timestamptz,
    host           text,
    pid            int,
    stdout_path    text,
    stderr_path    text,
    exit_code      int,
    message        text,
    stdout_tail    text,
    stderr_tail    text,
    wall_ms        bigint,
    cpu_ms         bigint,
    maxrss_kb      bigint,
    created_at     timestamptz NOT NULL,
    status_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS task_instance_run_status ON task_instance (run_id, status);
CREATE INDEX IF NOT EXISTS task_instance_status_report ON task_instance (status, report_by);
CREATE INDEX IF NOT EXISTS task_instance_task ON task_instance (task_id);
CREATE INDEX IF NOT EXISTS task_instance_batch ON task_instance (workflow_id, batch_num, step);

CREATE TABLE IF NOT EXISTS queue (
    cluster text  NOT NULL,
    name    text  NOT NULL,
    limits  jsonb NOT NULL,   -- {"key": [min, max], ...}, e.g. {"cores": [1, 20]}
    PRIMARY KEY (cluster, name)
);
INSERT INTO queue (cluster, name, limits) VALUES
    ('dummy',        'null.q', '{"cores": [1, 20], "memory": [1, 1048576], "runtime": [1, 604800]}'),
    ('sequential',   'null.q', '{"cores": [1, 20], "memory": [1, 1048576], "runtime": [1, 604800]}'),
    ('multiprocess', 'null.q', '{"cores": [1, 20], "memory": [1, 1048576], "runtime": [1, 604800]}'),
    ('slurm',        'debug',  '{"cores": [1, 8], "memory": [1, 16384], "runtime": [1, 3600]}'),
    ('slurm',        'all.q',  '{"cores": [1, 100], "memory": [1, 1048576], "runtime": [1, 259200]}'),
    ('slurm',        'long.q', '{"cores": [1, 100], "memory": [1, 1048576], "runtime": [1, 1382400]}')
ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS transition_log (
    seq         bigserial   PRIMARY KEY,
    entity      text        NOT NULL
        CHECK (entity IN ('workflow','workflow_run','task','task_instance')),
    entity_id   bigint      NOT NULL,
    workflow_id bigint      NOT NULL,
    from_status char(1),
    to_status   char(1)     NOT NULL,
    event_id    uuid        NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS transition_log_entity ON transition_log (entity, entity_id);
CREATE INDEX IF NOT EXISTS transition_log_workflow ON transition_log (workflow_id, seq);

CREATE TABLE IF NOT EXISTS workflow_task_count (
    workflow_id bigint  NOT NULL,
    status      char(1) NOT NULL CHECK (status IN ('G','Q','I','O','R','D','E','A','F')),
    n           int     NOT NULL,   -- no CHECK (n >= 0): INSERT .. ON CONFLICT checks the delta row
    PRIMARY KEY (workflow_id, status)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobmon_fsm') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON tool, task_template_version, workflow, task_array,
            workflow_run, task, task_edge, task_instance, queue, transition_log,
            workflow_task_count TO jobmon_fsm;
        GRANT USAGE, SELECT ON SEQUENCE transition_log_seq_seq TO jobmon_fsm;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobmon_reader') THEN
        GRANT SELECT ON tool, task_template_version, workflow, task_array, workflow_run, task,
            task_edge, task_instance, queue, transition_log, workflow_task_count TO jobmon_reader;
    END IF;
END
$$;
