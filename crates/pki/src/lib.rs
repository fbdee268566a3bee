//! The regional CA and the certificates it issues: one URI SAN per leaf naming kind, tenant
//! and subject (SPIFFE style), and the rustls configurations built from them.

mod ca;
mod contacts;
mod forwarder;
mod identity;
pub mod receipt;
mod revocation;
mod secret_file;
mod tls;

pub use ca::{
    Ca, DEMO_AGENCY_USCC, DevPki, LEAF_LIFETIME_DAYS, LeafSpec, Usage, dev_leaves, ensure_dev_pki,
};
pub use contacts::{CONTACT_KEY_FILE, ContactKey, ensure_contact_key, is_sealed};
pub use forwarder::{FORWARDER_TOKEN_FILE, ensure_forwarder_token, read_forwarder_token};
pub use identity::{TlsFiles, principal_of};
pub use revocation::{
    CRL_VALIDITY_DAYS, Revoked, load_crls, parse_reason, read_crl, revoked_serials, serial_of,
};
pub use secret_file::{forbid_making, made_once};
pub use tls::{ClientAuth, ClientTls, DelegatedCheck, DelegationTls, Reloading, ServerTls};

/// The trust domain of the SPIFFE IDs, unless configured otherwise.
pub const DEFAULT_TRUST_DOMAIN: &str = "creditmesh.xinjiang";
