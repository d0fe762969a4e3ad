-- 017_step_concurrency: concurrency groups on a step (README "Pipelines"),
-- GitHub Actions' job-level `concurrency`: at most one running step per group
-- across pipelines. A step that falls due while another step of its group runs
-- (or an older one waits) waits in 'waiting_group', in line by group_seq
-- (oldest first). A newer step with cancel_in_progress supersedes the older
-- ones: a waiting one cancels itself at its pipeline's next advance (or the
-- wake below), a running one has its tasks cancelled by
-- devsys_step_supersede (the publisher's next statement and the reconciler's
-- sweep: task rows are locked before pipeline rows, never after).
--
-- A step that leaves its group (ends, or leaves the line) wakes the next in
-- line in the same transaction when that pipeline's row is free (SKIP
-- LOCKED: no wait, so no new lock-order cycle); when it is held, its holder
-- is itself about to advance it under the group's lock, and the reconciler's
-- sweep (devsys_step_groups_sweep) is the backstop. Lock order: task rows,
-- pipeline rows, the group's advisory lock, then pipeline rows only without
-- waiting.

ALTER TABLE pipeline_steps DROP CONSTRAINT pipeline_steps_state_check;
ALTER TABLE pipeline_steps ADD CONSTRAINT pipeline_steps_state_check
    CHECK (state IN ('waiting', 'waiting_approval', 'waiting_group', 'running', 'succeeded', 'failed', 'skipped',
                     'cancelled'));
ALTER TABLE pipeline_steps
    ADD COLUMN cgroup             text,     -- concurrency.group (NULL: none)
    ADD COLUMN cancel_in_progress boolean NOT NULL DEFAULT false,
    ADD COLUMN group_seq          bigint,   -- its place in the group's line (pipeline_group_seq)
    ADD COLUMN superseded_by      uuid;     -- the pipeline whose newer step of the group cancelled it
CREATE INDEX pipeline_steps_group_live ON pipeline_steps (cgroup, group_seq)
    WHERE cgroup IS NOT NULL AND state IN ('waiting_group', 'running');

-- The step group's lock, held to the end of the transaction.
CREATE FUNCTION devsys_step_group_lock(g text) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(hashtextextended('devsys.step-group:' || g, 0)) $$;

-- Under the group's lock: may the step at place seq of group g start? Only
-- when no step of g runs and no older step waits that a newer one with
-- cancel_in_progress has not superseded.
CREATE FUNCTION devsys_step_group_turn(g text, seq bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM pipeline_steps r WHERE r.cgroup = g AND r.state = 'running')
       AND NOT EXISTS (SELECT 1 FROM pipeline_steps w WHERE w.cgroup = g AND w.state = 'waiting_group'
                       AND w.group_seq < seq
                       AND w.group_seq >= coalesce((SELECT max(c.group_seq) FROM pipeline_steps c
                                                    WHERE c.cgroup = g AND c.cancel_in_progress
                                                      AND c.state IN ('waiting_group', 'running')), 0))
$$;

