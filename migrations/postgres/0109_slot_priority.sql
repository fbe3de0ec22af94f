-- Slot priorities (issue 14, decision 0020): a freed concurrency slot wakes the highest
-- waiting run first (then the longest waiting), instead of every waiter at once.
ALTER TABLE slot_waiters ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
