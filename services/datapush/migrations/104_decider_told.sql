ALTER TABLE datapush_objection ADD COLUMN decider_told_at BIGINT;
