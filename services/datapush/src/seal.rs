//! Records at rest (Art. 23): each record's subject and content are sealed with a data key of
//! its own (AES-256-GCM), and that key is wrapped by its tenant's key-encryption key, bound to
//! the record it belongs to. Duplicates and a subject's records are found by keyed hashes, so
//! nothing is opened to look them up. Keys rotate by listing a new one first: it seals from
//! then on, and every key listed still opens what it sealed.

use std::collections::HashMap;
use std::path::Path;

use crate::config::DataPushConfig;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// Files of the generated keys in the PKI directory, when none are configured.
pub const KEK_FILE: &str = "datapush-kek.key";
pub use crate::index::INDEX_FILE;
use crate::index::{Hashed, IndexKeys};

struct Kek {
    id: String,
    key: LessSafeKey,
}

pub struct Keys {
    by_tenant: HashMap<String, Vec<Kek>>,
    index: IndexKeys,
    /// Seals an objector's contact for the complaints service's sender, which alone opens it.
    contacts: creditmesh_pki::ContactKey,
    rng: SystemRandom,
}

/// A sealed record: the id of the key that wrapped its data key, and the envelope (base64).
pub struct Sealed {
    pub key_id: String,
    pub envelope: String,
}

fn aead(bytes: &[u8]) -> Result<LessSafeKey> {
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| anyhow!("not a 32-byte key"))?,
    ))
}

fn parse_kek(spec: &str) -> Result<Kek> {
    let (id, b64) = spec
        .split_once(':')
        .ok_or_else(|| anyhow!("a key is ID:BASE64"))?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        bail!("key id {id:?} must be letters, digits and -");
    }
    let bytes = B64.decode(b64.trim()).context("key: not base64")?;
    if bytes.len() != KEY_LEN {
        bail!("key {id}: {} bytes, 32 needed", bytes.len());
    }
    Ok(Kek {
        id: id.to_owned(),
        key: aead(&bytes)?,
    })
}

/// Reads `dir/name`, or writes it (owner-only) with what `make` gives when it is missing;
/// replicas starting together all read the one made first.
fn generated(dir: &Path, name: &str, make: impl FnOnce() -> Result<String>) -> Result<String> {
    let path = dir.join(name);
    creditmesh_pki::made_once(&path, || make().map_err(std::io::Error::other))
        .with_context(|| format!("writing {}", path.display()))
}

/// What is wrong with the configured keys, each with its key.
pub fn config_problems(cfg: &DataPushConfig) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (tenant, specs) in &cfg.keys {
        if tenant != "*" && creditmesh_domain::Tenant::parse_holding(tenant).is_err() {
            problems.push((
                format!("datapush.keys.{tenant}"),
                "must be a tenant's division code or *".into(),
            ));
        }
        if specs.is_empty() {
            problems.push((format!("datapush.keys.{tenant}"), "lists no key".into()));
        }
        for (i, s) in specs.iter().enumerate() {
            if let Err(e) = parse_kek(s) {
                problems.push((format!("datapush.keys.{tenant}[{i}]"), e.to_string()));
            }
        }
    }
    for (key, value) in [
        ("index_key", &cfg.index_key),
        ("next_index_key", &cfg.next_index_key),
        ("previous_index_key", &cfg.previous_index_key),
    ] {
        if !value.is_empty()
            && B64
                .decode(value.trim())
                .map_or(true, |k| k.len() != KEY_LEN)
        {
            problems.push((
                format!("datapush.{key}"),
                "must be base64 of 32 bytes".into(),
            ));
        }
    }
    if !cfg.next_index_key.is_empty() && !cfg.previous_index_key.is_empty() {
        problems.push((
            "datapush.next_index_key".into(),
            "a rotation is switched already (previous_index_key is set): finish it first".into(),
        ));
    }
    problems
}

/// The data key of an envelope, unwrapped with `kek`, and the sealed body that follows it.
fn unwrap_dek<'a>(kek: &Kek, binding: &[u8], envelope: &'a [u8]) -> Result<(Vec<u8>, &'a [u8])> {
    let wrapped_len = KEY_LEN + TAG_LEN;
    if envelope.len() < 2 * NONCE_LEN + wrapped_len + TAG_LEN {
        bail!("envelope too short");
    }
    let (wrap_nonce, rest) = envelope.split_at(NONCE_LEN);
    let (wrapped, body) = rest.split_at(wrapped_len);
    let mut dek = wrapped.to_vec();
    let len = kek
        .key
        .open_in_place(
            Nonce::try_assume_unique_for_key(wrap_nonce).map_err(|_| anyhow!("nonce"))?,
            Aad::from(binding),
            &mut dek,
        )
        .map_err(|_| anyhow!("the data key does not open: wrong key or record"))?
        .len();
    dek.truncate(len);
    Ok((dek, body))
}

