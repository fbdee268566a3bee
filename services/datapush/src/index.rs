//! The index key: the keyed hash under which a subject's records, duplicates and access codes
//! are found without opening anything. It rotates in three steps, so that replicas restarted
//! one by one always find what the others wrote:
//!
//! 1. **begin** — a next key is made (`datapush-index.next.key`); replicas restarted with it
//!    still write under the current key and look up under both.
//! 2. **switch** — the next key becomes the current one and the old one the previous
//!    (`datapush-index.previous.key`); replicas write under the new key, look up under both,
//!    and hash every row again under the new key (`reindex`).
//! 3. **finish** — once nothing is left under the previous key (the gauge
//!    `creditmesh_datapush_index_stale`), it is destroyed.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::hmac;

const KEY_LEN: usize = 32;
/// The index key that writes.
pub const INDEX_FILE: &str = "datapush-index.key";
/// The key a rotation moves to, looked up while the current one still writes.
pub const NEXT_INDEX_FILE: &str = "datapush-index.next.key";
/// The key a rotation moved from, looked up until every row is hashed again.
pub const PREVIOUS_INDEX_FILE: &str = "datapush-index.previous.key";

pub struct IndexKey {
    /// What a row records of the key it was hashed under: a hash of the key, not the key.
    pub id: String,
    key: hmac::Key,
}

impl IndexKey {
    pub fn parse(b64: &str, what: &str) -> Result<Self> {
        let bytes = B64
            .decode(b64.trim())
            .with_context(|| format!("{what}: not base64"))?;
        if bytes.len() != KEY_LEN {
            bail!("{what}: {} bytes, 32 needed", bytes.len());
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        let id = hex::encode(&hmac::sign(&key, b"creditmesh index key id").as_ref()[..4]);
        Ok(Self { id, key })
    }

    /// A keyed hash (hex) of `parts`, each length-prefixed so that no two lists collide.
    pub fn hash(&self, parts: &[&[u8]]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        hex::encode(ctx.sign().as_ref())
    }
}

/// Where a rotation of the index key stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Steady,
    /// A next key is looked up; the current one writes.
    Begun,
    /// The current key writes; the previous one is looked up until every row moved.
    Switched,
}

/// The current index key and, during a rotation, the other one.
pub struct IndexKeys {
    pub current: IndexKey,
    other: Option<IndexKey>,
    pub phase: Phase,
}

/// A value hashed under the current key and, during a rotation, under the other key too: a
/// stored hash under either is the same value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashed {
    pub current: String,
    pub other: Option<String>,
}

impl Hashed {
    pub fn matches(&self, stored: &str) -> bool {
        self.current == stored || self.other.as_deref() == Some(stored)
    }

    /// Both hashes, for `IN ($n, $n+1)`: the current one twice when there is no other.
    pub fn pair(&self) -> (String, String) {
        (
            self.current.clone(),
            self.other.clone().unwrap_or_else(|| self.current.clone()),
        )
    }
}

impl IndexKeys {
    /// From the configured keys (base64; `next` and `previous` may be empty) — at most one of
    /// `next` and `previous`, since a rotation finishes before the next begins.
    pub fn new(current: &str, next: &str, previous: &str) -> Result<Self> {
        let current = IndexKey::parse(current, "datapush.index_key")?;
        let (other, phase) = match (next.trim().is_empty(), previous.trim().is_empty()) {
            (true, true) => (None, Phase::Steady),
            (false, true) => (
                Some(IndexKey::parse(next, "datapush.next_index_key")?),
                Phase::Begun,
            ),
            (true, false) => (
                Some(IndexKey::parse(previous, "datapush.previous_index_key")?),
                Phase::Switched,
            ),
            (false, false) => bail!(
                "datapush: a next and a previous index key at once; finish one rotation \
                 before beginning the next"
            ),
        };
        if other.as_ref().is_some_and(|o| o.id == current.id) {
            bail!("datapush: the index key rotates to itself");
        }
        Ok(Self {
            current,
            other,
            phase,
        })
    }

