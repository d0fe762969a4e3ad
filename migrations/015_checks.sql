-- 015_checks: checks (a probe on an interval), their probe results and their
-- incidents. The managers' check timer (manager/checker.c -> check_tick below)
-- inserts one monitor task per due check per interval; the probe's outcome (the
-- monitor task going succeeded, tasks.result {"ok", "latency_ms", "error", ...})
-- records a probe_results row and moves the check ok <-> failing in the same
-- transaction (trigger tasks_check_outcome), as Gatus does: failing after
-- failure_threshold consecutive failures, ok again after success_threshold
-- successes. Going failing opens one incident, inserts its follow-up task and
-- records incident.opened (notify_event, 012); recovering resolves it and
-- records incident.resolved. A silenced check records its probes and moves its
-- state, but opens no incident, inserts no follow-up and records no event.

CREATE TABLE checks (
    name                  text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    probe                 jsonb NOT NULL,   -- the monitor section of its tasks, flat (without check and offset)
    interval_s            float8 NOT NULL CHECK (interval_s >= 1 AND interval_s <= 86400),
    failure_threshold     integer NOT NULL DEFAULT 3 CHECK (failure_threshold BETWEEN 1 AND 1000),
    success_threshold     integer NOT NULL DEFAULT 2 CHECK (success_threshold BETWEEN 1 AND 1000),
    -- the task spec an incident submits (validated like a submit), or NULL;
    -- its queue, max_attempts and priority as proto/spec.c read them
    follow_up             jsonb,
    follow_up_queue       text,
    follow_up_max_attempts integer,
    follow_up_priority    integer,
    source                text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'file')),
    state                 text NOT NULL DEFAULT 'unknown' CHECK (state IN ('ok', 'failing', 'unknown')),
    state_since           timestamptz NOT NULL DEFAULT now(),
    consecutive_failures  integer NOT NULL DEFAULT 0,
    consecutive_successes integer NOT NULL DEFAULT 0,
    silenced_until        timestamptz,
    silence_reason        text,
    next_due_at           timestamptz NOT NULL DEFAULT now(),
    last_task             uuid,             -- the newest probe task: no new one while it is unfinished
    log_offset            bigint,           -- type log: where the next probe starts reading
    last_probe_at         timestamptz,
    last_ok               boolean,
    last_error            text,
    last_latency_ms       float8,
    probes_skipped        bigint NOT NULL DEFAULT 0, -- intervals whose probe was not made: the last one had not ended
    created_by            text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checks_due ON checks (next_due_at);

CREATE TABLE probe_results (
    id         bigserial PRIMARY KEY,
    check_name text NOT NULL REFERENCES checks (name) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    ok         boolean NOT NULL,
    latency_ms float8,
    error      text,
    task_id    uuid,
    silenced   boolean NOT NULL DEFAULT false
);
-- a check's history (keyset by id) and its uptime/latency windows
CREATE INDEX probe_results_check ON probe_results (check_name, id);
CREATE INDEX probe_results_check_at ON probe_results (check_name, at);
CREATE INDEX probe_results_at ON probe_results (at);

CREATE TABLE incidents (
    id                  bigserial PRIMARY KEY,
    check_name          text NOT NULL,      -- no foreign key: an incident outlives its check
    opened_at           timestamptz NOT NULL DEFAULT now(),
    resolved_at         timestamptz,
    resolution          text,               -- recovered | check deleted
    error               text,               -- the failure that opened it
    failures            integer NOT NULL,   -- consecutive failures when it opened
    follow_up_task      uuid,
    follow_up_published boolean NOT NULL DEFAULT true
);
-- at most one open incident per check
CREATE UNIQUE INDEX incidents_open ON incidents (check_name) WHERE resolved_at IS NULL;
CREATE INDEX incidents_check ON incidents (check_name, id);
CREATE INDEX incidents_unpublished ON incidents (id) WHERE NOT follow_up_published;
CREATE INDEX incidents_resolved ON incidents (resolved_at) WHERE resolved_at IS NOT NULL;

-- The outcome of a probe task (kind monitor, its spec's monitor.check naming a
-- check) in the transaction that records it. The check's row lock orders the
-- outcomes of one check.
CREATE FUNCTION check_probe_outcome() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    c checks;
    r jsonb := coalesce(NEW.result, '{}');
    ok boolean;
    lat float8;
    err text;
    fails integer;
    succs integer;
    st text;
    muted boolean;
    open_id bigint;
    fid uuid;