-- Group g lost its running step or a waiting one (by: the pipeline whose
-- transaction it is, NULL from the sweep): the next in line starts, and the
-- superseded waiters cancel themselves, in the pipelines whose rows are free
-- now, noted woken_by the first `by` of the transaction (a wake from a wake
-- too: that pipeline's publisher publishes their tasks, through one level of
-- woken_by). Returns the tasks created.
CREATE FUNCTION devsys_step_group_wake(g text, by uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    w       record;
    created integer := 0;
    origin  uuid;
    waking  text := coalesce(current_setting('devsys.step_waking', true), '');
BEGIN
    -- a wake of g from a pipeline this wake advanced: this loop sees to it
    IF position('|' || g || '|' IN waking) > 0 THEN
        RETURN 0;
    END IF;
    PERFORM set_config('devsys.step_waking', waking || '|' || g || '|', true);
    IF by IS NOT NULL THEN
        origin := coalesce(nullif(current_setting('devsys.step_wake_by', true), ''), by::text)::uuid;
        PERFORM set_config('devsys.step_wake_by', origin::text, true);
    END IF;
    PERFORM devsys_step_group_lock(g);
    FOR w IN SELECT DISTINCT ON (x.pipeline_id) x.pipeline_id, x.group_seq FROM pipeline_steps x
             WHERE x.cgroup = g AND x.state = 'waiting_group' AND x.pipeline_id IS DISTINCT FROM by
             ORDER BY x.pipeline_id, x.group_seq LOOP
        -- the next in line (its turn) or a superseded one (it cancels itself)
        CONTINUE WHEN NOT (devsys_step_group_turn(g, w.group_seq) OR EXISTS (
            SELECT 1 FROM pipeline_steps c WHERE c.cgroup = g AND c.cancel_in_progress
              AND c.state IN ('waiting_group', 'running') AND c.group_seq > w.group_seq));
        PERFORM 1 FROM pipelines WHERE id = w.pipeline_id AND state = 'running' FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        UPDATE pipelines SET woken_by = origin WHERE id = w.pipeline_id AND origin IS NOT NULL;
        created := created + devsys_pipeline_advance(w.pipeline_id);
    END LOOP;
    PERFORM set_config('devsys.step_waking', waking, true);
    RETURN created;
END $$;

CREATE OR REPLACE FUNCTION devsys_pipeline_advance(p uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    s          record;
    pl         record;
    ap         record;
    open_n     integer;
    all_ok     boolean;
    any_failed boolean;
    created    integer := 0;
    n          integer;
    again      boolean;
    was        text;
    ended      integer;
    final_state text;
    seq        bigint;
    sup        uuid;
    fr         text[];
    freed      text[] := '{}';  -- groups a step of p left (ran, or left the line)
    g          text;
    cancelling boolean := coalesce(current_setting('devsys.pipeline_cancel', true), '') = p::text;
BEGIN
    SELECT id, name, state, runs, cgroup INTO pl FROM pipelines WHERE id = p;
    IF pl.state = 'queued' AND NOT cancelling THEN
        RETURN 0;
    END IF;
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
                          AND x.step = ANY (st.needs) AND x.state IN ('waiting', 'waiting_approval', 'waiting_group', 'running'));
            EXIT WHEN NOT FOUND;
        END LOOP;
        UPDATE pipeline_nodes nd SET state = 'waiting' FROM pipeline_steps st
        WHERE st.pipeline_id = p AND nd.pipeline_id = p AND nd.step = st.step AND st.state = 'waiting'
          AND nd.state = 'skipped';
    END IF;
    IF cancelling THEN
        UPDATE approvals SET decision = 'cancelled', decided_at = now()
        WHERE pipeline_id = p AND decision IS NULL;
        UPDATE pipeline_steps SET state = 'cancelled' WHERE pipeline_id = p AND state = 'waiting_approval';
        UPDATE pipeline_nodes SET state = 'cancelled' WHERE pipeline_id = p AND state = 'waiting_approval';
    END IF;
    <<pass>>
    LOOP
    again := false;
    -- steps whose nodes all finished take their outcome
    WITH ended AS (
        UPDATE pipeline_steps st SET state = o.outcome
        FROM (SELECT nd.step, CASE WHEN bool_or(nd.state IN ('failed', 'dead')) THEN 'failed'
                                   WHEN bool_or(nd.state = 'cancelled') THEN 'cancelled'
                                   ELSE 'succeeded' END AS outcome
              FROM pipeline_nodes nd WHERE nd.pipeline_id = p
              GROUP BY nd.step HAVING bool_and(nd.state NOT IN ('waiting', 'waiting_approval', 'queued'))) o
        WHERE st.pipeline_id = p AND st.step = o.step AND st.state = 'running'
        RETURNING st.cgroup)
    SELECT array_agg(cgroup) FILTER (WHERE cgroup IS NOT NULL) INTO fr FROM ended;
    freed := freed || coalesce(fr, '{}');
    -- waiting steps whose needs all finished: run, skip or cancel them
    FOR s IN SELECT step, state, cond, needs, approval_role, approval_timeout_s, cgroup, cancel_in_progress,
                    group_seq FROM pipeline_steps
             WHERE pipeline_id = p AND state IN ('waiting', 'waiting_group') ORDER BY pos LOOP
        SELECT count(*) FILTER (WHERE x.state IN ('waiting', 'waiting_approval', 'waiting_group', 'running')),
               coalesce(bool_and(x.state = 'succeeded'), true),
               coalesce(bool_or(x.state = 'failed'), false)
          INTO open_n, all_ok, any_failed
          FROM pipeline_steps x WHERE x.pipeline_id = p AND x.step = ANY (s.needs);
        CONTINUE WHEN open_n > 0;
        IF cancelling THEN
            IF s.state = 'waiting_group' THEN
                freed := freed || s.cgroup;
            END IF;
            UPDATE pipeline_steps SET state = 'cancelled' WHERE pipeline_id = p AND step = s.step;
            UPDATE pipeline_nodes SET state = 'cancelled' WHERE pipeline_id = p AND step = s.step
                AND state = 'waiting';
        ELSIF s.cond = 'always' OR (s.cond = 'success' AND all_ok) OR (s.cond = 'failure' AND any_failed) THEN
            IF s.approval_role IS NOT NULL THEN
                -- the gate: this run's approval decides
                SELECT id, decision INTO ap FROM approvals
                WHERE pipeline_id = p AND step = s.step AND run = pl.runs;
                IF NOT FOUND THEN
                    INSERT INTO approvals (pipeline_id, step, run, role, timeout_s, deadline)
                    VALUES (p, s.step, pl.runs, s.approval_role, s.approval_timeout_s,
                            now() + s.approval_timeout_s * interval '1 second')
                    RETURNING id, decision INTO ap;
                    PERFORM notify_event('approval.requested', ap.id::text, NULL, jsonb_build_object(
                        'approval', ap.id, 'pipeline', p, 'name', pl.name, 'step', s.step,
                        'role', s.approval_role, 'timeout_s', s.approval_timeout_s,
                        'deadline', now() + s.approval_timeout_s * interval '1 second',
                        'link', '/v1/approvals/' || ap.id));
                END IF;
                IF ap.decision IS NULL THEN
                    UPDATE pipeline_steps SET state = 'waiting_approval' WHERE pipeline_id = p AND step = s.step;
                    UPDATE pipeline_nodes SET state = 'waiting_approval' WHERE pipeline_id = p AND step = s.step
                        AND state = 'waiting';
                    CONTINUE;
                ELSIF ap.decision <> 'approved' THEN
                    PERFORM devsys_pipeline_step_refused(p, s.step);
                    again := true; -- what needs it is decided in the next pass
                    CONTINUE;
                END IF;
            END IF;
            IF s.cgroup IS NOT NULL THEN
                -- the step's concurrency group: its line, oldest first
                PERFORM devsys_step_group_lock(s.cgroup);
                seq := s.group_seq;
                IF s.state = 'waiting' THEN
                    seq := nextval('pipeline_group_seq');
                    UPDATE pipeline_steps SET state = 'waiting_group', group_seq = seq, superseded_by = NULL
                    WHERE pipeline_id = p AND step = s.step;
                END IF;
                -- a newer step of the group with cancel_in_progress supersedes it
                SELECT x.pipeline_id INTO sup FROM pipeline_steps x
                WHERE x.cgroup = s.cgroup AND x.state IN ('waiting_group', 'running') AND x.cancel_in_progress
                  AND x.group_seq > seq
                ORDER BY x.group_seq DESC LIMIT 1;
                IF FOUND THEN
                    UPDATE pipeline_steps SET state = 'cancelled', superseded_by = sup
                    WHERE pipeline_id = p AND step = s.step;
                    UPDATE pipeline_nodes SET state = 'cancelled' WHERE pipeline_id = p AND step = s.step
                        AND state IN ('waiting', 'waiting_approval');
                    freed := freed || s.cgroup;
                    again := true; -- what needs it is decided in the next pass
                    CONTINUE;
                END IF;
                CONTINUE WHEN NOT devsys_step_group_turn(s.cgroup, seq);
            END IF;
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
                    WHERE nd.pipeline_id = p AND nd.step = s.step AND nd.state IN ('waiting', 'waiting_approval')
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
    -- the groups p's steps left: the next in line (another pipeline's) starts
    FOR g IN SELECT DISTINCT x FROM unnest(freed) x ORDER BY 1 LOOP
        created := created + devsys_step_group_wake(g, p);
    END LOOP;
    -- every step finished: so did the pipeline
    IF NOT EXISTS (SELECT 1 FROM pipeline_steps WHERE pipeline_id = p
                   AND state IN ('waiting', 'waiting_approval', 'waiting_group', 'running')) THEN
        final_state := CASE
                WHEN cancelling THEN 'cancelled'
                WHEN EXISTS (SELECT 1 FROM pipeline_steps x WHERE x.pipeline_id = p AND x.state = 'failed')
                    THEN 'failed'
                WHEN EXISTS (SELECT 1 FROM pipeline_steps x WHERE x.pipeline_id = p AND x.state = 'cancelled')
                    THEN 'cancelled'
                ELSE 'succeeded' END;
        SELECT state INTO was FROM pipelines WHERE id = p;
        UPDATE pipelines SET finished_at = now(), state = final_state
        WHERE id = p AND state IN ('running', 'queued');
        GET DIAGNOSTICS ended = ROW_COUNT;
        IF ended > 0 AND final_state = 'failed' THEN
            PERFORM notify_event('pipeline.failed', p::text, NULL, jsonb_build_object(
                'pipeline', p, 'name', pl.name, 'runs', pl.runs,
                'failed_steps', (SELECT jsonb_agg(x.step ORDER BY x.pos) FROM pipeline_steps x
                                 WHERE x.pipeline_id = p AND x.state = 'failed'),
                'error', 'failed steps: ' || (SELECT string_agg(x.step, ', ' ORDER BY x.pos) FROM pipeline_steps x
                                              WHERE x.pipeline_id = p AND x.state = 'failed'),
                'link', '/v1/pipelines/' || p));
        END IF;
        -- a running pipeline that ended frees its group (a queued one held nothing)
        IF ended > 0 AND was = 'running' AND pl.cgroup IS NOT NULL THEN
            PERFORM devsys_pipeline_group_next(pl.cgroup, p);
        END IF;
    END IF;
    RETURN created;
