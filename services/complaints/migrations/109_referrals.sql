CREATE TABLE complaints_referral (
    referral_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    department TEXT NOT NULL,
    department_tenant TEXT NOT NULL,
    reason TEXT NOT NULL,
    referred_at BIGINT NOT NULL,
    referred_by TEXT NOT NULL,
    payload TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    received_at BIGINT,
    receipt_signature TEXT NOT NULL DEFAULT '',
    receipt_certificate TEXT NOT NULL DEFAULT '',
    acknowledged_at BIGINT,
    declined_at BIGINT,
    decline_reason TEXT NOT NULL DEFAULT '',
    answered_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX complaints_referral_of_complaint ON complaints_referral (tenant, tracking_number);
CREATE INDEX complaints_referral_due ON complaints_referral (status, next_at);
CREATE INDEX complaints_referral_addressee ON complaints_referral (department, department_tenant, referral_id);
