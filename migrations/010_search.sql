-- 010_search: task search (GET /v1/tasks?name=&tag=&since=&until=) and test
-- reports in history.
--
-- Search by name prefix and by tag reads these indexes, in `tasks` and in each
-- history partition. Partial (only tasks whose spec has a name / tags), so a
-- task without them (the bulk of noop and exec traffic) pays no index entry on
-- insert; spec never changes after submit, so they cost no HOT update either.
-- Name: byte order (text_pattern_ops), so a prefix is one range
-- [p, p || U+10FFFF); created_at and id follow for an exact name's order.
-- Tags: jsonb_path_ops GIN for `spec->'tags' @> '["t"]'`.
CREATE INDEX tasks_name ON tasks ((spec->>'name') text_pattern_ops, created_at, id) WHERE spec ? 'name';
CREATE INDEX tasks_tags ON tasks USING gin ((spec->'tags') jsonb_path_ops) WHERE spec ? 'tags';
CREATE INDEX tasks_history_name ON tasks_history ((spec->>'name') text_pattern_ops, created_at, id)
    WHERE spec ? 'name';
CREATE INDEX tasks_history_tags ON tasks_history USING gin ((spec->'tags') jsonb_path_ops) WHERE spec ? 'tags';

-- Test reports follow their task into history (common/taskdb.c, retention),
-- partitioned by the task's finished_at like the attempts, so dropping a day
-- drops them too. A column added to task_reports must be added here too.
CREATE TABLE task_reports_history (LIKE task_reports INCLUDING DEFAULTS,
    task_finished_at timestamptz NOT NULL) PARTITION BY RANGE (task_finished_at);
CREATE INDEX task_reports_history_task ON task_reports_history (task_id, attempt);
CREATE INDEX task_reports_history_created ON task_reports_history (created_at DESC);

-- devsys_history_maintain as in 003_history.sql, with task_reports_history
-- among the tables partitioned by day.
CREATE OR REPLACE FUNCTION devsys_history_maintain(keep_days int, ahead_days int, since date DEFAULT NULL) RETURNS text
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
        FOREACH t IN ARRAY ARRAY['tasks_history', 'task_attempts_history', 'checkpoints_history',
                                 'task_reports_history'] LOOP
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
                                      'checkpoints_history'::regclass, 'task_reports_history'::regclass)
                  AND c.relname ~ '_p[0-9]{8}$'
                  AND to_date(right(c.relname, 8), 'YYYYMMDD') < today - keep_days LOOP
        EXECUTE format('DROP TABLE %I', part);
        dropped := dropped + 1;
    END LOOP;
    RETURN format('created %s dropped %s', created, dropped);
END $$;