impl Keys {
    /// The configured keys, or keys generated once in `pki_dir` when none are configured.
    pub fn load(cfg: &DataPushConfig, pki_dir: &Path) -> Result<Self> {
        let rng = SystemRandom::new();
        let random = |rng: &SystemRandom| -> Result<String> {
            let mut k = [0u8; KEY_LEN];
            rng.fill(&mut k).map_err(|_| anyhow!("no randomness"))?;
            Ok(B64.encode(k))
        };
        let mut by_tenant = HashMap::new();
        if cfg.keys.is_empty() {
            let spec = generated(pki_dir, KEK_FILE, || Ok(format!("gen1:{}", random(&rng)?)))?;
            by_tenant.insert("*".to_owned(), vec![parse_kek(&spec)?]);
        } else {
            for (tenant, specs) in &cfg.keys {
                if specs.is_empty() {
                    bail!("datapush.keys.{tenant}: no key");
                }
                let keks = specs
                    .iter()
                    .map(|s| parse_kek(s))
                    .collect::<Result<Vec<_>>>()
                    .with_context(|| format!("datapush.keys.{tenant}"))?;
                by_tenant.insert(tenant.clone(), keks);
            }
        }
        let index = if cfg.index_key.is_empty() {
            generated(pki_dir, INDEX_FILE, || random(&rng))?
        } else {
            cfg.index_key.clone()
        };
        let index =
            IndexKeys::from_dir(pki_dir, index, &cfg.next_index_key, &cfg.previous_index_key)?;
        creditmesh_pki::ensure_contact_key(pki_dir)?;
        let contacts = creditmesh_pki::ContactKey::load(pki_dir)?;
        Ok(Self {
            by_tenant,
            index,
            contacts,
            rng,
        })
    }

    /// `contact` sealed for the complaints service's sender, bound to `binding` (the
    /// objection it is the contact for).
    pub fn seal_contact(&self, binding: &str, contact: &str) -> Result<String> {
        self.contacts.seal(binding, contact)
    }

    fn keks(&self, tenant: &str) -> Result<&[Kek]> {
        self.by_tenant
            .get(tenant)
            .or_else(|| self.by_tenant.get("*"))
            .map(Vec::as_slice)
            .ok_or_else(|| anyhow!("no key configured for tenant {tenant}"))
    }

    /// A keyed hash (hex) of `parts` under the index key that writes.
    pub fn index(&self, parts: &[&[u8]]) -> String {
        self.index.hash(parts)
    }

    /// A keyed hash of `parts` to look up: during a rotation, under both index keys.
    pub fn hashed(&self, parts: &[&[u8]]) -> Hashed {
        self.index.hashed(parts)
    }

    /// The index keys: which writes, and where a rotation stands.
    pub fn index_keys(&self) -> &IndexKeys {
        &self.index
    }

