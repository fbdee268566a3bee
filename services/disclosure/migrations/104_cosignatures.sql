CREATE TABLE disclosure_cosignature (
    size BIGINT NOT NULL,
    witness TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (size, witness)
);
CREATE TABLE disclosure_cosigned (
    witness TEXT PRIMARY KEY,
    size BIGINT NOT NULL
);
