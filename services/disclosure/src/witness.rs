//! A witness against split views (C2SP tlog-witness semantics): it cosigns a checkpoint of the
//! register only once it has verified that checkpoint's signature and its consistency with the
//! last checkpoint it cosigned, and it refuses — and records — a fork. Its state is one row per
//! log, moved by a guarded update, so two submissions racing from the same size cannot both
//! move it.

use creditmesh_storage::{Db, StorageError};
use tlog_tiles::Checkpoint;

use crate::cosign::{CosignerKey, split_note};
use crate::verify;
use crate::witness_store::{self, State};

/// Why a witness did not cosign.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The submitter's idea of the last cosigned size is not the witness's: it should send a
    /// consistency proof from `size`.
    #[error("the witness's last cosigned checkpoint has size {size}")]
    Conflict { size: u64 },
    /// Two checkpoints that cannot both be true of one append-only log.
    #[error("fork: {0}")]
    Fork(String),
    /// The checkpoint does not verify against the log's key, or its proof does not parse.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Records a fork the witness was shown, for its operator and for anyone it reports to.
async fn record_fork(
    db: &Db,
    origin: &str,
    known: &State,
    offered: &Checkpoint,
    note: &str,
    now_micros: i64,
) {
    let result: Result<(), StorageError> = async {
        let mut conn = db.acquire().await?;
        let fork = witness_store::Fork {
            origin,
            seen_at: now_micros,
            known,
            offered_size: offered.size(),
            offered_note: note,
        };
        witness_store::insert_fork(&mut conn, &fork).await
    }
    .await;
    tracing::error!(
        origin,
        known_size = known.size,
        known_root = %known.root,
        offered_size = offered.size(),
        offered_root = %offered.hash(),
        recorded = result.is_ok(),
        "fork of the register's log: two checkpoints that no append-only log can both sign"
    );
}

/// Cosigns `note` (a checkpoint signed by the log key `log_vkey`), given the size the
/// submitter believes the witness last cosigned and the consistency proof from there.
pub async fn add_checkpoint(
    db: &Db,
    key: &CosignerKey,
    log_vkey: &str,
    old_size: u64,
    proof: &[Vec<u8>],
    note: &str,
    now_micros: i64,
) -> Result<String, Refusal> {
    let offered = verify::checkpoint(note, log_vkey).map_err(Refusal::Invalid)?;
    let origin = offered.origin().to_owned();
    let next = State {
        size: offered.size(),
        root: offered.hash().to_string(),
    };
    let mut tx = db.begin().await?;
    let moved = match witness_store::state(&mut tx, &origin).await? {
        None => {
            if old_size != 0 {
                return Err(Refusal::Conflict { size: 0 });
            }
            witness_store::start(&mut tx, &origin, &next, now_micros).await?
        }
        Some(known) => {
            if old_size != known.size {
                return Err(Refusal::Conflict { size: known.size });
            }
            if offered.size() < known.size {
                return Err(Refusal::Conflict { size: known.size });
            }
            if offered.size() == known.size {
                if next.root != known.root {
                    drop(tx);
                    record_fork(db, &origin, &known, &offered, note, now_micros).await;
                    return Err(Refusal::Fork(format!(
                        "a checkpoint of {} notices with another root than the one cosigned",
                        known.size
                    )));
                }
                // The same checkpoint again: cosigned again, nothing moves.
                true
            } else {
                let known_note = known_checkpoint(&origin, &known)?;
                if let Err(why) = verify::consistency(&known_note, &offered, proof) {
                    drop(tx);
                    record_fork(db, &origin, &known, &offered, note, now_micros).await;
                    return Err(Refusal::Fork(why));
                }
                witness_store::advance(&mut tx, &origin, &known, &next, now_micros).await?
            }
        }
    };
    if !moved {
        // Another submission moved the witness first.
        let size = witness_store::state(&mut tx, &origin)
            .await?
            .map(|s| s.size)
            .unwrap_or(0);
        return Err(Refusal::Conflict { size });
    }
    tx.commit().await.map_err(StorageError::from)?;
    let (body, _) = split_note(note).map_err(Refusal::Invalid)?;
    Ok(key.cosign(body.as_bytes(), (now_micros / 1_000_000).max(0) as u64))
}

/// The witness's last cosigned tree as a checkpoint (for checking consistency against it).
fn known_checkpoint(origin: &str, known: &State) -> Result<Checkpoint, Refusal> {
    let hash = tlog_tiles::Hash::parse_hash(&known.root)
        .map_err(|e| Refusal::Storage(StorageError::Corrupt(format!("witness root: {e}"))))?;
    Checkpoint::new(origin, known.size, hash, "")
        .map_err(|e| Refusal::Storage(StorageError::Corrupt(format!("witness state: {e}"))))
}

/// The forks this witness has been shown, newest first: (seen at, known size, offered size).
pub async fn forks(db: &Db, origin: &str) -> Result<Vec<(i64, u64, u64)>, StorageError> {
    let mut conn = db.acquire().await?;
    witness_store::forks(&mut conn, origin).await
}
