CREATE TABLE disclosure_agency (
    uscc TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    agency_name TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    masking_policy_version TEXT NOT NULL,
    register_version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX disclosure_agency_by_tenant ON disclosure_agency (tenant, uscc);
CREATE INDEX disclosure_agency_by_status ON disclosure_agency (status, uscc);
CREATE TABLE disclosure_notice (
    seq BIGINT PRIMARY KEY,
    tenant TEXT NOT NULL,
    uscc TEXT NOT NULL,
    kind TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    text TEXT,
    content TEXT,
    salt TEXT,
    leaf_hash TEXT NOT NULL,
    corrects_seq BIGINT,
    erased_by TEXT
);
CREATE INDEX disclosure_notice_by_agency ON disclosure_notice (uscc, seq);
CREATE INDEX disclosure_notice_by_kind ON disclosure_notice (kind, seq);
CREATE TABLE disclosure_log_hash (
    idx BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);
CREATE TABLE disclosure_log_head (
    id INTEGER PRIMARY KEY,
    size BIGINT NOT NULL
);
INSERT INTO disclosure_log_head (id, size) VALUES (1, 0);
CREATE TABLE disclosure_checkpoint (
    size BIGINT PRIMARY KEY,
    root TEXT NOT NULL,
    note TEXT NOT NULL,
    signed_at BIGINT NOT NULL
);
