-- 005_reports: test reports of kind testing, one per attempt that recorded an
-- outcome, written by the agent in the statement that records the outcome
-- (common/taskdb.c). xml is the JUnit XML as parsed (at most 8 MiB; NULL when
-- larger); summary is common/junit.h's JSON (counts, failed tests, time).
CREATE TABLE task_reports (
    task_id    uuid NOT NULL,
    attempt    integer NOT NULL,
    xml        text,
    summary    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, attempt)
);
-- GET /v1/reports/latest?name=: the newest report of the tasks named so.
CREATE INDEX task_reports_created ON task_reports (created_at DESC);
