//! The node listener against certificates that must not get in, and rotation without restart.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use creditmesh_tests::{Engine, TestMesh, try_mtls, try_mtls_files};
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::pem::PemObject;
use time::OffsetDateTime;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

crate::on_both_engines!(
    node_listener_refuses_each_bad_certificate,
    a_new_ca_is_trusted_without_a_restart,
    stalled_handshakes_do_not_block_others,
    a_revoked_certificate_is_refused_at_once_and_a_renewed_one_is_served,
    backends_refuse_a_revoked_service_on_connections_it_opened_before,
);

const BIN: &str = env!("CARGO_BIN_EXE_creditmesh-under-test");

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
    // Connections that never start their handshake, from another address (one address is
    // held to its own cap of connections).
    let mut idle = Vec::new();
    for _ in 0..64 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 2], 0)))
            .unwrap();
        idle.push(socket.connect(t.mesh.node_addr).await.unwrap());
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

/// Runs `creditmesh pki ARGS` and returns what it printed.
async fn pki(args: &[&str]) -> String {
    let out = tokio::process::Command::new(BIN)
        .arg("pki")
        .args(args)
        .output()
        .await
        .expect("run creditmesh pki");
    assert!(
        out.status.success(),
        "pki {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn a_revoked_certificate_is_refused_at_once_and_a_renewed_one_is_served(engine: Engine) {
    use creditmesh_domain::{Principal, PrincipalKind, Tenant};
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let urumqi = Tenant::parse("650100").unwrap();
    t.issue(
        "agency-leaked",
        Principal::new(PrincipalKind::Agency, urumqi, "91650102MA7XJ0003G"),
    );
    let check = |ch| async move {
        HealthClient::new(ch)
            .check(HealthCheckRequest {
                service: "creditmesh.filing.v1.FilingService".into(),
            })
            .await
            .map(|_| ())
    };
    // A connection opened before the revocation ...
    let before = try_mtls(t.mesh.node_addr, &t.pki_dir, "agency-leaked")
        .await
        .unwrap();
    check(before.clone()).await.expect("served before");
    let dir = t.pki_dir.to_str().unwrap();
    let cert = t.pki_dir.join("agency-leaked.pem");
    let printed = pki(&["revoke", "--dir", dir, "--cert", cert.to_str().unwrap()]).await;
    assert!(printed.contains("revoked"), "{printed}");
    // ... is refused once the listeners have reloaded the list (within seconds) ...
    let refused = creditmesh_tests::eventually(
        "calls with the revoked certificate refused",
        Duration::from_secs(15),
        || {
            let ch = before.clone();
            async move { check(ch).await.err() }
        },
    )
    .await;
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("revoked"), "{refused:?}");
    // ... and so is a new connection, at its handshake.
    let fresh = match try_mtls(t.mesh.node_addr, &t.pki_dir, "agency-leaked").await {
        Err(_) => true,
        Ok(ch) => check(ch).await.is_err(),
    };
    assert!(
        fresh,
        "a new connection with a revoked certificate was served"
    );
    // Revoking twice changes nothing; the list is issued again with the same entry.
    pki(&["revoke", "--dir", dir, "--cert", cert.to_str().unwrap()]).await;
    let (entries, number) = creditmesh_pki::read_crl(&t.pki_dir.join("crl.pem")).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(number, 2);
    // Other certificates are not affected.
    check(t.node("agency").await).await.expect("another agency");

    // Renewal: a new key and certificate for the same identity, served without a restart,
    // while the old certificate's connection keeps working until it expires.
    let old_pem = std::fs::read_to_string(t.pki_dir.join("agency.pem")).unwrap();
    let old = t.node("agency").await;
    pki(&[
        "renew",
        "--dir",
        dir,
        "--name",
        "agency",
        "--lifetime-days",
        "30",
    ])
    .await;
    let new_pem = std::fs::read_to_string(t.pki_dir.join("agency.pem")).unwrap();
    assert_ne!(old_pem, new_pem);
    let der = rustls::pki_types::CertificateDer::from_pem_slice(new_pem.as_bytes()).unwrap();
    let principal = creditmesh_pki::principal_of(&der, "creditmesh.xinjiang").unwrap();
    assert_eq!(principal.subject, "91650102MA7XJ0003G");
    check(t.node("agency").await)
        .await
        .expect("the renewed certificate");
    check(old)
        .await
        .expect("the old certificate until it expires");
    t.stop().await;
}

async fn backends_refuse_a_revoked_service_on_connections_it_opened_before(engine: Engine) {
    use creditmesh_proto::filing::v1::ListFilingsRequest;
    use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let filings = FilingServiceClient::new(t.node("agency").await);
    let list = |mut f: FilingServiceClient<tonic::transport::Channel>| async move {
        f.list_filings(ListFilingsRequest::default())
            .await
            .map(|_| ())
    };
    // The gateway opens its connections to the filing backend.
    for _ in 0..8 {
        list(filings.clone()).await.expect("served");
    }
    let dir = t.pki_dir.to_str().unwrap();
    let cert = t.pki_dir.join("service-gateway.pem");
    pki(&["revoke", "--dir", dir, "--cert", cert.to_str().unwrap()]).await;
    // Once the backend has reloaded the list, the gateway's open connections are refused
    // by serial (new ones fail their handshake).
    let refused = creditmesh_tests::eventually(
        "the backend refusing the revoked gateway",
        Duration::from_secs(15),
        || {
            let f = filings.clone();
            async move {
                match list(f).await {
                    Err(e) if e.code() == tonic::Code::Unauthenticated => Some(e),
                    _ => None,
                }
            }
        },
    )
    .await;
    assert!(refused.message().contains("revoked"), "{refused:?}");
    // Health as well: the backend refuses the revoked peer on every route, so the gateway
    // reports the service as not serving.
    let mut health = tonic_health::pb::health_client::HealthClient::new(t.node("agency").await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "creditmesh.filing.v1.FilingService".into(),
        })
        .await
        .expect("the gateway answers")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    t.stop().await;
}
