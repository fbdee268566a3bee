//! The register's configuration (`[register]`): its witnesses, and whether this node is one.

/// The register's witnesses (`[register]`).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterConfig {
    /// Witnesses asked to cosign each checkpoint the register signs.
    pub witnesses: Vec<WitnessPeer>,
    /// The register serves the newest checkpoint carrying at least this many cosignatures.
    pub cosignatures_required: u32,
    /// Makes this node's disclosure service a witness of the log with these verifier keys
    /// (C2SP signed-note vkeys, one per line: across a rotation of the log's key, the old and
    /// the new); empty: not a witness.
    pub witness_of: String,
    /// This witness's name (a schema-less URL); its key is `witness.key` in the PKI directory.
    pub witness_name: String,
}

/// A witness the register submits its checkpoints to.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WitnessPeer {
    /// The witness node's disclosure service, `https://host:port`.
    pub url: String,
    /// The name in its certificate.
    pub server_name: String,
    /// Its cosigner key (`<name>+<key id>+<base64 key>`).
    pub verifier_key: String,
}
