-- 012_notifications: webhook destinations, the events they subscribe to, and
-- the deliveries (notify tasks) that carry them. An event is recorded in the
-- transaction of what caused it (task.dead: a trigger on tasks below) and fanned
-- out at once into one notify_event_dest row per subscribed destination. The
-- manager's notify timer (manager/notify.c -> notify_flush) groups pending rows
-- into deliveries under a token bucket per destination; a delivery is one
-- notify task, and its outcome comes back to the rows by the same trigger.

-- A destination. secret_ref names a secret set in the agents'
-- DEVSYS_NOTIFY_SECRETS_FILE: the secret itself is never stored here.
CREATE TABLE notify_destinations (
    name              text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    url               text NOT NULL,
    events            text[] NOT NULL,
    format            text NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack')),
    secret_ref        text,
    rate_per_s        float8 NOT NULL DEFAULT 1 CHECK (rate_per_s > 0),   -- token bucket: messages per second
    burst             integer NOT NULL DEFAULT 5 CHECK (burst >= 1),
    group_by          text[] NOT NULL DEFAULT '{type,queue}',
    group_wait_s      float8 NOT NULL DEFAULT 5,
    group_interval_s  float8 NOT NULL DEFAULT 60,
    repeat_interval_s float8 NOT NULL DEFAULT 14400,
    max_listed        integer NOT NULL DEFAULT 20,                        -- events listed in a summary
    max_attempts      integer NOT NULL DEFAULT 10,
    retry_initial_s   float8 NOT NULL DEFAULT 2,
    retry_max_s       float8 NOT NULL DEFAULT 300,
    timeout_s         float8 NOT NULL DEFAULT 10,
    tokens            float8 NOT NULL DEFAULT 0,  -- bucket state (tokens_at NULL: full)
    tokens_at         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notify_events (
    id      bigserial PRIMARY KEY,
    type    text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    subject text,            -- the task, pipeline, deployment, incident it is about
    queue   text,
    data    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX notify_events_at ON notify_events (at);

-- One delivery = one notify task (same id; its webhook-id is msg_<id hex>).
CREATE TABLE notify_deliveries (
    id          uuid PRIMARY KEY,
    destination text NOT NULL,
    group_key   text NOT NULL,
    events      integer NOT NULL,   -- how many events it carries (1: on its own; more: a summary)
    state       text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'dead')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    error       text
);
CREATE INDEX notify_deliveries_created ON notify_deliveries (created_at);

-- An event as one destination sees it: pending (waiting for its group's
-- turn and a token), queued (in delivery), sent or dead (the delivery's end).
CREATE TABLE notify_event_dest (
    destination text NOT NULL REFERENCES notify_destinations (name) ON DELETE CASCADE,
    event_id    bigint NOT NULL REFERENCES notify_events (id) ON DELETE CASCADE,
    group_key   text NOT NULL,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'queued', 'sent', 'dead')),
    delivery    uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination, event_id)
);
CREATE INDEX notify_event_dest_pending ON notify_event_dest (destination, group_key, event_id) WHERE state = 'pending';
CREATE INDEX notify_event_dest_delivery ON notify_event_dest (delivery) WHERE delivery IS NOT NULL;
CREATE INDEX notify_event_dest_event ON notify_event_dest (event_id);

-- When each group of a destination last got a message (group_interval).
CREATE TABLE notify_groups (
    destination  text NOT NULL REFERENCES notify_destinations (name) ON DELETE CASCADE,
    group_key    text NOT NULL,
    last_sent_at timestamptz NOT NULL,
    PRIMARY KEY (destination, group_key)
);

