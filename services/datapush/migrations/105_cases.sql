CREATE TABLE datapush_case (
    referral_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    agency_uscc TEXT NOT NULL,
    department TEXT NOT NULL,
    department_tenant TEXT NOT NULL,
    received_on TEXT NOT NULL,
    ends_on TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    closed_at BIGINT,
    close_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX datapush_case_department ON datapush_case (department, department_tenant);
ALTER TABLE datapush_use ADD COLUMN legal_basis TEXT NOT NULL DEFAULT '';
ALTER TABLE datapush_use ADD COLUMN referral_id TEXT NOT NULL DEFAULT '';
