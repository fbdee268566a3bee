//! Signed checkpoints of the register's log (C2SP tlog-checkpoint in a C2SP signed note,
//! Ed25519), issued by the regional node with the key kept beside its PKI.

use std::path::Path;
use std::time::Duration;

use creditmesh_rpc::ServiceStore;
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};
use ed25519_dalek::{Signer as _, SigningKey};
use tlog_tiles::{Checkpoint, Hash};
use tokio_util::sync::CancellationToken;

use crate::log;

/// The file holding the log's signing key (hex of the Ed25519 seed), created on first start.
pub const KEY_FILE: &str = "register-log.key";
/// The file holding its verifier key (C2SP signed-note `vkey`), for anyone who verifies.
pub const VKEY_FILE: &str = "register-log.vkey";

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
        let seed = load_or_create_seed(&pki_dir.join(KEY_FILE))?;
        let key = SigningKey::from_bytes(&seed);
        let name = Self::origin(trust_domain);
        let vkey = signed_note::new_ed25519_verifier_key(&name, &key.verifying_key());
        let this = Self {
            id: key_id_of(&vkey),
            name,
            key,
        };
        publish_vkey(&pki_dir.join(VKEY_FILE), &vkey);
        Ok(this)
    }

    /// The verifier key (`<name>+<key id>+<base64 key>`).
    pub fn verifier_key(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.name, &self.key.verifying_key())
    }

    /// The signed note of the checkpoint of a tree of `size` leaves with root `root`.
    pub fn sign(&self, size: u64, root: Hash) -> Result<String, String> {
        let checkpoint = Checkpoint::new(&self.name, size, root, "").map_err(|e| e.to_string())?;
        let mut note =
            signed_note::Note::new(&checkpoint.to_bytes(), &[]).map_err(|e| e.to_string())?;
        note.add_sigs(&[self]).map_err(|e| e.to_string())?;
        String::from_utf8(note.to_bytes()).map_err(|e| e.to_string())
    }
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

fn key_id_of(vkey: &str) -> u32 {
    vkey.split('+')
        .nth(1)
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .unwrap_or_default()
}

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

/// What an operator watches of the register: how many notices the log holds, the newest
/// checkpoint's size, how long ago it was signed, and how many witnesses cosigned it. A log
/// that grows while its checkpoint ages, or a checkpoint without its cosignatures, is a signer
/// or a witness not keeping up. Nothing before the first checkpoint.
pub fn gauges(
    store: ServiceStore,
) -> futures::future::BoxFuture<'static, Vec<creditmesh_rpc::service::Gauge>> {
    use creditmesh_rpc::service::Gauge;
    Box::pin(async move {
        let read = async {
            let mut conn = store.db.acquire().await?;
            let row = sqlx::query(
                "SELECT (SELECT size FROM disclosure_log_head WHERE id = 1), c.size, c.signed_at, \
                 (SELECT COUNT(*) FROM disclosure_cosignature s WHERE s.size = c.size) \
                 FROM disclosure_checkpoint c ORDER BY c.size DESC LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await?;
            let Some(r) = row else {
                return Ok::<_, StorageError>(Vec::new());
            };
            let (log, size, signed_at, cosigned): (i64, i64, i64, i64) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            let age = (store.clock.now_micros() - signed_at).max(0) as f64 / 1e6;
            Ok(vec![
                Gauge {
                    name: "creditmesh_register_size",
                    help: "Notices in the register's log",
                    value: log as f64,
                },
                Gauge {
                    name: "creditmesh_register_checkpoint_size",
                    help: "Notices the newest signed checkpoint covers",
                    value: size as f64,
                },
                Gauge {
                    name: "creditmesh_register_checkpoint_age_seconds",
                    help: "How long ago the newest checkpoint was signed",
                    value: age,
                },
                Gauge {
                    name: "creditmesh_register_checkpoint_cosignatures",
                    help: "Witnesses' cosignatures the newest checkpoint carries",
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

/// Signs a checkpoint of the log as it stands when it grew since the newest one.
pub async fn sign_if_grown(
    store: &ServiceStore,
    key: &LogKey,
) -> Result<Option<u64>, StorageError> {
    let mut conn = store.db.acquire().await?;
    let size = log::size(&mut conn).await?;
    let newest = find(&mut conn, None, 0).await?.map(|c| c.size).unwrap_or(0);
    if size == 0 || size <= newest {
        return Ok(None);
    }
    let root = log::tree_hash(&mut conn, size).await?;
    let note = key.sign(size, root).map_err(StorageError::Other)?;
    sqlx::query(
        "INSERT INTO disclosure_checkpoint (size, root, note, signed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (size) DO NOTHING",
    )
    .bind(size as i64)
    .bind(root.to_string())
    .bind(note)
    .bind(store.now())
    .execute(&mut *conn)
    .await?;
    Ok(Some(size))
}

/// Signs checkpoints as the log grows and has its witnesses cosign them, until `stop`.
pub async fn run(
    store: ServiceStore,
    key: std::sync::Arc<LogKey>,
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
                Ok(mut conn) => find(&mut conn, None, 0).await.ok().flatten(),
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
