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

const V102: &str = "
CREATE TABLE review_task (
    tenant TEXT NOT NULL,
    task_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    uscc TEXT NOT NULL,
    agency_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deadline_from TEXT NOT NULL,
    deadline_due TEXT NOT NULL,
    deadline_provisional BIGINT NOT NULL,
    calendar_version TEXT NOT NULL,
    checks TEXT NOT NULL,
    forwarded_from TEXT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    decision TEXT,
    PRIMARY KEY (tenant, task_id)
);
CREATE INDEX review_task_status ON review_task (tenant, status, deadline_due);
CREATE TABLE review_agency (
    uscc TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    filing_id TEXT NOT NULL,
    status TEXT NOT NULL,
    principals TEXT NOT NULL
);
CREATE TABLE review_dishonesty (
    identifier TEXT PRIMARY KEY,
    party TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    listed_on TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
";

const V104: &str = "
ALTER TABLE review_agency ADD COLUMN filed_at BIGINT NOT NULL DEFAULT 0;
CREATE TABLE review_annual_report (
    filing_id TEXT NOT NULL,
    year BIGINT NOT NULL,
    PRIMARY KEY (filing_id, year)
);
CREATE TABLE review_job (
    name TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL,
    done_by TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE review_rectification (
    tenant TEXT NOT NULL,
    order_id TEXT NOT NULL,
    uscc TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    due_date TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (tenant, order_id)
);
CREATE TABLE review_risk (
    uscc TEXT PRIMARY KEY,
    tier BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE review_draw (
    tenant TEXT NOT NULL,
    draw_id TEXT NOT NULL,
    seed TEXT NOT NULL,
    population_digest TEXT NOT NULL,
    sample TEXT NOT NULL,
    drawn_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, draw_id)
);
";

const V106: &str = "
ALTER TABLE review_task ADD COLUMN principals TEXT NOT NULL DEFAULT '[]';
ALTER TABLE review_rectification ADD COLUMN deadline_from TEXT NOT NULL DEFAULT '';
ALTER TABLE review_rectification ADD COLUMN working_days BIGINT NOT NULL DEFAULT 0;
ALTER TABLE review_rectification ADD COLUMN provisional BIGINT NOT NULL DEFAULT 0;
ALTER TABLE review_rectification ADD COLUMN calendar_version TEXT NOT NULL DEFAULT '';
CREATE INDEX review_task_filing ON review_task (filing_id, status);
CREATE INDEX review_rectification_status ON review_rectification (status, due_date);
";

const V107: &str = "
ALTER TABLE review_risk ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
UPDATE review_risk SET tenant = COALESCE((SELECT a.tenant FROM review_agency a
    WHERE a.uscc = review_risk.uscc), '650000');
DROP TABLE review_annual_report;
";

/// Row security beyond the generic tenant policy: a prefecture writes a region row only as
/// the forwarded copy of its own approval (Art. 10); the severe-dishonesty list is read by
/// all and written from the region's scope alone.
const V108_POSTGRES: &str = "
DROP POLICY review_task_tenant ON review_task;
CREATE POLICY review_task_tenant ON review_task
    USING (creditmesh_tenant_visible(tenant))
    WITH CHECK (creditmesh_tenant_visible(tenant) OR (tenant = '650000' AND status = 'forwarded'));
CREATE OR REPLACE FUNCTION creditmesh_region_scope() RETURNS BOOLEAN LANGUAGE sql STABLE AS $$
    SELECT COALESCE(current_setting('creditmesh.tenant', true), '') IN ('', '650000') $$;
ALTER TABLE review_dishonesty ENABLE ROW LEVEL SECURITY;
ALTER TABLE review_dishonesty FORCE ROW LEVEL SECURITY;
CREATE POLICY review_dishonesty_read ON review_dishonesty FOR SELECT USING (true);
CREATE POLICY review_dishonesty_region ON review_dishonesty
    USING (creditmesh_region_scope()) WITH CHECK (creditmesh_region_scope());
";

/// Keys begin with the tenant; these rows are also found by their id alone.
const BY_ID: &str = "
CREATE INDEX review_task_id ON review_task (task_id);
CREATE INDEX review_rectification_id ON review_rectification (order_id);
CREATE INDEX review_agency_filing ON review_agency (filing_id);
";

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration::new(100, "agency credit file", V100_SQLITE, V100_POSTGRES),
        Migration::tenant_row_security(101, &["review_credit_file"]),
        Migration::new(
            102,
            "review tasks, agencies under review, severe-dishonesty list",
            V102,
            V102,
        ),
        Migration::tenant_row_security(103, &["review_task"]),
        Migration::new(
            104,
            "annual reports seen, durable jobs, rectifications, risk tiers, spot-check draws",
            V104,
            V104,
        ),
        Migration::tenant_row_security(105, &["review_rectification", "review_draw"]),
        Migration::new(
            106,
            "principals a task checks, rectification deadlines with their calendar",
            V106,
            V106,
        ),
        Migration::new(
            107,
            "risk tiers held by a tenant; annual reports are filing's",
            V107,
            V107,
        ),
        Migration::tenant_row_security(108, &["review_agency", "review_risk"]),
        Migration::new(
            109,
            "forwarded copies and the region's list under row security",
            "SELECT 1;",
            V108_POSTGRES,
        ),
        Migration::new(110, "rows found by their id alone", BY_ID, BY_ID),
    ]
}
