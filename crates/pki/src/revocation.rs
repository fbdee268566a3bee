//! Revocation: the CA keeps one certificate revocation list, `crl.pem` beside `ca.pem`, which
//! every listener loads with the CA bundle and reloads when it changes. Handshakes check it
//! (rustls); calls on connections opened before a revocation are checked against the serials
//! it lists.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, RevocationReason, RevokedCertParams,
    SerialNumber,
};
use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::Ca;

/// How long a list is current; `creditmesh pki crl` issues the next one.
pub const CRL_VALIDITY_DAYS: i64 = 30;

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The certificate's serial number, as its DER integer's bytes.
    pub serial: Vec<u8>,
    pub at: OffsetDateTime,
    pub reason: Option<RevocationReason>,
}

/// The revocation list in `path`: its entries and number; empty when the file is absent.
pub fn read_crl(path: &Path) -> Result<(Vec<Revoked>, u64)> {
    let Some(der) = load_crls(path)?.into_iter().next() else {
        return Ok((Vec::new(), 0));
    };
    let (_, crl) = CertificateRevocationList::from_der(der.as_ref())
        .map_err(|e| anyhow!("parsing {}: {e}", path.display()))?;
    let number = crl
        .crl_number()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let entries = crl
        .iter_revoked_certificates()
        .map(|r| Revoked {
            serial: r.raw_serial().to_vec(),
            at: r.revocation_date.to_datetime(),
            reason: r.reason_code().map(|(_, c)| reason_from_code(c.0)),
        })
        .collect();
    Ok((entries, number))
}

/// The lists in `path` for rustls; none when the file is absent.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    CertificateRevocationListDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))
}

/// The serials revoked by the list in `path`.
pub fn revoked_serials(path: &Path) -> Result<HashSet<Vec<u8>>> {
    Ok(read_crl(path)?
        .0
        .into_iter()
        .map(|r| normalise(&r.serial))
        .collect())
}

/// The serial number of a certificate, as the revocation lists compare it.
pub fn serial_of(cert_der: &[u8]) -> Result<Vec<u8>> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| anyhow!("parsing: {e}"))?;
    Ok(normalise(cert.raw_serial()))
}

/// A DER integer's bytes without the leading zero that keeps it positive.
fn normalise(serial: &[u8]) -> Vec<u8> {
    match serial {
        [0, rest @ ..] if !rest.is_empty() => rest.to_vec(),
        s => s.to_vec(),
    }
}

fn reason_from_code(code: u8) -> RevocationReason {
    match code {
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CaCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        8 => RevocationReason::RemoveFromCrl,
        9 => RevocationReason::PrivilegeWithdrawn,
        10 => RevocationReason::AaCompromise,
        _ => RevocationReason::Unspecified,
    }
}

/// Reasons as `creditmesh pki revoke --reason` names them.
pub fn parse_reason(name: &str) -> Result<RevocationReason> {
    Ok(match name {
        "unspecified" => RevocationReason::Unspecified,
        "key-compromise" => RevocationReason::KeyCompromise,
        "affiliation-changed" => RevocationReason::AffiliationChanged,
        "superseded" => RevocationReason::Superseded,
        "cessation-of-operation" => RevocationReason::CessationOfOperation,
        "privilege-withdrawn" => RevocationReason::PrivilegeWithdrawn,
        other => bail!(
            "unknown reason {other:?}; one of unspecified, key-compromise, affiliation-changed, \
             superseded, cessation-of-operation, privilege-withdrawn"
        ),
    })
}

impl Ca {
    /// Adds the certificate in `cert_pem` to the list in `dir` and issues the next list.
    /// Revoking a certificate twice keeps its first entry. Returns its serial.
    pub fn revoke(&self, dir: &Path, cert_pem: &Path, reason: RevocationReason) -> Result<Vec<u8>> {
        let der = rustls_pki_types::CertificateDer::from_pem_file(cert_pem)
            .with_context(|| format!("reading {}", cert_pem.display()))?;
        let serial = serial_of(der.as_ref())?;
        let path = dir.join("crl.pem");
        let (mut entries, number) = read_crl(&path)?;
        if !entries.iter().any(|e| normalise(&e.serial) == serial) {
            entries.push(Revoked {
                serial: serial.clone(),
                at: OffsetDateTime::now_utc(),
                reason: Some(reason),
            });
        }
        self.publish_crl(dir, &entries, number + 1)?;
        Ok(serial)
    }

    /// Issues the list again with a fresh validity (run before the current one lapses).
    pub fn refresh_crl(&self, dir: &Path) -> Result<usize> {
        let (entries, number) = read_crl(&dir.join("crl.pem"))?;
        self.publish_crl(dir, &entries, number + 1)?;
        Ok(entries.len())
    }

    fn publish_crl(&self, dir: &Path, entries: &[Revoked], number: u64) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(CRL_VALIDITY_DAYS),
            crl_number: SerialNumber::from(number.to_be_bytes().to_vec()),
            issuing_distribution_point: None,
            revoked_certs: entries
                .iter()
                .map(|e| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&e.serial),
                    revocation_time: e.at,
                    reason_code: e.reason,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?;
        let crl = params.signed_by(&issuer)?;
        // Written aside and renamed, so that a listener never reads half a list.
        let tmp = dir.join("crl.pem.new");
        std::fs::write(&tmp, crl.pem()?).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join("crl.pem"))?;
        Ok(())
    }
}
