-- 001_init: the tasks table and its companions. Operators query these with psql.
-- Hot-path design: tasks is updated on every transition, so only columns that never
-- change are indexed (id, idempotency_key, created_at) and fillfactor leaves room for
-- HOT updates; the state filter of the API scans this small, hot table.

CREATE TABLE tasks (
    id               uuid PRIMARY KEY,
    queue            text NOT NULL,
    kind             text NOT NULL,
    spec             jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'retrying', 'succeeded',
                                      'failed', 'dead', 'cancelled')),
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 3,  -- SPEC_DEFAULT_MAX_ATTEMPTS (proto/spec.h)
    priority         integer NOT NULL DEFAULT 0,
    idempotency_key  text,
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    next_attempt_at  timestamptz,
    last_error       text,
    result           jsonb,
    output_tail      text,
    checkpoint       jsonb,        -- last checkpoint (history in checkpoints), read by the claim
    source           text          -- stream entry id of an entry pushed by hand
) WITH (fillfactor = 70);

CREATE INDEX tasks_created_at_id ON tasks (created_at, id);
-- Partial: most tasks have no key, and an index entry per task costs on the hot path.
CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- One row per attempt, written when the attempt ends (one insert, no update).
CREATE TABLE task_attempts (
    task_id     uuid NOT NULL,
    attempt     integer NOT NULL,
    agent       text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL
                CHECK (outcome IN ('succeeded', 'failed', 'retrying', 'dead', 'cancelled', 'lost')),
    error       text,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE checkpoints (
    id         bigserial PRIMARY KEY,
    task_id    uuid NOT NULL,
    attempt    integer NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkpoints_task ON checkpoints (task_id, id);

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL,
    target    text,
    detail    jsonb
);

-- Bearer tokens are stored as SHA-256 hex digests, never in plaintext.
CREATE TABLE api_tokens (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    role       text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
