-- What happened to a project outside its runs: the gather reopened after a failed
-- qualification, and why. Newest last; read back by GET /api/projects/{slug}/events.
CREATE TABLE project_events (
    id         TEXT PRIMARY KEY,
    project    TEXT   NOT NULL REFERENCES projects(slug),
    kind       TEXT   NOT NULL,
    message    TEXT   NOT NULL,
    details    TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX project_events_project ON project_events (project, created_at);
