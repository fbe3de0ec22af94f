-- A run whose journal no longer fits the code stops as `blocked` (issue 25) until a person
-- retries it on code that fits, forks it, or cancels it.
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN
    ('pending','running','waiting','sleeping','completed','failed','cancelled','blocked'));
-- Blocked runs are few and looked for by workflow and version (`/metrics`, `runs ls --blocked`).
CREATE INDEX runs_blocked ON runs (workflow, workflow_version) WHERE status = 'blocked';
