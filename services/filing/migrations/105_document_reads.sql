CREATE TABLE filing_document_read (
    tenant TEXT NOT NULL,
    read_id TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    principal TEXT NOT NULL,
    purpose TEXT NOT NULL,
    read_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, read_id)
);
CREATE INDEX filing_document_read_filing ON filing_document_read (filing_id, read_at);
