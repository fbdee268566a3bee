//! The key that seals a person's contact (an objector's phone or e-mail) while it waits to be
//! used: in an event on its way from data push to the complaints service and in the
//! notification row the sender works from. Only the sender opens it, when it sends; every
//! replica of both services shares the key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Its file in the PKI directory.
pub const CONTACT_KEY_FILE: &str = "contact.key";
/// How a sealed contact begins, and so differs from a contact in clear.
const PREFIX: &str = "sealed1:";

pub struct ContactKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

/// `DIR/contact.key`, made (32 random bytes, hex, readable by the owner only) unless it exists.
pub fn ensure_contact_key(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(CONTACT_KEY_FILE);
    crate::made_once(&path, || {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| std::io::Error::other("no randomness for the contact key"))?;
        Ok(hex::encode(bytes))
    })
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Whether `s` is a contact sealed by [`ContactKey::seal`].
pub fn is_sealed(s: &str) -> bool {
    s.starts_with(PREFIX)
}

impl ContactKey {
    /// The key in `DIR/contact.key`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CONTACT_KEY_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let bytes = hex::decode(text.trim()).map_err(|_| anyhow!("{}: not hex", path.display()))?;
        if bytes.len() != 32 {
            bail!("{}: {} bytes, 32 needed", path.display(), bytes.len());
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| anyhow!("{}: not an AES-256 key", path.display()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// `contact` sealed and bound to `binding` (what it is the contact for): it opens only
    /// with the same binding.
    pub fn seal(&self, binding: &str, contact: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| anyhow!("no randomness for a nonce"))?;
        let mut out = contact.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding.as_bytes()),
                &mut out,
            )
            .map_err(|_| anyhow!("sealing a contact"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend(out);
        Ok(format!("{PREFIX}{}", hex::encode(sealed)))
    }

    /// The contact `sealed` holds, if it was sealed under this key for `binding`.
    pub fn open(&self, binding: &str, sealed: &str) -> Result<String> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| anyhow!("not a sealed contact"))?;
        if bytes.len() < NONCE_LEN {
            bail!("a sealed contact too short");
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(binding.as_bytes()), &mut body)
            .map_err(|_| anyhow!("the contact does not open under this key for {binding}"))?;
        String::from_utf8(plain.to_vec()).map_err(|_| anyhow!("a sealed contact is not text"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_opens_only_for_what_it_was_sealed_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = ensure_contact_key(dir.path()).unwrap();
        assert_eq!(ensure_contact_key(dir.path()).unwrap(), path);
        let key = ContactKey::load(dir.path()).unwrap();
        let sealed = key.seal("objection-1", "13912345678").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("13912345678"));
        assert_eq!(key.open("objection-1", &sealed).unwrap(), "13912345678");
        assert!(key.open("objection-2", &sealed).is_err());
        assert!(key.open("objection-1", "13912345678").is_err());
        let other = tempfile::tempdir().unwrap();
        ensure_contact_key(other.path()).unwrap();
        let stranger = ContactKey::load(other.path()).unwrap();
        assert!(stranger.open("objection-1", &sealed).is_err());
    }
}
