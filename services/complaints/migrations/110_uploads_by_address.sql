CREATE TABLE complaints_upload (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    named BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX complaints_upload_pending ON complaints_upload (address, named, uploaded_at);
CREATE INDEX complaints_upload_by_hash ON complaints_upload (sha256);
CREATE TABLE complaints_upload_quota (
    address TEXT PRIMARY KEY,
    touched_at BIGINT NOT NULL
);
