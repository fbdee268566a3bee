CREATE TABLE department_referral (
    referral_id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    signature TEXT NOT NULL,
    sent_by TEXT NOT NULL,
    status TEXT NOT NULL,
    answered_at BIGINT,
    reason TEXT NOT NULL DEFAULT ''
);