-- The group of an event for a destination's group_by ("task.dead/exec").
CREATE FUNCTION notify_group_key(by text[], e_type text, e_queue text, e_subject text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(string_agg(CASE b WHEN 'type' THEN e_type WHEN 'queue' THEN coalesce(e_queue, '-')
                                      WHEN 'subject' THEN coalesce(e_subject, '-') END, '/' ORDER BY o), 'all')
    FROM unnest(by) WITH ORDINALITY AS u(b, o)
$$;

-- Records an event and fans it out to the destinations subscribed to its
-- type, in the caller's transaction. The producers' one entry point.
-- jit off: the planner's estimates for these tiny statements can cross
-- jit_above_cost, and a JIT compile per trigger call (~100 ms) made 64 tasks
-- going dead in one statement take seconds.
CREATE FUNCTION notify_event(e_type text, e_subject text, e_queue text, e_data jsonb) RETURNS bigint
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    eid bigint;
BEGIN
    INSERT INTO notify_events (type, subject, queue, data) VALUES (e_type, e_subject, e_queue, coalesce(e_data, '{}'))
        RETURNING id INTO eid;
    INSERT INTO notify_event_dest (destination, event_id, group_key)
        SELECT d.name, eid, notify_group_key(d.group_by, e_type, e_queue, e_subject)
        FROM notify_destinations d WHERE e_type = ANY (d.events);
    RETURN eid;
END
$$;

-- task.dead for every task that goes dead (not notify tasks: a destination
-- that stays down would feed itself); a notify task's end settles its
-- delivery and the delivery's events.
CREATE FUNCTION notify_tasks_trigger() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    st text;
BEGIN
    IF NEW.kind = 'notify' THEN
        IF NEW.state IN ('succeeded', 'dead') THEN
            st := CASE NEW.state WHEN 'succeeded' THEN 'sent' ELSE 'dead' END;
            UPDATE notify_deliveries SET state = st, finished_at = now(),
                error = CASE WHEN st = 'dead' THEN NEW.last_error END WHERE id = NEW.id;
            UPDATE notify_event_dest SET state = st WHERE delivery = NEW.id;
        END IF;
    ELSIF NEW.state = 'dead' THEN
        PERFORM notify_event('task.dead', NEW.id::text, NEW.queue,
            jsonb_strip_nulls(jsonb_build_object('task', NEW.id, 'kind', NEW.kind, 'queue', NEW.queue,
                'name', NEW.spec->>'name', 'attempt', NEW.attempt, 'error', left(NEW.last_error, 300))));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_notify_update AFTER UPDATE OF state ON tasks FOR EACH ROW
    WHEN (NEW.state IS DISTINCT FROM OLD.state
          AND (NEW.state = 'dead' OR (NEW.kind = 'notify' AND NEW.state = 'succeeded')))
    EXECUTE FUNCTION notify_tasks_trigger();
CREATE TRIGGER tasks_notify_insert AFTER INSERT ON tasks FOR EACH ROW
    WHEN (NEW.state = 'dead')
    EXECUTE FUNCTION notify_tasks_trigger();

-- One event as a line of text (Slack, summaries).
CREATE FUNCTION notify_line(e notify_events) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN e.type = 'task.dead'
                THEN format('task %s%s (queue %s) is dead after %s attempt(s): %s', e.subject,
                            coalesce(' "' || (e.data->>'name') || '"', ''), e.queue, e.data->>'attempt',
                            coalesce(e.data->>'error', '?'))
                ELSE format('%s %s%s%s', e.type, coalesce(e.subject, ''), coalesce(' (' || e.queue || ')', ''),
                            coalesce(': ' || (e.data->>'error'), ''))
           END
$$;

-- The body of a delivery: one event (n = 1) or a summary of n events listing
-- the first ones (events: their rows as jsonb, at most max_listed).
CREATE FUNCTION notify_body(fmt text, dest text, gkey text, n integer, evs notify_events[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    e notify_events;
    listed integer := coalesce(array_length(evs, 1), 0);
    lines text := '';
BEGIN
    IF n = 1 THEN
        e := evs[1];
        IF fmt = 'slack' THEN
            RETURN jsonb_build_object('text', 'devsys ' || e.type || ': ' || notify_line(e))::text;
        END IF;
        RETURN jsonb_build_object('type', e.type, 'timestamp', e.at, 'data',
            e.data || jsonb_strip_nulls(jsonb_build_object('event_id', e.id, 'subject', e.subject,
                                                           'queue', e.queue, 'destination', dest)))::text;
    END IF;
    IF fmt = 'slack' THEN
        FOREACH e IN ARRAY evs LOOP
            lines := lines || E'\n\u2022 ' || notify_line(e);
        END LOOP;
        RETURN jsonb_build_object('text', format('devsys: %s events (%s)', n, gkey) || lines
            || CASE WHEN n > listed THEN format(E'\n\u2026 and %s more', n - listed) ELSE '' END)::text;
    END IF;
    RETURN jsonb_build_object('type', 'summary', 'timestamp', now(), 'data', jsonb_build_object(
        'destination', dest, 'group', gkey, 'count', n, 'listed', listed, 'more', n - listed,
        'events', (SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object('event_id', x.id,
                      'type', x.type, 'at', x.at, 'subject', x.subject, 'queue', x.queue, 'data', x.data))
                      ORDER BY x.id), '[]')
                   FROM unnest(evs) AS x)))::text;
END
$$;

