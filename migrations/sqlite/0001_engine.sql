-- Slate engine, SQLite dialect. Same tables and meaning as migrations/postgres/0001_engine.sql.
-- Differences: ids are TEXT (hyphenated UUID), timestamps are INTEGER milliseconds since the
-- Unix epoch (cheap to compare and index), JSON is TEXT.

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    workflow         TEXT    NOT NULL,
    idempotency_key  TEXT,
    scope            TEXT,
    input            TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN
                        ('pending','running','waiting','sleeping','completed','failed','cancelled')),
    output           TEXT,
    error            TEXT,
    parent_id        TEXT REFERENCES runs(id),
    parent_step      TEXT,
    root_id          TEXT    NOT NULL,
    budget_micros    INTEGER,
    cost_micros      INTEGER NOT NULL DEFAULT 0,
    cost_units       REAL    NOT NULL DEFAULT 0,
    ready_at         INTEGER,
    lease_owner      TEXT,
    lease_epoch      INTEGER NOT NULL DEFAULT 0,
    cancel_reason    TEXT,
    claims           INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER
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

-- No foreign key to runs (see the Postgres migration).
CREATE TABLE events (
    run_id  TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    step    TEXT,
    data    TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE signals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT REFERENCES runs(id),
    name        TEXT    NOT NULL,
    event_key   TEXT,
    payload     TEXT    NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX signals_dedup ON signals (COALESCE(run_id, ''), name, event_key)
    WHERE event_key IS NOT NULL;
CREATE INDEX signals_name ON signals (name);
CREATE INDEX signals_run ON signals (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE signal_waits (
    run_id TEXT NOT NULL REFERENCES runs(id),
    name   TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX signal_waits_name ON signal_waits (name);

CREATE TABLE concurrency_limits (
    key        TEXT PRIMARY KEY,
    max_slots  INTEGER NOT NULL CHECK (max_slots > 0)
);

CREATE TABLE concurrency_slots (
    key         TEXT    NOT NULL,
    run_id      TEXT    NOT NULL REFERENCES runs(id),
    step        TEXT    NOT NULL,
    acquired_at INTEGER NOT NULL,
    PRIMARY KEY (key, run_id, step)
) WITHOUT ROWID;
CREATE INDEX concurrency_slots_run ON concurrency_slots (run_id);

CREATE TABLE slot_waiters (
    key     TEXT    NOT NULL,
    run_id  TEXT    NOT NULL REFERENCES runs(id),
    since   INTEGER NOT NULL,
    PRIMARY KEY (key, run_id)
) WITHOUT ROWID;
CREATE INDEX slot_waiters_run ON slot_waiters (run_id);
