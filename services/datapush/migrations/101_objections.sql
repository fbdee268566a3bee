CREATE TABLE datapush_objection (
    objection_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    record_id TEXT NOT NULL,
    agency_uscc TEXT NOT NULL,
    subject_index TEXT NOT NULL,
    ground TEXT NOT NULL,
    private_envelope TEXT NOT NULL,
    key_id TEXT NOT NULL,
    filed_by TEXT NOT NULL,
    filed_at BIGINT NOT NULL,
    deadline_from TEXT NOT NULL,
    deadline_due TEXT NOT NULL,
    deadline_provisional BIGINT NOT NULL,
    calendar_version TEXT NOT NULL,
    status TEXT NOT NULL,
    decision_reasons TEXT NOT NULL DEFAULT '',
    decided_by TEXT NOT NULL DEFAULT '',
    decided_at BIGINT,
    subject_statement TEXT NOT NULL DEFAULT '',
    overdue_recorded_at BIGINT
);
CREATE INDEX datapush_objection_record ON datapush_objection (record_id);
CREATE INDEX datapush_objection_subject ON datapush_objection (subject_index);
CREATE INDEX datapush_objection_agency ON datapush_objection (agency_uscc, objection_id);
CREATE INDEX datapush_objection_due ON datapush_objection (status, deadline_due);
CREATE UNIQUE INDEX datapush_objection_one_open ON datapush_objection (record_id)
    WHERE status = 'open';
CREATE TABLE datapush_use (
    use_id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    principal TEXT NOT NULL,
    tenant TEXT NOT NULL,
    purpose TEXT NOT NULL,
    used_at BIGINT NOT NULL
);
CREATE INDEX datapush_use_record ON datapush_use (record_id, principal);
CREATE TABLE datapush_notice (
    notice_id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    record_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    read_version BIGINT NOT NULL,
    change TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (principal, record_id, version)
);
CREATE INDEX datapush_notice_principal ON datapush_notice (principal, notice_id);
CREATE TABLE datapush_access_code (
    code_index TEXT PRIMARY KEY,
    subject_index TEXT NOT NULL,
    tenant TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE datapush_job (
    name TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE datapush_purge (
    record_id TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    tenant TEXT NOT NULL,
    agency_uscc TEXT NOT NULL,
    record_key TEXT NOT NULL,
    category TEXT NOT NULL,
    collected_on TEXT NOT NULL,
    purged_at BIGINT NOT NULL
);
CREATE INDEX datapush_record_expiry ON datapush_record (category, collected_on);
