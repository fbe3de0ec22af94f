-- The approval gate (issue 15): 1 when each scene's verified composite waits for a person
-- before its video is paid for.
ALTER TABLE projects ADD COLUMN approval_required BIGINT NOT NULL DEFAULT 0;
