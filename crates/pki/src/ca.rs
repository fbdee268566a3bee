use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use creditmesh_domain::{Principal, PrincipalKind, Tenant, tenant::REGION};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// The regional certificate authority, loaded from `ca.pem` and `ca.key`.
pub struct Ca {
    pub cert_pem: String,
    pub(crate) key: KeyPair,
}

/// What a leaf certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Client,
    Server,
    ClientAndServer,
}

/// A leaf certificate to issue.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// File stem: the certificate goes to `NAME.pem`, its key to `NAME.key`.
    pub name: String,
    pub principal: Principal,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub usage: Usage,
    pub lifetime_days: i64,
}

impl Ca {
    /// Mints a new CA and writes it to `dir`.
    pub fn init(dir: &Path, lifetime_days: i64) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "creditmesh regional CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "creditmesh");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(lifetime_days);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        write_private(&dir.join("ca.key"), &key.serialize_pem())?;
        std::fs::write(dir.join("ca.pem"), cert.pem())?;
        Ok(Self {
            cert_pem: cert.pem(),
            key,
        })
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let cert_pem = std::fs::read_to_string(dir.join("ca.pem"))
            .with_context(|| format!("reading {}", dir.join("ca.pem").display()))?;
        let key_pem = std::fs::read_to_string(dir.join("ca.key"))
            .with_context(|| format!("reading {}", dir.join("ca.key").display()))?;
        Ok(Self {
            cert_pem,
            key: KeyPair::from_pem(&key_pem).context("parsing ca.key")?,
        })
    }

    /// Issues a leaf and writes `NAME.pem` and `NAME.key` to `dir`.
    pub fn issue(&self, dir: &Path, trust_domain: &str, spec: &LeafSpec) -> Result<PathBuf> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, spec.principal.to_string());
        params.subject_alt_names.push(SanType::URI(
            spec.principal.spiffe_id(trust_domain).try_into()?,
        ));
        for dns in &spec.dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns.as_str().try_into()?));
        }
        for ip in &spec.ip_addresses {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match spec.usage {
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::ClientAndServer => vec![
                ExtendedKeyUsagePurpose::ClientAuth,
                ExtendedKeyUsagePurpose::ServerAuth,
            ],
        };
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(spec.lifetime_days);
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        let cert_path = dir.join(format!("{}.pem", spec.name));
        std::fs::write(&cert_path, cert.pem())?;
        write_private(
            &dir.join(format!("{}.key", spec.name)),
            &key.serialize_pem(),
        )?;
        Ok(cert_path)
    }
}

/// Default lifetime of a leaf certificate: short, so that a leaked key does not outlive a
/// quarter; `creditmesh pki renew` issues the next one.
pub const LEAF_LIFETIME_DAYS: i64 = 90;

/// A leaf is renewed by `ensure_dev_pki` once less than this remains of it.
const RENEW_WITHIN_DAYS: i64 = 30;

impl Ca {
    /// Issues `NAME.pem` again, for the same identity, names and usage, with a new key and
    /// `lifetime_days` from now. The old certificate stays valid until it expires or is
    /// revoked.
    pub fn renew(
        &self,
        dir: &Path,
        trust_domain: &str,
        name: &str,
        lifetime_days: i64,
    ) -> Result<PathBuf> {
        let spec = spec_of(dir, trust_domain, name)?;
        self.issue(
            dir,
            trust_domain,
            &LeafSpec {
                lifetime_days,
                ..spec
            },
        )
    }
}

