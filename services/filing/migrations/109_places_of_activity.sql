-- The authorities of places where an agency filed elsewhere works, as review reports their
-- supervision acts (Art. 5): each may open what the agency filed.
CREATE TABLE filing_place (
    tenant TEXT NOT NULL,
    uscc TEXT NOT NULL,
    since BIGINT NOT NULL,
    entry_id TEXT NOT NULL,
    PRIMARY KEY (tenant, uscc)
);
-- The departments a revoked filing's documents are shared with, as the revocation that
-- referred the agency to them says (Art. 15(3)).
CREATE TABLE filing_share (
    tenant TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    department TEXT NOT NULL,
    since BIGINT NOT NULL,
    PRIMARY KEY (tenant, filing_id, department)
);
