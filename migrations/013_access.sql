-- 013_access: scoped, expiring, rotatable tokens; a richer audit trail;
-- secrets for tasks, encrypted at rest (manager/auth.c, manager/http_tokens.c,
-- common/secretdb.c).

-- A token may be limited to queues and apps (NULL: all), expire, and be
-- rotated: the previous hash stays valid until prev_valid_until.
ALTER TABLE api_tokens
    ADD COLUMN queues           text[],
    ADD COLUMN apps             text[],
    ADD COLUMN expires_at       timestamptz,
    ADD COLUMN prev_hash        text CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    ADD COLUMN prev_valid_until timestamptz,
    ADD COLUMN rotated_at       timestamptz,
    ADD COLUMN created_by       text;
CREATE UNIQUE INDEX api_tokens_prev_hash ON api_tokens (prev_hash) WHERE prev_hash IS NOT NULL;

-- Who did it with which role, from where, under which request id, and how it
-- ended (the HTTP status; 0 for actions that are not HTTP calls).
ALTER TABLE audit_log
    ADD COLUMN role       text,
    ADD COLUMN remote     text,
    ADD COLUMN request_id text,
    ADD COLUMN outcome    integer;
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_at ON audit_log (at);

-- A value is crypto_secretbox (XSalsa20-Poly1305) of "<name>\0<value>" under
-- the key whose id (first 8 bytes of SHA-256(key), hex) is key_id: the name
-- inside the box means a row copied under another name does not decrypt
-- (common/secretdb.c). The API never returns a value.
CREATE TABLE secrets (
    name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    key_id     text NOT NULL,
    nonce      bytea NOT NULL,
    ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);
