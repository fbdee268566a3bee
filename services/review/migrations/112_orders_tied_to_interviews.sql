ALTER TABLE review_rectification ADD COLUMN interview_entry_id TEXT NOT NULL DEFAULT '';
