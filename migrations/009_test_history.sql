-- 009_test_history: the outcome of every test over runs of the same pipeline
-- name (or task name outside pipelines), written by the agent in the
-- statement that stores the report (common/taskdb.c), trimmed by the
-- manager's retention job (common/testdb.c, DEVSYS_RETENTION_TEST_HISTORY_S).
--   scope: 'pipeline:<name>' or 'name:<task name>'
--   test:  '<classname>::<name>' (each part at most 200 bytes)
--   input: what a rerun shares ('input:<testing.input>', 'pipeline:<id>/<step>/<index>'
--          or 'task:<id>'); a test whose outcomes differ on one input is flaky.
CREATE TABLE test_runs (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope    text NOT NULL,
    test     text NOT NULL,
    input    text NOT NULL,
    task_id  uuid NOT NULL,
    attempt  integer NOT NULL,
    outcome  text NOT NULL CHECK (outcome IN ('passed', 'failed', 'error', 'skipped', 'flaky')),
    message  text,
    time_s   double precision,
    flaky    boolean NOT NULL DEFAULT false, -- this run showed the test flaky
    at       timestamptz NOT NULL DEFAULT now()
);
-- GET /v1/tests/history: one test's runs, newest first
CREATE INDEX test_runs_test ON test_runs (scope, test, id DESC);
-- the flaky check: earlier outcomes of the test on the same input
CREATE INDEX test_runs_input ON test_runs (scope, input, test);
-- retention, oldest first
CREATE INDEX test_runs_at ON test_runs (at);

-- One row per test: its last outcomes (newest first, one letter a run:
-- P passed, F failed, E error, S skipped, K flaky = passed on a rerun inside
-- the report), when it was last seen flaky.
CREATE TABLE test_stats (
    scope        text NOT NULL,
    test         text NOT NULL,
    last         text NOT NULL,
    runs         bigint NOT NULL,
    last_at      timestamptz NOT NULL,
    last_task    uuid NOT NULL,
    last_failure text,   -- the message of its last failure or error
    flaky_at     timestamptz,
    PRIMARY KEY (scope, test)
);
CREATE INDEX test_stats_flaky ON test_stats (scope, test) WHERE flaky_at IS NOT NULL;
CREATE INDEX test_stats_last_at ON test_stats (last_at);
