//! The register's leaves: each notice's canonical content behind a random salt, hashed as
//! RFC 6962 leaves; the log that holds them is `log_store`.

use tlog_tiles::Hash;

/// A leaf's random salt: 32 bytes.
pub const SALT_BYTES: usize = 32;

/// The bytes a leaf hashes: the salt, then the notice's canonical content.
pub fn leaf_data(salt: &[u8], content: &[u8]) -> Vec<u8> {
    [salt, content].concat()
}

pub fn leaf_hash(salt: &[u8], content: &[u8]) -> Hash {
    tlog_tiles::record_hash(&leaf_data(salt, content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaf_commits_to_its_salt_and_content() {
        let a = leaf_hash(&[1; 32], b"notice");
        assert_ne!(a, leaf_hash(&[2; 32], b"notice"));
        assert_ne!(a, leaf_hash(&[1; 32], b"notic3"));
        // RFC 6962: SHA-256(0x00 || data).
        let mut data = vec![0u8];
        data.extend_from_slice(&[1; 32]);
        data.extend_from_slice(b"notice");
        assert_eq!(
            a.0.as_slice(),
            ring::digest::digest(&ring::digest::SHA256, &data).as_ref()
        );
    }
}
