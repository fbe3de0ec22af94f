-- The local knowledge store (in place of the brain service): documents per project, searched
-- with Postgres full-text search.
CREATE TABLE knowledge (
    project    TEXT        NOT NULL,
    kind       TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    title      TEXT        NOT NULL,
    body       TEXT        NOT NULL,
    metadata   JSONB       NOT NULL DEFAULT '{}'::jsonb,
    tsv        tsvector    GENERATED ALWAYS AS (to_tsvector('english', title || ' ' || body)) STORED,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project, kind, key)
);
CREATE INDEX knowledge_tsv ON knowledge USING GIN (tsv);
