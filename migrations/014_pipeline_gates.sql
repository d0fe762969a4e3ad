-- 014_pipeline_gates: approval gates and concurrency groups of pipelines, and
-- the pipeline.failed / approval.requested events (README "Pipelines"). Both
-- are decided in the transactions that already advance a pipeline (006):
-- a step with an approval gate that falls due records its approval request
-- instead of its tasks; a pipeline of a busy concurrency group is recorded
-- 'queued' and its root tasks are created by the transaction that ends the
-- group's running pipeline. Lock order: task rows, then pipeline rows, then
-- the group's lock (an advisory transaction lock), then the rows of queued
-- pipelines of that group (only ever locked under the group's lock).

-- ------------------------------------------------------------ the columns

ALTER TABLE pipelines DROP CONSTRAINT pipelines_state_check;
ALTER TABLE pipelines ADD CONSTRAINT pipelines_state_check
    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE pipelines
    ADD COLUMN cgroup             text,     -- concurrency.group (NULL: none)
    ADD COLUMN cancel_in_progress boolean NOT NULL DEFAULT false,
    ADD COLUMN group_seq          bigint,   -- its place in the group's line, taken under the group's lock
    ADD COLUMN woken_by           uuid,     -- the pipeline whose end started it (its publisher publishes these)
    ADD COLUMN superseded_by      uuid;     -- the newer pipeline of its group that cancelled it
CREATE SEQUENCE pipeline_group_seq;
CREATE INDEX pipelines_group_live ON pipelines (cgroup, group_seq) WHERE state IN ('queued', 'running');
CREATE INDEX pipelines_woken_by ON pipelines (woken_by) WHERE woken_by IS NOT NULL;

ALTER TABLE pipeline_steps DROP CONSTRAINT pipeline_steps_state_check;
ALTER TABLE pipeline_steps ADD CONSTRAINT pipeline_steps_state_check
    CHECK (state IN ('waiting', 'waiting_approval', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'));
ALTER TABLE pipeline_steps
    ADD COLUMN approval_role      text CHECK (approval_role IN ('operator', 'admin')),  -- NULL: no gate
    ADD COLUMN approval_timeout_s integer;
ALTER TABLE pipeline_nodes DROP CONSTRAINT pipeline_nodes_state_check;
ALTER TABLE pipeline_nodes ADD CONSTRAINT pipeline_nodes_state_check
    CHECK (state IN ('waiting', 'waiting_approval', 'queued', 'succeeded', 'failed', 'dead', 'cancelled', 'skipped'));

-- One approval request per gated step and pipeline run (a rerun asks again).
-- decision: NULL while pending, then approved | rejected | timed_out |
-- cancelled (the pipeline was cancelled while it waited).
CREATE TABLE approvals (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pipeline_id  uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    step         text NOT NULL,
    run          integer NOT NULL,
    role         text NOT NULL CHECK (role IN ('operator', 'admin')),
    timeout_s    integer NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    deadline     timestamptz NOT NULL,
    decision     text CHECK (decision IN ('approved', 'rejected', 'timed_out', 'cancelled')),
    decided_by   text,
    decided_at   timestamptz,
    comment      text,
    UNIQUE (pipeline_id, step, run)
);
CREATE INDEX approvals_pending ON approvals (deadline) WHERE decision IS NULL;
CREATE INDEX approvals_requested ON approvals (requested_at DESC, id DESC);

-- ------------------------------------------------------------ groups

-- The group's lock, held to the end of the transaction. Hash collisions only
-- serialize two groups a little more.
CREATE FUNCTION devsys_pipeline_group_lock(g text) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(hashtextextended('devsys.pipeline-group:' || g, 0)) $$;

-- The group g has no running pipeline: the oldest queued one (group_seq)
-- starts, noted as woken by `by` (whose publisher then publishes its tasks).
-- Returns the tasks created.
CREATE FUNCTION devsys_pipeline_group_next(g text, by uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    nxt uuid;
BEGIN
    PERFORM devsys_pipeline_group_lock(g);
    IF EXISTS (SELECT 1 FROM pipelines WHERE cgroup = g AND state = 'running') THEN
        RETURN 0;
    END IF;
    LOOP
        SELECT id INTO nxt FROM pipelines WHERE cgroup = g AND state = 'queued' ORDER BY group_seq LIMIT 1;
        IF nxt IS NULL THEN
            RETURN 0;
        END IF;
        -- a cancel may hold it (queued -> cancelled): then the next one
        PERFORM 1 FROM pipelines WHERE id = nxt AND state = 'queued' FOR UPDATE;
        EXIT WHEN FOUND;
    END LOOP;
    UPDATE pipelines SET state = 'running', woken_by = by WHERE id = nxt;
    RETURN devsys_pipeline_advance(nxt);
END $$;

-- ------------------------------------------------------------ approvals

-- Step s of p will not run this time: failed (by a rejection or a timeout),
-- its nodes skipped (they never ran).
CREATE FUNCTION devsys_pipeline_step_refused(p uuid, s text) RETURNS void
LANGUAGE sql AS $$
    UPDATE pipeline_steps SET state = 'failed' WHERE pipeline_id = p AND step = s;
    UPDATE pipeline_nodes SET state = 'skipped' WHERE pipeline_id = p AND step = s
        AND state IN ('waiting', 'waiting_approval');
$$;

-- ------------------------------------------------------------ advance

-- devsys_pipeline_advance(p) as in 006, plus: a queued pipeline (waiting for
-- its group) does nothing unless cancelled; a due step with an approval gate
-- waits in waiting_approval with an approval request (approval.requested)
-- until this run's approval is approved (then it runs) or rejected / timed
-- out (then it failed); a cancel cancels the waiting approvals; when a
-- running pipeline ends, its group's next pipeline starts, and a failed end
-- records pipeline.failed.
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
                          AND x.step = ANY (st.needs) AND x.state IN ('waiting', 'waiting_approval', 'running'));
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
    UPDATE pipeline_steps st SET state = o.outcome
    FROM (SELECT nd.step, CASE WHEN bool_or(nd.state IN ('failed', 'dead')) THEN 'failed'
                               WHEN bool_or(nd.state = 'cancelled') THEN 'cancelled'
                               ELSE 'succeeded' END AS outcome
          FROM pipeline_nodes nd WHERE nd.pipeline_id = p
          GROUP BY nd.step HAVING bool_and(nd.state NOT IN ('waiting', 'waiting_approval', 'queued'))) o
    WHERE st.pipeline_id = p AND st.step = o.step AND st.state = 'running';
    -- waiting steps whose needs all finished: run, skip or cancel them
    FOR s IN SELECT step, cond, needs, approval_role, approval_timeout_s FROM pipeline_steps
             WHERE pipeline_id = p AND state = 'waiting' ORDER BY pos LOOP
        SELECT count(*) FILTER (WHERE x.state IN ('waiting', 'waiting_approval', 'running')),
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
    -- every step finished: so did the pipeline
    IF NOT EXISTS (SELECT 1 FROM pipeline_steps WHERE pipeline_id = p
                   AND state IN ('waiting', 'waiting_approval', 'running')) THEN
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

-- ------------------------------------------------------------ submit

-- devsys_pipeline_submit as in 006; steps may carry approval_role and
-- approval_timeout_s; p_doc's "concurrency" {"group", "cancel_in_progress"}
-- puts p in its group's line: with cancel_in_progress the group's queued
-- pipelines are cancelled now (superseded by p) and its running one is left
-- to devsys_pipeline_supersede (the caller's next statement; lock order);
-- p is queued while another of the group runs (returns -2), else it starts
-- at once (returns the tasks created).
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
    INSERT INTO pipeline_steps (pipeline_id, step, pos, needs, cond, approval_role, approval_timeout_s)
    SELECT p, x.step, x.pos, ARRAY(SELECT jsonb_array_elements_text(x.needs)), x.cond, x.approval_role,
           x.approval_timeout_s
    FROM jsonb_to_recordset(steps) AS x(step text, pos int, needs jsonb, cond text, approval_role text,
                                        approval_timeout_s int);
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

-- Running pipelines superseded by a newer queued one of their group with
-- cancel_in_progress (of p's group; p NULL: every group's, at most 100), for
-- devsys_pipeline_supersede.
CREATE FUNCTION devsys_pipeline_superseded(p uuid) RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    SELECT r.id FROM pipelines r
    WHERE r.state = 'running' AND r.cgroup IS NOT NULL
      AND (p IS NULL OR r.cgroup = (SELECT cgroup FROM pipelines WHERE id = p))
      AND EXISTS (SELECT 1 FROM pipelines q WHERE q.cgroup = r.cgroup AND q.state = 'queued'
                  AND q.cancel_in_progress AND q.group_seq > r.group_seq)
    ORDER BY r.group_seq LIMIT 100
$$;

-- Cancels running pipeline r when a newer queued pipeline of its group with
-- cancel_in_progress supersedes it (re-checked here); its end starts the
-- group's next one. Returns devsys_pipeline_cancel's answer, or NULL when r
-- is no longer superseded.
CREATE FUNCTION devsys_pipeline_supersede(r uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    newest uuid;
    res    jsonb;
BEGIN
    SELECT q.id INTO newest FROM pipelines x JOIN pipelines q ON q.cgroup = x.cgroup
    WHERE x.id = r AND x.state = 'running' AND q.state = 'queued' AND q.cancel_in_progress
      AND q.group_seq > x.group_seq
    ORDER BY q.group_seq DESC LIMIT 1;
    IF newest IS NULL THEN
        RETURN NULL;
    END IF;
    res := devsys_pipeline_cancel(r);
    UPDATE pipelines SET superseded_by = newest WHERE id = r AND state = 'cancelled';
    RETURN res;
END $$;

-- ------------------------------------------------------------ cancel, rerun

-- As in 006; a queued pipeline is cancelled too (it frees nothing).
CREATE OR REPLACE FUNCTION devsys_pipeline_cancel(p uuid) RETURNS jsonb
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
    ran := st IN ('running', 'queued');
    IF ran THEN
        PERFORM devsys_pipeline_advance(p);
        SELECT state INTO st FROM pipelines WHERE id = p;
    END IF;
    PERFORM set_config('devsys.pipeline_cancel', '', true);
    RETURN jsonb_build_object('state', st, 'cancelled', tasks IS NOT NULL OR coalesce(ran, false),
                              'tasks', coalesce(tasks, '[]'::jsonb));
END $$;

-- As in 006, and a pipeline of a concurrency group takes a new place at the
-- end of its group's line: -2 when it is queued there (no task yet).
CREATE OR REPLACE FUNCTION devsys_pipeline_rerun(p uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    st    text;
    g     text;
    part  text[];              -- failed, cancelled, skipped: their unsucceeded nodes
    whole text[] := '{}';      -- what depends on those: every node
    more  text[];
    n     integer;
BEGIN
    SELECT state, cgroup INTO st, g FROM pipelines WHERE id = p FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    ELSIF st IN ('running', 'queued') THEN
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
    IF g IS NULL THEN
        UPDATE pipelines SET state = 'running', finished_at = NULL, runs = runs + 1 WHERE id = p;
        RETURN devsys_pipeline_advance(p);
    END IF;
    PERFORM devsys_pipeline_group_lock(g);
    UPDATE pipelines SET state = 'queued', finished_at = NULL, runs = runs + 1, superseded_by = NULL,
        group_seq = nextval('pipeline_group_seq') WHERE id = p;
    n := devsys_pipeline_group_next(g, NULL);
    RETURN CASE WHEN (SELECT state FROM pipelines WHERE id = p) = 'queued' THEN -2 ELSE n END;
END $$;

-- ------------------------------------------------------------ decisions

-- An operator's or admin's verdict on approval a ("approved" | "rejected")
-- by actor with role actor_role ("viewer" | "operator" | "admin"). Locks the
-- pipeline, then the approval. Returns NULL when a does not exist, else
-- {"id", "pipeline", "step", "role", "state" (after), "decided" (this call
-- decided it), "refused" (actor_role is below role), "created" (tasks)}.
CREATE FUNCTION devsys_approval_decide(a uuid, verdict text, actor text, actor_role text, note text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    pl      uuid;
    ap      approvals;
    created integer := 0;
    rank    integer := CASE actor_role WHEN 'admin' THEN 3 WHEN 'operator' THEN 2 WHEN 'viewer' THEN 1 ELSE 0 END;
    refused boolean := false;
BEGIN
    SELECT pipeline_id INTO pl FROM approvals WHERE id = a;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM pipelines WHERE id = pl FOR UPDATE;
    SELECT * INTO ap FROM approvals WHERE id = a FOR UPDATE;
    IF ap.decision IS NULL THEN
        refused := rank < CASE ap.role WHEN 'admin' THEN 3 ELSE 2 END;
    END IF;
    IF ap.decision IS NULL AND NOT refused THEN
        UPDATE approvals SET decision = verdict, decided_by = actor, decided_at = now(),
            comment = note WHERE id = a RETURNING * INTO ap;
        IF ap.decision = 'approved' THEN
            UPDATE pipeline_steps SET state = 'waiting' WHERE pipeline_id = pl AND step = ap.step
                AND state = 'waiting_approval';
        ELSE
            PERFORM devsys_pipeline_step_refused(pl, ap.step);
        END IF;
        created := devsys_pipeline_advance(pl);
        RETURN jsonb_build_object('id', a, 'pipeline', pl, 'step', ap.step, 'role', ap.role,
                                  'state', ap.decision, 'decided', true, 'refused', false, 'created', created);
    END IF;
    RETURN jsonb_build_object('id', a, 'pipeline', pl, 'step', ap.step, 'role', ap.role,
                              'state', coalesce(ap.decision, 'pending'), 'decided', false, 'refused', refused,
                              'created', 0);
END $$;

-- The timeout pass (every manager's reconciler): approvals past their
-- deadline fail their step, up to n pipelines per call. Pipelines are locked
-- SKIP LOCKED, so two managers never decide one twice (and a pipeline busy
-- now is done next pass). Returns the pipelines advanced (to publish).
CREATE FUNCTION devsys_approvals_expire(n integer) RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
    pl   uuid;
    ap   approvals;
    done uuid[] := '{}';
BEGIN
    FOR pl IN SELECT p.id FROM pipelines p
              WHERE p.id IN (SELECT x.pipeline_id FROM approvals x WHERE x.decision IS NULL AND x.deadline <= now()
                             ORDER BY x.deadline LIMIT n)
              FOR UPDATE OF p SKIP LOCKED
    LOOP
        FOR ap IN SELECT * FROM approvals WHERE pipeline_id = pl AND decision IS NULL AND deadline <= now()
                  FOR UPDATE LOOP
            UPDATE approvals SET decision = 'timed_out', decided_by = 'devsys', decided_at = now(),
                comment = format('approval timed out after %ss', ap.timeout_s) WHERE id = ap.id;
            PERFORM devsys_pipeline_step_refused(pl, ap.step);
        END LOOP;
        PERFORM devsys_pipeline_advance(pl);
        done := done || pl;
    END LOOP;
    RETURN done;
END $$;
