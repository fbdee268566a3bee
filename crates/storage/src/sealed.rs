//! Stored answers of idempotent calls, kept so that only the caller who holds the request id
//! can read them again: the row is found by a hash of the key, and the answer is sealed
//! (ChaCha20-Poly1305) under a key derived from it. The database never holds an answer, an
//! access code say, in clear.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// How long a stored answer is kept: a retry within it gets the first answer; after it the
/// record is purged and the same request id is a new call.
pub const KEEP_MICROS: i64 = 24 * 3600 * 1_000_000;

fn derive(label: &str, principal: &str, method: &str, request_id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [label, principal, method, request_id] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize().into()
}

/// The column value that finds the record of a request id.
pub fn lookup(principal: &str, method: &str, request_id: &str) -> String {
    hex::encode(derive(
        "creditmesh idempotency lookup",
        principal,
        method,
        request_id,
    ))
}

fn key(principal: &str, method: &str, request_id: &str) -> LessSafeKey {
    let k = derive("creditmesh idempotency seal", principal, method, request_id);
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &k).expect("a 32-byte key"))
}

/// `nonce || ciphertext || tag`.
pub fn seal(principal: &str, method: &str, request_id: &str, answer: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .expect("the system's random source");
    let mut sealed = answer.to_vec();
    key(principal, method, request_id)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut sealed,
        )
        .expect("sealing a stored answer");
    let mut out = nonce.to_vec();
    out.extend(sealed);
    out
}

/// The answer sealed for this request id, or `None` when the bytes were not sealed for it.
pub fn open(principal: &str, method: &str, request_id: &str, stored: &[u8]) -> Option<Vec<u8>> {
    if stored.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = stored.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = sealed.to_vec();
    let plain = key(principal, method, request_id)
        .open_in_place(nonce, Aad::empty(), &mut buf)
        .ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_request_id_opens_its_answer() {
        let answer = b"access code 7Q2M-9KX4";
        let stored = seal("public", "SubmitComplaint", "r-1", answer);
        assert!(!stored.windows(4).any(|w| w == b"7Q2M"));
        assert_eq!(
            open("public", "SubmitComplaint", "r-1", &stored).as_deref(),
            Some(&answer[..])
        );
        assert_eq!(open("public", "SubmitComplaint", "r-2", &stored), None);
        assert_eq!(open("someone", "SubmitComplaint", "r-1", &stored), None);
        assert_ne!(
            lookup("public", "SubmitComplaint", "r-1"),
            lookup("public", "SubmitComplaint", "r-2")
        );
        assert!(!lookup("public", "SubmitComplaint", "r-1").contains("r-1"));
    }
}
