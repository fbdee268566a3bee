
ALTER TABLE review_task ADD COLUMN principals TEXT NOT NULL DEFAULT '[]';
ALTER TABLE review_rectification ADD COLUMN deadline_from TEXT NOT NULL DEFAULT '';
ALTER TABLE review_rectification ADD COLUMN working_days BIGINT NOT NULL DEFAULT 0;
ALTER TABLE review_rectification ADD COLUMN provisional BIGINT NOT NULL DEFAULT 0;
ALTER TABLE review_rectification ADD COLUMN calendar_version TEXT NOT NULL DEFAULT '';
CREATE INDEX review_task_filing ON review_task (filing_id, status);
CREATE INDEX review_rectification_status ON review_rectification (status, due_date);
