-- The authorities of places where an agency filed elsewhere works, as review reports their
-- supervision acts (Art. 5): each may open what the agency filed.
CREATE TABLE filing_place (
    tenant TEXT NOT NULL,
    uscc TEXT NOT NULL,
    since BIGINT NOT NULL,
    entry_id TEXT NOT NULL,
    PRIMARY KEY (tenant, uscc)
);