/// What `NAME.pem` in `dir` was issued as.
fn spec_of(dir: &Path, trust_domain: &str, name: &str) -> Result<LeafSpec> {
    use rustls_pki_types::pem::PemObject;
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let path = dir.join(format!("{name}.pem"));
    let der = rustls_pki_types::CertificateDer::from_pem_file(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    let principal = crate::principal_of(der.as_ref(), trust_domain)
        .with_context(|| format!("{}", path.display()))?;
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ip_addresses.push(IpAddr::from(<[u8; 4]>::try_from(*b)?)),
                    16 => ip_addresses.push(IpAddr::from(<[u8; 16]>::try_from(*b)?)),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let eku = cert
        .extended_key_usage()
        .ok()
        .flatten()
        .map(|e| (e.value.client_auth, e.value.server_auth));
    let usage = match eku {
        Some((true, true)) => Usage::ClientAndServer,
        Some((false, true)) => Usage::Server,
        _ => Usage::Client,
    };
    Ok(LeafSpec {
        name: name.to_owned(),
        principal,
        dns_names,
        ip_addresses,
        usage,
        lifetime_days: LEAF_LIFETIME_DAYS,
    })
}

/// Days left of the certificate in `path`; `None` when it cannot be read.
fn days_left(path: &Path) -> Option<i64> {
    use rustls_pki_types::pem::PemObject;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let der = rustls_pki_types::CertificateDer::from_pem_file(path).ok()?;
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    let left = cert.validity().not_after.to_datetime() - OffsetDateTime::now_utc();
    Some(left.whole_days())
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// The development PKI that `creditmesh dev` mints on first run and reuses afterwards.
#[derive(Debug, Clone)]
pub struct DevPki {
    pub dir: PathBuf,
    /// Whether this call minted the CA (first run).
    pub minted: bool,
}

/// USCC of the demo agency: registered in Urumqi (division 650102), filed with `650100`.
pub const DEMO_AGENCY_USCC: &str = "91650102MA7XJ0003G";

/// The leaves of the development PKI: the callers a person tries the mesh with, and one
/// identity per node.
pub fn dev_leaves() -> Vec<LeafSpec> {
    let urumqi = Tenant::parse("650100").expect("known tenant");
    let local_dns = ["localhost".to_owned()];
    let local_ip = vec![IpAddr::from([127, 0, 0, 1])];
    let caller = |name: &str, p: Principal| LeafSpec {
        name: name.into(),
        principal: p,
        dns_names: vec![],
        ip_addresses: vec![],
        usage: Usage::Client,
        lifetime_days: LEAF_LIFETIME_DAYS,
    };
    let mut leaves = vec![
        caller(
            "agency",
            Principal::new(PrincipalKind::Agency, urumqi, DEMO_AGENCY_USCC),
        ),
        caller(
            "regulator-650000",
            Principal::new(PrincipalKind::Regulator, REGION, ""),
        ),
        caller(
            "regulator-650100",
            Principal::new(PrincipalKind::Regulator, urumqi, ""),
        ),
        // A county's authority (Kashgar City, Art. 5): supervises the activity in its area.
        caller(
            "regulator-653101",
            Principal::new(
                PrincipalKind::Regulator,
                Tenant::parse("653101").expect("known tenant"),
                "",
            ),
        ),
        caller(
            "department",
            Principal::new(PrincipalKind::Department, urumqi, "market-regulation"),
        ),
    ];
    // The demo department's own node: it serves the referral receiver and signs receipts.
    leaves.push(LeafSpec {
        name: "department-node".into(),
        principal: Principal::new(PrincipalKind::Department, urumqi, "market-regulation"),
        dns_names: local_dns
            .iter()
            .cloned()
            .chain(["department".to_owned()])
            .collect(),
        ip_addresses: local_ip.clone(),
        usage: Usage::ClientAndServer,
        lifetime_days: LEAF_LIFETIME_DAYS,
    });
    for node in [
        "gateway",
        "filing",
        "review",
        "disclosure",
        "complaints",
        "datapush",
        "console",
    ] {
        leaves.push(LeafSpec {
            name: format!("service-{node}"),
            principal: Principal::new(PrincipalKind::Service, REGION, node),
            dns_names: local_dns.iter().cloned().chain([node.to_owned()]).collect(),
            ip_addresses: local_ip.clone(),
            usage: Usage::ClientAndServer,
            lifetime_days: LEAF_LIFETIME_DAYS,
        });
    }
    leaves
}

/// Mints the CA and every missing development leaf under `dir`; keeps what exists, renewing a
/// leaf with less than 30 days left.
pub fn ensure_dev_pki(dir: &Path, trust_domain: &str) -> Result<DevPki> {
    let minted = !dir.join("ca.pem").exists();
    let ca = if minted {
        Ca::init(dir, 3650)?
    } else {
        Ca::load(dir)?
    };
    crate::ensure_forwarder_token(dir)?;
    crate::ensure_contact_key(dir)?;
    for leaf in dev_leaves() {
        let cert = dir.join(format!("{}.pem", leaf.name));
        let renew = days_left(&cert).is_none_or(|d| d < RENEW_WITHIN_DAYS);
        if renew || !dir.join(format!("{}.key", leaf.name)).exists() {
            ca.issue(dir, trust_domain, &leaf)?;
        }
    }
    Ok(DevPki {
        dir: dir.to_owned(),
        minted,
    })
}
