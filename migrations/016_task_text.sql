-- 016_task_text: full-text search over a task's spec and last error
-- (GET /v1/tasks?q=, the web console's search box).
--
-- The words of every string in the spec (jsonb_to_tsvector: values, not keys)
-- and of last_error, in the 'simple' configuration (no stemming, no stop
-- words: command lines and error messages are not prose). A GIN index on the
-- same expression in `tasks` and in every history partition answers
-- `devsys_task_text(spec, last_error) @@ websearch_to_tsquery('simple', q)`
-- without reading the rows that do not match.
CREATE FUNCTION devsys_task_text(spec jsonb, last_error text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_to_tsvector('simple'::regconfig, spec, '["string"]')
        || to_tsvector('simple'::regconfig, coalesce(last_error, ''))
$$;

CREATE INDEX tasks_text ON tasks USING gin (devsys_task_text(spec, last_error));
CREATE INDEX tasks_history_text ON tasks_history USING gin (devsys_task_text(spec, last_error));
