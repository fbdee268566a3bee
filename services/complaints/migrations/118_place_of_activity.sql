ALTER TABLE complaints_complaint ADD COLUMN place TEXT NOT NULL DEFAULT '';
