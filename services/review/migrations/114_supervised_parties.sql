-- The register of supervised parties that are not on the register of filings (Art. 2): an
-- agency that has not filed, by its code, and a practitioner, by the digest of their identity
-- document (the number is not kept; `document` is its masked form). One row per authority
-- that has acted on the party.
CREATE TABLE review_party (
    tenant TEXT NOT NULL,
    party TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    principal TEXT NOT NULL,
    PRIMARY KEY (tenant, party)
);
