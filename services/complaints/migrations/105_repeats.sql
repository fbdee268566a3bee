ALTER TABLE complaints_complaint ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE complaints_complaint ADD COLUMN repeats TEXT NOT NULL DEFAULT '';
CREATE INDEX complaints_complaint_by_fingerprint ON complaints_complaint (tenant, fingerprint);
