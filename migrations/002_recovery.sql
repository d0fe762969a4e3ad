-- 002_recovery: what retries, dead letters and the reconciler need.
ALTER TABLE tasks
    ADD COLUMN published_at  timestamptz,  -- last XADD of the task by the manager or the reconciler
    ADD COLUMN dlq_entry     text,         -- entry id in devsys:{Q}:dlq once buried
    ADD COLUMN dlq_purged_at timestamptz,  -- purged from the DLQ by an operator (the row stays dead)
    ADD COLUMN replays       integer NOT NULL DEFAULT 0;
