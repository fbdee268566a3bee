-- Keys begin with the tenant; these rows are also found by their id alone.
CREATE INDEX filing_filing_id ON filing_filing (filing_id);
CREATE INDEX filing_change_id ON filing_change (change_id);
CREATE INDEX filing_document_uscc ON filing_document (uscc);
