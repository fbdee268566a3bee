ALTER TABLE disclosure_notice ADD COLUMN erasure_reason TEXT;
