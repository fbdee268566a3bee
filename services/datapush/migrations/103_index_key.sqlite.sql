ALTER TABLE datapush_record ADD COLUMN index_key TEXT NOT NULL DEFAULT '';
ALTER TABLE datapush_version ADD COLUMN index_key TEXT NOT NULL DEFAULT '';
ALTER TABLE datapush_objection ADD COLUMN index_key TEXT NOT NULL DEFAULT '';
ALTER TABLE datapush_access_code ADD COLUMN index_key TEXT NOT NULL DEFAULT '';
CREATE INDEX datapush_record_index_key ON datapush_record (index_key);
CREATE INDEX datapush_version_index_key ON datapush_version (index_key);
CREATE INDEX datapush_objection_index_key ON datapush_objection (index_key);
CREATE INDEX datapush_access_code_index_key ON datapush_access_code (index_key);
DROP TRIGGER datapush_keep_version;
CREATE TRIGGER datapush_keep_version BEFORE UPDATE ON datapush_record FOR EACH ROW
    WHEN NEW.version <> OLD.version
BEGIN
    INSERT INTO datapush_version (record_id, version, fingerprint, envelope, key_id, changed_at,
        change, index_key)
    VALUES (OLD.record_id, OLD.version, OLD.fingerprint, OLD.envelope, OLD.key_id,
        OLD.updated_at, OLD.change, OLD.index_key);
END;
