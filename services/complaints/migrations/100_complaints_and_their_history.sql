
CREATE TABLE complaints_complaint (
    tenant TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    access_code_sha256 TEXT NOT NULL,
    agency_uscc TEXT NOT NULL,
    agency_name TEXT NOT NULL,
    complainant_name TEXT NOT NULL,
    complainant_contact TEXT NOT NULL,
    subject TEXT NOT NULL,
    description TEXT NOT NULL,
    evidence TEXT NOT NULL,
    status TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, tracking_number)
);
CREATE UNIQUE INDEX complaints_complaint_tracking ON complaints_complaint (tracking_number);
CREATE TABLE complaints_history (
    tenant TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    principal TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (tenant, tracking_number, seq)
);
