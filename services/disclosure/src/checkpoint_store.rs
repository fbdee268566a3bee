//! The signed checkpoints and their cosignatures.

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};

/// A stored checkpoint, its note carrying the witnesses' cosignatures.
pub struct Stored {
    pub size: u64,
    pub root: String,
    pub note: String,
    pub cosignatures: usize,
}

/// The checkpoint of `size`, or the newest one with at least `required` cosignatures.
pub async fn find(
    conn: &mut AnyConnection,
    size: Option<u64>,
    required: u32,
) -> Result<Option<Stored>, StorageError> {
    let row = match size {
        Some(n) => {
            sqlx::query("SELECT size, root, note FROM disclosure_checkpoint WHERE size = $1")
                .bind(n as i64)
                .fetch_optional(&mut *conn)
                .await?
        }
        None => {
            sqlx::query(
                "SELECT c.size, c.root, c.note FROM disclosure_checkpoint c \
                 WHERE (SELECT COUNT(*) FROM disclosure_cosignature s WHERE s.size = c.size) >= $1 \
                 ORDER BY c.size DESC LIMIT 1",
            )
            .bind(i64::from(required))
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    let Some(r) = row else {
        return Ok(None);
    };
    let size = r.try_get::<i64, _>(0)? as u64;
    let lines = cosignatures(conn, size).await?;
    let note: String = r.try_get(2)?;
    Ok(Some(Stored {
        size,
        root: r.try_get(1)?,
        note: crate::cosign::with_signatures(&note, &lines),
        cosignatures: lines.len(),
    }))
}

/// The cosignature lines stored for the checkpoint of `size`, by witness name.
async fn cosignatures(conn: &mut AnyConnection, size: u64) -> Result<Vec<String>, StorageError> {
    let rows =
        sqlx::query("SELECT line FROM disclosure_cosignature WHERE size = $1 ORDER BY witness")
            .bind(size as i64)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// The register's head as an operator watches it: the log's size, and the newest checkpoint's
/// size, signing time and cosignatures.
pub struct Head {
    pub log_size: i64,
    pub size: i64,
    pub signed_at: i64,
    pub cosignatures: i64,
}

/// The head, or `None` before the first checkpoint.
pub async fn head(conn: &mut AnyConnection) -> Result<Option<Head>, StorageError> {
    let row = sqlx::query(
        "SELECT (SELECT size FROM disclosure_log_head WHERE id = 1), c.size, c.signed_at, \
         (SELECT COUNT(*) FROM disclosure_cosignature s WHERE s.size = c.size) \
         FROM disclosure_checkpoint c ORDER BY c.size DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(Head {
        log_size: r.try_get(0)?,
        size: r.try_get(1)?,
        signed_at: r.try_get(2)?,
        cosignatures: r.try_get(3)?,
    }))
}

/// Stores the checkpoint of `size` unless a replica stored it first.
pub async fn insert(
    conn: &mut AnyConnection,
    size: u64,
    root: &str,
    note: &str,
    signed_at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO disclosure_checkpoint (size, root, note, signed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (size) DO NOTHING",
    )
    .bind(size as i64)
    .bind(root)
    .bind(note)
    .bind(signed_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
