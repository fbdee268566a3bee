//! The node listener against certificates that must not get in, and rotation without restart.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use creditmesh_tests::{Engine, TestMesh, try_mtls, try_mtls_files};
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use time::OffsetDateTime;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

crate::on_both_engines!(
    node_listener_refuses_each_bad_certificate,
    a_new_ca_is_trusted_without_a_restart,
    stalled_handshakes_do_not_block_others,
);

const AGENCY_URI: &str = "spiffe://creditmesh.xinjiang/agency/650100/91650102MA7XJ0003G";

/// How a test certificate departs from a good one.
#[derive(Debug, Clone, Copy)]
enum Flaw {
    None,
    Expired,
    NotYetValid,
    ServerAuthOnly,
    NoUriSan,
    TwoUriSans,
    ForeignTrustDomain,
    NoExtendedKeyUsage,
    PaddedPath,
    TrailingSlash,
}

/// Issues `NAME.pem`/`NAME.key` into `out`, signed by the CA in `ca_dir`.
fn issue(ca_dir: &Path, out: &Path, name: &str, flaw: Flaw) {
    let ca_pem = std::fs::read_to_string(ca_dir.join("ca.pem")).unwrap();
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(ca_dir.join("ca.key")).unwrap()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "test");
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(1);
    let uri = |u: &str| SanType::URI(u.try_into().unwrap());
    match flaw {
        Flaw::None => p.subject_alt_names = vec![uri(AGENCY_URI)],
        Flaw::Expired => {
            p.subject_alt_names = vec![uri(AGENCY_URI)];
            p.not_before = now - time::Duration::days(10);
            p.not_after = now - time::Duration::days(1);
        }
        Flaw::NotYetValid => {
            p.subject_alt_names = vec![uri(AGENCY_URI)];
            p.not_before = now + time::Duration::days(1);
            p.not_after = now + time::Duration::days(10);
        }
        Flaw::ServerAuthOnly => {
            p.subject_alt_names = vec![uri(AGENCY_URI)];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
        Flaw::NoUriSan => {
            p.subject_alt_names = vec![SanType::DnsName("agency.example".try_into().unwrap())]
        }
        Flaw::TwoUriSans => {
            p.subject_alt_names = vec![
                uri(AGENCY_URI),
                uri("spiffe://creditmesh.xinjiang/regulator/650000"),
            ]
        }
        Flaw::ForeignTrustDomain => {
            p.subject_alt_names = vec![uri("spiffe://elsewhere.example/regulator/650000")]
        }
        Flaw::NoExtendedKeyUsage => {
            p.subject_alt_names = vec![uri(AGENCY_URI)];
            p.extended_key_usages = vec![];
        }
        Flaw::PaddedPath => {
            p.subject_alt_names = vec![uri("spiffe://creditmesh.xinjiang/regulator/%20650000")]
        }
        Flaw::TrailingSlash => {
            p.subject_alt_names = vec![uri("spiffe://creditmesh.xinjiang/regulator/650000/")]
        }
    }
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &issuer).unwrap();
    std::fs::write(out.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(out.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

/// Whether a health check with the certificate `name` from `dir` gets through.
async fn gets_in(addr: SocketAddr, ca: &Path, dir: &Path, name: &str) -> bool {
    let Ok(ch) = try_mtls_files(
        addr,
        ca,
        &dir.join(format!("{name}.pem")),
        &dir.join(format!("{name}.key")),
    )
    .await
    else {
        return false;
    };
    HealthClient::new(ch)
        .check(HealthCheckRequest::default())
        .await
        .is_ok()
}

async fn node_listener_refuses_each_bad_certificate(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = t.pki_dir.join("ca.pem");
    issue(&t.pki_dir, dir.path(), "good", Flaw::None);
    assert!(
        gets_in(t.mesh.node_addr, &ca, dir.path(), "good").await,
        "control"
    );
    for flaw in [
        Flaw::Expired,
        Flaw::NotYetValid,
        Flaw::ServerAuthOnly,
        Flaw::NoUriSan,
        Flaw::TwoUriSans,
        Flaw::ForeignTrustDomain,
        Flaw::NoExtendedKeyUsage,
        Flaw::PaddedPath,
        Flaw::TrailingSlash,
    ] {
        let name = format!("{flaw:?}");
        issue(&t.pki_dir, dir.path(), &name, flaw);
        assert!(
            !gets_in(t.mesh.node_addr, &ca, dir.path(), &name).await,
            "{flaw:?} got in"
        );
    }
    // Issued by another CA under the same names.
    let other = tempfile::tempdir().unwrap();
    creditmesh_pki::Ca::init(other.path(), 30).unwrap();
    issue(other.path(), other.path(), "foreign", Flaw::None);
    assert!(
        !gets_in(t.mesh.node_addr, &ca, other.path(), "foreign").await,
        "unknown issuer got in"
    );
    t.stop().await;
}

async fn a_new_ca_is_trusted_without_a_restart(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let next = tempfile::tempdir().unwrap();
    let next_ca = creditmesh_pki::Ca::init(next.path(), 30).unwrap();
    issue(next.path(), next.path(), "next-agency", Flaw::None);
    let ca = t.pki_dir.join("ca.pem");
    assert!(!gets_in(t.mesh.node_addr, &ca, next.path(), "next-agency").await);

    // The operator appends the next CA to the bundle; nodes pick it up from disk.
    let mut bundle = std::fs::read_to_string(&ca).unwrap();
    bundle.push_str(&next_ca.cert_pem);
    std::fs::write(&ca, bundle).unwrap();
    creditmesh_tests::eventually("the new CA trusted", Duration::from_secs(20), || async {
        gets_in(t.mesh.node_addr, &ca, next.path(), "next-agency")
            .await
            .then_some(())
    })
    .await;
    // Certificates of the old CA keep working, and so does the path to the backends.
    let old = try_mtls(t.mesh.node_addr, &t.pki_dir, "agency")
        .await
        .unwrap();
    HealthClient::new(old)
        .check(HealthCheckRequest {
            service: "creditmesh.filing.v1.FilingService".into(),
        })
        .await
        .unwrap();
    t.stop().await;
}

async fn stalled_handshakes_do_not_block_others(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    // Connections that never start their handshake.
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(
            tokio::net::TcpStream::connect(t.mesh.node_addr)
                .await
                .unwrap(),
        );
    }
    let ch = tokio::time::timeout(
        Duration::from_secs(5),
        try_mtls(t.mesh.node_addr, &t.pki_dir, "agency"),
    )
    .await
    .expect("a fresh caller is served while others stall")
    .unwrap();
    HealthClient::new(ch)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    drop(idle);
    t.stop().await;
}
