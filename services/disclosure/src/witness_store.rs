//! What a witness node keeps (the tree it last cosigned for each log, the forks it was shown)
//! and what the register keeps of its witnesses (the size each cosigned, the cosignatures).

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};

/// The tree a witness last cosigned for a log.
pub struct State {
    pub size: u64,
    pub root: String,
}

pub async fn state(conn: &mut AnyConnection, origin: &str) -> Result<Option<State>, StorageError> {
    let row = sqlx::query("SELECT size, root FROM disclosure_witness_state WHERE origin = $1")
        .bind(origin.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        Ok(State {
            size: r.try_get::<i64, _>(0)? as u64,
            root: r.try_get(1)?,
        })
    })
    .transpose()
    .map_err(|e: sqlx::Error| e.into())
}

/// The first tree cosigned for `origin`; `false` when another submission stored one first.
pub async fn start(
    conn: &mut AnyConnection,
    origin: &str,
    next: &State,
    now: i64,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(
        "INSERT INTO disclosure_witness_state (origin, size, root, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (origin) DO NOTHING",
    )
    .bind(origin.to_owned())
    .bind(next.size as i64)
    .bind(next.root.clone())
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Moves `origin`'s tree from `known` to `next` by a guarded update; `false` when another
/// submission moved it first.
pub async fn advance(
    conn: &mut AnyConnection,
    origin: &str,
    known: &State,
    next: &State,
    now: i64,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(
        "UPDATE disclosure_witness_state SET size = $1, root = $2, updated_at = $3 \
         WHERE origin = $4 AND size = $5 AND root = $6",
    )
    .bind(next.size as i64)
    .bind(next.root.clone())
    .bind(now)
    .bind(origin.to_owned())
    .bind(known.size as i64)
    .bind(known.root.clone())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// A fork a witness was shown: what it knew, and the checkpoint offered.
pub struct Fork<'a> {
    pub origin: &'a str,
    pub seen_at: i64,
    pub known: &'a State,
    pub offered_size: u64,
    pub offered_note: &'a str,
}

pub async fn insert_fork(conn: &mut AnyConnection, f: &Fork<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO disclosure_witness_fork (origin, seen_at, known_size, known_root, \
         offered_size, offered_note) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(f.origin.to_owned())
    .bind(f.seen_at)
    .bind(f.known.size as i64)
    .bind(f.known.root.clone())
    .bind(f.offered_size as i64)
    .bind(f.offered_note.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The forks shown for `origin`, newest first: (seen at, known size, offered size).
pub async fn forks(
    conn: &mut AnyConnection,
    origin: &str,
) -> Result<Vec<(i64, u64, u64)>, StorageError> {
    let rows = sqlx::query(
        "SELECT seen_at, known_size, offered_size FROM disclosure_witness_fork \
         WHERE origin = $1 ORDER BY seen_at DESC",
    )
    .bind(origin.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get::<i64, _>(1)? as u64,
                r.try_get::<i64, _>(2)? as u64,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The size `witness` last cosigned for the register; 0 before its first.
pub async fn cosigned_size(conn: &mut AnyConnection, witness: &str) -> Result<u64, StorageError> {
    let row = sqlx::query("SELECT size FROM disclosure_cosigned WHERE witness = $1")
        .bind(witness.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<i64, _>(0)? as u64,
        None => 0,
    })
}

/// Keeps `witness`'s cosignature `line` of the checkpoint of `size`, and that it cosigned so far.
pub async fn keep_cosignature(
    conn: &mut AnyConnection,
    size: u64,
    witness: &str,
    line: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO disclosure_cosignature (size, witness, line) VALUES ($1, $2, $3) \
         ON CONFLICT (size, witness) DO NOTHING",
    )
    .bind(size as i64)
    .bind(witness.to_owned())
    .bind(line.to_owned())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO disclosure_cosigned (witness, size) VALUES ($1, $2) \
         ON CONFLICT (witness) DO UPDATE SET size = excluded.size \
         WHERE disclosure_cosigned.size < excluded.size",
    )
    .bind(witness.to_owned())
    .bind(size as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
