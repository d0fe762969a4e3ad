-- 019_scope_artifacts: what a scoped token's lists filter by, and the
-- references that keep an artifact from the store's garbage collection.
--
-- devsys_spec_in_scope(spec, queues, apps): is every task the spec stands for
-- inside a token's scope? Its queue (the kind when it has none) in queues, its
-- deploy.app (when it has one) in apps, and the same for each spec of its
-- "next", depth first; a NULL list allows all. The manager's write check
-- (manager/http_scope.c) applies the same rule in C.
CREATE FUNCTION devsys_spec_in_scope(spec jsonb, queues text[], apps text[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    n jsonb;
BEGIN
    IF jsonb_typeof(spec) IS DISTINCT FROM 'object' THEN
        RETURN true;
    END IF;
    IF queues IS NOT NULL AND coalesce(spec->>'queue', spec->>'kind') IS NOT NULL
       AND NOT coalesce(spec->>'queue', spec->>'kind') = ANY (queues) THEN
        RETURN false;
    END IF;
    IF apps IS NOT NULL AND spec->'deploy'->>'app' IS NOT NULL AND NOT spec->'deploy'->>'app' = ANY (apps) THEN
        RETURN false;
    END IF;
    IF jsonb_typeof(spec->'next') = 'array' THEN
        FOR n IN SELECT jsonb_array_elements(spec->'next') LOOP
            IF NOT devsys_spec_in_scope(n, queues, apps) THEN
                RETURN false;
            END IF;
        END LOOP;
    END IF;
    RETURN true;
END
$$;

-- An artifact's last reference: the newest time a task's result listed it
-- (its step uploaded it) or a task's spec took it as an input. The store's
-- GC (manager/artifact_gc.c) removes a file older than the retention whose
-- last reference is older too (or that has none). Rows older than the
-- retention are deleted by the same pass.
CREATE TABLE artifact_refs (
    sha256 text PRIMARY KEY,
    ref_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX artifact_refs_ref_at ON artifact_refs (ref_at);

-- The sha256 values a task's result artifacts and spec inputs name.
CREATE FUNCTION devsys_task_artifacts(spec jsonb, result jsonb) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT a->>'sha256' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(result->'artifacts') = 'array'
                                                       THEN result->'artifacts' ELSE '[]' END) a
     WHERE a->>'sha256' IS NOT NULL
    UNION
    SELECT a->>'sha256' FROM jsonb_each(CASE WHEN jsonb_typeof(spec->'inputs') = 'object'
                                             THEN spec->'inputs' ELSE '{}' END) i,
                             jsonb_array_elements(CASE WHEN jsonb_typeof(i.value->'artifacts') = 'array'
                                                       THEN i.value->'artifacts' ELSE '[]' END) a
     WHERE a->>'sha256' IS NOT NULL
$$;

-- A reference already renewed within the minute is left alone: a fan-out of
-- many steps taking the same input would otherwise rewrite one row each time.
CREATE FUNCTION devsys_artifact_refs_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO artifact_refs (sha256, ref_at)
    SELECT DISTINCT s, now() FROM devsys_task_artifacts(NEW.spec, NEW.result) s
    ON CONFLICT (sha256) DO UPDATE SET ref_at = now() WHERE artifact_refs.ref_at < now() - interval '1 minute';
    RETURN NULL;
END
$$;

-- Only rows that carry artifacts pay for the trigger (the WHEN is evaluated
-- without calling it).
CREATE TRIGGER tasks_artifact_refs_insert AFTER INSERT ON tasks FOR EACH ROW
    WHEN (NEW.spec ? 'inputs' OR NEW.result ? 'artifacts') EXECUTE FUNCTION devsys_artifact_refs_touch();
CREATE TRIGGER tasks_artifact_refs_result AFTER UPDATE OF result ON tasks FOR EACH ROW
    WHEN (NEW.result IS DISTINCT FROM OLD.result AND NEW.result ? 'artifacts')
    EXECUTE FUNCTION devsys_artifact_refs_touch();
