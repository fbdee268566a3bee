ALTER TABLE complaints_notification ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';
