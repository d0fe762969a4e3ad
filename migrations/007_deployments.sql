-- 007_deployments: one row per task of kind deploy (agents/handler_deploy.c through
-- common/deploydb.c): who deployed which revision of which app to which environment,
-- from which pipeline, when, and the outcome. The rows are also the deploy lock of an
-- app+env: deploy_lock_try grants it to the oldest unfinished row whose task is alive.

CREATE TABLE deployments (
    id                bigserial PRIMARY KEY,
    app               text NOT NULL,
    env               text NOT NULL,
    action            text NOT NULL DEFAULT 'deploy' CHECK (action IN ('deploy', 'rollback')),
    revision          text,                           -- a rollback's target is known once it holds the lock
    previous_revision text,                           -- what `current` pointed at before the switch
    task_id           uuid NOT NULL UNIQUE,           -- a retried task keeps its row (and its place)
    attempt           integer NOT NULL,               -- the task attempt that owns the row
    pipeline_id       text,                           -- spec "pipeline"."id"
    deployed_by       text NOT NULL,                  -- the submitter (audit log) or the agent
    state             text NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'holding', 'done')),
    queued_at         timestamptz NOT NULL,           -- the task's created_at: the lock goes oldest first
    started_at        timestamptz NOT NULL DEFAULT now(),
    locked_at         timestamptz,
    switched_at       timestamptz,
    finished_at       timestamptz,
    outcome           text CHECK (outcome IN ('succeeded', 'failed', 'rolled_back')),
    error             text
);
CREATE INDEX deployments_app_env ON deployments (app, env, id);
-- The lock reads only unfinished rows of one app+env.
CREATE INDEX deployments_open ON deployments (app, env, id) WHERE finished_at IS NULL;
-- deployed_by: the submitter of a task is the actor of the audit row that names it.
CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log (target);

-- deploy_lock_try(task): does the deployments row of this task hold its app+env's lock
-- now? Granted when no other unfinished row of the app+env is alive and holding it, and
-- no alive row older than this one is waiting (oldest first). Alive = its task is running
-- the same attempt on an unexpired lease, so a holder whose agent was killed stops
-- blocking once its lease runs out (and its retried attempt queues again in its old
-- place). Decisions of one app+env are serialized by a transaction-scoped advisory lock.
-- Returns (granted, blocker): blocker is the task that holds or precedes, when not granted.
CREATE FUNCTION deploy_lock_try(p_task uuid, OUT granted boolean, OUT blocker uuid)
LANGUAGE plpgsql AS $$
DECLARE
    r deployments;
BEGIN
    granted := false;
    SELECT * INTO r FROM deployments WHERE task_id = p_task;
    IF NOT FOUND OR r.finished_at IS NOT NULL THEN
        RETURN;
    END IF;
    IF r.state = 'holding' THEN
        granted := true;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('devsys.deploy:' || r.app || '/' || r.env, 0));
    SELECT d.task_id INTO blocker
      FROM deployments d JOIN tasks t ON t.id = d.task_id
     WHERE d.app = r.app AND d.env = r.env AND d.finished_at IS NULL AND d.task_id <> p_task
       AND (d.state = 'holding' OR (d.queued_at, d.id) < (r.queued_at, r.id))
       AND t.state = 'running' AND t.attempt = d.attempt AND t.lease_expires_at > now()
     ORDER BY (d.state = 'holding') DESC, d.queued_at, d.id
     LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;
    UPDATE deployments SET state = 'holding', locked_at = now() WHERE id = r.id;
    granted := true;
END $$;
