//! The secrets a node signs and seals with, besides its certificates: the register's log key,
//! a witness's key, data push's key-encryption and index keys, the forwarder token, the key
//! that seals a person's contact between data push and the complaints sender. `dev`
//! makes whatever is missing as it goes; a production node (`serve`) makes none and refuses to
//! start without the ones its services need, which `creditmesh pki keys` makes once for all
//! its replicas to share.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::Config;

/// The key files `services` need in `cfg`'s PKI directory: the register's log key for
/// disclosure (and the witness key where this node witnesses another's register), data
/// push's keys unless the configuration carries them.
pub fn needed(cfg: &Config, services: &[&str]) -> Vec<PathBuf> {
    let dir = cfg.pki_dir();
    let mut files = Vec::new();
    if services.contains(&"disclosure") {
        files.push(dir.join(creditmesh_disclosure::checkpoint::KEY_FILE));
        if !cfg.register.witness_of.is_empty() {
            files.push(dir.join(creditmesh_disclosure::witnessing::WITNESS_KEY_FILE));
        }
    }
    if services.contains(&"datapush") || services.contains(&"complaints") {
        files.push(dir.join(creditmesh_pki::CONTACT_KEY_FILE));
    }
    if services.contains(&"datapush") {
        if cfg.datapush.keys.is_empty() {
            files.push(dir.join(creditmesh_datapush::seal::KEK_FILE));
        }
        if cfg.datapush.index_key.is_empty() {
            files.push(dir.join(creditmesh_datapush::seal::INDEX_FILE));
        }
    }
    files
}

/// Refuses, naming every missing file, unless the keys `services` need are present.
pub fn require(cfg: &Config, services: &[&str]) -> Result<()> {
    let missing: Vec<String> = needed(cfg, services)
        .into_iter()
        .filter(|f| !f.exists())
        .map(|f| f.display().to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing keys: {}; a node started with `serve` makes no keys of its own (its replicas \
             must share one set): make them once with `creditmesh pki keys --dir {}` and provide \
             them with the node's other secrets",
            missing.join(", "),
            cfg.pki_dir().display()
        );
    }
    Ok(())
}

/// Makes in `dir` every key a node may need that is not there yet (the witness key only with
/// `witness_name`, the name its cosignatures carry), with its verifier key beside the
/// signing keys. The files, made now or found.
pub fn make(dir: &Path, trust_domain: &str, witness_name: Option<&str>) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    creditmesh_disclosure::checkpoint::LogKey::load_or_create(dir, trust_domain)
        .context("the register's log key")?;
    let mut files = vec![
        dir.join(creditmesh_disclosure::checkpoint::KEY_FILE),
        dir.join(creditmesh_disclosure::checkpoint::VKEY_FILE),
    ];
    if let Some(name) = witness_name {
        let file = creditmesh_disclosure::witnessing::WITNESS_KEY_FILE;
        creditmesh_disclosure::cosign::CosignerKey::load_or_create(dir, file, name)
            .context("the witness key")?;
        files.push(dir.join(file));
        files.push(dir.join(file).with_extension("vkey"));
    }
    creditmesh_datapush::seal::Keys::load(&Default::default(), dir).context("data push's keys")?;
    files.push(dir.join(creditmesh_datapush::seal::KEK_FILE));
    files.push(dir.join(creditmesh_datapush::seal::INDEX_FILE));
    files.push(creditmesh_pki::ensure_forwarder_token(dir)?);
    files.push(creditmesh_pki::ensure_contact_key(dir)?);
    Ok(files)
}
