
CREATE TABLE review_task (
    tenant TEXT NOT NULL,
    task_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    uscc TEXT NOT NULL,
    agency_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deadline_from TEXT NOT NULL,
    deadline_due TEXT NOT NULL,
    deadline_provisional BIGINT NOT NULL,
    calendar_version TEXT NOT NULL,
    checks TEXT NOT NULL,
    forwarded_from TEXT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    decision TEXT,
    PRIMARY KEY (tenant, task_id)
);
CREATE INDEX review_task_status ON review_task (tenant, status, deadline_due);
CREATE TABLE review_agency (
    uscc TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    status TEXT NOT NULL,
    principals TEXT NOT NULL
);
CREATE TABLE review_dishonesty (
    identifier TEXT PRIMARY KEY,
    party TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    listed_on TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
