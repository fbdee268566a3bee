-- Keys begin with the tenant; these rows are also found by their id alone.
CREATE INDEX review_task_id ON review_task (task_id);
CREATE INDEX review_rectification_id ON review_rectification (order_id);
CREATE INDEX review_agency_filing ON review_agency (filing_id);
