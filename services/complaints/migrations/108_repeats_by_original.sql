CREATE INDEX complaints_complaint_by_repeats ON complaints_complaint (tenant, repeats);