    /// The rotation's key files in `dir` (the configured text wins where given).
    pub fn from_dir(dir: &Path, current: String, next: &str, previous: &str) -> Result<Self> {
        let read = |name: &str, configured: &str| -> Result<String> {
            if !configured.trim().is_empty() {
                return Ok(configured.to_owned());
            }
            match std::fs::read_to_string(dir.join(name)) {
                Ok(text) => Ok(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
                Err(e) => Err(anyhow!("{}: {e}", dir.join(name).display())),
            }
        };
        Self::new(
            &current,
            &read(NEXT_INDEX_FILE, next)?,
            &read(PREVIOUS_INDEX_FILE, previous)?,
        )
    }

    pub fn rotating(&self) -> bool {
        self.other.is_some()
    }

    pub fn hash(&self, parts: &[&[u8]]) -> String {
        self.current.hash(parts)
    }

    pub fn hashed(&self, parts: &[&[u8]]) -> Hashed {
        Hashed {
            current: self.current.hash(parts),
            other: self.other.as_ref().map(|k| k.hash(parts)),
        }
    }

    /// Whether rows under another key are hashed again now: only once a rotation is switched
    /// (every replica then writes under the current key). Otherwise only rows from before
    /// keys had ids are, so that a replica not yet restarted never moves rows back.
    pub fn moving(&self) -> bool {
        self.phase == Phase::Switched
    }
}

fn random_key() -> Result<String> {
    let mut k = [0u8; KEY_LEN];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k)
        .map_err(|_| anyhow!("no randomness"))?;
    Ok(B64.encode(k))
}

/// Begins a rotation in `dir`: makes the next key.
pub fn begin(dir: &Path) -> Result<()> {
    require(
        dir,
        INDEX_FILE,
        "no index key to rotate (`creditmesh pki keys` makes one)",
    )?;
    if dir.join(PREVIOUS_INDEX_FILE).exists() {
        bail!(
            "{}: the last rotation is not finished (`--finish` ends it once nothing is left \
             under the previous key)",
            dir.join(PREVIOUS_INDEX_FILE).display()
        );
    }
    if dir.join(NEXT_INDEX_FILE).exists() {
        bail!(
            "{}: a rotation is begun already (`--switch` goes on with it)",
            dir.join(NEXT_INDEX_FILE).display()
        );
    }
    creditmesh_pki::made_once(&dir.join(NEXT_INDEX_FILE), || {
        random_key().map_err(std::io::Error::other)
    })
    .context(NEXT_INDEX_FILE)?;
    Ok(())
}

/// Switches a begun rotation in `dir`: the next key becomes the current one, the current one
/// the previous. The previous is written before the current is replaced, so that a failure
/// between leaves both keys on disk.
pub fn switch(dir: &Path) -> Result<()> {
    require(
        dir,
        NEXT_INDEX_FILE,
        "no rotation was begun (`creditmesh pki rotate-index-key` begins one)",
    )?;
    let current = std::fs::read_to_string(dir.join(INDEX_FILE)).context(INDEX_FILE)?;
    let next = std::fs::read_to_string(dir.join(NEXT_INDEX_FILE)).context(NEXT_INDEX_FILE)?;
    IndexKeys::new(&next, "", &current)?;
    creditmesh_pki::made_once(&dir.join(PREVIOUS_INDEX_FILE), || {
        Ok(current.trim().to_owned())
    })
    .context(PREVIOUS_INDEX_FILE)?;
    std::fs::rename(dir.join(NEXT_INDEX_FILE), dir.join(INDEX_FILE)).context(INDEX_FILE)?;
    Ok(())
}

