
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
