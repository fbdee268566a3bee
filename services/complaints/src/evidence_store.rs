//! The evidence complainants upload, the uploads an address holds, and every read of a piece.

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection};

/// Uploads from `address` since `since` that no complaint names.
pub async fn pending(
    conn: &mut AnyConnection,
    address: &str,
    since: i64,
) -> Result<i64, StorageError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM complaints_upload WHERE address = $1 AND named = 0 \
         AND uploaded_at > $2",
    )
    .bind(address.to_owned())
    .bind(since)
    .fetch_one(&mut *conn)
    .await?)
}

/// Locks `address`'s quota row (made when missing) until the transaction ends, so that its
/// uploads are counted one at a time (PostgreSQL).
pub async fn lock_quota(
    conn: &mut AnyConnection,
    address: &str,
    now: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO complaints_upload_quota (address, touched_at) VALUES ($1, $2) \
         ON CONFLICT (address) DO NOTHING",
    )
    .bind(address.to_owned())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE complaints_upload_quota SET touched_at = $1 WHERE address = $2")
        .bind(now)
        .bind(address.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records an upload of `sha256` from `address`.
pub async fn insert_upload(
    conn: &mut AnyConnection,
    address: &str,
    sha256: &str,
    now: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO complaints_upload (id, address, sha256, uploaded_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(address.to_owned())
    .bind(sha256.to_owned())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The uploads of `hashes` are named by a complaint: they no longer count against any cap.
pub async fn named(conn: &mut AnyConnection, hashes: &[String]) -> Result<(), StorageError> {
    for h in hashes {
        sqlx::query("UPDATE complaints_upload SET named = 1 WHERE sha256 = $1 AND named = 0")
            .bind(h.clone())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Keeps a piece of evidence's type and size, unless it is kept already.
pub async fn insert_evidence(
    conn: &mut AnyConnection,
    sha256: &str,
    media_type: &str,
    size_bytes: i64,
    now: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO complaints_evidence (sha256, media_type, size_bytes, uploaded_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256.to_owned())
    .bind(media_type.to_owned())
    .bind(size_bytes)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A piece's media type and size, if it was uploaded.
pub async fn evidence(
    conn: &mut AnyConnection,
    sha256: &str,
) -> Result<Option<(String, i64)>, StorageError> {
    Ok(
        sqlx::query_as("SELECT media_type, size_bytes FROM complaints_evidence WHERE sha256 = $1")
            .bind(sha256.to_owned())
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The first of `hashes` that no upload stored, with its place.
pub async fn missing(
    conn: &mut AnyConnection,
    hashes: &[String],
) -> Result<Option<(usize, String)>, StorageError> {
    for (i, h) in hashes.iter().enumerate() {
        let row = sqlx::query("SELECT 1 FROM complaints_evidence WHERE sha256 = $1")
            .bind(h.clone())
            .fetch_optional(&mut *conn)
            .await?;
        if row.is_none() {
            return Ok(Some((i, h.clone())));
        }
    }
    Ok(None)
}

/// A read of a piece of a complaint, by whom and why.
pub struct Read<'a> {
    pub tenant: &'a str,
    pub tracking_number: &'a str,
    pub sha256: &'a str,
    pub principal: &'a str,
    pub purpose: &'a str,
    pub read_at: i64,
}

pub async fn insert_read(conn: &mut AnyConnection, r: &Read<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO complaints_evidence_read (tenant, read_id, tracking_number, sha256, \
         principal, purpose, read_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.tenant.to_owned())
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(r.tracking_number.to_owned())
    .bind(r.sha256.to_owned())
    .bind(r.principal.to_owned())
    .bind(r.purpose.to_owned())
    .bind(r.read_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
