//! The tenant → backend map: one prefecture's traffic goes to its own backend; the gateway's
//! connections to backends outlive a backend's restart.

use std::net::SocketAddr;

use creditmesh::mesh::{all_services, start_service};
use creditmesh_domain::{Principal, PrincipalKind, Tenant};
use creditmesh_gateway::{Backend, GatewayConfig};
use creditmesh_pki::{Ca, LeafSpec, TlsFiles, Usage};
use creditmesh_proto::review::v1::GetCreditFileRequest;
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_tests::{Engine, TRUST_DOMAIN, fresh_database, mtls};
use tokio_util::sync::CancellationToken;

crate::on_both_engines!(
    two_tenants_reach_two_backends,
    the_gateway_reconnects_to_a_backend_that_restarted
);

const KASHGAR_AGENCY: &str = "91653101MA78KT005T";

/// A gateway on free ports with the development identity and default limits.
fn gateway_config(pki: &std::path::Path, backends: Vec<Backend>) -> GatewayConfig {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    GatewayConfig {
        node_listen: any,
        public_listen: any,
        trust_domain: TRUST_DOMAIN.into(),
        tls: TlsFiles::in_dir(pki, "service-gateway"),
        backends,
        limits: Default::default(),
        forwarder_token: None,
    }
}

async fn two_tenants_reach_two_backends(engine: Engine) {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let Some(db_a) = fresh_database(engine, dir_a.path()).await else {
        return;
    };
    let Some(db_b) = fresh_database(engine, dir_b.path()).await else {
        return;
    };
    let pki = dir_a.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, TRUST_DOMAIN).unwrap();
    let kashgar = Tenant::parse("653100").unwrap();
    Ca::load(&pki)
        .unwrap()
        .issue(
            &pki,
            TRUST_DOMAIN,
            &LeafSpec {
                name: "regulator-653100".into(),
                principal: Principal::new(PrincipalKind::Regulator, kashgar, ""),
                dns_names: vec![],
                ip_addresses: vec![],
                usage: Usage::Client,
                lifetime_days: 1,
            },
        )
        .unwrap();

    let runtime = creditmesh_tests::runtime(&pki, dir_a.path());
    let defs = all_services(&runtime.services);
    let review = defs.iter().find(|d| d.name == "review").unwrap();
    let stop = CancellationToken::new();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut started = Vec::new();
    for db in [&db_a, &db_b] {
        let mut cfg = db.clone();
        cfg.url = cfg.url.replace("{service}", "review");
        started.push(
            start_service(review, &cfg, &runtime, any, stop.clone())
                .await
                .unwrap(),
        );
    }
    // Only Kashgar's backend holds an entry for the agency.
    {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = db_b.url.replace("{service}", "review");
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO review_credit_file (tenant, entry_id, uscc, kind, recorded_at, principal, summary, details) \
             VALUES ('653100', 'e1', $1, 'interview', 1, 'x', 'held in Kashgar', $2)",
        )
        .bind(KASHGAR_AGENCY)
        .bind(Vec::<u8>::new())
        .execute(&mut conn)
        .await
        .unwrap();
    }

    let backend = |addr: SocketAddr, tenant| Backend {
        grpc_name: review.grpc_name.into(),
        urls: vec![format!("https://{addr}")],
        server_name: "review".into(),
        tenant,
    };
    let gw = creditmesh_gateway::start(
        gateway_config(
            &pki,
            vec![
                backend(started[0].addr, None),
                backend(started[1].addr, Some(kashgar)),
            ],
        ),
        stop.clone(),
    )
    .await
    .unwrap();

    let entries = |name: &'static str| {
        let pki = pki.clone();
        async move {
            ReviewServiceClient::new(mtls(gw.node_addr, &pki, name).await)
                .get_credit_file(GetCreditFileRequest {
                    uscc: KASHGAR_AGENCY.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .entries
                .len()
        }
    };
    assert_eq!(
        entries("regulator-653100").await,
        1,
        "Kashgar reaches its own backend"
    );
    assert_eq!(
        entries("regulator-650100").await,
        0,
        "Urumqi reaches the default backend"
    );
    stop.cancel();
}

/// The gateway's backend connection ends with the backend; calls meanwhile are `UNAVAILABLE`,
/// and once the backend is back on its address the gateway connects again by itself.
async fn the_gateway_reconnects_to_a_backend_that_restarted(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_database(engine, dir.path()).await else {
        return;
    };
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, TRUST_DOMAIN).unwrap();
    let runtime = creditmesh_tests::runtime(&pki, dir.path());
    let defs = all_services(&runtime.services);
    let review = defs.iter().find(|d| d.name == "review").unwrap();
    let mut cfg = db.clone();
    cfg.url = cfg.url.replace("{service}", "review");
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let backend_stop = CancellationToken::new();
    let first = start_service(review, &cfg, &runtime, any, backend_stop.clone())
        .await
        .unwrap();
    let addr = first.addr;

    let stop = CancellationToken::new();
    let gw = creditmesh_gateway::start(
        gateway_config(
            &pki,
            vec![Backend {
                grpc_name: review.grpc_name.into(),
                urls: vec![format!("https://{addr}")],
                server_name: "review".into(),
                tenant: None,
            }],
        ),
        stop.clone(),
    )
    .await
    .unwrap();
    let client = ReviewServiceClient::new(mtls(gw.node_addr, &pki, "regulator-650100").await);
    let call = || {
        let mut client = client.clone();
        async move {
            client
                .get_credit_file(GetCreditFileRequest {
                    uscc: KASHGAR_AGENCY.into(),
                    ..Default::default()
                })
                .await
        }
    };
    call().await.expect("served while the backend is up");

    backend_stop.cancel();
    let refused = creditmesh_tests::eventually(
        "calls fail while the backend is down",
        std::time::Duration::from_secs(10),
        || async { call().await.err() },
    )
    .await;
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");

    let again = start_service(review, &cfg, &runtime, addr, stop.clone())
        .await
        .unwrap();
    assert_eq!(again.addr, addr);
    creditmesh_tests::eventually(
        "served again once the backend is back",
        std::time::Duration::from_secs(10),
        || async { call().await.ok() },
    )
    .await;
    stop.cancel();
}
