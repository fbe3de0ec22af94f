-- A film's scene started early waits for the previous scene's last frame (issue 14, decision
-- 0018): the status `waiting_for_previous`.
ALTER TABLE scenes DROP CONSTRAINT scenes_status_check;
ALTER TABLE scenes ADD CONSTRAINT scenes_status_check CHECK (status IN ('ready_for_generation',
    'waiting_for_previous','generating_composite','verifying_composite','generating_video',
    'completed','failed'));
