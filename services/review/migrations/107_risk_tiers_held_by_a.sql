
ALTER TABLE review_risk ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
UPDATE review_risk SET tenant = COALESCE((SELECT a.tenant FROM review_agency a
    WHERE a.uscc = review_risk.uscc), '650000');
DROP TABLE review_annual_report;
