//! Key files on disk: made once, replaced whole, their verifier keys published beside them.

use std::path::Path;

/// Replaces `path` with `text` whole: written beside it, then renamed over it.
pub(crate) fn write_replacing(path: &Path, text: &str) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

/// Writes the verifier key `vkey` beside its key, for operators and witnesses to take, unless
/// it is there already. Where the directory is read-only (a mounted Secret), a verifier key
/// that is missing or stale is only reported: it can be derived from the key at any time, and
/// the node serves it with its head.
pub fn publish_vkey(path: &Path, vkey: &str) {
    if std::fs::read_to_string(path).ok().as_deref().map(str::trim) == Some(vkey) {
        return;
    }
    if let Err(e) = std::fs::write(path, format!("{vkey}\n")) {
        tracing::warn!(path = %path.display(), error = %e, "verifier key not written beside its key");
    }
}

/// An Ed25519 seed kept in `path` as hex, created (owner-only) when missing; replicas
/// starting together all read the one made first.
pub fn load_or_create_seed(path: &Path) -> std::io::Result<[u8; 32]> {
    let text = creditmesh_pki::made_once(path, || {
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| std::io::Error::other("no randomness for a key"))?;
        Ok(hex::encode(seed))
    })?;
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| std::io::Error::other(format!("{}: not a hex Ed25519 seed", path.display())))
}
