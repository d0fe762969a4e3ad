-- 018_notify_deploy_repeat: the deploy events (deploy.failed, deploy.rolled_back)
-- recorded with the deployment's outcome, and reminders of still-open incidents
-- after a destination's repeat_interval_s (Alertmanager's repeat_interval).

-- A deployment's outcome (deploydb_finish, in the transaction that records it):
-- failed -> deploy.failed (each failed attempt; data.attempt says which);
-- rolled_back (its acceptance check failed, current switched back) and a
-- rollback that succeeded (action rollback: asked through the API, devsysctl
-- or an incident's follow-up) -> deploy.rolled_back. Subject "app/env", queue
-- the deploy task's.
CREATE FUNCTION notify_deploy_trigger() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    q text;
BEGIN
    SELECT t.queue INTO q FROM tasks t WHERE t.id = NEW.task_id;
    PERFORM notify_event(CASE WHEN NEW.outcome = 'failed' THEN 'deploy.failed' ELSE 'deploy.rolled_back' END,
        NEW.app || '/' || NEW.env, q, jsonb_strip_nulls(jsonb_build_object(
            'app', NEW.app, 'env', NEW.env, 'action', NEW.action, 'outcome', NEW.outcome,
            'reason', CASE WHEN NEW.outcome = 'rolled_back' THEN 'acceptance check failed'
                           WHEN NEW.action = 'rollback' AND NEW.outcome = 'succeeded' THEN 'rollback' END,
            'revision', NEW.revision, 'previous_revision', NEW.previous_revision, 'task', NEW.task_id,
            'attempt', NEW.attempt, 'pipeline', NEW.pipeline_id, 'deployed_by', NEW.deployed_by,
            'error', left(NEW.error, 300))));
    RETURN NULL;
END
$$;

CREATE TRIGGER deployments_notify AFTER UPDATE OF outcome ON deployments FOR EACH ROW
    WHEN (NEW.outcome IS DISTINCT FROM OLD.outcome
          AND (NEW.outcome IN ('failed', 'rolled_back') OR (NEW.action = 'rollback' AND NEW.outcome = 'succeeded')))
    EXECUTE FUNCTION notify_deploy_trigger();

-- When a destination was last reminded of an open incident (repeat_interval_s).
CREATE TABLE notify_reminders (
    destination text NOT NULL REFERENCES notify_destinations (name) ON DELETE CASCADE,
    incident    bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    last_at     timestamptz NOT NULL,
    sent        integer NOT NULL DEFAULT 0,
    PRIMARY KEY (destination, incident)
);
CREATE INDEX notify_reminders_incident ON notify_reminders (incident);

-- Reminders: an incident still open repeat_interval_s after it opened (or after
-- the last reminder) is notified again to each destination subscribed to
-- incident.opened whose repeat_interval_s is not 0, as an incident.opened
-- event for that destination alone, its data the incident's plus "repeat"
-- (1, 2, ...) and "open_for_s". Not while the check is silenced. The upsert of
-- the reminder row decides, so two managers never remind twice. At most 1000
-- per call; returns how many.
CREATE FUNCTION notify_remind() RETURNS integer
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    r record;
    nth integer;
    eid bigint;
    n integer := 0;
BEGIN
    FOR r IN SELECT d.name AS dest, d.group_by, d.repeat_interval_s AS every, i.id, i.check_name, i.opened_at,
                    i.error, i.failures, i.follow_up_task, c.probe->>'type' AS ptype, c.last_error
             FROM notify_destinations d
             JOIN incidents i ON i.resolved_at IS NULL
             LEFT JOIN checks c ON c.name = i.check_name
             LEFT JOIN notify_reminders rm ON rm.destination = d.name AND rm.incident = i.id
             WHERE d.repeat_interval_s > 0 AND 'incident.opened' = ANY (d.events)
               AND coalesce(rm.last_at, i.opened_at) + d.repeat_interval_s * interval '1 second' <= now()
               AND (c.silenced_until IS NULL OR c.silenced_until <= now())
             ORDER BY i.id, d.name LIMIT 1000
    LOOP
        INSERT INTO notify_reminders AS rm (destination, incident, last_at, sent) VALUES (r.dest, r.id, now(), 1)
            ON CONFLICT (destination, incident) DO UPDATE SET last_at = now(), sent = rm.sent + 1
            WHERE rm.last_at + r.every * interval '1 second' <= now()
            RETURNING sent INTO nth;
        CONTINUE WHEN nth IS NULL;
        INSERT INTO notify_events (type, subject, queue, data) VALUES ('incident.opened', r.check_name, 'monitor',
            jsonb_strip_nulls(jsonb_build_object('check', r.check_name, 'incident', r.id, 'error', r.error,
                'failures', r.failures, 'follow_up_task', r.follow_up_task, 'type', r.ptype,
                'repeat', nth, 'open_for_s', round(extract(epoch FROM now() - r.opened_at)),
                'last_error', r.last_error)))
            RETURNING id INTO eid;
        INSERT INTO notify_event_dest (destination, event_id, group_key)
            VALUES (r.dest, eid, notify_group_key(r.group_by, 'incident.opened', 'monitor', r.check_name));
        n := n + 1;
        nth := NULL;
    END LOOP;
    RETURN n;
END
$$;

-- The notify timer's pass: reminders first, then the grouping of 012 (kept
-- as notify_flush_groups).
ALTER FUNCTION notify_flush(integer, float8) RENAME TO notify_flush_groups;
CREATE FUNCTION notify_flush(p_batch integer, p_keep_s float8)
RETURNS TABLE (out_id uuid, out_queue text, out_kind text, out_spec jsonb)
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    PERFORM notify_remind();
    RETURN QUERY SELECT * FROM notify_flush_groups(p_batch, p_keep_s);
END
$$;
