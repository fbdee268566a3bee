//! The SQL of the sweeps that keep sealed rows under the current keys: envelopes wrapped again
//! under the current key (`rewrap`), keyed hashes computed again under the current index key
//! (`reindex`). Each sweep reads a page after a cursor, then writes each row back by an update
//! guarded by what it replaces.

use creditmesh_domain::Error;
use creditmesh_domain::tenant::REGION;
use creditmesh_rpc::{CallContext, ServiceStore, Written};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row, any::AnyRow};

use crate::index::IndexKeys;

/// Rows read per page, and written back per transaction.
pub const BATCH: i64 = 200;

/// The tables holding keyed hashes, with the label their gauge carries.
pub const TABLES: [(&str, &str); 4] = [
    ("datapush_record", "record"),
    ("datapush_version", "version"),
    ("datapush_objection", "objection"),
    ("datapush_access_code", "access_code"),
];

/// A condition true of rows whose `column` holds none of `ids`, written as ranges so that an
/// index on the column answers it without a scan when no such row is left.
pub fn outside(column: &str, ids: &[&str]) -> String {
    let mut ids: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let Some(first) = ids.first() else {
        return "1 = 1".into();
    };
    let mut ranges = vec![format!("{column} < '{first}'")];
    for pair in ids.windows(2) {
        ranges.push(format!(
            "({column} > '{}' AND {column} < '{}')",
            pair[0], pair[1]
        ));
    }
    ranges.push(format!("{column} > '{}'", ids[ids.len() - 1]));
    format!("({})", ranges.join(" OR "))
}

/// Rows whose `column` says they are left to hash again: once a rotation is switched, those
/// under any key but the current one; otherwise only those from before keys had ids, so that
/// a replica not yet restarted never moves rows back.
fn left_to_hash(column: &str, index: &IndexKeys) -> String {
    if index.moving() {
        outside(column, &[&index.current.id])
    } else {
        format!("{column} = ''")
    }
}

/// How many rows of each table hold hashes under a key other than the current one (access
/// codes only while valid), by the label of [`TABLES`].
pub async fn stale(
    conn: &mut AnyConnection,
    index: &IndexKeys,
    now: i64,
) -> Result<Vec<(&'static str, i64)>, StorageError> {
    let mut counts = Vec::new();
    for (table, label) in TABLES {
        let valid = if table == "datapush_access_code" {
            format!(" AND expires_at > {now}")
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT COUNT(*) FROM {table} WHERE {}{valid}",
            outside("index_key", &[&index.current.id])
        );
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        counts.push((label, n));
    }
    Ok(counts)
}

/// The rows holding envelopes sealed under a key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Envelope {
    Record,
    Version,
    Objection,
    Material,
}

impl Envelope {
    /// Selects `id, version, tenant, binding part 1, binding part 2, key_id, envelope` of rows
    /// after the cursor `($1, $2)`.
    pub fn select(self) -> &'static str {
        match self {
            Envelope::Record => {
                "SELECT record_id, CAST(0 AS BIGINT), tenant, agency_uscc, record_key, key_id, \
                 envelope FROM datapush_record WHERE key_id <> '' AND record_id > $1 \
                 AND CAST($2 AS BIGINT) >= 0 AND key_id NOT IN"
            }
            Envelope::Version => {
                "SELECT v.record_id, v.version, r.tenant, r.agency_uscc, r.record_key, v.key_id, \
                 v.envelope FROM datapush_version v JOIN datapush_record r \
                 ON r.record_id = v.record_id WHERE v.key_id <> '' \
                 AND (v.record_id > $1 OR (v.record_id = $1 AND v.version > $2)) \
                 AND v.key_id NOT IN"
            }
            Envelope::Objection => {
                "SELECT objection_id, CAST(0 AS BIGINT), tenant, objection_id, '', key_id, \
                 private_envelope FROM datapush_objection WHERE key_id <> '' \
                 AND objection_id > $1 AND CAST($2 AS BIGINT) >= 0 AND key_id NOT IN"
            }
            Envelope::Material => {
                "SELECT material_id, CAST(0 AS BIGINT), tenant, material_id, '', key_id, \
                 envelope FROM datapush_material WHERE key_id <> '' \
                 AND material_id > $1 AND CAST($2 AS BIGINT) >= 0 AND key_id NOT IN"
            }
        }
    }

    /// Binds `envelope, key_id, id, version, old key_id, old envelope`.
    pub fn update(self) -> &'static str {
        match self {
            Envelope::Record => {
                "UPDATE datapush_record SET envelope = $1, key_id = $2 WHERE record_id = $3 \
                 AND CAST($4 AS BIGINT) >= 0 AND key_id = $5 AND envelope = $6"
            }
            Envelope::Version => {
                "UPDATE datapush_version SET envelope = $1, key_id = $2 WHERE record_id = $3 \
                 AND version = CAST($4 AS BIGINT) AND key_id = $5 AND envelope = $6"
            }
            Envelope::Objection => {
                "UPDATE datapush_objection SET private_envelope = $1, key_id = $2 \
                 WHERE objection_id = $3 AND CAST($4 AS BIGINT) >= 0 AND key_id = $5 \
                 AND private_envelope = $6"
            }
            Envelope::Material => {
                "UPDATE datapush_material SET envelope = $1, key_id = $2 \
                 WHERE material_id = $3 AND CAST($4 AS BIGINT) >= 0 AND key_id = $5 \
                 AND envelope = $6"
            }
        }
    }
}

