-- 011_schedules: periodic tasks. A schedule is a cron expression (or "@every <interval>")
-- in a time zone and the spec each tick submits. The managers' tick
-- (manager/scheduler.c) fires a due tick with one statement that moves next_due_at
-- from the value it read to the next tick and inserts the task (common/taskdb.c
-- taskdb_schedule_fire): whichever manager moves it first enqueues the tick, the
-- others change nothing. The task's idempotency_key "schedule:<id>:<tick>" and the
-- schedule_ticks primary key are second guards against a double tick.

CREATE TABLE schedules (
    id           uuid PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    cron         text NOT NULL,        -- as given: 5 or 6 fields, @daily..., or "@every 30s"
    tz           text NOT NULL DEFAULT 'UTC',
    spec         jsonb NOT NULL,       -- validated like a submit (proto/spec.c)
    paused       boolean NOT NULL DEFAULT false,
    -- missed ticks (no manager ran at their time): once = one task for all of them,
    -- all = one per tick (the newest 100), skip = none (only a tick at most 60 s late runs)
    catch_up     text NOT NULL DEFAULT 'once' CHECK (catch_up IN ('once', 'all', 'skip')),
    next_due_at  timestamptz,          -- whole seconds; NULL: never fires again
    last_tick_at timestamptz,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- The tick's query: due, unpaused schedules, and the earliest next_due_at to sleep until.
CREATE INDEX schedules_due ON schedules (next_due_at) WHERE NOT paused;

-- What each tick did (the newest 100 per schedule are kept).
CREATE TABLE schedule_ticks (
    schedule_id uuid NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    tick_at     timestamptz NOT NULL,
    task_id     uuid,                  -- the task it made (or the holder of the spec's unique key)
    created     boolean NOT NULL,      -- false: the unique key's holder answered, no new task
    missed      integer NOT NULL DEFAULT 0, -- ticks before this one the catch-up policy left out
    fired_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, tick_at)
);
