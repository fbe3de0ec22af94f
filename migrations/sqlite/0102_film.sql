-- The film domain: projects, their gather/qualified document namespaces, scenes, prompt
-- templates, story bibles, character references and global errors.
-- Portable types on purpose: JSON as TEXT and times as BIGINT milliseconds, so that the same
-- statements run on Postgres and SQLite (docs/decisions/0007-film-tables-portable.md).

CREATE TABLE projects (
    slug              TEXT PRIMARY KEY,
    title             TEXT   NOT NULL,
    status            TEXT   NOT NULL CHECK (status IN
                          ('gathering','qualifying','qualified','generating','completed','failed')),
    gather_locked_at  BIGINT,
    final_video       TEXT,
    qualification_run TEXT,
    production_run    TEXT,
    version           BIGINT NOT NULL DEFAULT 1,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

-- gather_<slug> and qualified_<slug>: flexible JSON documents by collection.
CREATE TABLE documents (
    namespace  TEXT   NOT NULL,
    collection TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, collection, id)
);

CREATE TABLE scenes (
    id                TEXT PRIMARY KEY,
    project           TEXT   NOT NULL REFERENCES projects(slug),
    scene_number      INTEGER NOT NULL,
    sequence_number   INTEGER NOT NULL,
    status            TEXT   NOT NULL CHECK (status IN ('ready_for_generation','generating_composite',
                          'verifying_composite','generating_video','completed','failed')),
    expected_duration DOUBLE PRECISION NOT NULL CHECK (expected_duration >= 3 AND expected_duration <= 7),
    retry_count       INTEGER NOT NULL DEFAULT 0,
    -- The whole scene record (every field of the spec's collection); the columns above are
    -- copies kept for queries and constraints.
    doc               TEXT   NOT NULL,
    version           BIGINT NOT NULL DEFAULT 1,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (project, scene_number)
);
CREATE INDEX scenes_project_sequence ON scenes (project, sequence_number);

CREATE TABLE prompt_templates (
    name       TEXT PRIMARY KEY,
    category   TEXT,
    doc        TEXT   NOT NULL,
    version    BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE story_bibles (
    project    TEXT PRIMARY KEY REFERENCES projects(slug),
    doc        TEXT   NOT NULL,
    version    BIGINT NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL
);

CREATE TABLE character_references (
    project      TEXT   NOT NULL REFERENCES projects(slug),
    character_id TEXT   NOT NULL,
    doc          TEXT   NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (project, character_id)
);

-- Errors shown at the top of every page until a person dismisses them.
CREATE TABLE global_errors (
    id           TEXT PRIMARY KEY,
    project      TEXT,
    phase        TEXT   NOT NULL,
    message      TEXT   NOT NULL,
    details      TEXT   NOT NULL,
    dedupe_key   TEXT   UNIQUE,
    created_at   BIGINT NOT NULL,
    dismissed_at BIGINT
);
CREATE INDEX global_errors_open ON global_errors (created_at) WHERE dismissed_at IS NULL;
