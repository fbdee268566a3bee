CREATE TABLE complaints_evidence_read (
    tenant TEXT NOT NULL,
    read_id TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    principal TEXT NOT NULL,
    purpose TEXT NOT NULL,
    read_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, read_id)
);
CREATE INDEX complaints_evidence_read_complaint ON complaints_evidence_read (tracking_number);
