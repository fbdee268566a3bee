use creditmesh_storage::Migration;

const V100: &str = "
CREATE TABLE filing_document (
    tenant TEXT NOT NULL,
    uscc TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    file_name TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, uscc, sha256)
);
CREATE TABLE filing_filing (
    tenant TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    uscc TEXT NOT NULL,
    agency_name TEXT NOT NULL,
    status TEXT NOT NULL,
    reviewing_tenant TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    review_from TEXT NOT NULL,
    review_due TEXT NOT NULL,
    review_provisional BIGINT NOT NULL,
    calendar_version TEXT NOT NULL,
    facts TEXT NOT NULL,
    documents TEXT NOT NULL,
    PRIMARY KEY (tenant, filing_id)
);
CREATE INDEX filing_filing_uscc ON filing_filing (uscc, filing_id);
CREATE TABLE filing_history (
    tenant TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    principal TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (tenant, filing_id, seq)
);
CREATE TABLE filing_change (
    tenant TEXT NOT NULL,
    change_id TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    changed_on TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    working_days_late BIGINT NOT NULL,
    late BIGINT NOT NULL,
    facts TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (tenant, change_id)
);
CREATE TABLE filing_annual_report (
    tenant TEXT NOT NULL,
    report_id TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    year BIGINT NOT NULL,
    due_date TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (tenant, report_id),
    UNIQUE (filing_id, year)
);
CREATE TABLE filing_deregistration (
    tenant TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    reason_detail TEXT NOT NULL,
    disposal_plan TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    disposal_record TEXT,
    completed_at BIGINT,
    PRIMARY KEY (tenant, filing_id)
);
CREATE TABLE filing_ban (
    uscc TEXT PRIMARY KEY,
    ends_on TEXT NOT NULL,
    reason TEXT NOT NULL,
    source_event TEXT NOT NULL
);
";

const V102: &str = "
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
";

/// Keys begin with the tenant; these rows are also found by their id alone.
const BY_ID: &str = "
CREATE INDEX filing_filing_id ON filing_filing (filing_id);
CREATE INDEX filing_change_id ON filing_change (change_id);
CREATE INDEX filing_document_uscc ON filing_document (uscc);
";

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration::new(
            100,
            "filings, documents, changes, reports, deregistrations, bans",
            V100,
            V100,
        ),
        Migration::tenant_row_security(
            101,
            &[
                "filing_document",
                "filing_filing",
                "filing_history",
                "filing_change",
                "filing_annual_report",
                "filing_deregistration",
            ],
        ),
        Migration::new(
            102,
            "change deadlines and materials, history counters, durable jobs",
            V102,
            V102,
        ),
        Migration::tenant_row_security(103, &["filing_ban"]),
        Migration::new(104, "rows found by their id alone", BY_ID, BY_ID),
    ]
}
