//! Signed receipts: a node states that it received something, with the key of its own
//! certificate, so that anyone holding the CA certificate can check who received what and when.

use anyhow::{Context, Result, anyhow, bail};
use creditmesh_domain::Principal;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, EndEntityCert, KeyUsage, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};

use crate::identity::{TlsFiles, principal_of};

/// What a department node signs for one referral.
pub fn referral_statement(referral_id: &str, sha256_hex: &str, received_at_micros: i64) -> String {
    format!(
        "creditmesh referral receipt v1\nreferral {referral_id}\nsha256 {sha256_hex}\nreceived {received_at_micros}\n"
    )
}

/// Signs statements with a node's certificate key (ECDSA P-256, as the CA issues them).
pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    certificate: Vec<u8>,
}

impl Signer {
    /// The certificate and key of `files`.
    pub fn load(files: &TlsFiles) -> Result<Self> {
        let cert = CertificateDer::pem_file_iter(&files.cert)
            .with_context(|| format!("reading {}", files.cert.display()))?
            .next()
            .ok_or_else(|| anyhow!("{} holds no certificate", files.cert.display()))?
            .with_context(|| format!("parsing {}", files.cert.display()))?;
        let key = match PrivateKeyDer::from_pem_file(&files.key)
            .with_context(|| format!("reading {}", files.key.display()))?
        {
            PrivateKeyDer::Pkcs8(k) => k,
            _ => bail!("{}: not a PKCS#8 key", files.key.display()),
        };
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            key.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| anyhow!("{}: not an ECDSA P-256 key: {e}", files.key.display()))?;
        Ok(Self {
            key,
            rng,
            certificate: cert.to_vec(),
        })
    }

    /// The signer's certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    pub fn sign(&self, statement: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .key
            .sign(&self.rng, statement)
            .map_err(|e| anyhow!("signing: {e}"))?
            .as_ref()
            .to_vec())
    }
}

