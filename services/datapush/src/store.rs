//! SQL of pushed records: a batch is written with one multi-row upsert whose conflict clause
//! decides new, new version or duplicate. A record row holds its current version; the one it
//! replaces goes to `datapush_version` by a trigger (migration 102), whatever statement moves
//! it on. On PostgreSQL a batch travels as one JSON parameter; SQLite takes a row of parameters
//! per record.

use creditmesh_domain::lifecycle::{Machine, PushedRecord};
use std::collections::HashMap;

use creditmesh_storage::sqlx::{self, AnyConnection, Row, any::AnyRow};
use creditmesh_storage::{Engine, StorageError};

use crate::index::Hashed;

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
    /// The id of the index key `subject_index` and `fingerprint` are under.
    pub index_key: String,
}

/// What a record's key holds now: its id, version and fingerprint.
pub struct Held {
    pub record_key: String,
    pub record_id: String,
    pub version: i64,
    pub fingerprint: String,
    pub status: String,
}

impl Held {
    /// Whether the record was deleted on an objection (Art. 22): its key takes nothing new.
    pub fn deleted(&self) -> bool {
        PushedRecord::parse(&self.status) == Some(PushedRecord::Deleted)
    }
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
    engine: Engine,
    agency: &str,
    keys: &[&str],
) -> Result<Vec<Held>, StorageError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    if engine == Engine::Postgres {
        let rows = sqlx::query(
            "SELECT record_key, record_id, version, fingerprint, status FROM datapush_record \
             WHERE agency_uscc = $1 AND record_key IN (SELECT json_array_elements_text($2::json))",
        )
        .bind(agency.to_owned())
        .bind(serde_json::to_string(keys).map_err(|e| StorageError::Other(e.to_string()))?)
        .fetch_all(&mut *conn)
        .await?;
        return held_rows(&rows);
    }
    let sql = format!(
        "SELECT record_key, record_id, version, fingerprint, status FROM datapush_record \
         WHERE agency_uscc = $1 AND record_key IN ({})",
        places(2, keys.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(agency.to_owned());
    for k in keys {
        q = q.bind((*k).to_owned());
    }
    held_rows(&q.fetch_all(&mut *conn).await?)
}

/// Rows of `record_key, record_id, version, fingerprint, status`.
fn held_rows(rows: &[AnyRow]) -> Result<Vec<Held>, StorageError> {
    rows.iter()
        .map(|r| {
            Ok(Held {
                record_key: r.try_get(0)?,
                record_id: r.try_get(1)?,
                version: r.try_get(2)?,
                fingerprint: r.try_get(3)?,
                status: r.try_get(4)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

const COLUMNS: usize = 16;

/// Writes `batch` (keys distinct) for `agency` of `tenant`: a key not held is stored at version
/// 1, a key held with another fingerprint gets the next version, a key held with the same
/// fingerprint, or deleted on an objection, is left alone. Answers what was written; a key missing from the answer was a
/// duplicate.
pub async fn upsert(
    conn: &mut AnyConnection,
    engine: Engine,
    agency: &str,
    tenant: &str,
    now: i64,
    batch: &[Prepared],
) -> Result<Vec<Held>, StorageError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    if engine == Engine::Postgres {
        return upsert_pg(conn, agency, tenant, now, batch).await;
    }
    let values = (0..batch.len())
        .map(|i| format!("({})", places(1 + i * COLUMNS, COLUMNS)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO datapush_record (record_id, tenant, agency_uscc, record_key, subject_kind, \
         subject_index, category, collected_on, fingerprint, envelope, key_id, version, status, \
         received_at, updated_at, index_key) VALUES {values} {ON_CONFLICT}"
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
            .bind(now)
            .bind(p.index_key.clone());
    }
    held_rows(&q.fetch_all(&mut *conn).await?)
}

/// New content under a held key is its next version; the same content, or a key whose record
/// was deleted on an objection, is left alone.
const ON_CONFLICT: &str = "ON CONFLICT (agency_uscc, record_key) DO UPDATE SET \
    tenant = excluded.tenant, subject_kind = excluded.subject_kind, \
    subject_index = excluded.subject_index, category = excluded.category, \
    collected_on = excluded.collected_on, fingerprint = excluded.fingerprint, \
    envelope = excluded.envelope, key_id = excluded.key_id, index_key = excluded.index_key, \
    version = datapush_record.version + 1, updated_at = excluded.updated_at, \
    change = 'pushed' WHERE datapush_record.fingerprint <> excluded.fingerprint \
    AND datapush_record.status <> 'deleted' \
    RETURNING record_key, record_id, version, fingerprint, status";

/// The PostgreSQL form of [`upsert`]: the batch as one JSON parameter.
async fn upsert_pg(
    conn: &mut AnyConnection,
    agency: &str,
    tenant: &str,
    now: i64,
    batch: &[Prepared],
) -> Result<Vec<Held>, StorageError> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        record_id: String,
        record_key: &'a str,
        subject_kind: &'a str,
        subject_index: &'a str,
        category: &'a str,
        collected_on: &'a str,
        fingerprint: &'a str,
        envelope: &'a str,
        key_id: &'a str,
        index_key: &'a str,
    }
    let rows: Vec<Row<'_>> = batch
        .iter()
        .map(|p| Row {
            record_id: uuid::Uuid::now_v7().to_string(),
            record_key: &p.record_key,
            subject_kind: p.subject_kind,
            subject_index: &p.subject_index,
            category: &p.category,
            collected_on: &p.collected_on,
            fingerprint: &p.fingerprint,
            envelope: &p.envelope,
            key_id: &p.key_id,
            index_key: &p.index_key,
        })
        .collect();
    let rows = serde_json::to_string(&rows).map_err(|e| StorageError::Other(e.to_string()))?;
    let sql = format!(
        "INSERT INTO datapush_record (record_id, tenant, agency_uscc, record_key, \
         subject_kind, subject_index, category, collected_on, fingerprint, envelope, key_id, \
         version, status, received_at, updated_at, index_key) SELECT record_id, $1, $2, \
         record_key, subject_kind, subject_index, category, collected_on, fingerprint, \
         envelope, key_id, 1, 'active', $3, $3, index_key FROM json_to_recordset($4::json) \
         AS x(record_id text, record_key text, subject_kind text, subject_index text, \
         category text, collected_on text, fingerprint text, envelope text, key_id text, \
         index_key text) {ON_CONFLICT}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.to_owned())
        .bind(agency.to_owned())
        .bind(now)
        .bind(rows)
        .fetch_all(&mut *conn)
        .await?;
    held_rows(&rows)
}

/// One record as stored, sealed.
#[derive(Clone)]
pub struct RecordRow {
    pub record_id: String,
    pub tenant: String,
    pub agency_uscc: String,
    pub record_key: String,
    pub subject_index: String,
    pub category: String,
    pub collected_on: String,
    pub envelope: String,
    pub key_id: String,
    pub version: i64,
    pub status: String,
    pub received_at: i64,
    /// `person` or `organisation`.
    pub subject_kind: String,
}

const RECORD_COLUMNS: &str = "record_id, tenant, agency_uscc, record_key, subject_index, \
    category, collected_on, envelope, key_id, version, status, received_at, subject_kind";

fn record_row(r: &AnyRow) -> Result<RecordRow, sqlx::Error> {
    Ok(RecordRow {
        record_id: r.try_get(0)?,
        tenant: r.try_get(1)?,
        agency_uscc: r.try_get(2)?,
        record_key: r.try_get(3)?,
        subject_index: r.try_get(4)?,
        category: r.try_get(5)?,
        collected_on: r.try_get(6)?,
        envelope: r.try_get(7)?,
        key_id: r.try_get(8)?,
        version: r.try_get(9)?,
        status: r.try_get(10)?,
        received_at: r.try_get(11)?,
        subject_kind: r.try_get(12)?,
    })
}

pub async fn find(
    conn: &mut AnyConnection,
    record_id: &str,
) -> Result<Option<RecordRow>, StorageError> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM datapush_record WHERE record_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(record_id.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(record_row).transpose()?)
}

/// Whose records a reader may see: one authority's, one agency's, or all.
#[derive(Default)]
pub struct Scope<'a> {
    pub tenant: Option<String>,
    pub agency: Option<&'a str>,
}

/// The records about `subject` within `scope` after the record `after` (empty: from the
/// first), in the order they were first received, at most `limit`.
pub async fn of_subject(
    conn: &mut AnyConnection,
    subject: &Hashed,
    scope: &Scope<'_>,
    after: &str,
    limit: i64,
) -> Result<Vec<RecordRow>, StorageError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM datapush_record WHERE subject_index IN ($1, $6) \
         AND record_id > $2 AND ($3 = '' OR tenant = $3) AND ($4 = '' OR agency_uscc = $4) \
         ORDER BY record_id LIMIT $5"
    );
    let (a, b) = subject.pair();
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(a)
        .bind(after.to_owned())
        .bind(scope.tenant.clone().unwrap_or_default())
        .bind(scope.agency.unwrap_or_default().to_owned())
        .bind(limit)
        .bind(b)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.iter().map(record_row).collect::<Result<_, _>>()?)
}

