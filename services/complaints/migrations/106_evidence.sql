CREATE TABLE complaints_evidence (
    sha256 TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    uploaded_at BIGINT NOT NULL
);
