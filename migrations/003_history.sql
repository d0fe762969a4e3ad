-- 003_history: retention. Finished tasks leave the hot table `tasks` after their
-- state's retention period (the manager's retention job, manager/retention.c) into
-- tasks_history, partitioned by day of finished_at (UTC); their attempts and
-- checkpoints go with them into tables partitioned the same way, so dropping a
-- day drops all three. History is insert-only: indexed for reads, not for HOT.
-- A column added to tasks, task_attempts or checkpoints must be added here too
-- (the move copies rows with SELECT *), appended in the same position.

CREATE TABLE tasks_history (LIKE tasks INCLUDING DEFAULTS) PARTITION BY RANGE (finished_at);
CREATE INDEX tasks_history_id ON tasks_history (id);
CREATE INDEX tasks_history_created_at_id ON tasks_history (created_at, id);
CREATE INDEX tasks_history_state_created_at_id ON tasks_history (state, created_at, id);

CREATE TABLE task_attempts_history (LIKE task_attempts INCLUDING DEFAULTS,
    task_finished_at timestamptz NOT NULL) PARTITION BY RANGE (task_finished_at);
CREATE INDEX task_attempts_history_task ON task_attempts_history (task_id, attempt);

CREATE TABLE checkpoints_history (LIKE checkpoints,
    task_finished_at timestamptz NOT NULL) PARTITION BY RANGE (task_finished_at);
CREATE INDEX checkpoints_history_task ON checkpoints_history (task_id, id);

-- Every periodic query reaches its rows through an index that holds only what
-- is live, so its cost does not grow with finished rows:
--   tasks_live: the reconciler's rules and lease expiry (non-final tasks);
--   tasks_dlq: the dead-letter checks (dead tasks whose letter is not purged);
--   tasks_final_other: the list by failed, dead or cancelled and the retention
--     job's scan of them. Succeeded tasks (most rows, and the noop fast path
--     inserts them finished) get no entry: their list and retention read
--     tasks_created_at_id, where they are the bulk, oldest first.
-- The price: `state` is now indexed, so a state change is no HOT update (see
-- BENCHMARKS.md, "Retention and the hot set").
CREATE INDEX tasks_live ON tasks (state, queue) WHERE state IN ('queued', 'running', 'retrying');
CREATE INDEX tasks_dlq ON tasks (queue, id) WHERE state = 'dead' AND dlq_purged_at IS NULL;
CREATE INDEX tasks_final_other ON tasks (state, created_at, id)
    WHERE state IN ('failed', 'dead', 'cancelled');

-- audit_log retention deletes by age, oldest first through the primary key
-- (ids grow with `at`).

-- devsys_history_maintain(keep_days, ahead_days[, since]): creates the day
-- partitions of the three history tables from the day of the oldest finished
-- task still in `tasks` (or since, or today; never before today - keep_days) to
-- today + ahead_days, and
-- drops the partitions of days before today - keep_days. Days are UTC. Returns
-- "created N dropped M". DDL only; the rows move in common/taskdb.c.
CREATE FUNCTION devsys_history_maintain(keep_days int, ahead_days int, since date DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    today   date := (now() AT TIME ZONE 'UTC')::date;
    oldest  date;
    d       date;
    t       text;
    part    text;
    created int := 0;
    dropped int := 0;
BEGIN
    SELECT (least((SELECT min(created_at) FROM tasks WHERE state = 'succeeded'),
                  (SELECT min(created_at) FROM tasks WHERE state = 'failed'),
                  (SELECT min(created_at) FROM tasks WHERE state = 'cancelled'),
                  (SELECT min(created_at) FROM tasks WHERE state = 'dead')) AT TIME ZONE 'UTC')::date
      INTO oldest;
    oldest := greatest(least(coalesce(since, oldest, today), today), today - keep_days);
    FOR d IN SELECT g::date FROM generate_series(oldest, today + ahead_days, interval '1 day') g LOOP
        FOREACH t IN ARRAY ARRAY['tasks_history', 'task_attempts_history', 'checkpoints_history'] LOOP
            part := t || '_p' || to_char(d, 'YYYYMMDD');
            IF to_regclass(part) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', part, t,
                               d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
                created := created + 1;
            END IF;
        END LOOP;
    END LOOP;
    FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent IN ('tasks_history'::regclass, 'task_attempts_history'::regclass,
                                      'checkpoints_history'::regclass)
                  AND c.relname ~ '_p[0-9]{8}$'
                  AND to_date(right(c.relname, 8), 'YYYYMMDD') < today - keep_days LOOP
        EXECUTE format('DROP TABLE %I', part);
        dropped := dropped + 1;
    END LOOP;
    RETURN format('created %s dropped %s', created, dropped);
END $$;
