//! Signed checkpoints of the register's log (C2SP tlog-checkpoint in a C2SP signed note,
//! Ed25519), issued by the regional node with the key kept beside its PKI.

use std::path::Path;
use std::time::Duration;

use creditmesh_rpc::ServiceStore;
use creditmesh_storage::StorageError;
use ed25519_dalek::{Signer as _, SigningKey};
use tlog_tiles::{Checkpoint, Hash};
use tokio_util::sync::CancellationToken;

use crate::checkpoint_store;
use crate::{keyfile, log_store};

/// The file holding the log's signing key (hex of the Ed25519 seed).
pub const KEY_FILE: &str = "register-log.key";
/// The file holding its verifier key (C2SP signed-note `vkey`), for anyone who verifies.
pub const VKEY_FILE: &str = "register-log.vkey";
/// The key a rotation brings in: while it is there, every checkpoint is signed by both keys.
pub const NEXT_KEY_FILE: &str = "register-log.next.key";
/// Its verifier key.
pub const NEXT_VKEY_FILE: &str = "register-log.next.vkey";
/// The verifier keys of the keys rotations retired, one per line: the checkpoints they signed
/// still verify with them.
pub const RETIRED_VKEY_FILE: &str = "register-log.retired.vkey";

/// How often a checkpoint is signed when the log has grown.
pub const INTERVAL: Duration = Duration::from_millis(500);

pub struct LogKey {
    name: String,
    id: u32,
    key: SigningKey,
}

impl signed_note::Signer for LogKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

impl LogKey {
    /// The log's origin and key name: `<trust domain>/register`.
    pub fn origin(trust_domain: &str) -> String {
        format!("{trust_domain}/register")
    }

    /// Loads the key from `pki_dir`, creating it (and its verifier key file) when missing.
    pub fn load_or_create(pki_dir: &Path, trust_domain: &str) -> std::io::Result<Self> {
        Self::in_file(pki_dir, KEY_FILE, VKEY_FILE, trust_domain)
    }

    fn in_file(
        dir: &Path,
        file: &str,
        vkey_file: &str,
        trust_domain: &str,
    ) -> std::io::Result<Self> {
        let seed = keyfile::load_or_create_seed(&dir.join(file))?;
        let this = Self::from_seed(seed, trust_domain);
        keyfile::publish_vkey(&dir.join(vkey_file), &this.verifier_key());
        Ok(this)
    }

    fn from_seed(seed: [u8; 32], trust_domain: &str) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let name = Self::origin(trust_domain);
        let vkey = signed_note::new_ed25519_verifier_key(&name, &key.verifying_key());
        Self {
            id: key_id_of(&vkey),
            name,
            key,
        }
    }

    /// The verifier key (`<name>+<key id>+<base64 key>`).
    pub fn verifier_key(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.name, &self.key.verifying_key())
    }

    /// The signed note of the checkpoint of a tree of `size` leaves with root `root`.
    pub fn sign(&self, size: u64, root: Hash) -> Result<String, String> {
        signed_checkpoint(&[self], size, root)
    }
}

/// The checkpoint of a tree of `size` leaves with root `root` as a note signed by each of
/// `keys` (all of the log's name), in order.
fn signed_checkpoint(keys: &[&LogKey], size: u64, root: Hash) -> Result<String, String> {
    let checkpoint = Checkpoint::new(&keys[0].name, size, root, "").map_err(|e| e.to_string())?;
    let mut note =
        signed_note::Note::new(&checkpoint.to_bytes(), &[]).map_err(|e| e.to_string())?;
    let signers: Vec<&dyn signed_note::Signer> = keys
        .iter()
        .map(|k| *k as &dyn signed_note::Signer)
        .collect();
    note.add_sigs(&signers).map_err(|e| e.to_string())?;
    String::from_utf8(note.to_bytes()).map_err(|e| e.to_string())
}

/// The keys that sign the log's checkpoints — its key, and during a rotation the next one too
/// — and the verifier keys of those rotations retired.
pub struct LogKeys {
    signing: Vec<LogKey>,
    retired: Vec<String>,
}

impl LogKeys {
    /// The log's key from `pki_dir` (created when missing, where making keys is allowed), the
    /// next key when a rotation has begun, and the retired verifier keys.
    pub fn load(pki_dir: &Path, trust_domain: &str) -> std::io::Result<Self> {
        let mut signing = vec![LogKey::load_or_create(pki_dir, trust_domain)?];
        if pki_dir.join(NEXT_KEY_FILE).exists() {
            signing.push(LogKey::in_file(
                pki_dir,
                NEXT_KEY_FILE,
                NEXT_VKEY_FILE,
                trust_domain,
            )?);
        }
        Ok(Self {
            signing,
            retired: retired_vkeys(pki_dir)?,
        })
    }

