CREATE TABLE datapush_material (
    material_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    record_id TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    code_index TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    key_id TEXT NOT NULL,
    envelope TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    objection_id TEXT
);
CREATE INDEX datapush_material_objection ON datapush_material (objection_id);
CREATE INDEX datapush_material_record ON datapush_material (record_id);
CREATE TABLE datapush_material_read (
    read_id TEXT PRIMARY KEY,
    material_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    purpose TEXT NOT NULL,
    read_at BIGINT NOT NULL
);
ALTER TABLE datapush_access_code ADD COLUMN uploads BIGINT NOT NULL DEFAULT 0;
ALTER TABLE datapush_access_code ADD COLUMN upload_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE datapush_objection ADD COLUMN requested_measure TEXT NOT NULL DEFAULT '';