/// The rows holding hashes under an index key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyedHash {
    Record,
    Version,
    Objection,
    DeletedRecord,
}

impl KeyedHash {
    /// Selects rows left to hash again under `index`, after the cursor `($1, $2)`; the first
    /// two columns are the cursor.
    pub fn select(self, index: &IndexKeys) -> String {
        let (sql, order) = match self {
            KeyedHash::Record => (
                "SELECT record_id, CAST(0 AS BIGINT), tenant, agency_uscc, record_key, \
                 subject_kind, envelope, key_id, index_key FROM datapush_record \
                 WHERE envelope <> '' AND record_id > $1 AND CAST($2 AS BIGINT) >= 0 AND",
                "record_id",
            ),
            KeyedHash::Version => (
                "SELECT v.record_id, v.version, r.tenant, r.agency_uscc, r.record_key, \
                 r.subject_kind, v.envelope, v.key_id, v.index_key FROM datapush_version v \
                 JOIN datapush_record r ON r.record_id = v.record_id \
                 WHERE (v.record_id > $1 OR (v.record_id = $1 AND v.version > $2)) AND",
                "v.record_id, v.version",
            ),
            KeyedHash::Objection => (
                "SELECT objection_id, CAST(0 AS BIGINT), tenant, record_id, private_envelope, \
                 key_id, index_key FROM datapush_objection \
                 WHERE objection_id > $1 AND CAST($2 AS BIGINT) >= 0 AND",
                "objection_id",
            ),
            KeyedHash::DeletedRecord => (
                "SELECT record_id, CAST(0 AS BIGINT), subject_kind, index_key \
                 FROM datapush_record WHERE envelope = '' AND record_id > $1 \
                 AND CAST($2 AS BIGINT) >= 0 AND",
                "record_id",
            ),
        };
        let column = if self == KeyedHash::Version {
            "v.index_key"
        } else {
            "index_key"
        };
        format!(
            "{sql} {} ORDER BY {order} LIMIT {BATCH}",
            left_to_hash(column, index)
        )
    }

    /// Binds the new values, then the row's key and what it held.
    pub fn update(self) -> &'static str {
        match self {
            KeyedHash::Record => {
                "UPDATE datapush_record SET subject_index = $1, fingerprint = $2, index_key = $3 \
                 WHERE record_id = $4 AND envelope = $5 AND index_key = $6"
            }
            KeyedHash::Version => {
                "UPDATE datapush_version SET fingerprint = $1, index_key = $2 \
                 WHERE record_id = $3 AND version = CAST($4 AS BIGINT) AND envelope = $5 \
                 AND index_key = $6"
            }
            KeyedHash::Objection => {
                "UPDATE datapush_objection SET subject_index = $1, private_envelope = $2, \
                 key_id = $3, index_key = $4 WHERE objection_id = $5 AND private_envelope = $6 \
                 AND index_key = $7"
            }
            KeyedHash::DeletedRecord => {
                "UPDATE datapush_record SET subject_index = $1, index_key = $2 \
                 WHERE record_id = $3 AND envelope = '' AND index_key = $4"
            }
        }
    }
}

/// The page of `sql` after `cursor` (bound as `$1`, `$2`).
pub async fn page(
    conn: &mut AnyConnection,
    sql: String,
    cursor: &(String, i64),
) -> Result<Vec<AnyRow>, StorageError> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(cursor.0.clone())
        .bind(cursor.1)
        .fetch_all(&mut *conn)
        .await?)
}

/// The cursor a page ends at: its last row's first two columns.
pub fn cursor_of(last: &AnyRow) -> Result<(String, i64), StorageError> {
    Ok((last.try_get(0)?, last.try_get(1)?))
}

/// Runs `sql` once with each row of `binds` in one transaction, as `operation` of `ctx`;
/// answers how many rows it changed. Every update here is guarded by what it replaces.
pub async fn guarded(
    store: &ServiceStore,
    ctx: &CallContext,
    operation: &'static str,
    sql: &'static str,
    binds: &[Vec<String>],
) -> Result<usize, Error> {
    store
        .write(ctx, operation, |mut tx| async move {
            let mut n = 0;
            for row in binds {
                let mut q = sqlx::query(sql);
                for b in row {
                    q = q.bind(b.clone());
                }
                n += q
                    .execute(&mut *tx)
                    .await
                    .map_err(StorageError::from)?
                    .rows_affected() as usize;
            }
            Ok((
                tx,
                Written {
                    value: n,
                    tenant: REGION.to_string(),
                },
            ))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::outside;

    #[test]
    fn rows_outside_the_settled_keys_are_ranges() {
        assert_eq!(outside("k", &["b"]), "(k < 'b' OR k > 'b')");
        assert_eq!(
            outside("k", &["c", "a", "c"]),
            "(k < 'a' OR (k > 'a' AND k < 'c') OR k > 'c')"
        );
        // Only hex ids are ever written into the statement.
        assert_eq!(outside("k", &["x'; --"]), "1 = 1");
    }
}
