UPDATE complaints_notification SET address = '' WHERE EXISTS (SELECT 1 FROM complaints_complaint c
    WHERE c.tenant = complaints_notification.tenant
    AND c.tracking_number = complaints_notification.tracking_number);
