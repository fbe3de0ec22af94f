-- A film's scene started early waits for the previous scene's last frame (issue 14, decision
-- 0018): the status `waiting_for_previous`. SQLite cannot change a CHECK constraint, so the
-- table is rebuilt with the same columns, rows and index (nothing refers to it).
CREATE TABLE scenes_new (
    id                TEXT PRIMARY KEY,
    project           TEXT   NOT NULL REFERENCES projects(slug),
    scene_number      INTEGER NOT NULL,
    sequence_number   INTEGER NOT NULL,
    status            TEXT   NOT NULL CHECK (status IN ('ready_for_generation','waiting_for_previous',
                          'generating_composite','verifying_composite','generating_video',
                          'completed','failed')),
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
INSERT INTO scenes_new (id, project, scene_number, sequence_number, status, expected_duration,
                        retry_count, doc, version, created_at, updated_at)
    SELECT id, project, scene_number, sequence_number, status, expected_duration,
           retry_count, doc, version, created_at, updated_at FROM scenes;
DROP TABLE scenes;
ALTER TABLE scenes_new RENAME TO scenes;
CREATE INDEX scenes_project_sequence ON scenes (project, sequence_number);