/// Finishes a switched rotation in `dir`: destroys the previous key.
pub fn finish(dir: &Path) -> Result<()> {
    require(
        dir,
        PREVIOUS_INDEX_FILE,
        "no rotation was switched (`--switch` switches a begun one)",
    )?;
    std::fs::remove_file(dir.join(PREVIOUS_INDEX_FILE)).context(PREVIOUS_INDEX_FILE)?;
    Ok(())
}

fn require(dir: &Path, name: &str, why: &str) -> Result<()> {
    if dir.join(name).exists() {
        Ok(())
    } else {
        bail!("{}: {why}", dir.join(name).display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> String {
        B64.encode([b; 32])
    }

    #[test]
    fn a_value_is_found_under_both_keys_while_a_rotation_runs() {
        let steady = IndexKeys::new(&key(1), "", "").unwrap();
        let begun = IndexKeys::new(&key(1), &key(2), "").unwrap();
        let switched = IndexKeys::new(&key(2), "", &key(1)).unwrap();
        let done = IndexKeys::new(&key(2), "", "").unwrap();
        let old = steady.hash(&[b"x"]);
        let new = done.hash(&[b"x"]);
        assert_ne!(old, new);
        assert_eq!(
            begun.hash(&[b"x"]),
            old,
            "a begun rotation still writes the old"
        );
        assert_eq!(switched.hash(&[b"x"]), new, "a switched one writes the new");
        for keys in [&begun, &switched] {
            let h = keys.hashed(&[b"x"]);
            assert!(h.matches(&old) && h.matches(&new));
            assert!(!h.matches(&keys.hash(&[b"y"])));
        }
        assert!(!done.hashed(&[b"x"]).matches(&old));
        assert!(switched.moving() && !begun.moving() && !steady.moving());
        assert_eq!(steady.hashed(&[b"x"]).pair(), (old.clone(), old));
        assert_eq!(steady.current.id.len(), 8);
        assert!(IndexKeys::new(&key(1), &key(2), &key(3)).is_err());
        assert!(IndexKeys::new(&key(1), &key(1), "").is_err());
    }

    #[test]
    fn the_steps_of_a_rotation_move_the_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(begin(d).is_err(), "nothing to rotate");
        std::fs::write(d.join(INDEX_FILE), key(1)).unwrap();
        assert!(switch(d).is_err() && finish(d).is_err(), "not begun");
        begin(d).unwrap();
        assert!(begin(d).is_err(), "begun twice");
        let next = std::fs::read_to_string(d.join(NEXT_INDEX_FILE)).unwrap();
        let begun = IndexKeys::from_dir(d, key(1), "", "").unwrap();
        assert_eq!(begun.phase, Phase::Begun);
        switch(d).unwrap();
        assert_eq!(std::fs::read_to_string(d.join(INDEX_FILE)).unwrap(), next);
        assert_eq!(
            std::fs::read_to_string(d.join(PREVIOUS_INDEX_FILE)).unwrap(),
            key(1)
        );
        assert!(!d.join(NEXT_INDEX_FILE).exists());
        assert!(begin(d).is_err(), "the last rotation is not finished");
        let switched = IndexKeys::from_dir(d, next.clone(), "", "").unwrap();
        assert_eq!(switched.phase, Phase::Switched);
        assert_eq!(switched.hashed(&[b"x"]), begun.hashed(&[b"x"]).swapped());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [INDEX_FILE, PREVIOUS_INDEX_FILE] {
                let mode = std::fs::metadata(d.join(f)).unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "{f} is the owner's alone");
            }
        }
        finish(d).unwrap();
        assert!(!d.join(PREVIOUS_INDEX_FILE).exists());
        assert_eq!(
            IndexKeys::from_dir(d, next, "", "").unwrap().phase,
            Phase::Steady
        );
    }

    impl Hashed {
        fn swapped(&self) -> Self {
            Self {
                current: self.other.clone().unwrap(),
                other: Some(self.current.clone()),
            }
        }
    }
}
