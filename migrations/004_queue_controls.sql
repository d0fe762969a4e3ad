-- 004_queue_controls: unique tasks and per-queue settings (pause, concurrency
-- cap, rate limit). Both tables are small and off the hot path of tasks.

-- One row per unique key: the task that holds it and until when. A submit
-- takes the key with INSERT ... ON CONFLICT DO UPDATE, which locks the row, so
-- 100 concurrent submits of one key serialise on it and all but the first
-- are answered with the holder. Not a partial index on tasks: a predicate on
-- state would make every state change of every task a non-HOT update.
CREATE TABLE task_unique (
    key        text PRIMARY KEY,
    task_id    uuid NOT NULL,
    expires_at timestamptz          -- NULL: held while the task is unfinished
);

-- Is the key held by (task_id, expires_at) free to take? Free when the holder
-- row is gone (aged out, or never inserted), when its period is over, or,
-- for "while unfinished", when the task is final. VOLATILE on purpose: in READ
-- COMMITTED it reads with a fresh snapshot, so it sees the task row that a
-- concurrent submit committed just before our ON CONFLICT got the lock (the
-- statement's own snapshot would not, and would take the key twice).
CREATE FUNCTION devsys_unique_free(holder uuid, expires timestamptz) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT CASE
        WHEN NOT EXISTS (SELECT 1 FROM tasks WHERE id = holder) THEN true
        WHEN expires IS NOT NULL THEN expires <= now()
        ELSE EXISTS (SELECT 1 FROM tasks WHERE id = holder
                     AND state IN ('succeeded', 'failed', 'dead', 'cancelled'))
    END
$$;

-- The truth of each queue's controls; the manager mirrors it into the Redis
-- hash <prefix>:{Q}:settings (common/queue_settings.h). NULL: no limit.
CREATE TABLE queue_settings (
    queue          text PRIMARY KEY,
    paused         boolean NOT NULL DEFAULT false,
    concurrency    integer CHECK (concurrency BETWEEN 1 AND 100000),
    rate_n         integer CHECK (rate_n BETWEEN 1 AND 1000000),
    rate_period_ms integer CHECK (rate_period_ms BETWEEN 1 AND 86400000),
    rate_per_key   boolean NOT NULL DEFAULT false, -- one limit per value of the spec's rate_key
    updated_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     text,
    CHECK ((rate_n IS NULL) = (rate_period_ms IS NULL))
);
