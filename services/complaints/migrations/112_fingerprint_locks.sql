CREATE TABLE complaints_fingerprint (
    tenant TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    touched_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, fingerprint)
);