-- One pass of the notify timer: for each destination with pending events
-- (locked FOR NO KEY UPDATE SKIP LOCKED, so two managers never send the same
-- rows, while a transaction recording an event, whose foreign key takes a KEY
-- SHARE lock on the destination, never waits for a pass),
-- each group that is due (group_wait after its first pending event, or
-- group_interval after its last message) gets one delivery while the bucket
-- has a token: all its pending events up to p_batch, as one message. Returns
-- the notify tasks inserted (published_at = now: the caller publishes them).
-- Also deletes, p_keep_s after they happened, events no delivery waits for.
CREATE FUNCTION notify_flush(p_batch integer, p_keep_s float8)
RETURNS TABLE (out_id uuid, out_queue text, out_kind text, out_spec jsonb)
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    d notify_destinations;
    g record;
    tok float8;
    last timestamptz;
    tid uuid;
    n integer;
    evs notify_events[];
    nspec jsonb;
BEGIN
    FOR d IN SELECT * FROM notify_destinations nd
             WHERE EXISTS (SELECT 1 FROM notify_event_dest p WHERE p.destination = nd.name AND p.state = 'pending')
             ORDER BY nd.name FOR NO KEY UPDATE SKIP LOCKED
    LOOP
        tok := CASE WHEN d.tokens_at IS NULL THEN d.burst
                    ELSE least(d.burst, d.tokens + d.rate_per_s * extract(epoch FROM now() - d.tokens_at)) END;
        FOR g IN SELECT p.group_key, min(p.created_at) AS first_at FROM notify_event_dest p
                 WHERE p.destination = d.name AND p.state = 'pending' GROUP BY p.group_key ORDER BY 2 LIMIT 1000
        LOOP
            EXIT WHEN tok < 1;
            SELECT ng.last_sent_at INTO last FROM notify_groups ng
                WHERE ng.destination = d.name AND ng.group_key = g.group_key;
            IF last IS NOT NULL AND last > now() - d.group_interval_s * interval '1 second' THEN
                CONTINUE WHEN last + d.group_interval_s * interval '1 second' > now();
            ELSE
                CONTINUE WHEN g.first_at + d.group_wait_s * interval '1 second' > now();
            END IF;
            tid := gen_random_uuid();
            UPDATE notify_event_dest p SET state = 'queued', delivery = tid
                WHERE p.destination = d.name AND p.event_id IN (
                    SELECT q.event_id FROM notify_event_dest q
                    WHERE q.destination = d.name AND q.group_key = g.group_key AND q.state = 'pending'
                    ORDER BY q.event_id LIMIT p_batch);
            GET DIAGNOSTICS n = ROW_COUNT;
            CONTINUE WHEN n = 0;
            SELECT array_agg(e ORDER BY e.id) INTO evs FROM (
                SELECT e.* FROM notify_events e JOIN notify_event_dest p ON p.event_id = e.id
                WHERE p.delivery = tid AND p.destination = d.name ORDER BY e.id LIMIT d.max_listed) e;
            nspec := jsonb_build_object('kind', 'notify', 'queue', 'notify', 'name', 'notify ' || d.name,
                'retry_policy', jsonb_build_object('max_attempts', d.max_attempts, 'initial_s', d.retry_initial_s,
                                                   'factor', 2, 'max_s', d.retry_max_s, 'jitter', true),
                'notify', jsonb_strip_nulls(jsonb_build_object('url', d.url,
                    'body', notify_body(d.format, d.name, g.group_key, n, evs),
                    'webhook_id', 'msg_' || replace(tid::text, '-', ''), 'secret', d.secret_ref,
                    'destination', d.name, 'timeout_s', d.timeout_s)));
            INSERT INTO tasks (id, queue, kind, spec, max_attempts, priority, published_at)
                VALUES (tid, 'notify', 'notify', nspec, d.max_attempts, 0, now());
            INSERT INTO notify_deliveries (id, destination, group_key, events) VALUES (tid, d.name, g.group_key, n);
            INSERT INTO notify_groups AS ng (destination, group_key, last_sent_at) VALUES (d.name, g.group_key, now())
                ON CONFLICT (destination, group_key) DO UPDATE SET last_sent_at = now();
            tok := tok - 1;
            out_id := tid; out_queue := 'notify'; out_kind := 'notify'; out_spec := nspec;
            RETURN NEXT;
        END LOOP;
        UPDATE notify_destinations SET tokens = tok, tokens_at = now() WHERE name = d.name;
    END LOOP;
    DELETE FROM notify_events WHERE id IN (
        SELECT e.id FROM notify_events e WHERE e.at < now() - p_keep_s * interval '1 second'
        AND NOT EXISTS (SELECT 1 FROM notify_event_dest p WHERE p.event_id = e.id AND p.state IN ('pending', 'queued'))
        ORDER BY e.at LIMIT 1000);
    DELETE FROM notify_deliveries WHERE id IN (
        SELECT dl.id FROM notify_deliveries dl WHERE dl.created_at < now() - p_keep_s * interval '1 second'
        AND dl.state <> 'queued' ORDER BY dl.created_at LIMIT 1000);
END
$$;
