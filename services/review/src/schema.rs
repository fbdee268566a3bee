use creditmesh_storage::Migration;

const V100_SQLITE: &str = "
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
";

const V100_POSTGRES: &str = "
CREATE TABLE review_credit_file (
    tenant TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    uscc TEXT NOT NULL,
    kind TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    principal TEXT NOT NULL,
    summary TEXT NOT NULL,
    details BYTEA NOT NULL,
    PRIMARY KEY (tenant, entry_id)
);
CREATE INDEX review_credit_file_uscc ON review_credit_file (uscc, recorded_at);
";

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration::new(100, "agency credit file", V100_SQLITE, V100_POSTGRES),
        Migration::tenant_row_security(101, &["review_credit_file"]),
    ]
}
