-- 006_pipelines: pipelines (a DAG of steps, README "Pipelines"), recorded whole
-- at submit. A step's tasks are inserted by the transaction whose outcome makes
-- them due, whatever path finalizes the upstream task (an agent's outcome, a
-- cancel, a reject to the DLQ, a poison claim, a replay): a trigger on tasks
-- notes the pipelines whose tasks changed state, and once per statement locks
-- those pipeline rows (in id order, so two statements never deadlock on them)
-- and advances each one (devsys_pipeline_advance). The lock serializes every
-- transaction that finalizes a task of one pipeline: the last of a fan-in's
-- needs to commit sees all the others, so the fan-in is created exactly once.
-- Lock order everywhere: task rows first (the UPDATE), then pipeline rows.
-- New tasks are queued with published_at NULL; whoever committed them
-- publishes them (common/pipelinedb.c), the reconciler when it died first.

CREATE TABLE pipelines (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    doc         jsonb NOT NULL,           -- the document as submitted
    state       text NOT NULL DEFAULT 'running'
                CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    runs        integer NOT NULL DEFAULT 1,  -- 1 + reruns
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX pipelines_created ON pipelines (created_at DESC, id DESC);
CREATE INDEX pipelines_name_created ON pipelines (name, created_at DESC, id DESC);

-- One row per step; pos is its place in a topological order (needs first).
CREATE TABLE pipeline_steps (
    pipeline_id uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    step        text NOT NULL,
    pos         integer NOT NULL,
    needs       text[] NOT NULL,
    cond        text NOT NULL CHECK (cond IN ('success', 'failure', 'always')),
    state       text NOT NULL DEFAULT 'waiting'
                CHECK (state IN ('waiting', 'running', 'succeeded', 'failed', 'skipped', 'cancelled')),
    PRIMARY KEY (pipeline_id, step)
);

-- One row per node (a task of a step: "build", or "test[3]" of a fan-out).
-- task_id: the node's current task (NULL while waiting or skipped); a rerun
-- gives it a new one (attempts counts them). state 'queued' means its task
-- exists and has not finished (the live state is the task's). result: the
-- task's result once final (kept here: the task row may age out).
CREATE TABLE pipeline_nodes (
    pipeline_id  uuid NOT NULL,
    step         text NOT NULL,
    idx          integer NOT NULL,
    name         text NOT NULL,
    queue        text NOT NULL,
    kind         text NOT NULL,
    priority     integer NOT NULL,
    max_attempts integer NOT NULL,
    spec         jsonb NOT NULL,          -- validated, without "inputs"
    task_id      uuid,
    state        text NOT NULL DEFAULT 'waiting'
                 CHECK (state IN ('waiting', 'queued', 'succeeded', 'failed', 'dead', 'cancelled', 'skipped')),
    attempts     integer NOT NULL DEFAULT 0,
    result       jsonb,
    PRIMARY KEY (pipeline_id, step, idx),
    FOREIGN KEY (pipeline_id, step) REFERENCES pipeline_steps ON DELETE CASCADE
);

-- The task of a pipeline node (NULL for plain tasks). Never changes, and the
-- partial index holds pipeline tasks only, so plain tasks pay nothing.
ALTER TABLE tasks ADD COLUMN pipeline_id uuid;
ALTER TABLE tasks_history ADD COLUMN pipeline_id uuid;  -- same position (003_history.sql)
CREATE INDEX tasks_pipeline ON tasks (pipeline_id) WHERE pipeline_id IS NOT NULL;

-- devsys_pipeline_advance(p): brings pipeline p (locked by the caller, or
-- new) up to date: node states from their tasks (a replayed dead task
-- reopens its node, and the skipped steps after it wait again), steps whose
-- nodes all finished take their outcome, and each waiting step whose needs
-- all finished either gets its tasks (its `if` holds: success = every need
-- succeeded, failure = some need failed, always), or is skipped, or, while
-- the transaction cancels p (setting devsys.pipeline_cancel), is cancelled.
-- Steps are visited in topological order, so a skip propagates in one pass.
-- Returns the number of tasks created.
CREATE FUNCTION devsys_pipeline_advance(p uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    s          record;
    open_n     integer;
    all_ok     boolean;
    any_failed boolean;
    created    integer := 0;
    n          integer;
    again      boolean;
    cancelling boolean := coalesce(current_setting('devsys.pipeline_cancel', true), '') = p::text;
BEGIN
    -- nodes follow their current task (a task that aged out keeps its node)
    UPDATE pipeline_nodes nd SET
        state = CASE WHEN t.state IN ('succeeded', 'failed', 'dead', 'cancelled') THEN t.state ELSE 'queued' END,
        result = CASE WHEN t.state IN ('succeeded', 'failed', 'dead') THEN t.result END
    FROM tasks t
    WHERE nd.pipeline_id = p AND nd.task_id IS NOT NULL AND t.id = nd.task_id
      AND nd.state IN ('queued', 'succeeded', 'failed', 'dead', 'cancelled') AND nd.state <> CASE WHEN t.state IN ('succeeded', 'failed', 'dead', 'cancelled') THEN t.state ELSE 'queued' END;
    -- a reopened node (replay) reopens its step, its pipeline and what it skipped
    UPDATE pipeline_steps st SET state = 'running'
    WHERE st.pipeline_id = p AND st.state IN ('succeeded', 'failed', 'cancelled')
      AND EXISTS (SELECT 1 FROM pipeline_nodes nd WHERE nd.pipeline_id = p AND nd.step = st.step
                  AND nd.state = 'queued');
    IF FOUND THEN
        UPDATE pipelines SET state = 'running', finished_at = NULL WHERE id = p AND state <> 'running';
        LOOP
            UPDATE pipeline_steps st SET state = 'waiting'
            WHERE st.pipeline_id = p AND st.state = 'skipped'
              AND EXISTS (SELECT 1 FROM pipeline_steps x WHERE x.pipeline_id = p
                          AND x.step = ANY (st.needs) AND x.state IN ('waiting', 'running'));
            EXIT WHEN NOT FOUND;
        END LOOP;
        UPDATE pipeline_nodes nd SET state = 'waiting' FROM pipeline_steps st
        WHERE st.pipeline_id = p AND nd.pipeline_id = p AND nd.step = st.step AND st.state = 'waiting'
          AND nd.state = 'skipped';
    END IF;
    <<pass>>
    LOOP
    again := false;
    -- steps whose nodes all finished take their outcome
    UPDATE pipeline_steps st SET state = o.outcome
    FROM (SELECT nd.step, CASE WHEN bool_or(nd.state IN ('failed', 'dead')) THEN 'failed'
                               WHEN bool_or(nd.state = 'cancelled') THEN 'cancelled'
                               ELSE 'succeeded' END AS outcome
          FROM pipeline_nodes nd WHERE nd.pipeline_id = p
          GROUP BY nd.step HAVING bool_and(nd.state NOT IN ('waiting', 'queued'))) o
    WHERE st.pipeline_id = p AND st.step = o.step AND st.state = 'running';
    -- waiting steps whose needs all finished: run, skip or cancel them
    FOR s IN SELECT step, cond, needs FROM pipeline_steps
             WHERE pipeline_id = p AND state = 'waiting' ORDER BY pos LOOP
        SELECT count(*) FILTER (WHERE x.state IN ('waiting', 'running')),
               coalesce(bool_and(x.state = 'succeeded'), true),
               coalesce(bool_or(x.state = 'failed'), false)
          INTO open_n, all_ok, any_failed
          FROM pipeline_steps x WHERE x.pipeline_id = p AND x.step = ANY (s.needs);
        CONTINUE WHEN open_n > 0;
        IF cancelling THEN
            UPDATE pipeline_steps SET state = 'cancelled' WHERE pipeline_id = p AND step = s.step;
            UPDATE pipeline_nodes SET state = 'cancelled' WHERE pipeline_id = p AND step = s.step
                AND state = 'waiting';
        ELSIF s.cond = 'always' OR (s.cond = 'success' AND all_ok) OR (s.cond = 'failure' AND any_failed) THEN
            UPDATE pipeline_steps SET state = 'running' WHERE pipeline_id = p AND step = s.step;
            -- inputs: what each node of the needs published (README "Pipelines")
            WITH inp AS (
                SELECT jsonb_object_agg(nd.name, jsonb_build_object(
                           'result', nd.result -> 'output',
                           'artifacts', CASE WHEN jsonb_typeof(nd.result -> 'artifacts') = 'array'
                                             THEN nd.result -> 'artifacts' ELSE '[]'::jsonb END)) AS inputs
                FROM pipeline_nodes nd WHERE nd.pipeline_id = p AND nd.step = ANY (s.needs)
                  AND nd.state IN ('succeeded', 'failed', 'dead')),
            due AS (UPDATE pipeline_nodes nd SET task_id = gen_random_uuid(), state = 'queued',
                        attempts = nd.attempts + 1, result = NULL
                    WHERE nd.pipeline_id = p AND nd.step = s.step AND nd.state = 'waiting'
                    RETURNING nd.*)
            INSERT INTO tasks (id, queue, kind, spec, max_attempts, priority, pipeline_id)
            SELECT due.task_id, due.queue, due.kind,
                   CASE WHEN inp.inputs IS NULL THEN due.spec
                        ELSE due.spec || jsonb_build_object('inputs', inp.inputs) END,
                   due.max_attempts, due.priority, p
            FROM due, inp ORDER BY due.idx;
            GET DIAGNOSTICS n = ROW_COUNT;
            created := created + n;
            -- no node left to run (a rerun kept them all): finish it in another pass
            again := again OR n = 0;
        ELSE
            UPDATE pipeline_steps SET state = 'skipped' WHERE pipeline_id = p AND step = s.step;
            UPDATE pipeline_nodes SET state = 'skipped' WHERE pipeline_id = p AND step = s.step
                AND state = 'waiting';
        END IF;
    END LOOP;
    EXIT pass WHEN NOT again;
    END LOOP;
    -- every step finished: so did the pipeline
    IF NOT EXISTS (SELECT 1 FROM pipeline_steps WHERE pipeline_id = p AND state IN ('waiting', 'running')) THEN
        UPDATE pipelines pl SET finished_at = now(), state = CASE
                WHEN cancelling THEN 'cancelled'
                WHEN EXISTS (SELECT 1 FROM pipeline_steps x WHERE x.pipeline_id = p AND x.state = 'failed')
                    THEN 'failed'
                WHEN EXISTS (SELECT 1 FROM pipeline_steps x WHERE x.pipeline_id = p AND x.state = 'cancelled')
                    THEN 'cancelled'
                ELSE 'succeeded' END
        WHERE pl.id = p AND pl.state = 'running';
    END IF;
    RETURN created;
END $$;

-- Row trigger: a pipeline task entered or left a final state. Only notes the
-- pipeline (a transaction-local list); the statement trigger below does the
-- work, once per statement, with the locks taken in order.
CREATE FUNCTION devsys_pipeline_task_note() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('devsys.pipelines_due',
                       coalesce(current_setting('devsys.pipelines_due', true), '') || NEW.pipeline_id::text || ',',
                       true);
    RETURN NULL;
END $$;

CREATE FUNCTION devsys_pipeline_tasks_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    due text := current_setting('devsys.pipelines_due', true);
    p   uuid;
BEGIN
    IF due IS NULL OR due = '' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('devsys.pipelines_due', '', true);
    FOR p IN SELECT DISTINCT x::uuid FROM unnest(string_to_array(rtrim(due, ','), ',')) x ORDER BY 1 LOOP
        PERFORM 1 FROM pipelines WHERE id = p FOR UPDATE;
        IF FOUND THEN
            PERFORM devsys_pipeline_advance(p);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_pipeline_note AFTER UPDATE OF state ON tasks FOR EACH ROW
    WHEN (NEW.pipeline_id IS NOT NULL AND OLD.state IS DISTINCT FROM NEW.state
          AND (NEW.state IN ('succeeded', 'failed', 'dead', 'cancelled')
               OR OLD.state IN ('succeeded', 'failed', 'dead', 'cancelled')))
    EXECUTE FUNCTION devsys_pipeline_task_note();
CREATE TRIGGER tasks_pipeline_advance AFTER UPDATE OF state ON tasks FOR EACH STATEMENT
    EXECUTE FUNCTION devsys_pipeline_tasks_changed();

-- devsys_pipeline_submit: records a validated pipeline (proto/pipeline.h):
-- steps [{step, pos, needs, cond}], nodes [{step, idx, name, queue, kind,
-- priority, max_attempts, spec}], and creates its root steps' tasks. Every
-- queue gets its queue_settings row, as a task submit does.
CREATE FUNCTION devsys_pipeline_submit(p uuid, p_name text, p_doc jsonb, actor text, steps jsonb, nodes jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pipelines (id, name, doc, created_by) VALUES (p, p_name, p_doc, actor);
    INSERT INTO pipeline_steps (pipeline_id, step, pos, needs, cond)
    SELECT p, x.step, x.pos, ARRAY(SELECT jsonb_array_elements_text(x.needs)), x.cond
    FROM jsonb_to_recordset(steps) AS x(step text, pos int, needs jsonb, cond text);
    INSERT INTO pipeline_nodes (pipeline_id, step, idx, name, queue, kind, priority, max_attempts, spec)
    SELECT p, x.step, x.idx, x.name, x.queue, x.kind, x.priority, x.max_attempts, x.spec
    FROM jsonb_to_recordset(nodes) AS x(step text, idx int, name text, queue text, kind text, priority int,
                                        max_attempts int, spec jsonb);
    INSERT INTO queue_settings (queue)
    SELECT DISTINCT x.queue FROM jsonb_to_recordset(nodes) AS x(queue text) ON CONFLICT DO NOTHING;
    RETURN devsys_pipeline_advance(p);
END $$;

-- devsys_pipeline_cancel(p): cancels every unfinished task of p (the trigger
-- then cancels the steps that have not started, `always` ones too) and p
-- itself. The tasks are locked first, then p (the lock order). Returns
-- {"state": p's state after (NULL: no such pipeline), "cancelled": whether
-- this call cancelled it (false: it had finished), "tasks": [{"id", "was"}]
-- of the tasks cancelled (running ones need a signal to their agent)}.
CREATE FUNCTION devsys_pipeline_cancel(p uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    tasks jsonb;
    st    text;
    ran   boolean;
BEGIN
    PERFORM set_config('devsys.pipeline_cancel', p::text, true);
    WITH prev AS (SELECT t.id, t.state FROM tasks t
                  WHERE t.pipeline_id = p AND t.state IN ('queued', 'running', 'retrying')
                  ORDER BY t.id FOR UPDATE),
         upd AS (UPDATE tasks t SET state = 'cancelled', finished_at = now(), next_attempt_at = NULL
                 FROM prev WHERE t.id = prev.id RETURNING t.id)
    SELECT jsonb_agg(jsonb_build_object('id', prev.id, 'was', prev.state) ORDER BY prev.id) INTO tasks
    FROM prev JOIN upd ON upd.id = prev.id;
    -- nothing was live (or the trigger ran already): advance under the lock
    SELECT state INTO st FROM pipelines WHERE id = p FOR UPDATE;
    ran := st = 'running';
    IF ran THEN
        PERFORM devsys_pipeline_advance(p);
        SELECT state INTO st FROM pipelines WHERE id = p;
    END IF;
    PERFORM set_config('devsys.pipeline_cancel', '', true);
    RETURN jsonb_build_object('state', st, 'cancelled', tasks IS NOT NULL OR coalesce(ran, false),
                              'tasks', coalesce(tasks, '[]'::jsonb));
END $$;

-- devsys_pipeline_rerun(p): a finished pipeline runs again from its failures:
-- the nodes of failed, cancelled and skipped steps that did not succeed, and
-- every node of the steps that depend on those (their inputs change), wait
-- again; succeeded steps keep their results. Returns the number of tasks
-- created, or -1 when p is still running, NULL when absent.
CREATE FUNCTION devsys_pipeline_rerun(p uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    st    text;
    part  text[];              -- failed, cancelled, skipped: their unsucceeded nodes
    whole text[] := '{}';      -- what depends on those: every node
    more  text[];
BEGIN
    SELECT state INTO st FROM pipelines WHERE id = p FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    ELSIF st = 'running' THEN
        RETURN -1;
    END IF;
    part := ARRAY(SELECT x.step FROM pipeline_steps x
                  WHERE x.pipeline_id = p AND x.state IN ('failed', 'cancelled', 'skipped'));
    LOOP
        more := ARRAY(SELECT x.step FROM pipeline_steps x WHERE x.pipeline_id = p
                      AND x.needs && (part || whole) AND NOT x.step = ANY (whole));
        EXIT WHEN cardinality(more) = 0;
        whole := whole || more;
    END LOOP;
    UPDATE pipeline_nodes nd SET state = 'waiting', result = NULL, task_id = NULL
    WHERE nd.pipeline_id = p AND (nd.step = ANY (whole) OR (nd.step = ANY (part) AND nd.state <> 'succeeded'));
    UPDATE pipeline_steps x SET state = 'waiting' WHERE x.pipeline_id = p AND x.step = ANY (part || whole);
    UPDATE pipelines SET state = 'running', finished_at = NULL, runs = runs + 1 WHERE id = p;
    RETURN devsys_pipeline_advance(p);
END $$;