END $$;

CREATE OR REPLACE FUNCTION devsys_pipeline_submit(p uuid, p_name text, p_doc jsonb, actor text, steps jsonb,
                                                  nodes jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    g   text := p_doc -> 'concurrency' ->> 'group';
    cip boolean := coalesce((p_doc -> 'concurrency' ->> 'cancel_in_progress')::boolean, false);
    old uuid;
    n   integer;
BEGIN
    INSERT INTO pipelines (id, name, doc, created_by, state, cgroup, cancel_in_progress)
    VALUES (p, p_name, p_doc, actor, CASE WHEN g IS NULL THEN 'running' ELSE 'queued' END, g, cip);
    INSERT INTO pipeline_steps (pipeline_id, step, pos, needs, cond, approval_role, approval_timeout_s, cgroup,
                                cancel_in_progress)
    SELECT p, x.step, x.pos, ARRAY(SELECT jsonb_array_elements_text(x.needs)), x.cond, x.approval_role,
           x.approval_timeout_s, x.cgroup, coalesce(x.cancel_in_progress, false)
    FROM jsonb_to_recordset(steps) AS x(step text, pos int, needs jsonb, cond text, approval_role text,
                                        approval_timeout_s int, cgroup text, cancel_in_progress boolean);
    INSERT INTO pipeline_nodes (pipeline_id, step, idx, name, queue, kind, priority, max_attempts, spec)
    SELECT p, x.step, x.idx, x.name, x.queue, x.kind, x.priority, x.max_attempts, x.spec
    FROM jsonb_to_recordset(nodes) AS x(step text, idx int, name text, queue text, kind text, priority int,
                                        max_attempts int, spec jsonb);
    INSERT INTO queue_settings (queue)
    SELECT DISTINCT x.queue FROM jsonb_to_recordset(nodes) AS x(queue text) ON CONFLICT DO NOTHING;
    IF g IS NULL THEN
        RETURN devsys_pipeline_advance(p);
    END IF;
    PERFORM devsys_pipeline_group_lock(g);
    UPDATE pipelines SET group_seq = nextval('pipeline_group_seq') WHERE id = p;
    IF cip THEN
        FOR old IN SELECT id FROM pipelines WHERE cgroup = g AND state = 'queued' AND id <> p ORDER BY group_seq
        LOOP
            UPDATE pipelines SET superseded_by = p WHERE id = old AND state = 'queued';
            CONTINUE WHEN NOT FOUND;
            PERFORM devsys_pipeline_cancel(old);
        END LOOP;
    END IF;
    n := devsys_pipeline_group_next(g, NULL);
    RETURN CASE WHEN (SELECT state FROM pipelines WHERE id = p) = 'queued' THEN -2 ELSE n END;
END $$;

-- Running steps that a newer step of their group with cancel_in_progress
-- supersedes: of the groups of p's steps (p NULL: of every group), at most
-- 100, for devsys_step_supersede.
CREATE FUNCTION devsys_step_superseded(p uuid[]) RETURNS TABLE (pipeline_id uuid, step text)
LANGUAGE sql STABLE AS $$
    SELECT r.pipeline_id, r.step FROM pipeline_steps r
    WHERE r.cgroup IS NOT NULL AND r.state = 'running'
      AND (p IS NULL OR r.cgroup IN (SELECT q.cgroup FROM pipeline_steps q
                                     WHERE q.pipeline_id = ANY (p) AND q.cgroup IS NOT NULL
                                       AND q.state = 'waiting_group' AND q.cancel_in_progress))
      AND EXISTS (SELECT 1 FROM pipeline_steps q WHERE q.cgroup = r.cgroup AND q.state = 'waiting_group'
                  AND q.cancel_in_progress AND q.group_seq > r.group_seq)
    ORDER BY r.group_seq LIMIT 100
$$;
CREATE INDEX pipeline_steps_cip_waiting ON pipeline_steps (pipeline_id)
    WHERE state = 'waiting_group' AND cancel_in_progress;

-- Cancels the running step s of p when a newer step of its group with
-- cancel_in_progress supersedes it (re-checked here): its live tasks are
-- cancelled (task rows first), the trigger advances p, the step ends
-- cancelled and its group's next step starts. Returns NULL when s is no
-- longer superseded, else {"tasks": [{"id", "was"}]} (running ones need a
-- signal to their agent).
CREATE FUNCTION devsys_step_supersede(p uuid, s text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    newest uuid;
    tasks  jsonb;
BEGIN
    SELECT q.pipeline_id INTO newest FROM pipeline_steps r JOIN pipeline_steps q ON q.cgroup = r.cgroup
    WHERE r.pipeline_id = p AND r.step = s AND r.state = 'running' AND q.state = 'waiting_group'
      AND q.cancel_in_progress AND q.group_seq > r.group_seq
    ORDER BY q.group_seq DESC LIMIT 1;
    IF newest IS NULL THEN
        RETURN NULL;
    END IF;
    WITH prev AS (SELECT t.id, t.state FROM tasks t
                  WHERE t.id IN (SELECT nd.task_id FROM pipeline_nodes nd WHERE nd.pipeline_id = p AND nd.step = s
                                 AND nd.state = 'queued')
                    AND t.state IN ('queued', 'running', 'retrying')
                  ORDER BY t.id FOR UPDATE),
         upd AS (UPDATE tasks t SET state = 'cancelled', finished_at = now(), next_attempt_at = NULL
                 FROM prev WHERE t.id = prev.id RETURNING t.id)
    SELECT jsonb_agg(jsonb_build_object('id', prev.id, 'was', prev.state) ORDER BY prev.id) INTO tasks
    FROM prev JOIN upd ON upd.id = prev.id;
    UPDATE pipeline_steps SET superseded_by = newest WHERE pipeline_id = p AND step = s AND state = 'cancelled';
    RETURN jsonb_build_object('tasks', coalesce(tasks, '[]'::jsonb));
END $$;

-- The sweep (every manager's reconciler): groups without a running step
-- whose line waits (a wake that found the next pipeline's row held and no
-- holder that advanced it), at most n; each is woken. Returns the pipelines
-- whose tasks it created (to publish).
CREATE FUNCTION devsys_step_groups_sweep(n integer) RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
    g    text;
    done uuid[] := '{}';
BEGIN
    FOR g IN SELECT DISTINCT w.cgroup FROM pipeline_steps w
             WHERE w.cgroup IS NOT NULL AND w.state = 'waiting_group'
               AND NOT EXISTS (SELECT 1 FROM pipeline_steps r WHERE r.cgroup = w.cgroup AND r.state = 'running')
             ORDER BY 1 LIMIT n LOOP
        PERFORM devsys_step_group_wake(g, NULL);
    END LOOP;
    done := ARRAY(SELECT DISTINCT t.pipeline_id FROM tasks t
                  WHERE t.pipeline_id IS NOT NULL AND t.state = 'queued' AND t.published_at IS NULL
                    AND t.pipeline_id IN (SELECT x.pipeline_id FROM pipeline_steps x
                                          WHERE x.cgroup IS NOT NULL AND x.state = 'running'));
    RETURN done;
END $$;

-- devsys_pipeline_submit and, in the same transaction, the take of what it
-- created (taskdb_pipeline_take's statement): one commit per submit instead
-- of two. One row per task taken, and one row with NULL task columns when
-- none was; created on every row.
CREATE FUNCTION devsys_pipeline_submit_take(p uuid, p_name text, p_doc jsonb, actor text, steps jsonb, nodes jsonb)
RETURNS TABLE (created integer, id uuid, queue text, kind text, attempt integer, spec text, step text, idx text)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := devsys_pipeline_submit(p, p_name, p_doc, actor, steps, nodes);
BEGIN
    RETURN QUERY
    WITH t AS (UPDATE tasks t SET published_at = now()
               WHERE t.pipeline_id = p AND t.state = 'queued' AND t.published_at IS NULL
               RETURNING t.id, t.queue, t.kind, t.attempt, t.spec::text AS spec,
                         t.spec->'pipeline'->>'step' AS step, t.spec->'pipeline'->>'index' AS idx)
    SELECT n, t.id, t.queue, t.kind, t.attempt, t.spec, t.step, t.idx FROM (SELECT 1) one LEFT JOIN t ON true;
END $$;

-- The advance runs a dozen short statements per call, each keyed by the
-- pipeline: planning them afresh each call (plpgsql's custom plans) was about
-- a third of its CPU (perf, BENCHMARKS.md "Pipelines"). Generic plans, with
-- every statement reaching its rows by key (no plan made while a table was
-- small may scan it whole later).
ALTER FUNCTION devsys_pipeline_advance(uuid) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION devsys_pipeline_advance(uuid) SET enable_seqscan = off;