/// One version of a record as kept in its history.
pub struct VersionRow {
    pub version: i64,
    pub envelope: String,
    pub key_id: String,
    pub changed_at: i64,
    pub change: String,
}

/// `$1, $2, …, $n`: the placeholders of an `IN` list of `n` values.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows of `sql`, whose `{ids}` stands for the placeholders of `ids`, bound in order.
pub async fn fetch_in(
    conn: &mut AnyConnection,
    sql: &str,
    ids: &[String],
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let sql = sql.replace("{ids}", &placeholders(ids.len()));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.clone());
    }
    query.fetch_all(&mut *conn).await
}

/// Every version of each of `record_ids`, by record, each record's current one last: one query
/// whatever their number.
pub async fn versions_of(
    conn: &mut AnyConnection,
    record_ids: &[String],
) -> Result<HashMap<String, Vec<VersionRow>>, StorageError> {
    let mut by_record: HashMap<String, Vec<VersionRow>> = HashMap::new();
    if record_ids.is_empty() {
        return Ok(by_record);
    }
    let sql = "SELECT record_id, version, envelope, key_id, changed_at, change \
               FROM datapush_version WHERE record_id IN ({ids}) UNION ALL \
               SELECT record_id, version, envelope, key_id, updated_at, change \
               FROM datapush_record WHERE record_id IN ({ids}) ORDER BY 1, 2";
    for r in fetch_in(conn, sql, record_ids).await? {
        by_record
            .entry(r.try_get(0)?)
            .or_default()
            .push(VersionRow {
                version: r.try_get(1)?,
                envelope: r.try_get(2)?,
                key_id: r.try_get(3)?,
                changed_at: r.try_get(4)?,
                change: r.try_get(5)?,
            });
    }
    Ok(by_record)
}

