CREATE TABLE datapush_agency (
    uscc TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE datapush_record (
    record_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    agency_uscc TEXT NOT NULL,
    record_key TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_index TEXT NOT NULL,
    category TEXT NOT NULL,
    collected_on TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    envelope TEXT NOT NULL,
    key_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    status TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (agency_uscc, record_key)
);
CREATE INDEX datapush_record_subject ON datapush_record (subject_index);
CREATE TABLE datapush_version (
    record_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    envelope TEXT NOT NULL,
    key_id TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    change TEXT NOT NULL,
    PRIMARY KEY (record_id, version)
);
