-- A referral may share the complaint's evidence with the department (Art. 24): it opens each
-- file itself, every read recorded.
ALTER TABLE complaints_referral ADD COLUMN shares_evidence BIGINT NOT NULL DEFAULT 0;
