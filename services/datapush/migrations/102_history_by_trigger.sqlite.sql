ALTER TABLE datapush_record ADD COLUMN change TEXT NOT NULL DEFAULT 'pushed';
UPDATE datapush_record SET change = (SELECT v.change FROM datapush_version v
    WHERE v.record_id = datapush_record.record_id AND v.version = datapush_record.version)
    WHERE EXISTS (SELECT 1 FROM datapush_version v
    WHERE v.record_id = datapush_record.record_id AND v.version = datapush_record.version);
DELETE FROM datapush_version WHERE EXISTS (SELECT 1 FROM datapush_record r
    WHERE r.record_id = datapush_version.record_id AND r.version = datapush_version.version);
CREATE TRIGGER datapush_keep_version BEFORE UPDATE ON datapush_record FOR EACH ROW
    WHEN NEW.version <> OLD.version
BEGIN
    INSERT INTO datapush_version (record_id, version, fingerprint, envelope, key_id, changed_at,
        change)
    VALUES (OLD.record_id, OLD.version, OLD.fingerprint, OLD.envelope, OLD.key_id,
        OLD.updated_at, OLD.change);
END;
