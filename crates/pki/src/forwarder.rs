//! The secret the website shows the gateway's public listener to be trusted with a visitor's
//! address: whoever holds it may say on whose behalf a public call is made, so that the
//! gateway's per-address limits count visitors and not the website.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ring::rand::{SecureRandom, SystemRandom};

/// Its file in the PKI directory.
pub const FORWARDER_TOKEN_FILE: &str = "forwarder.token";

/// `DIR/forwarder.token`, made (32 random bytes, hex, readable by the owner only) unless it
/// exists.
pub fn ensure_forwarder_token(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(FORWARDER_TOKEN_FILE);
    crate::made_once(&path, || {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| std::io::Error::other("no randomness for the forwarder token"))?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    })
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The token in `DIR/forwarder.token`, if the file exists; a file that exists but is too
/// short or unreadable is an error rather than no token.
pub fn read_forwarder_token(dir: &Path) -> Result<Option<String>> {
    let path = &dir.join(FORWARDER_TOKEN_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned();
    anyhow::ensure!(
        token.len() >= 32,
        "{}: the token is too short",
        path.display()
    );
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_forwarder_token(dir.path()).unwrap(), None);
        let path = ensure_forwarder_token(dir.path()).unwrap();
        let token = read_forwarder_token(dir.path()).unwrap().unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(ensure_forwarder_token(dir.path()).unwrap(), path);
        assert_eq!(read_forwarder_token(dir.path()).unwrap().unwrap(), token);
        std::fs::write(&path, "short").unwrap();
        assert!(read_forwarder_token(dir.path()).is_err());
    }
}
