ALTER TABLE complaints_complaint ADD COLUMN history_seq BIGINT NOT NULL DEFAULT 0;
UPDATE complaints_complaint SET history_seq = (SELECT COALESCE(MAX(h.seq), 0)
    FROM complaints_history h
    WHERE h.tenant = complaints_complaint.tenant
      AND h.tracking_number = complaints_complaint.tracking_number);
