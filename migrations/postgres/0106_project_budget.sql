-- A project's budget: what all of its runs together may spend (issue 15); NULL: none.
ALTER TABLE projects ADD COLUMN budget_micros BIGINT;