    /// The signed note of the checkpoint of a tree of `size` leaves with root `root`, one
    /// signature per signing key.
    pub fn sign(&self, size: u64, root: Hash) -> Result<String, String> {
        let keys: Vec<&LogKey> = self.signing.iter().collect();
        signed_checkpoint(&keys, size, root)
    }

    /// Every verifier key of the log, one per line: those signing now, then those retired.
    pub fn verifier_keys(&self) -> String {
        let signing = self.signing.iter().map(LogKey::verifier_key);
        signing
            .chain(self.retired.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The retired verifier keys kept in `dir`, none when there is no file.
fn retired_vkeys(dir: &Path) -> std::io::Result<Vec<String>> {
    match std::fs::read_to_string(dir.join(RETIRED_VKEY_FILE)) {
        Ok(text) => Ok(text.split_whitespace().map(str::to_owned).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Where a rotation of the log key stands in a key directory.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The next key is made: the verifier key to hand to witnesses and verifiers.
    Begun { next_vkey: String },
    /// The next key signs alone; the retired verifier key was kept.
    Finished { retired_vkey: String, vkey: String },
}

/// Refuses unless `dir` holds the log's key: a rotation never makes the key it retires.
fn require_log_key(dir: &Path) -> Result<(), String> {
    let path = dir.join(KEY_FILE);
    if path.exists() {
        Ok(())
    } else {
        Err(format!("{}: no log key to rotate", path.display()))
    }
}

/// Begins a rotation of the log key in `dir`: makes the next key, which signs beside the
/// current one once the node restarts with it. Refuses while one is under way.
pub fn begin_rotation(dir: &Path, trust_domain: &str) -> Result<Rotation, String> {
    require_log_key(dir)?;
    if dir.join(NEXT_KEY_FILE).exists() {
        return Err(format!(
            "{}: a rotation is under way; finish it first (or delete the file to abandon it)",
            dir.join(NEXT_KEY_FILE).display()
        ));
    }
    let next = LogKey::in_file(dir, NEXT_KEY_FILE, NEXT_VKEY_FILE, trust_domain)
        .map_err(|e| format!("the next key: {e}"))?;
    Ok(Rotation::Begun {
        next_vkey: next.verifier_key(),
    })
}

/// Finishes the rotation begun in `dir`: the current key's verifier key joins the retired
/// ones, the next key becomes the log's key and the old seed is gone. A failure before the
/// key is replaced leaves the rotation to be finished again; one after it leaves at most a
/// stale `register-log.vkey`, which `creditmesh pki keys` writes again from the key.
pub fn finish_rotation(dir: &Path, trust_domain: &str) -> Result<Rotation, String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    require_log_key(dir)?;
    let next_path = dir.join(NEXT_KEY_FILE);
    if !next_path.exists() {
        return Err(format!(
            "{}: no rotation was begun (`creditmesh pki rotate-log-key` begins one)",
            next_path.display()
        ));
    }
    let next = LogKey::in_file(dir, NEXT_KEY_FILE, NEXT_VKEY_FILE, trust_domain)
        .map_err(|e| io("the next key", e))?;
    let current = LogKey::load_or_create(dir, trust_domain).map_err(|e| io("the log key", e))?;
    let retired_vkey = current.verifier_key();
    let mut retired = retired_vkeys(dir).map_err(|e| io(RETIRED_VKEY_FILE, e))?;
    if !retired.contains(&retired_vkey) {
        retired.push(retired_vkey.clone());
        let text: String = retired.iter().map(|k| format!("{k}\n")).collect();
        keyfile::write_replacing(&dir.join(RETIRED_VKEY_FILE), &text)
            .map_err(|e| io(RETIRED_VKEY_FILE, e))?;
    }
    std::fs::rename(&next_path, dir.join(KEY_FILE)).map_err(|e| io(KEY_FILE, e))?;
    let vkey = next.verifier_key();
    keyfile::write_replacing(&dir.join(VKEY_FILE), &format!("{vkey}\n"))
        .map_err(|e| io(VKEY_FILE, e))?;
    let _ = std::fs::remove_file(dir.join(NEXT_VKEY_FILE));
    Ok(Rotation::Finished { retired_vkey, vkey })
}

fn key_id_of(vkey: &str) -> u32 {
    vkey.split('+')
        .nth(1)
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .unwrap_or_default()
}

/// What an operator watches of the register: how many notices the log holds, the newest
/// checkpoint's size, how long ago it was signed, and how many witnesses cosigned it. A log
/// that grows while its checkpoint ages, or a checkpoint without its cosignatures, is a signer
/// or a witness not keeping up. Nothing before the first checkpoint.
pub fn gauges(
    env: creditmesh_rpc::ServiceEnv,
) -> futures::future::BoxFuture<'static, Vec<creditmesh_rpc::service::Gauge>> {
    use creditmesh_rpc::service::Gauge;
    let store = env.store;
    Box::pin(async move {
        let read = async {
            let mut conn = store.db.acquire().await?;
            let Some(head) = checkpoint_store::head(&mut conn).await? else {
                return Ok::<_, StorageError>(Vec::new());
            };
            let (log, size, signed_at, cosigned) =
                (head.log_size, head.size, head.signed_at, head.cosignatures);
            let age = (store.clock.now_micros() - signed_at).max(0) as f64 / 1e6;
            Ok(vec![
                Gauge {
                    name: "creditmesh_register_size",
                    help: "Notices in the register's log",
                    labels: Vec::new(),
                    value: log as f64,
                },
                Gauge {
                    name: "creditmesh_register_checkpoint_size",
                    help: "Notices the newest signed checkpoint covers",
                    labels: Vec::new(),
                    value: size as f64,
                },
                Gauge {
                    name: "creditmesh_register_checkpoint_age_seconds",
                    help: "How long ago the newest checkpoint was signed",
                    labels: Vec::new(),
                    value: age,
                },
                Gauge {
                    name: "creditmesh_register_checkpoint_cosignatures",
                    help: "Witnesses' cosignatures the newest checkpoint carries",
                    labels: Vec::new(),
                    value: cosigned as f64,
                },
            ])
        };
        read.await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the register's gauges were not read");
            Vec::new()
        })
    })
}

/// Signs a checkpoint of the log as it stands when it grew since the newest one.
pub async fn sign_if_grown(
    store: &ServiceStore,
    key: &LogKeys,
) -> Result<Option<u64>, StorageError> {
    let mut conn = store.db.acquire().await?;
    let size = log_store::size(&mut conn).await?;
    let newest = checkpoint_store::find(&mut conn, None, 0)
        .await?
        .map(|c| c.size)
        .unwrap_or(0);
    if size == 0 || size <= newest {
        return Ok(None);
    }
    let root = log_store::tree_hash(&mut conn, size).await?;
    let note = key.sign(size, root).map_err(StorageError::Other)?;
    checkpoint_store::insert(&mut conn, size, &root.to_string(), &note, store.now()).await?;
    Ok(Some(size))
}

/// Signs checkpoints as the log grows and has its witnesses cosign them, until `stop`.
pub async fn run(
    store: ServiceStore,
    key: std::sync::Arc<LogKeys>,
    mut cosigners: Vec<crate::witnessing::Cosigner>,
    stop: CancellationToken,
) {
    loop {
        match sign_if_grown(&store, &key).await {
            Ok(Some(size)) => tracing::debug!(size, "register checkpoint signed"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "register checkpoint not signed"),
        }
        if !cosigners.is_empty() {
            let newest = match store.db.acquire().await {
                Ok(mut conn) => checkpoint_store::find(&mut conn, None, 0)
                    .await
                    .ok()
                    .flatten(),
                Err(_) => None,
            };
            if let Some(newest) = newest {
                for c in cosigners.iter_mut() {
                    if let Err(e) = crate::witnessing::submit(&store, c, &newest).await {
                        tracing::warn!(witness = c.verifier.name(), error = %e, "checkpoint not cosigned");
                    }
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seeds: &[u8]) -> LogKeys {
        LogKeys {
            signing: seeds
                .iter()
                .map(|s| LogKey::from_seed([*s; 32], "creditmesh.test"))
                .collect(),
            retired: Vec::new(),
        }
    }

    #[test]
    fn during_a_rotation_each_key_alone_verifies_and_after_it_both_are_needed() {
        let (old, new) = (keys(&[1]), keys(&[2]));
        let (old_vkey, new_vkey) = (old.verifier_keys(), new.verifier_keys());
        let both = keys(&[1, 2]);
        assert_eq!(both.verifier_keys(), format!("{old_vkey}\n{new_vkey}"));
        let root = Hash([9; 32]);
        let window = both.sign(5, root).unwrap();
        for trusted in [&old_vkey, &new_vkey, &both.verifier_keys()] {
            let c = crate::verify::checkpoint(&window, trusted).unwrap();
            assert_eq!((c.size(), *c.hash()), (5, root));
        }
        // Signed by the new key alone: the old key does not verify it; both do.
        let after = new.sign(6, root).unwrap();
        assert!(crate::verify::checkpoint(&after, &old_vkey).is_err());
        crate::verify::checkpoint(&after, &format!("{old_vkey}\n{new_vkey}")).unwrap();
        // A checkpoint signed by a key of the same name nobody trusts verifies with nothing.
        let stranger = keys(&[3]).sign(6, root).unwrap();
        let err = crate::verify::checkpoint(&stranger, &both.verifier_keys()).unwrap_err();
        assert!(err.contains("signature"), "{err}");
    }
}