    fn nonce(&self) -> Result<[u8; NONCE_LEN]> {
        let mut n = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut n)
            .map_err(|_| anyhow!("no randomness"))?;
        Ok(n)
    }

    /// Seals `plaintext` for `tenant`, bound to `binding` (what identifies its record).
    pub fn seal(&self, tenant: &str, binding: &[u8], plaintext: &[u8]) -> Result<Sealed> {
        let kek = &self.keks(tenant)?[0];
        // The data key and both nonces from one draw.
        let mut fresh = [0u8; KEY_LEN + 2 * NONCE_LEN];
        self.rng
            .fill(&mut fresh)
            .map_err(|_| anyhow!("no randomness"))?;
        let (dek, nonces) = fresh.split_at(KEY_LEN);
        let (wrap_nonce, nonce) = nonces.split_at(NONCE_LEN);
        let (wrap_nonce, nonce): ([u8; NONCE_LEN], [u8; NONCE_LEN]) = (
            wrap_nonce.try_into().expect("nonce length"),
            nonce.try_into().expect("nonce length"),
        );
        let mut wrapped = dek.to_vec();
        kek.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(wrap_nonce),
                Aad::from(binding),
                &mut wrapped,
            )
            .map_err(|_| anyhow!("wrapping the data key"))?;
        let mut body = plaintext.to_vec();
        aead(dek)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding),
                &mut body,
            )
            .map_err(|_| anyhow!("sealing"))?;
        let mut envelope = Vec::with_capacity(2 * NONCE_LEN + wrapped.len() + body.len());
        envelope.extend_from_slice(&wrap_nonce);
        envelope.extend_from_slice(&wrapped);
        envelope.extend_from_slice(&nonce);
        envelope.extend_from_slice(&body);
        Ok(Sealed {
            key_id: kek.id.clone(),
            envelope: B64.encode(envelope),
        })
    }

    /// Opens what [`Self::seal`] sealed for `tenant` and `binding` with the key `key_id`.
    pub fn open(
        &self,
        tenant: &str,
        key_id: &str,
        binding: &[u8],
        envelope: &str,
    ) -> Result<Vec<u8>> {
        let kek = self.kek(tenant, key_id)?;
        let bytes = B64.decode(envelope).context("envelope: not base64")?;
        let (dek, sealed_body) = unwrap_dek(kek, binding, &bytes)?;
        let (nonce, body) = sealed_body.split_at(NONCE_LEN);
        let mut body = body.to_vec();
        let plain = aead(&dek)?
            .open_in_place(
                Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("nonce"))?,
                Aad::from(binding),
                &mut body,
            )
            .map_err(|_| anyhow!("the record does not open"))?;
        Ok(plain.to_vec())
    }

    fn kek(&self, tenant: &str, key_id: &str) -> Result<&Kek> {
        self.keks(tenant)?
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| anyhow!("key {key_id} is not configured for tenant {tenant}"))
    }

    /// The id of the key that seals for `tenant` now.
    pub fn current(&self, tenant: &str) -> Result<&str> {
        Ok(&self.keks(tenant)?[0].id)
    }

    /// The ids of every key that seals for some tenant now: what is sealed under any other
    /// key is due to be wrapped again.
    pub fn current_ids(&self) -> Vec<String> {
        self.by_tenant.values().map(|k| k[0].id.clone()).collect()
    }

    /// Wraps the data key of an envelope sealed under `key_id` again, under `tenant`'s
    /// current key; the sealed content is not touched. `None` when it is current already.
    pub fn rewrap(
        &self,
        tenant: &str,
        key_id: &str,
        binding: &[u8],
        envelope: &str,
    ) -> Result<Option<Sealed>> {
        let keks = self.keks(tenant)?;
        let current = &keks[0];
        if current.id == key_id {
            return Ok(None);
        }
        let old = self.kek(tenant, key_id)?;
        let bytes = B64.decode(envelope).context("envelope: not base64")?;
        let (dek, sealed_body) = unwrap_dek(old, binding, &bytes)?;
        let new_nonce = self.nonce()?;
        let mut rewrapped = dek;
        current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(new_nonce),
                Aad::from(binding),
                &mut rewrapped,
            )
            .map_err(|_| anyhow!("wrapping the data key"))?;
        let mut out = Vec::with_capacity(bytes.len());
        out.extend_from_slice(&new_nonce);
        out.extend_from_slice(&rewrapped);
        out.extend_from_slice(sealed_body);
        Ok(Some(Sealed {
            key_id: current.id.clone(),
            envelope: B64.encode(out),
        }))
    }
}

pub(crate) fn material_binding(material_id: &str) -> Vec<u8> {
    [b"material\0".as_slice(), material_id.as_bytes()].concat()
}

/// What an objection's sealed part is bound to.
pub(crate) fn objection_binding(objection_id: &str) -> Vec<u8> {
    [b"objection\0".as_slice(), objection_id.as_bytes()].concat()
}

