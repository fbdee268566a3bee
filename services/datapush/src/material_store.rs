//! Materials a subject or an agency uploads for an objection (Art. 22), sealed; the quota of
//! each access code; every read of a material.

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};

use crate::index::Hashed;

/// A stored material, as every reader may know it (not its sealed bytes).
pub struct MaterialRow {
    pub material_id: String,
    pub media_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub uploaded_at: i64,
    /// Empty until an objection names it.
    pub objection_id: String,
}

const COLUMNS: &str =
    "material_id, media_type, size_bytes, sha256, uploaded_at, COALESCE(objection_id, '')";

fn row(r: &sqlx::any::AnyRow) -> Result<MaterialRow, sqlx::Error> {
    Ok(MaterialRow {
        material_id: r.try_get(0)?,
        media_type: r.try_get(1)?,
        size_bytes: r.try_get(2)?,
        sha256: r.try_get(3)?,
        uploaded_at: r.try_get(4)?,
        objection_id: r.try_get(5)?,
    })
}

/// Whether `code` may upload `size` more bytes: fewer than `max_uploads` uploads, at most
/// `max_bytes` in all.
pub async fn room_for(
    conn: &mut AnyConnection,
    code: &Hashed,
    size: i64,
    (max_uploads, max_bytes): (i64, i64),
) -> Result<bool, StorageError> {
    let (a, b) = code.pair();
    Ok(sqlx::query(
        "SELECT 1 FROM datapush_access_code WHERE code_index IN ($1, $2) AND uploads < $3 \
         AND upload_bytes + $4 <= $5",
    )
    .bind(a)
    .bind(b)
    .bind(max_uploads)
    .bind(size)
    .bind(max_bytes)
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// Counts an upload against `code` by a guarded update, so that uploads under one code at
/// once cannot pass the quota together; `false` when it would.
pub async fn spend(
    conn: &mut AnyConnection,
    code: &Hashed,
    size: i64,
    (max_uploads, max_bytes): (i64, i64),
) -> Result<bool, StorageError> {
    let (a, b) = code.pair();
    Ok(sqlx::query(
        "UPDATE datapush_access_code SET uploads = uploads + 1, \
         upload_bytes = upload_bytes + $4 WHERE code_index IN ($1, $2) AND uploads < $3 \
         AND upload_bytes + $4 <= $5",
    )
    .bind(a)
    .bind(b)
    .bind(max_uploads)
    .bind(size)
    .bind(max_bytes)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0)
}

/// A material received, sealed.
pub struct NewMaterial<'a> {
    pub material_id: &'a str,
    pub tenant: &'a str,
    pub record_id: &'a str,
    pub uploaded_by: &'a str,
    /// The access code's index when the subject uploads; empty otherwise.
    pub code_index: &'a str,
    pub media_type: &'a str,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub key_id: &'a str,
    pub envelope: &'a str,
    pub uploaded_at: i64,
}

pub async fn insert(conn: &mut AnyConnection, m: &NewMaterial<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO datapush_material (material_id, tenant, record_id, uploaded_by, \
         code_index, media_type, size_bytes, sha256, key_id, envelope, uploaded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(m.material_id.to_owned())
    .bind(m.tenant.to_owned())
    .bind(m.record_id.to_owned())
    .bind(m.uploaded_by.to_owned())
    .bind(m.code_index.to_owned())
    .bind(m.media_type.to_owned())
    .bind(m.size_bytes)
    .bind(m.sha256.to_owned())
    .bind(m.key_id.to_owned())
    .bind(m.envelope.to_owned())
    .bind(m.uploaded_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Attaches `material_id` to `objection_id` if it was uploaded for `record_id` by the same
/// uploader (under one of `code`'s indexes, or as `principal` without a code) and no objection
/// names it yet; `false` otherwise.
pub async fn attach(
    conn: &mut AnyConnection,
    objection_id: &str,
    material_id: &str,
    record_id: &str,
    code: Option<&Hashed>,
    principal: &str,
) -> Result<bool, StorageError> {
    let (c1, c2) = code.map(Hashed::pair).unwrap_or_default();
    let uploader = if code.is_some() { "" } else { principal };
    Ok(sqlx::query(
        "UPDATE datapush_material SET objection_id = $1 WHERE material_id = $2 \
         AND record_id = $3 AND objection_id IS NULL \
         AND ((code_index <> '' AND code_index IN ($4, $5)) \
              OR (code_index = '' AND uploaded_by = $6))",
    )
    .bind(objection_id.to_owned())
    .bind(material_id.to_owned())
    .bind(record_id.to_owned())
    .bind(c1)
    .bind(c2)
    .bind(uploader.to_owned())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0)
}

/// The materials of `objection_ids`, in the order they were received.
pub async fn of_objections(
    conn: &mut AnyConnection,
    objection_ids: &[String],
) -> Result<Vec<MaterialRow>, StorageError> {
    if objection_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM datapush_material WHERE objection_id IN ({{ids}}) \
         ORDER BY material_id"
    );
    let rows = crate::store::fetch_in(conn, &sql, objection_ids).await?;
    Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
}

/// A material with its sealed bytes: the row, its tenant, key and envelope.
pub struct Sealed {
    pub material: MaterialRow,
    pub tenant: String,
    pub key_id: String,
    pub envelope: String,
}

/// `material_id` as `objection_id` names it, with its sealed bytes.
pub async fn sealed(
    conn: &mut AnyConnection,
    material_id: &str,
    objection_id: &str,
) -> Result<Option<Sealed>, StorageError> {
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, tenant, key_id, envelope FROM datapush_material \
         WHERE material_id = $1 AND objection_id = $2"
    )))
    .bind(material_id.to_owned())
    .bind(objection_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = found else {
        return Ok(None);
    };
    Ok(Some(Sealed {
        material: row(&r)?,
        tenant: r.try_get(6)?,
        key_id: r.try_get(7)?,
        envelope: r.try_get(8)?,
    }))
}

/// Records a read of `material_id` by `principal`, for `purpose`.
pub async fn insert_read(
    conn: &mut AnyConnection,
    material_id: &str,
    principal: &str,
    purpose: &str,
    read_at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO datapush_material_read (read_id, material_id, principal, purpose, \
         read_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(material_id.to_owned())
    .bind(principal.to_owned())
    .bind(purpose.to_owned())
    .bind(read_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
