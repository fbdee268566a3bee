
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