/// Gives the record new content (or none: `envelope` empty for a deletion) as its next version,
/// made by `change`; the version it had goes to the history. Answers the new version.
pub async fn new_version(
    conn: &mut AnyConnection,
    record_id: &str,
    fingerprint: &str,
    envelope: &str,
    key_id: &str,
    now: i64,
    change: &str,
) -> Result<i64, StorageError> {
    Ok(sqlx::query(
        "UPDATE datapush_record SET version = version + 1, fingerprint = $1, envelope = $2, \
         key_id = $3, updated_at = $4, change = $5 WHERE record_id = $6 RETURNING version",
    )
    .bind(fingerprint.to_owned())
    .bind(envelope.to_owned())
    .bind(key_id.to_owned())
    .bind(now)
    .bind(change.to_owned())
    .bind(record_id.to_owned())
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?)
}

/// Erases the content of every earlier version of a deleted record: what was deleted is not
/// kept in its history either.
pub async fn erase_history(conn: &mut AnyConnection, record_id: &str) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE datapush_version SET envelope = '', key_id = '', fingerprint = '' \
         WHERE record_id = $1",
    )
    .bind(record_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A read of a record, logged (Art. 21).
pub struct Use<'a> {
    pub record_id: &'a str,
    pub version: i64,
    pub principal: &'a str,
    pub tenant: &'a str,
    pub purpose: &'a str,
    pub legal_basis: &'a str,
    pub referral_id: &'a str,
    /// [`READ`] on the platform, or [`AGENCY_USE`] recorded by the pushing agency.
    pub kind: &'a str,
    pub recipient: &'a str,
    pub at: i64,
}

