ALTER TABLE complaints_referral ADD COLUMN sealed_contact TEXT NOT NULL DEFAULT '';
