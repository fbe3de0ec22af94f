-- At most one active run per workflow and exclusive key (for example one qualification of a
-- project at a time), however the runs are started. Finished runs leave the index.
ALTER TABLE runs ADD COLUMN exclusive_key TEXT;
CREATE UNIQUE INDEX runs_exclusive ON runs (workflow, exclusive_key)
    WHERE exclusive_key IS NOT NULL AND status IN ('pending', 'running', 'waiting', 'sleeping');
