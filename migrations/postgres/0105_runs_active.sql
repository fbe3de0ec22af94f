-- The runs that are not finished, for the dashboard's live feed: a small index over a small
-- set (runs leave it when they finish), so a look every half second stays cheap however long
-- the history grows.
CREATE INDEX runs_active ON runs (id) WHERE status IN ('pending', 'running', 'waiting', 'sleeping');
