-- 020_scope_reads: the checks, incidents and notification events a token
-- scoped to queues and apps reads (GET /v1/monitors, /v1/incidents,
-- /v1/notifications/events filter by these in their SQL), on the rule of
-- devsys_spec_in_scope (019). A NULL list allows all; both NULL: everything.

-- A check is in scope when its probe spec (queue monitor) and its follow-up
-- spec are: the rule manager/http_scope.c applies to GET /v1/monitors/{name}
-- and the check's writes. An incident follows its check; an incident whose
-- check was deleted is seen by unscoped tokens only.
CREATE FUNCTION devsys_check_in_scope(p_check text, queues text[], apps text[]) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (queues IS NULL AND apps IS NULL)
        OR EXISTS (SELECT 1 FROM checks c WHERE c.name = p_check
                   AND devsys_spec_in_scope('{"queue": "monitor"}', queues, apps)
                   AND devsys_spec_in_scope(c.follow_up, queues, apps))
$$;

-- The nodes of a pipeline (of one of its steps; step NULL: all) are all in
-- scope, as GET /v1/pipelines and /v1/approvals filter; no such pipeline: false.
CREATE FUNCTION devsys_pipeline_in_scope(p_pipeline uuid, p_step text, queues text[], apps text[]) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT 1 FROM pipelines p WHERE p.id = p_pipeline)
       AND NOT EXISTS (SELECT 1 FROM pipeline_nodes n WHERE n.pipeline_id = p_pipeline
                       AND (p_step IS NULL OR n.step = p_step)
                       AND NOT devsys_spec_in_scope(n.spec || jsonb_build_object('queue', n.queue), queues, apps))
$$;

-- A notification event is in scope when its subject is: task.dead its task
-- (queue and deploy.app; a task no longer kept: out), deploy.* its queue and
-- app, pipeline.failed every step of the pipeline, approval.requested the
-- gated step, incident.* the check. An event of any other type: out.
CREATE FUNCTION devsys_event_in_scope(e notify_events, queues text[], apps text[]) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    s jsonb;
BEGIN
    IF queues IS NULL AND apps IS NULL THEN
        RETURN true;
    END IF;
    IF e.type = 'task.dead' THEN
        SELECT jsonb_build_object('queue', t.queue, 'deploy', t.spec->'deploy') INTO s FROM tasks t
         WHERE t.id = e.subject::uuid;
        IF s IS NULL THEN
            SELECT jsonb_build_object('queue', t.queue, 'deploy', t.spec->'deploy') INTO s FROM tasks_history t
             WHERE t.id = e.subject::uuid LIMIT 1;
        END IF;
        RETURN s IS NOT NULL AND devsys_spec_in_scope(s, queues, apps);
    ELSIF e.type LIKE 'deploy.%' THEN
        RETURN devsys_spec_in_scope(jsonb_build_object('queue', coalesce(e.queue, ''),
                                                       'deploy', jsonb_build_object('app', coalesce(e.data->>'app', ''))),
                                    queues, apps);
    ELSIF e.type = 'pipeline.failed' THEN
        RETURN devsys_pipeline_in_scope(e.subject::uuid, NULL, queues, apps);
    ELSIF e.type = 'approval.requested' THEN
        RETURN devsys_pipeline_in_scope((e.data->>'pipeline')::uuid, e.data->>'step', queues, apps);
    ELSIF e.type LIKE 'incident.%' THEN
        RETURN devsys_check_in_scope(e.subject, queues, apps);
    END IF;
    RETURN false;
END
$$;
