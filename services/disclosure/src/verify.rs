//! Checks anyone can run offline against the register's log: a checkpoint's signature, a
//! notice's inclusion in it, and the consistency of two checkpoints.

use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash};

use crate::log;

/// The checkpoint in `note`, once its signature by one of the log's keys `vkeys` (verifier
/// keys, one per line: across a rotation, the old and the new) is verified. A signature by a
/// listed key that does not verify fails the note; one by a key not listed is passed over.
pub fn checkpoint(note: &str, vkeys: &str) -> Result<Checkpoint, String> {
    let known = verifiers(vkeys)?;
    let note = Note::from_bytes(note.as_bytes()).map_err(|e| format!("checkpoint note: {e}"))?;
    note.verify(&known)
        .map_err(|e| format!("checkpoint signature: {e}"))?;
    Checkpoint::from_bytes(note.text()).map_err(|e| format!("checkpoint: {e}"))
}

/// The log's verifier keys in `vkeys`, one per line (or separated by any white space).
pub fn verifiers(vkeys: &str) -> Result<VerifierList, String> {
    let list = vkeys
        .split_whitespace()
        .map(|k| {
            StandardVerifier::new(k)
                .map(|v| Box::new(v) as Box<dyn signed_note::Verifier>)
                .map_err(|e| format!("verifier key {k:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        return Err("no verifier key".into());
    }
    Ok(VerifierList::new(list))
}

fn hashes(proof: &[Vec<u8>]) -> Result<Vec<Hash>, String> {
    proof
        .iter()
        .enumerate()
        .map(|(i, h)| {
            <[u8; 32]>::try_from(h.as_slice())
                .map(Hash)
                .map_err(|_| format!("proof hash {i} is not 32 bytes"))
        })
        .collect()
}

/// Whether the notice `sequence` with `salt` and `content` is a leaf of the tree `c` names.
pub fn inclusion(
    c: &Checkpoint,
    sequence: u64,
    salt: &[u8],
    content: &[u8],
    proof: &[Vec<u8>],
) -> Result<(), String> {
    if salt.is_empty() && content.is_empty() {
        return Err("the notice was erased: its content cannot be checked".into());
    }
    leaf_inclusion(c, sequence, log::leaf_hash(salt, content), proof)
}

/// Whether `leaf` (a leaf hash, all that is left of an erased notice) is leaf `sequence` of
/// the tree `c` names.
pub fn leaf_inclusion(
    c: &Checkpoint,
    sequence: u64,
    leaf: Hash,
    proof: &[Vec<u8>],
) -> Result<(), String> {
    tlog_tiles::check_record(&hashes(proof)?, c.size(), *c.hash(), sequence, leaf).map_err(|e| {
        format!(
            "notice {sequence} is not in the tree of size {}: {e}",
            c.size()
        )
    })
}

/// A leaf hash as the register serves it (hex).
pub fn parse_leaf_hash(hex_text: &str) -> Result<Hash, String> {
    hex::decode(hex_text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .map(Hash)
        .ok_or_else(|| format!("leaf hash {hex_text:?} is not 32 bytes of hex"))
}

/// Whether the tree `older` names is a prefix of the one `newer` names.
pub fn consistency(
    older: &Checkpoint,
    newer: &Checkpoint,
    proof: &[Vec<u8>],
) -> Result<(), String> {
    if older.origin() != newer.origin() {
        return Err(format!(
            "checkpoints of different logs: {} and {}",
            older.origin(),
            newer.origin()
        ));
    }
    tlog_tiles::check_tree(
        &hashes(proof)?,
        newer.size(),
        *newer.hash(),
        older.size(),
        *older.hash(),
    )
    .map_err(|e| {
        format!(
            "the tree of size {} is not a prefix of the tree of size {}: {e}",
            older.size(),
            newer.size()
        )
    })
}
