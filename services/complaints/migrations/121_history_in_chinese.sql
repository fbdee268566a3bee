ALTER TABLE complaints_history ADD COLUMN note_zh TEXT NOT NULL DEFAULT '';
