CREATE TABLE complaints_notification (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    sent_at BIGINT,
    last_error TEXT
);
CREATE INDEX complaints_notification_due ON complaints_notification (sent_at, next_at);
