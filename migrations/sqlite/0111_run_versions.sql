-- Every run records the version of its workflow's definition and the build that started it
-- (issue 25): what a deploy would strand is found by them. Runs started before read as version
-- 1 of an unknown build.
ALTER TABLE runs ADD COLUMN workflow_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN build TEXT;
