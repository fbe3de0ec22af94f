-- Slots kept past their step (issue 14): a step that starts a provider's job keeps its slot
-- until the workflow gives it back (the job is done) or the run ends, so a concurrency limit
-- bounds the jobs running at the provider, not only the calls that submit them. A held slot
-- survives its run's suspensions and a crash of its worker: the job runs on meanwhile.
ALTER TABLE concurrency_slots ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
