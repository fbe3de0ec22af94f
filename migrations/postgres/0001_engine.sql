-- Slate engine: runs, their append-only event history (the journal), signals, waits and
-- concurrency slots. Status columns are TEXT with CHECK constraints (not enums) so that a new
-- state is a new migration, not an ALTER TYPE, and both dialects read the same.

CREATE TABLE runs (
    id               UUID PRIMARY KEY,
    workflow         TEXT        NOT NULL,
    idempotency_key  TEXT,
    scope            TEXT,
    input            JSONB       NOT NULL,
    status           TEXT        NOT NULL CHECK (status IN
                        ('pending','running','waiting','sleeping','completed','failed','cancelled')),
    output           JSONB,
    error            JSONB,
    parent_id        UUID REFERENCES runs(id),
    parent_step      TEXT,
    root_id          UUID        NOT NULL,
    budget_micros    BIGINT,
    cost_micros      BIGINT      NOT NULL DEFAULT 0,
    cost_units       DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- When the run is due: for pending/waiting/sleeping runs the time a worker may claim it
    -- (NULL = only a signal can wake it); for running runs the lease expiry, so one index
    -- serves both "ready to start" and "worker died".
    ready_at         TIMESTAMPTZ,
    lease_owner      TEXT,
    lease_epoch      BIGINT      NOT NULL DEFAULT 0,
    -- Set when someone asks a *running* run to stop; the lease holder acts on it.
    cancel_reason    TEXT,
    claims           INTEGER     NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ
);

-- Every index here is paid for at each state change of a run (a status change is never a HOT
-- update), so the ones that only some runs need are partial.
CREATE INDEX runs_due ON runs (ready_at)
    WHERE status IN ('pending','running','waiting','sleeping');
CREATE INDEX runs_workflow_status ON runs (workflow, status, id DESC);
CREATE UNIQUE INDEX runs_idempotency_key ON runs (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- A parent's step starts at most one child: re-executing the step finds the same child.
CREATE UNIQUE INDEX runs_parent_step ON runs (parent_id, parent_step) WHERE parent_id IS NOT NULL;
CREATE INDEX runs_root ON runs (root_id) WHERE parent_id IS NOT NULL;
CREATE INDEX runs_scope ON runs (scope, id DESC) WHERE scope IS NOT NULL;

-- The journal. Written only by the run's lease holder (fenced by lease_epoch) or by an admin
-- operation that holds the run's row lock; never updated, never deleted. No foreign key to
-- runs: every write is already checked against the run's row (the fence), and a per-row
-- referential check would be the most expensive part of a checkpoint.
CREATE TABLE events (
    run_id  UUID        NOT NULL,
    seq     BIGINT      NOT NULL,
    at      TIMESTAMPTZ NOT NULL,
    kind    TEXT        NOT NULL,
    step    TEXT,
    data    JSONB       NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Signals are kept whether or not anyone waits yet; a run consumes one by journaling its id.
-- run_id NULL = addressed by name only (a webhook that knows a task id, not a run id).
CREATE TABLE signals (
    id          BIGSERIAL PRIMARY KEY,
    run_id      UUID REFERENCES runs(id),
    name        TEXT        NOT NULL,
    event_key   TEXT,
    payload     JSONB       NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX signals_dedup ON signals (
    COALESCE(run_id, '00000000-0000-0000-0000-000000000000'::uuid), name, event_key)
    WHERE event_key IS NOT NULL;
CREATE INDEX signals_name ON signals (name);
CREATE INDEX signals_run ON signals (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE signal_waits (
    run_id UUID NOT NULL REFERENCES runs(id),
    name   TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX signal_waits_name ON signal_waits (name);

CREATE TABLE concurrency_limits (
    key        TEXT PRIMARY KEY,
    max_slots  INTEGER NOT NULL CHECK (max_slots > 0)
);

CREATE TABLE concurrency_slots (
    key         TEXT        NOT NULL,
    run_id      UUID        NOT NULL REFERENCES runs(id),
    step        TEXT        NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key, run_id, step)
);
CREATE INDEX concurrency_slots_run ON concurrency_slots (run_id);

CREATE TABLE slot_waiters (
    key     TEXT        NOT NULL,
    run_id  UUID        NOT NULL REFERENCES runs(id),
    since   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key, run_id)
);
CREATE INDEX slot_waiters_run ON slot_waiters (run_id);
