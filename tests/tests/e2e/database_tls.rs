//! The services reach PostgreSQL over TLS, the server's certificate verified against a CA
//! file and by its name (`sslmode=verify-full&sslrootcert=…`): a cluster of the test's own,
//! started with a certificate, that refuses every connection not made over TLS.

use std::net::SocketAddr;
use std::path::Path;

use creditmesh::mesh::{all_services, start_service};
use creditmesh_domain::{Principal, PrincipalKind, tenant::REGION};
use creditmesh_pki::{Ca, LeafSpec, Usage};
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::{DocumentKind, ListFilingsRequest};
use creditmesh_storage::DbConfig;
use creditmesh_storage::sqlx::{self, Connection};
use creditmesh_tests::cluster::Cluster;
use creditmesh_tests::{TRUST_DOMAIN, mtls};
use tokio_util::sync::CancellationToken;

/// Starts a cluster under `dir` whose certificate, for `localhost`, the CA in `ca_dir` issued,
/// and whose `pg_hba.conf` admits TCP connections over TLS only; `None` without PostgreSQL.
fn tls_cluster(dir: &Path, ca: &Ca, ca_dir: &Path) -> Option<Cluster> {
    let cluster = Cluster::init(dir)?;
    let server = LeafSpec {
        name: "postgres".into(),
        principal: Principal::new(PrincipalKind::Service, REGION, "postgres"),
        dns_names: vec!["localhost".into()],
        ip_addresses: vec![],
        usage: Usage::Server,
        lifetime_days: 30,
    };
    ca.issue(ca_dir, TRUST_DOMAIN, &server).unwrap();
    let data = cluster.data();
    std::fs::copy(ca_dir.join("postgres.pem"), data.join("server.crt")).unwrap();
    std::fs::copy(ca_dir.join("postgres.key"), data.join("server.key")).unwrap();
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n\
         hostnossl all all 127.0.0.1/32 reject\n",
    )
    .unwrap();
    cluster.give_to_postgres();
    cluster.start("-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
    Some(cluster)
}

/// The filing service on the database at `url`: its address and the token that stops it, or
/// why it could not start.
async fn service_on(
    url: String,
    pki: &Path,
    dir: &Path,
) -> Result<(SocketAddr, CancellationToken), String> {
    let runtime = creditmesh_tests::runtime(pki, dir);
    let defs = all_services(&runtime.services);
    let def = defs.iter().find(|d| d.name == "filing").unwrap();
    let db = DbConfig {
        url,
        max_connections: 2,
        acquire_timeout_ms: 3_000,
        ..DbConfig::default()
    };
    let stop = CancellationToken::new();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let svc = start_service(def, &db, &runtime, any, stop.clone())
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok((svc.addr, stop))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_reaches_postgres_over_verified_tls_and_no_other_server() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let ca = Ca::init(&ca_dir, 30).unwrap();
    let Some(cluster) = tls_cluster(dir.path(), &ca, &ca_dir) else {
        eprintln!("database_tls: skipped, no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    let ca_file = ca_dir.join("ca.pem").display().to_string();
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, TRUST_DOMAIN).unwrap();

    // The server takes nothing in the clear.
    let plain = sqlx::PgConnection::connect(&cluster.url("localhost", "sslmode=disable")).await;
    let refused = plain
        .expect_err("a connection without TLS is refused")
        .to_string();
    assert!(refused.contains("no encryption"), "{refused}");

    // Verified against the CA that issued the server's certificate, by the name it carries:
    // the service migrates its schema and serves.
    let verified = format!("sslmode=verify-full&sslrootcert={ca_file}");
    let (addr, stop) = service_on(cluster.url("localhost", &verified), &pki, dir.path())
        .await
        .unwrap_or_else(|e| panic!("the service on verified TLS: {e}"));
    let node = super::balancing::gateway(&pki, vec![format!("https://{addr}")], &stop).await;
    let mut agency = FilingServiceClient::new(mtls(node, &pki, "agency").await);
    super::filing::upload(
        &mut agency,
        DocumentKind::FeeSchedule,
        super::filing::pdf("tls"),
    )
    .await
    .unwrap();
    agency
        .list_filings(ListFilingsRequest::default())
        .await
        .unwrap();
    let mut admin = sqlx::PgConnection::connect(&cluster.url("localhost", &verified))
        .await
        .unwrap();
    let (clients, over_tls): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.backend_type = 'client backend'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        clients >= 2,
        "the service's connections and this one: {clients}"
    );
    assert_eq!(over_tls, clients, "every connection is over TLS");
    let documents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM filing_document")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(documents, 1, "the upload is stored on the TLS cluster");

    // A server whose certificate another CA issued is not trusted, nor one reached by a name
    // its certificate does not carry: the service does not start, and says why.
    let other_dir = dir.path().join("other-ca");
    Ca::init(&other_dir, 30).unwrap();
    let other = format!(
        "sslmode=verify-full&sslrootcert={}",
        other_dir.join("ca.pem").display()
    );
    let why = service_on(cluster.url("localhost", &other), &pki, dir.path())
        .await
        .expect_err("a server the CA file does not vouch for");
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    let why = service_on(cluster.url("127.0.0.1", &verified), &pki, dir.path())
        .await
        .expect_err("a server reached by a name its certificate lacks");
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    stop.cancel();
}
