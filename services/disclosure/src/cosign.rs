//! C2SP tlog-cosignature (cosignature/v1, Ed25519): what a witness signs about a checkpoint,
//! and how anyone checks it.
//!
//! The signed message is `cosignature/v1\ntime <seconds>\n` followed by the checkpoint's note
//! body; the signature line is `— <name> base64(key id || u64 timestamp || signature)`, the key
//! id being `SHA-256(name || "\n" || 0x04 || public key)[:4]`.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

/// The signature type byte of cosignature/v1 in keys and key ids.
const COSIGNATURE_V1: u8 = 0x04;

pub fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut data = Vec::with_capacity(name.len() + 34);
    data.extend_from_slice(name.as_bytes());
    data.push(b'\n');
    data.push(COSIGNATURE_V1);
    data.extend_from_slice(public);
    let digest = ring::digest::digest(&ring::digest::SHA256, &data);
    let mut id = [0u8; 4];
    id.copy_from_slice(&digest.as_ref()[..4]);
    id
}

/// The message a cosignature signs.
pub fn message(body: &[u8], timestamp: u64) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

/// A witness's key: its name (a schema-less URL) and Ed25519 key.
pub struct CosignerKey {
    name: String,
    key: SigningKey,
}

impl CosignerKey {
    pub fn new(name: &str, seed: [u8; 32]) -> Result<Self, String> {
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
            return Err(format!(
                "witness name {name:?} must be non-empty, without spaces or '+'"
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Loads the key kept in `file` under `dir` (hex of the seed), creating it when missing.
    /// Its verifier key is written beside it (`.vkey`) for the register's operator.
    pub fn load_or_create(dir: &Path, file: &str, name: &str) -> std::io::Result<Self> {
        let path = dir.join(file);
        let seed = crate::keyfile::load_or_create_seed(&path)?;
        let key = Self::new(name, seed).map_err(std::io::Error::other)?;
        crate::keyfile::publish_vkey(&path.with_extension("vkey"), &key.verifier_key());
        Ok(key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key: `<name>+<key id, hex>+base64(0x04 || public key)`.
    pub fn verifier_key(&self) -> String {
        let public = self.key.verifying_key().to_bytes();
        let mut material = vec![COSIGNATURE_V1];
        material.extend_from_slice(&public);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(key_id(&self.name, &public)),
            STANDARD.encode(material)
        )
    }

    /// The signature line cosigning the checkpoint whose note body is `body`, at `timestamp`.
    pub fn cosign(&self, body: &[u8], timestamp: u64) -> String {
        let public = self.key.verifying_key().to_bytes();
        let signature = self.key.sign(&message(body, timestamp));
        let mut blob = key_id(&self.name, &public).to_vec();
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!("— {} {}\n", self.name, STANDARD.encode(blob))
    }
}

/// A witness's verifier key, parsed.
pub struct CosignerVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl CosignerVerifier {
    pub fn parse(vkey: &str) -> Result<Self, String> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("a witness key is <name>+<key id>+<key>".into());
        };
        let material = STANDARD
            .decode(material)
            .map_err(|_| "witness key: the key is not base64".to_owned())?;
        if material.len() != 33 || material[0] != COSIGNATURE_V1 {
            return Err("witness key: not a cosignature/v1 Ed25519 key".into());
        }
        let public: [u8; 32] = material[1..].try_into().map_err(|_| "witness key length")?;
        let id = key_id(name, &public);
        if hex::encode(id) != id_hex.to_ascii_lowercase() {
            return Err("witness key: its key id does not match its name and key".into());
        }
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| "witness key: not an Ed25519 public key".to_owned())?;
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The timestamp of this witness's cosignature among the signature lines of `note`
    /// (a signed checkpoint), once verified.
    pub fn verify(&self, note: &str) -> Result<u64, String> {
        let (body, signatures) = split_note(note)?;
        for line in signatures.lines() {
            let Some(rest) = line.strip_prefix("— ") else {
                continue;
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                continue;
            };
            let Ok(blob) = STANDARD.decode(blob) else {
                continue;
            };
            if name != self.name || blob.len() != 4 + 8 + 64 || blob[..4] != self.id {
                continue;
            }
            let timestamp = u64::from_be_bytes(blob[4..12].try_into().unwrap_or_default());
            let signature = Signature::from_slice(&blob[12..])
                .map_err(|_| format!("cosignature of {name}: malformed"))?;
            self.key
                .verify(&message(body.as_bytes(), timestamp), &signature)
                .map_err(|_| format!("cosignature of {name} does not verify"))?;
            return Ok(timestamp);
        }
        Err(format!("no cosignature of {}", self.name))
    }
}

/// A signed note's body (through its last newline before the blank line) and its signature
/// lines.
pub fn split_note(note: &str) -> Result<(&str, &str), String> {
    let at = note
        .find("\n\n")
        .ok_or_else(|| "a signed note has a blank line before its signatures".to_owned())?;
    Ok((&note[..=at], &note[at + 2..]))
}

/// `note` with `lines` (signature lines, each ending in a newline) added after its own.
pub fn with_signatures(note: &str, lines: &[String]) -> String {
    let mut out = note.to_owned();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for l in lines {
        out.push_str(l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "example.com/log\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/log abcd\n";

    #[test]
    fn a_cosignature_verifies_with_the_witness_key_and_nothing_else() {
        let w = CosignerKey::new("witness.example/kashgar", [3; 32]).unwrap();
        let (body, _) = split_note(NOTE).unwrap();
        let line = w.cosign(body.as_bytes(), 1_700_000_000);
        let cosigned = with_signatures(NOTE, &[line]);
        let v = CosignerVerifier::parse(&w.verifier_key()).unwrap();
        assert_eq!(v.verify(&cosigned).unwrap(), 1_700_000_000);
        // Another body, or another witness's key, does not verify.
        let other = cosigned.replacen("\n3\n", "\n4\n", 1);
        assert!(v.verify(&other).is_err());
        let stranger = CosignerKey::new("witness.example/kashgar", [4; 32]).unwrap();
        assert!(
            CosignerVerifier::parse(&stranger.verifier_key())
                .unwrap()
                .verify(&cosigned)
                .is_err()
        );
    }

    #[test]
    fn the_key_id_follows_the_spec() {
        // SHA-256(name || "\n" || 0x04 || key)[:4], as tlog-cosignature defines it.
        let w = CosignerKey::new("w", [9; 32]).unwrap();
        let vkey = w.verifier_key();
        let parsed = CosignerVerifier::parse(&vkey).unwrap();
        assert_eq!(parsed.name(), "w");
        let tampered = vkey.replacen("+", "+0", 1);
        assert!(CosignerVerifier::parse(&tampered).is_err());
    }
}
