
CREATE TABLE review_credit_file (
    tenant TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    uscc TEXT NOT NULL,
    kind TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    principal TEXT NOT NULL,
    summary TEXT NOT NULL,
    details BLOB NOT NULL,
    PRIMARY KEY (tenant, entry_id)
);
CREATE INDEX review_credit_file_uscc ON review_credit_file (uscc, recorded_at);