BEGIN
    SELECT * INTO c FROM checks WHERE name = NEW.spec->'monitor'->>'check' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    ok := jsonb_typeof(r->'ok') = 'boolean' AND (r->>'ok')::boolean;
    lat := CASE WHEN jsonb_typeof(r->'latency_ms') = 'number' THEN (r->>'latency_ms')::float8 END;
    err := CASE WHEN ok THEN NULL
                WHEN jsonb_typeof(r->'ok') <> 'boolean' OR r->'ok' IS NULL THEN 'the probe''s result has no "ok"'
                ELSE left(coalesce(r->>'error', 'probe failed'), 500) END;
    muted := c.silenced_until IS NOT NULL AND c.silenced_until > now();
    INSERT INTO probe_results (check_name, at, ok, latency_ms, error, task_id, silenced)
        VALUES (c.name, coalesce(NEW.finished_at, now()), ok, lat, err, NEW.id, muted);
    IF ok THEN
        succs := c.consecutive_successes + 1;
        fails := 0;
    ELSE
        fails := c.consecutive_failures + 1;
        succs := 0;
    END IF;
    st := c.state;
    IF ok AND (st = 'unknown' OR (st = 'failing' AND succs >= c.success_threshold)) THEN
        st := 'ok';
    ELSIF NOT ok AND st <> 'failing' AND fails >= c.failure_threshold THEN
        st := 'failing';
    END IF;
    SELECT id INTO open_id FROM incidents WHERE check_name = c.name AND resolved_at IS NULL;
    -- A failing check without an open incident opens one on a failed probe
    -- that is not silenced: at the transition, or after a silence ended.
    IF st = 'failing' AND NOT ok AND open_id IS NULL AND NOT muted THEN
        fid := NULL;
        IF c.follow_up IS NOT NULL THEN
            fid := gen_random_uuid();
            INSERT INTO queue_settings (queue) VALUES (c.follow_up_queue) ON CONFLICT DO NOTHING;
            -- published_at NULL: the check timer publishes it (check_tick), the reconciler if not
            INSERT INTO tasks (id, queue, kind, spec, max_attempts, priority)
                VALUES (fid, c.follow_up_queue, c.follow_up->>'kind', c.follow_up, c.follow_up_max_attempts,
                        c.follow_up_priority);
        END IF;
        INSERT INTO incidents (check_name, error, failures, follow_up_task, follow_up_published)
            VALUES (c.name, err, fails, fid, fid IS NULL) RETURNING id INTO open_id;
        PERFORM notify_event('incident.opened', c.name, 'monitor', jsonb_strip_nulls(jsonb_build_object(
            'check', c.name, 'incident', open_id, 'error', err, 'failures', fails, 'follow_up_task', fid,
            'type', c.probe->>'type')));
    ELSIF st = 'ok' AND open_id IS NOT NULL THEN
        UPDATE incidents SET resolved_at = now(), resolution = 'recovered' WHERE id = open_id;
        IF NOT muted THEN
            PERFORM notify_event('incident.resolved', c.name, 'monitor', jsonb_build_object(
                'check', c.name, 'incident', open_id, 'successes', succs));
        END IF;
    END IF;
    UPDATE checks SET state = st, state_since = CASE WHEN st <> c.state THEN now() ELSE c.state_since END,
        consecutive_failures = fails, consecutive_successes = succs,
        last_probe_at = now(), last_ok = ok, last_error = err, last_latency_ms = lat,
        log_offset = CASE WHEN c.probe->>'type' = 'log' AND jsonb_typeof(r->'offset') = 'number'
                          THEN (r->>'offset')::numeric::bigint ELSE c.log_offset END
        WHERE name = c.name;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_check_outcome AFTER UPDATE OF state ON tasks FOR EACH ROW
    WHEN (NEW.kind = 'monitor' AND NEW.state = 'succeeded' AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION check_probe_outcome();
CREATE TRIGGER tasks_check_outcome_insert AFTER INSERT ON tasks FOR EACH ROW
    WHEN (NEW.kind = 'monitor' AND NEW.state = 'succeeded')
    EXECUTE FUNCTION check_probe_outcome();

-- One pass of the check timer. Each due check (locked FOR UPDATE SKIP LOCKED,
-- so of two managers one takes it) gets its probe task (published_at = now:
-- the caller publishes it) and its next_due_at one interval on (from now when
-- more than an interval late); a check whose last probe has not ended gets no
-- second one (probes_skipped + 1): one probe in flight per check. Then the
-- follow-up tasks incidents inserted and nobody published yet (also SKIP
-- LOCKED). Returns both, at most p_limit of each.
CREATE FUNCTION check_tick(p_limit integer)
RETURNS TABLE (out_id uuid, out_queue text, out_kind text, out_spec jsonb, out_check text, out_what text)
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    c checks;
    i record;
    nxt timestamptz;
    tid uuid;
    pspec jsonb;
BEGIN
    FOR c IN SELECT * FROM checks WHERE next_due_at <= now() ORDER BY next_due_at LIMIT p_limit
             FOR UPDATE SKIP LOCKED
    LOOP
        nxt := c.next_due_at + c.interval_s * interval '1 second';
        IF nxt <= now() THEN
            nxt := now() + c.interval_s * interval '1 second';
        END IF;
        IF c.last_task IS NOT NULL AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = c.last_task
                                               AND t.state IN ('queued', 'running', 'retrying')) THEN
            UPDATE checks SET next_due_at = nxt, probes_skipped = probes_skipped + 1 WHERE name = c.name;
            CONTINUE;
        END IF;
        tid := gen_random_uuid();
        -- the probe's spec: the kind's flat monitor section (proto/kind.h) plus
        -- check and, for a log, offset; check_def_probe_spec (manager/check_def.c)
        -- builds the same to validate a check, keep the two alike
        pspec := jsonb_build_object('kind', 'monitor', 'queue', 'monitor', 'name', 'check ' || c.name,
            'retry_policy', jsonb_build_object('max_attempts', 1),
            'monitor', c.probe || jsonb_build_object('check', c.name));
        IF c.probe->>'type' = 'log' AND c.log_offset IS NOT NULL THEN
            pspec := jsonb_set(pspec, '{monitor,offset}', to_jsonb(c.log_offset));
        END IF;
        INSERT INTO tasks (id, queue, kind, spec, max_attempts, priority, published_at)
            VALUES (tid, 'monitor', 'monitor', pspec, 1, 0, now());
        UPDATE checks SET next_due_at = nxt, last_task = tid WHERE name = c.name;
        out_id := tid; out_queue := 'monitor'; out_kind := 'monitor'; out_spec := pspec;
        out_check := c.name; out_what := 'probe';
        RETURN NEXT;
    END LOOP;
    FOR i IN SELECT n.id, n.check_name, n.follow_up_task FROM incidents n WHERE NOT n.follow_up_published
             ORDER BY n.id LIMIT p_limit FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE incidents SET follow_up_published = true WHERE id = i.id;
        UPDATE tasks t SET published_at = now() WHERE t.id = i.follow_up_task AND t.state = 'queued'
            AND t.published_at IS NULL
            RETURNING t.id, t.queue, t.kind, t.spec INTO out_id, out_queue, out_kind, out_spec;
        CONTINUE WHEN NOT FOUND;
        out_check := i.check_name; out_what := 'follow_up';
        RETURN NEXT;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM queue_settings WHERE queue = 'monitor') AND EXISTS (SELECT 1 FROM checks) THEN
        INSERT INTO queue_settings (queue) VALUES ('monitor') ON CONFLICT DO NOTHING;
    END IF;
END
$$;

-- Retention: probe results older than p_probes_s and incidents resolved more
-- than p_incidents_s ago (NULL: kept), at most p_batch of each per call.
CREATE FUNCTION check_retain(p_probes_s float8, p_incidents_s float8, p_batch integer)
RETURNS TABLE (out_probes bigint, out_incidents bigint)
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    WITH d AS (DELETE FROM probe_results WHERE id IN (
        SELECT id FROM probe_results WHERE p_probes_s IS NOT NULL
            AND at < now() - p_probes_s * interval '1 second' ORDER BY at LIMIT p_batch) RETURNING 1)
    SELECT count(*) INTO out_probes FROM d;
    WITH d AS (DELETE FROM incidents WHERE id IN (
        SELECT n.id FROM incidents n WHERE p_incidents_s IS NOT NULL AND n.resolved_at IS NOT NULL
            AND n.resolved_at < now() - p_incidents_s * interval '1 second' ORDER BY n.resolved_at LIMIT p_batch)
        RETURNING 1)
    SELECT count(*) INTO out_incidents FROM d;
    RETURN NEXT;
END
$$;
