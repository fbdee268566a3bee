//! SQL of pushed records: a batch is written with one multi-row upsert whose conflict clause
//! decides new, new version or duplicate, and the versions it made are copied into the history.

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row, any::AnyRow};

/// A record checked and sealed, ready to write.
pub struct Prepared {
    pub record_key: String,
    pub subject_kind: &'static str,
    pub subject_index: String,
    pub category: String,
    pub collected_on: String,
    /// A keyed hash of everything the record says: equal means duplicate.
    pub fingerprint: String,
    pub envelope: String,
    pub key_id: String,
}

/// What a record's key holds now: its id, version and fingerprint.
pub struct Held {
    pub record_key: String,
    pub record_id: String,
    pub version: i64,
    pub fingerprint: String,
}

fn places(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `agency` holds under `keys`.
pub async fn held(
    conn: &mut AnyConnection,
    agency: &str,
    keys: &[&str],
) -> Result<Vec<Held>, StorageError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT record_key, record_id, version, fingerprint FROM datapush_record \
         WHERE agency_uscc = $1 AND record_key IN ({})",
        places(2, keys.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(agency.to_owned());
    for k in keys {
        q = q.bind((*k).to_owned());
    }
    held_rows(&q.fetch_all(&mut *conn).await?)
}

/// Rows of `record_key, record_id, version, fingerprint`.
fn held_rows(rows: &[AnyRow]) -> Result<Vec<Held>, StorageError> {
    rows.iter()
        .map(|r| {
            Ok(Held {
                record_key: r.try_get(0)?,
                record_id: r.try_get(1)?,
                version: r.try_get(2)?,
                fingerprint: r.try_get(3)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

const COLUMNS: usize = 15;

/// Writes `batch` (keys distinct) for `agency` of `tenant`: a key not held is stored at version
/// 1, a key held with another fingerprint gets the next version, a key held with the same
/// fingerprint is left alone. Answers what was written; a key missing from the answer was a
/// duplicate.
pub async fn upsert(
    conn: &mut AnyConnection,
    agency: &str,
    tenant: &str,
    now: i64,
    batch: &[Prepared],
) -> Result<Vec<Held>, StorageError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let values = (0..batch.len())
        .map(|i| format!("({})", places(1 + i * COLUMNS, COLUMNS)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO datapush_record (record_id, tenant, agency_uscc, record_key, subject_kind, \
         subject_index, category, collected_on, fingerprint, envelope, key_id, version, status, \
         received_at, updated_at) VALUES {values} \
         ON CONFLICT (agency_uscc, record_key) DO UPDATE SET tenant = excluded.tenant, \
         subject_kind = excluded.subject_kind, subject_index = excluded.subject_index, \
         category = excluded.category, collected_on = excluded.collected_on, \
         fingerprint = excluded.fingerprint, envelope = excluded.envelope, \
         key_id = excluded.key_id, version = datapush_record.version + 1, \
         updated_at = excluded.updated_at \
         WHERE datapush_record.fingerprint <> excluded.fingerprint \
         RETURNING record_key, record_id, version, fingerprint"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for p in batch {
        q = q
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(tenant.to_owned())
            .bind(agency.to_owned())
            .bind(p.record_key.clone())
            .bind(p.subject_kind)
            .bind(p.subject_index.clone())
            .bind(p.category.clone())
            .bind(p.collected_on.clone())
            .bind(p.fingerprint.clone())
            .bind(p.envelope.clone())
            .bind(p.key_id.clone())
            .bind(1i64)
            .bind("active")
            .bind(now)
            .bind(now);
    }
    let written = held_rows(&q.fetch_all(&mut *conn).await?)?;
    if !written.is_empty() {
        let sql = format!(
            "INSERT INTO datapush_version (record_id, version, fingerprint, envelope, key_id, \
             changed_at, change) SELECT record_id, version, fingerprint, envelope, key_id, \
             updated_at, 'pushed' FROM datapush_record WHERE record_id IN ({})",
            places(1, written.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for w in &written {
            q = q.bind(w.record_id.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(written)
}

/// One record as stored, sealed.
pub struct RecordRow {
    pub record_id: String,
    pub tenant: String,
    pub agency_uscc: String,
    pub record_key: String,
    pub envelope: String,
    pub key_id: String,
    pub version: i64,
    pub status: String,
    pub received_at: i64,
}

pub async fn find(
    conn: &mut AnyConnection,
    record_id: &str,
) -> Result<Option<RecordRow>, StorageError> {
    let row = sqlx::query(
        "SELECT record_id, tenant, agency_uscc, record_key, envelope, key_id, version, status, \
         received_at FROM datapush_record WHERE record_id = $1",
    )
    .bind(record_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row
        .map(|r| {
            Ok::<_, sqlx::Error>(RecordRow {
                record_id: r.try_get(0)?,
                tenant: r.try_get(1)?,
                agency_uscc: r.try_get(2)?,
                record_key: r.try_get(3)?,
                envelope: r.try_get(4)?,
                key_id: r.try_get(5)?,
                version: r.try_get(6)?,
                status: r.try_get(7)?,
                received_at: r.try_get(8)?,
            })
        })
        .transpose()?)
}
