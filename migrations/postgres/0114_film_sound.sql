-- The film's sound (issue 27): what plays under the voices, at what level, how loud the mix
-- is; a JSON object of the project's sound settings ({} is every default).
ALTER TABLE projects ADD COLUMN sound TEXT NOT NULL DEFAULT '{}';
