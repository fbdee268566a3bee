//! rustls configurations for the mesh, rebuilt from disk when the files change, so that
//! certificates and the CA bundle rotate without a restart.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use anyhow::Result;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error as TlsError, SignatureScheme,
};

use crate::identity::{TlsFiles, principal_of};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whom a server listener lets in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// Anyone (the public listener): server authentication only.
    None,
    /// Only clients with a certificate from the CA, valid now, for client authentication, and
    /// naming exactly one principal of this trust domain.
    Required { trust_domain: String },
}

/// Checks what webpki checks (issuer, validity, key usage) and then that the certificate
/// names exactly one principal of the trust domain.
#[derive(Debug)]
struct SpiffeClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    trust_domain: String,
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        // The reason reaches the peer as a TLS alert; the listener logs the failed handshake.
        let refused = |why: String| {
            tracing::warn!(reason = %why, "client certificate refused");
            TlsError::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        };
        if !crate::identity::has_client_auth(end_entity).map_err(|e| refused(e.to_string()))? {
            return Err(refused("no client-auth extended key usage".into()));
        }
        principal_of(end_entity, &self.trust_domain).map_err(|e| refused(e.to_string()))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The check of a client's certificate: the CA's, valid now, not revoked, for client
/// authentication, naming one principal of `trust_domain`.
fn client_verifier(files: &TlsFiles, trust_domain: &str) -> Result<Arc<SpiffeClientVerifier>> {
    let crls = files.crls()?;
    let mut webpki =
        WebPkiClientVerifier::builder_with_provider(Arc::new(files.roots()?), provider());
    if !crls.is_empty() {
        // The list is the CA's own; a certificate of another issuer in the bundle
        // (during a CA rotation) has no list and is not refused for that.
        webpki = webpki
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    Ok(Arc::new(SpiffeClientVerifier {
        inner: webpki.build()?,
        trust_domain: trust_domain.to_owned(),
    }))
}

fn build_server(files: &TlsFiles, auth: &ClientAuth) -> Result<Arc<rustls::ServerConfig>> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = match auth {
        ClientAuth::Required { trust_domain } => {
            builder.with_client_cert_verifier(client_verifier(files, trust_domain)?)
        }
        ClientAuth::None => builder.with_no_client_auth(),
    };
    let (chain, key) = files.chain_and_key()?;
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn build_client(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>> {
    let (chain, key) = files.chain_and_key()?;
    let crls = files.crls()?;
    let mut verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(files.roots()?),
        provider(),
    );
    if !crls.is_empty() {
        verifier = verifier
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_webpki_verifier(verifier.build()?)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Modification times of the files; a change of any rebuilds the configuration.
fn stamp(files: &TlsFiles) -> Vec<Option<SystemTime>> {
    [
        Some(&files.ca),
        Some(&files.cert),
        Some(&files.key),
        files.crl.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    .collect()
}

fn revoked(files: &TlsFiles) -> Result<HashSet<Vec<u8>>> {
    match &files.crl {
        Some(path) => crate::revocation::revoked_serials(path),
        None => Ok(HashSet::new()),
    }
}

type Build<C> = Box<dyn Fn(&TlsFiles) -> Result<Arc<C>> + Send + Sync>;

/// A configuration kept in step with its files.
pub struct Reloading<C> {
    files: TlsFiles,
    build: Build<C>,
    current: RwLock<Arc<C>>,
    revoked: RwLock<Arc<HashSet<Vec<u8>>>>,
    stamp: Mutex<Vec<Option<SystemTime>>>,
}

pub type ServerTls = Reloading<rustls::ServerConfig>;
pub type ClientTls = Reloading<rustls::ClientConfig>;

impl<C> Reloading<C> {
    fn new(files: TlsFiles, build: Build<C>) -> Result<Arc<Self>> {
        let st = stamp(&files);
        let current = build(&files)?;
        let revoked = revoked(&files)?;
        Ok(Arc::new(Self {
            files,
            build,
            current: RwLock::new(current),
            revoked: RwLock::new(Arc::new(revoked)),
            stamp: Mutex::new(st),
        }))
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<C> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Whether the certificate with this serial (see [`crate::serial_of`]) is revoked by the
    /// list as last loaded.
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(serial)
    }

    /// Rebuilds the configuration when a file changed since the last look. `Ok(true)` when it
    /// was replaced; on error the previous configuration stays in force.
    pub fn reload_if_changed(&self) -> Result<bool> {
        let now = stamp(&self.files);
        let mut last = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if *last == now {
            return Ok(false);
        }
        let fresh = (self.build)(&self.files)?;
        let revoked = revoked(&self.files)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        *self.revoked.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(revoked);
        *last = now;
        Ok(true)
    }
}

impl ServerTls {
    /// A server configuration speaking HTTP/2 (and HTTP/1.1 for gRPC-Web).
    pub fn server(files: TlsFiles, auth: ClientAuth) -> Result<Arc<Self>> {
        Reloading::new(files, Box::new(move |f| build_server(f, &auth)))
    }
}

/// Checks a certificate that a node presents on another's behalf (the console forwards the one
/// its officer signed in with) exactly as the node listener checks its own clients'.
pub struct DelegatedCheck {
    verifier: Arc<SpiffeClientVerifier>,
}

impl DelegatedCheck {
    /// The principal the certificate (DER) names, with its serial; refused when the node
    /// listener would refuse it in a handshake.
    pub fn principal(&self, cert_der: &[u8]) -> Result<(creditmesh_domain::Principal, Vec<u8>)> {
        let cert = CertificateDer::from(cert_der);
        self.verifier
            .verify_client_cert(&cert, &[], UnixTime::now())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((
            principal_of(cert_der, &self.verifier.trust_domain)?,
            crate::serial_of(cert_der)?,
        ))
    }
}

pub type DelegationTls = Reloading<DelegatedCheck>;

impl DelegationTls {
    /// The check of delegated certificates against this node's CA bundle and revocation list.
    pub fn delegated(files: TlsFiles, trust_domain: &str) -> Result<Arc<Self>> {
        let trust_domain = trust_domain.to_owned();
        Reloading::new(
            files,
            Box::new(move |f| {
                Ok(Arc::new(DelegatedCheck {
                    verifier: client_verifier(f, &trust_domain)?,
                }))
            }),
        )
    }
}

impl ClientTls {
    /// A client configuration presenting this node's certificate and trusting only the CA.
    pub fn client(files: TlsFiles) -> Result<Arc<Self>> {
        Reloading::new(files, Box::new(build_client))
    }
}
