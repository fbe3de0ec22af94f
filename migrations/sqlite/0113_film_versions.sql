-- Film-making is iteration (issue 26): every stitch of a project's film is a version, kept and
-- listed with the take of each scene it was cut from; the film follows its scenes on its own
-- (a re-stitch when a scene's take changes) unless the project turns that off.
CREATE TABLE film_versions (
    project    TEXT   NOT NULL REFERENCES projects(slug),
    version    BIGINT NOT NULL,
    run_id     TEXT   NOT NULL UNIQUE,
    video      TEXT   NOT NULL,
    -- The whole version: its length and the scenes it was cut from (number, id, take, clip,
    -- where the clip sits in the film).
    doc        TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project, version)
);
ALTER TABLE projects ADD COLUMN auto_restitch BIGINT NOT NULL DEFAULT 1;