/// A read through the platform, by a regulator or department.
pub const READ: &str = "read";
/// A use or disclosure the pushing agency recorded.
pub const AGENCY_USE: &str = "agency";

pub async fn log_use(conn: &mut AnyConnection, u: &Use<'_>) -> Result<(), StorageError> {
    log_uses(conn, std::slice::from_ref(u)).await
}

/// Logs `uses` in one statement whatever their number.
pub async fn log_uses(conn: &mut AnyConnection, uses: &[Use<'_>]) -> Result<(), StorageError> {
    if uses.is_empty() {
        return Ok(());
    }
    let rows = (0..uses.len())
        .map(|i| {
            let places = (1..=11)
                .map(|k| format!("${}", i * 11 + k))
                .collect::<Vec<_>>();
            format!("({})", places.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO datapush_use (use_id, record_id, version, principal, tenant, purpose, \
         used_at, legal_basis, referral_id, kind, recipient) VALUES {rows}"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for u in uses {
        query = query
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(u.record_id.to_owned())
            .bind(u.version)
            .bind(u.principal.to_owned())
            .bind(u.tenant.to_owned())
            .bind(u.purpose.to_owned())
            .bind(u.at)
            .bind(u.legal_basis.to_owned())
            .bind(u.referral_id.to_owned())
            .bind(u.kind.to_owned())
            .bind(u.recipient.to_owned());
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// A logged read: when, by whom, for what.
pub struct UseRow {
    pub used_at: i64,
    pub principal: String,
    pub purpose: String,
    pub legal_basis: String,
    pub referral_id: String,
    pub kind: String,
    pub recipient: String,
}

/// The logged uses of each of `record_ids`, by record, oldest first: one query whatever their
/// number.
pub async fn uses_of(
    conn: &mut AnyConnection,
    record_ids: &[String],
) -> Result<HashMap<String, Vec<UseRow>>, StorageError> {
    let mut by_record: HashMap<String, Vec<UseRow>> = HashMap::new();
    if record_ids.is_empty() {
        return Ok(by_record);
    }
    let sql = "SELECT record_id, used_at, principal, purpose, legal_basis, referral_id, kind, \
               recipient FROM datapush_use WHERE record_id IN ({ids}) ORDER BY used_at, use_id";
    for r in fetch_in(conn, sql, record_ids).await? {
        by_record.entry(r.try_get(0)?).or_default().push(UseRow {
            used_at: r.try_get(1)?,
            principal: r.try_get(2)?,
            purpose: r.try_get(3)?,
            legal_basis: r.try_get(4)?,
            referral_id: r.try_get(5)?,
            kind: r.try_get(6)?,
            recipient: r.try_get(7)?,
        });
    }
    Ok(by_record)
}

/// Which of `record_ids` anyone has read.
pub async fn read_before(
    conn: &mut AnyConnection,
    record_ids: &[&str],
) -> Result<std::collections::HashSet<String>, StorageError> {
    if record_ids.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "SELECT DISTINCT record_id FROM datapush_use WHERE kind = 'read' AND record_id IN ({})",
        places(1, record_ids.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in record_ids {
        q = q.bind((*id).to_owned());
    }
    Ok(q.fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// Tells every principal that read an earlier version of `record_id` that it is now at
/// `version` (corrected, updated or deleted): one notice per reader and version, however often
/// this is asked. Answers how many readers were told now.
pub async fn notify_readers(
    conn: &mut AnyConnection,
    record_id: &str,
    version: i64,
    change: &str,
    now: i64,
) -> Result<u64, StorageError> {
    let readers = sqlx::query(
        "SELECT principal, MAX(version) FROM datapush_use WHERE record_id = $1 \
         AND kind = 'read' AND version < $2 \
         GROUP BY principal",
    )
    .bind(record_id.to_owned())
    .bind(version)
    .fetch_all(&mut *conn)
    .await?;
    let mut told = 0;
    for r in &readers {
        let principal: String = r.try_get(0)?;
        let read_version: i64 = r.try_get(1)?;
        told += sqlx::query(
            "INSERT INTO datapush_notice (notice_id, principal, record_id, version, \
             read_version, change, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (principal, record_id, version) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(principal)
        .bind(record_id.to_owned())
        .bind(version)
        .bind(read_version)
        .bind(change.to_owned())
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(told)
}

/// A notice in a reader's inbox.
pub struct NoticeRow {
    pub notice_id: String,
    pub record_id: String,
    pub version: i64,
    pub read_version: i64,
    pub change: String,
    pub created_at: i64,
}

/// `principal`'s notices after `after` (a notice id; empty for the first page), oldest first.
pub async fn notices(
    conn: &mut AnyConnection,
    principal: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<NoticeRow>, StorageError> {
    let rows = sqlx::query(
        "SELECT notice_id, record_id, version, read_version, change, created_at \
         FROM datapush_notice WHERE principal = $1 AND notice_id > $2 ORDER BY notice_id LIMIT $3",
    )
    .bind(principal.to_owned())
    .bind(after.to_owned())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            Ok::<_, sqlx::Error>(NoticeRow {
                notice_id: r.try_get(0)?,
                record_id: r.try_get(1)?,
                version: r.try_get(2)?,
                read_version: r.try_get(3)?,
                change: r.try_get(4)?,
                created_at: r.try_get(5)?,
            })
        })
        .collect::<Result<_, _>>()?)
}

/// The table datapush's job runs claim their names in.
pub const JOBS: &str = "datapush_job";

/// A record whose retention ended, as its purge is recorded.
pub struct Expired {
    pub record_id: String,
    pub tenant: String,
    pub agency_uscc: String,
    pub record_key: String,
    pub collected_on: String,
}

/// The records of `category` collected before `limit` (YYYY-MM-DD).
pub async fn collected_before(
    conn: &mut AnyConnection,
    category: &str,
    limit: &str,
) -> Result<Vec<Expired>, StorageError> {
    let rows = sqlx::query(
        "SELECT record_id, tenant, agency_uscc, record_key, collected_on FROM datapush_record \
         WHERE category = $1 AND collected_on < $2",
    )
    .bind(category.to_owned())
    .bind(limit.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Expired {
                record_id: r.try_get(0)?,
                tenant: r.try_get(1)?,
                agency_uscc: r.try_get(2)?,
                record_key: r.try_get(3)?,
                collected_on: r.try_get(4)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Records that `r` (of `category`) was purged in `run`.
pub async fn insert_purge(
    conn: &mut AnyConnection,
    r: &Expired,
    run: &str,
    category: &str,
    now: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO datapush_purge (record_id, run, tenant, agency_uscc, record_key, \
         category, collected_on, purged_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(r.record_id.clone())
    .bind(run.to_owned())
    .bind(r.tenant.clone())
    .bind(r.agency_uscc.clone())
    .bind(r.record_key.clone())
    .bind(category.to_owned())
    .bind(r.collected_on.clone())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes a record with its versions and the materials of its objections.
pub async fn delete_record(conn: &mut AnyConnection, record_id: &str) -> Result<(), StorageError> {
    for table in ["datapush_material", "datapush_version", "datapush_record"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE record_id = $1"
        )))
        .bind(record_id.to_owned())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Has PostgreSQL plan each statement of the transaction for its own values: the key lists of
/// a batch look alike to the plan cache, and a generic plan made while the table was small
/// scans it whole once it is not.
pub async fn plan_each_batch(conn: &mut AnyConnection, engine: Engine) -> Result<(), StorageError> {
    if engine == Engine::Postgres {
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
