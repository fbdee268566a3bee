CREATE TABLE complaints_holder (
    uscc TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
