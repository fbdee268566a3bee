//! The register's append-only Merkle log in the database: RFC 6962 hashing through
//! `tlog_tiles` (a port of Go's `sumdb/tlog`), whose stored-hash layout is kept in
//! `disclosure_log_hash` (one row per stored hash index). Appends are serialised by the
//! guarded increment of the log's size, in the appending transaction.

use std::collections::HashMap;
use std::sync::Mutex;

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};
use tlog_tiles::{Hash, HashReader};

/// Reserves the next leaf index (the log's size before this append).
pub async fn reserve(conn: &mut AnyConnection) -> Result<u64, StorageError> {
    let row =
        sqlx::query("UPDATE disclosure_log_head SET size = size + 1 WHERE id = 1 RETURNING size")
            .fetch_one(&mut *conn)
            .await?;
    let size: i64 = row.try_get(0)?;
    Ok(size as u64 - 1)
}

/// The log's size as committed.
pub async fn size(conn: &mut AnyConnection) -> Result<u64, StorageError> {
    let row = sqlx::query("SELECT size FROM disclosure_log_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<i64, _>(0)? as u64)
}

/// Stores the hashes that leaf `n` (reserved by [`reserve`]) completes.
pub async fn append(conn: &mut AnyConnection, n: u64, leaf: Hash) -> Result<(), StorageError> {
    let hashes = with_stored(conn, |r| {
        tlog_tiles::stored_hashes_for_record_hash(n, leaf, r)
    })
    .await?;
    let first = tlog_tiles::stored_hash_index(0, n);
    let values: Vec<String> = (0..hashes.len())
        .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
        .collect();
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO disclosure_log_hash (idx, hash) VALUES {}",
        values.join(", ")
    )));
    for (i, h) in hashes.iter().enumerate() {
        insert = insert
            .bind((first + i as u64) as i64)
            .bind(hex::encode(h.0));
    }
    insert.execute(&mut *conn).await?;
    Ok(())
}

/// The root hash of the first `n` leaves.
pub async fn tree_hash(conn: &mut AnyConnection, n: u64) -> Result<Hash, StorageError> {
    with_stored(conn, |r| tlog_tiles::tree_hash(n, r)).await
}

/// The inclusion proof of leaf `n` in the tree of size `t`.
pub async fn prove_leaf(
    conn: &mut AnyConnection,
    t: u64,
    n: u64,
) -> Result<Vec<Hash>, StorageError> {
    with_stored(conn, |r| tlog_tiles::prove_record(t, n, r)).await
}

/// The consistency proof between the trees of sizes `n` and `t`.
pub async fn prove_consistency(
    conn: &mut AnyConnection,
    t: u64,
    n: u64,
) -> Result<Vec<Hash>, StorageError> {
    with_stored(conn, |r| tlog_tiles::prove_tree(t, n, r)).await
}

/// The hashes of a tile (tlog-tiles height 8) as its file holds them.
pub async fn tile_data(
    conn: &mut AnyConnection,
    tile: &tlog_tiles::Tile,
) -> Result<Vec<u8>, StorageError> {
    with_stored(conn, |r| tile.read_data(r)).await
}

/// Runs `f` over the stored hashes: once to learn which indexes it reads (which depend only on
/// the sizes asked about), then again with those read from the database.
async fn with_stored<T>(
    conn: &mut AnyConnection,
    f: impl Fn(&Stored) -> Result<T, tlog_tiles::Error>,
) -> Result<T, StorageError> {
    let mut stored = Stored::default();
    for _ in 0..4 {
        match f(&stored) {
            Ok(v) if stored.missing.lock().map(|m| m.is_empty()).unwrap_or(false) => return Ok(v),
            Err(e) if stored.missing.lock().map(|m| m.is_empty()).unwrap_or(false) => {
                return Err(StorageError::Corrupt(format!("register log: {e}")));
            }
            _ => {}
        }
        let missing: Vec<u64> =
            std::mem::take(&mut *stored.missing.lock().unwrap_or_else(|e| e.into_inner()));
        for chunk in missing.chunks(500) {
            let list = chunk
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT idx, hash FROM disclosure_log_hash WHERE idx IN ({list})"
            )))
            .fetch_all(&mut *conn)
            .await?;
            for r in rows {
                let idx: i64 = r.try_get(0)?;
                let text: String = r.try_get(1)?;
                let bytes: [u8; 32] = hex::decode(&text)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| StorageError::Corrupt(format!("log hash {idx}")))?;
                stored.known.insert(idx as u64, Hash(bytes));
            }
            if let Some(absent) = chunk.iter().find(|i| !stored.known.contains_key(i)) {
                return Err(StorageError::Corrupt(format!(
                    "register log: stored hash {absent} is missing"
                )));
            }
        }
    }
    Err(StorageError::Corrupt(
        "register log: hash reads did not settle".into(),
    ))
}

/// Hashes read so far; an index not among them is noted and read as zero for the next pass.
#[derive(Default)]
struct Stored {
    known: HashMap<u64, Hash>,
    missing: Mutex<Vec<u64>>,
}

impl HashReader for Stored {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let mut missing = self.missing.lock().unwrap_or_else(|e| e.into_inner());
        Ok(indexes
            .iter()
            .map(|i| match self.known.get(i) {
                Some(h) => *h,
                None => {
                    missing.push(*i);
                    Hash::default()
                }
            })
            .collect())
    }
}