/// What a record's envelope is bound to: its agency and key.
pub(crate) fn record_binding(agency: &str, record_key: &str) -> Vec<u8> {
    [agency.as_bytes(), b"\0", record_key.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(keys: &[(&str, &[&str])]) -> DataPushConfig {
        DataPushConfig {
            keys: keys
                .iter()
                .map(|(t, ks)| (t.to_string(), ks.iter().map(|k| k.to_string()).collect()))
                .collect(),
            index_key: B64.encode([7u8; 32]),
            ..Default::default()
        }
    }

    #[test]
    fn sealed_records_open_only_for_their_record_and_survive_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = format!("k1:{}", B64.encode([1u8; 32]));
        let k2 = format!("k2:{}", B64.encode([2u8; 32]));
        let old = Keys::load(&cfg(&[("653100", &[&k1])]), dir.path()).unwrap();
        let sealed = old
            .seal("653100", b"agency\0r1", b"secret content")
            .unwrap();
        assert_eq!(sealed.key_id, "k1");
        assert!(!sealed.envelope.contains("secret"));
        // Swapped onto another record: refused.
        assert!(
            old.open("653100", "k1", b"agency\0r2", &sealed.envelope)
                .is_err()
        );
        // After rotation the new key seals, the old one still opens.
        let rotated = Keys::load(&cfg(&[("653100", &[&k2, &k1])]), dir.path()).unwrap();
        assert_eq!(
            rotated
                .open("653100", "k1", b"agency\0r1", &sealed.envelope)
                .unwrap(),
            b"secret content"
        );
        assert_eq!(rotated.seal("653100", b"x", b"y").unwrap().key_id, "k2");
        // Another tenant's key does not open it.
        assert!(
            rotated
                .open("650100", "k1", b"agency\0r1", &sealed.envelope)
                .is_err()
        );
    }

    #[test]
    fn a_rewrapped_envelope_opens_without_the_retired_key() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = format!("k1:{}", B64.encode([1u8; 32]));
        let k2 = format!("k2:{}", B64.encode([2u8; 32]));
        let old = Keys::load(&cfg(&[("*", &[&k1])]), dir.path()).unwrap();
        let sealed = old.seal("653100", b"a\0r1", b"secret content").unwrap();
        let rotating = Keys::load(&cfg(&[("*", &[&k2, &k1])]), dir.path()).unwrap();
        assert!(
            rotating
                .rewrap("653100", "k1", b"a\0r2", &sealed.envelope)
                .is_err(),
            "bound to its record"
        );
        let again = rotating
            .rewrap("653100", "k1", b"a\0r1", &sealed.envelope)
            .unwrap()
            .unwrap();
        assert_eq!(again.key_id, "k2");
        assert!(
            rotating
                .rewrap("653100", "k2", b"a\0r1", &again.envelope)
                .unwrap()
                .is_none()
        );
        let retired = Keys::load(&cfg(&[("*", &[&k2])]), dir.path()).unwrap();
        assert_eq!(
            retired
                .open("653100", "k2", b"a\0r1", &again.envelope)
                .unwrap(),
            b"secret content"
        );
        assert!(
            retired
                .open("653100", "k1", b"a\0r1", &sealed.envelope)
                .is_err()
        );
        assert_eq!(retired.current_ids(), ["k2"]);
    }

    #[test]
    fn keys_are_generated_once_when_none_are_configured() {
        let dir = tempfile::tempdir().unwrap();
        let a = Keys::load(&DataPushConfig::default(), dir.path()).unwrap();
        let sealed = a.seal("650100", b"b", b"content").unwrap();
        let b = Keys::load(&DataPushConfig::default(), dir.path()).unwrap();
        assert_eq!(
            b.open("650100", &sealed.key_id, b"b", &sealed.envelope)
                .unwrap(),
            b"content"
        );
        assert_eq!(a.index(&[b"x", b"y"]), b.index(&[b"x", b"y"]));
        assert_ne!(a.index(&[b"xy"]), a.index(&[b"x", b"y"]));
    }

    #[test]
    fn replicas_starting_at_once_generate_one_key_and_each_reads_it_whole() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let start = std::sync::Arc::new(std::sync::Barrier::new(8));
            let loaded: Vec<Keys> = (0..8)
                .map(|_| {
                    let (dir, start) = (dir.path().to_owned(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Keys::load(&DataPushConfig::default(), &dir)
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap().expect("every replica loads the keys"))
                .collect();
            let sealed = loaded[0].seal("650100", b"b", b"content").unwrap();
            for keys in &loaded {
                assert_eq!(keys.index(&[b"x"]), loaded[0].index(&[b"x"]));
                assert_eq!(
                    keys.open("650100", &sealed.key_id, b"b", &sealed.envelope)
                        .unwrap(),
                    b"content"
                );
            }
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(
                names,
                [creditmesh_pki::CONTACT_KEY_FILE, INDEX_FILE, KEK_FILE],
                "no drafts are left"
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(dir.path().join(KEK_FILE))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600);
            }
        }
    }
}
