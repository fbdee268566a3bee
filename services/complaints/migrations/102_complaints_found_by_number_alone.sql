-- The key begins with the tenant; a complaint is also found by its number alone.
CREATE INDEX complaints_complaint_number ON complaints_complaint (tracking_number);