/// Checks that `certificate` chains to one of the CA certificates in `ca_pem`, was valid at
/// `at_unix_seconds` and is not revoked by `crls` (the CA's lists, as [`crate::load_crls`]
/// reads them; a certificate of an issuer without a list is not refused for that), is a server
/// or client certificate of this trust domain, and signed `statement` with `signature`;
/// answers the principal it names.
pub fn verify(
    ca_pem: &str,
    crls: &[CertificateRevocationListDer<'_>],
    trust_domain: &str,
    certificate: &[u8],
    statement: &[u8],
    signature: &[u8],
    at_unix_seconds: u64,
) -> Result<Principal> {
    let roots = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("parsing the CA bundle")?;
    let anchors = roots
        .iter()
        .map(|c| webpki::anchor_from_trusted_cert(c).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("CA certificate: {e}"))?;
    let lists = crls
        .iter()
        .map(|der| BorrowedCertRevocationList::from_der(der.as_ref()).map(CertRevocationList::from))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("revocation list: {e}"))?;
    let lists: Vec<&CertRevocationList<'_>> = lists.iter().collect();
    let revocation = RevocationOptionsBuilder::new(&lists).ok().map(|options| {
        options
            .with_depth(RevocationCheckDepth::EndEntity)
            .with_status_policy(UnknownStatusPolicy::Allow)
            .build()
    });
    let der = CertificateDer::from(certificate);
    let cert = EndEntityCert::try_from(&der).map_err(|e| anyhow!("certificate: {e}"))?;
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at_unix_seconds));
    let chained = |usage| {
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &[],
            at,
            usage,
            revocation,
            None,
        )
        .map(|_| ())
    };
    match chained(KeyUsage::server_auth()).or_else(|_| chained(KeyUsage::client_auth())) {
        Ok(()) => {}
        Err(webpki::Error::CertRevoked) => bail!("the signing certificate is revoked"),
        Err(e) => bail!("certificate not issued by the CA for this use: {e}"),
    }
    cert.verify_signature(webpki::ring::ECDSA_P256_SHA256, statement, signature)
        .map_err(|e| anyhow!("signature: {e}"))?;
    principal_of(certificate, trust_domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ca, LeafSpec, Usage};
    use creditmesh_domain::{PrincipalKind, Tenant};

    const TD: &str = "creditmesh.test";

    fn node(dir: &std::path::Path, ca: &Ca, name: &str, code: &str) -> TlsFiles {
        ca.issue(
            dir,
            TD,
            &LeafSpec {
                name: name.into(),
                principal: Principal::new(
                    PrincipalKind::Department,
                    Tenant::parse("650100").unwrap(),
                    code,
                ),
                dns_names: vec!["localhost".into()],
                ip_addresses: vec![],
                usage: Usage::ClientAndServer,
                lifetime_days: 1,
            },
        )
        .unwrap();
        TlsFiles::in_dir(dir, name)
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn a_receipt_verifies_against_the_ca_and_names_its_signer() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(dir.path(), 10).unwrap();
        let signer = Signer::load(&node(dir.path(), &ca, "dept", "market-regulation")).unwrap();
        let ca_pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
        let statement = referral_statement("r1", &"ab".repeat(32), 42);
        let sig = signer.sign(statement.as_bytes()).unwrap();
        let who = verify(
            &ca_pem,
            &[],
            TD,
            signer.certificate(),
            statement.as_bytes(),
            &sig,
            now(),
        )
        .unwrap();
        assert_eq!(who.subject, "market-regulation");
        assert_eq!(who.tenant.to_string(), "650100");

        // Another statement, the same signature: refused.
        let other = referral_statement("r2", &"ab".repeat(32), 42);
        assert!(
            verify(
                &ca_pem,
                &[],
                TD,
                signer.certificate(),
                other.as_bytes(),
                &sig,
                now()
            )
            .is_err()
        );
        // Long after the certificate expired: refused.
        assert!(
            verify(
                &ca_pem,
                &[],
                TD,
                signer.certificate(),
                statement.as_bytes(),
                &sig,
                now() + 400 * 86_400
            )
            .is_err()
        );
    }

    #[test]
    fn a_certificate_of_another_ca_is_refused() {
        let ours = tempfile::tempdir().unwrap();
        Ca::init(ours.path(), 10).unwrap();
        let theirs = tempfile::tempdir().unwrap();
        let other_ca = Ca::init(theirs.path(), 10).unwrap();
        let signer =
            Signer::load(&node(theirs.path(), &other_ca, "dept", "market-regulation")).unwrap();
        let ca_pem = std::fs::read_to_string(ours.path().join("ca.pem")).unwrap();
        let statement = referral_statement("r1", &"ab".repeat(32), 42);
        let sig = signer.sign(statement.as_bytes()).unwrap();
        let err = verify(
            &ca_pem,
            &[],
            TD,
            signer.certificate(),
            statement.as_bytes(),
            &sig,
            now(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not issued by the CA"), "{err}");
    }

    #[test]
    fn a_receipt_signed_by_a_revoked_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(dir.path(), 10).unwrap();
        let files = node(dir.path(), &ca, "dept", "market-regulation");
        let signer = Signer::load(&files).unwrap();
        let other = Signer::load(&node(dir.path(), &ca, "other", "taxation")).unwrap();
        let ca_pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
        let statement = referral_statement("r1", &"ab".repeat(32), 42);
        let sig = signer.sign(statement.as_bytes()).unwrap();
        let other_sig = other.sign(statement.as_bytes()).unwrap();
        ca.revoke(
            dir.path(),
            &files.cert,
            rcgen::RevocationReason::KeyCompromise,
        )
        .unwrap();
        let crls = crate::load_crls(&dir.path().join("crl.pem")).unwrap();
        assert_eq!(crls.len(), 1);
        let verify_with = |crls: &[CertificateRevocationListDer<'_>], cert: &[u8], sig: &[u8]| {
            verify(&ca_pem, crls, TD, cert, statement.as_bytes(), sig, now())
        };
        let err = verify_with(&crls, signer.certificate(), &sig).unwrap_err();
        assert!(err.to_string().contains("revoked"), "{err}");
        // The list names that certificate only; without the list it would have passed.
        let who = verify_with(&crls, other.certificate(), &other_sig).unwrap();
        assert_eq!(who.subject, "taxation");
        verify_with(&[], signer.certificate(), &sig).unwrap();
    }
}
