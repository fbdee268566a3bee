use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use creditmesh_domain::Principal;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Where a node finds the CA bundle and its own certificate and key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA's revocation list; absent file, no revocations.
    #[serde(default)]
    pub crl: Option<PathBuf>,
}

impl TlsFiles {
    /// `DIR/ca.pem` and `DIR/crl.pem` with `DIR/NAME.pem` and `DIR/NAME.key`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
            crl: Some(dir.join("crl.pem")),
        }
    }

    /// The CA's revocation lists as on disk now; none when there is no list file.
    pub fn crls(&self) -> Result<Vec<rustls_pki_types::CertificateRevocationListDer<'static>>> {
        match &self.crl {
            Some(path) => crate::revocation::load_crls(path),
            None => Ok(Vec::new()),
        }
    }

    pub fn read_ca_pem(&self) -> Result<String> {
        std::fs::read_to_string(&self.ca).with_context(|| format!("reading {}", self.ca.display()))
    }

    pub fn read_cert_pem(&self) -> Result<String> {
        std::fs::read_to_string(&self.cert)
            .with_context(|| format!("reading {}", self.cert.display()))
    }

    pub fn read_key_pem(&self) -> Result<String> {
        std::fs::read_to_string(&self.key)
            .with_context(|| format!("reading {}", self.key.display()))
    }

    pub(crate) fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca)
            .with_context(|| format!("reading {}", self.ca.display()))?
        {
            roots.add(cert.context("parsing the CA bundle")?)?;
        }
        if roots.is_empty() {
            bail!("{} holds no certificate", self.ca.display());
        }
        Ok(roots)
    }

    pub(crate) fn chain_and_key(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .with_context(|| format!("reading {}", self.cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing {}", self.cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .with_context(|| format!("reading {}", self.key.display()))?;
        Ok((chain, key))
    }
}

/// Whether a certificate is marked for client authentication. A certificate without the
/// Extended Key Usage extension is not: the mesh issues every client certificate with it.
pub fn has_client_auth(cert_der: &[u8]) -> Result<bool> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| anyhow!("parsing: {e}"))?;
    Ok(cert
        .extended_key_usage()
        .map_err(|e| anyhow!("extended key usage: {e}"))?
        .is_some_and(|eku| eku.value.client_auth))
}

/// The principal named by a peer certificate's one URI SAN. A certificate with no URI SAN, or
/// with more than one, names nobody.
pub fn principal_of(cert_der: &[u8], trust_domain: &str) -> Result<Principal> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| anyhow!("parsing: {e}"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| anyhow!("subject alternative names: {e}"))?
        .ok_or_else(|| anyhow!("certificate has no subject alternative names"))?;
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(*u),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [one] => Ok(Principal::parse_spiffe(one, trust_domain)?),
        [] => bail!("certificate has no uri san"),
        _ => bail!(
            "certificate has {} uri sans, exactly one is allowed",
            uris.len()
        ),
    }
}
