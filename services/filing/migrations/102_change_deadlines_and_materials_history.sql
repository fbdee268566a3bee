
ALTER TABLE filing_change ADD COLUMN due_date TEXT NOT NULL DEFAULT '';
ALTER TABLE filing_change ADD COLUMN due_provisional BIGINT NOT NULL DEFAULT 0;
ALTER TABLE filing_change ADD COLUMN calendar_version TEXT NOT NULL DEFAULT '';
ALTER TABLE filing_change ADD COLUMN documents TEXT NOT NULL DEFAULT '[]';
CREATE INDEX filing_change_filing ON filing_change (filing_id, status);
CREATE INDEX filing_filing_status ON filing_filing (status, submitted_at);
CREATE UNIQUE INDEX filing_one_open_per_agency ON filing_filing (uscc)
    WHERE status IN ('submitted', 'active', 'deregistering');
ALTER TABLE filing_filing ADD COLUMN history_seq BIGINT NOT NULL DEFAULT 0;
UPDATE filing_filing SET history_seq = (SELECT COALESCE(MAX(h.seq), 0) FROM filing_history h
    WHERE h.tenant = filing_filing.tenant AND h.filing_id = filing_filing.filing_id);
ALTER TABLE filing_ban ADD COLUMN tenant TEXT NOT NULL DEFAULT '650000';
CREATE TABLE filing_job (
    name TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL,
    done_by TEXT NOT NULL,
    summary TEXT NOT NULL
);
