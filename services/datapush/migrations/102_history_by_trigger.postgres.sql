ALTER TABLE datapush_record ADD COLUMN change TEXT NOT NULL DEFAULT 'pushed';
UPDATE datapush_record r SET change = v.change FROM datapush_version v
    WHERE v.record_id = r.record_id AND v.version = r.version;
DELETE FROM datapush_version v USING datapush_record r
    WHERE v.record_id = r.record_id AND v.version = r.version;
CREATE FUNCTION datapush_keep_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO datapush_version (record_id, version, fingerprint, envelope, key_id, changed_at,
        change)
    VALUES (OLD.record_id, OLD.version, OLD.fingerprint, OLD.envelope, OLD.key_id,
        OLD.updated_at, OLD.change);
    RETURN NEW;
END
$$;
CREATE TRIGGER datapush_keep_version BEFORE UPDATE ON datapush_record FOR EACH ROW
    WHEN (NEW.version <> OLD.version) EXECUTE FUNCTION datapush_keep_version();
