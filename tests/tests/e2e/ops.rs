//! The operations port of a `serve` process (`ops.listen`): `/livez`, `/readyz` that turns
//! unready within seconds of its PostgreSQL stopping and ready again when it returns, with the
//! service's gRPC health following it, and `/metrics` in a form a Prometheus text parser
//! reads, showing the outbox backlog rising while a consumer is down.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use creditmesh_gateway::Backend;
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_tests::cluster::Cluster;
use creditmesh_tests::free_port;
use creditmesh_tests::{TRUST_DOMAIN, eventually, mtls, server_tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const BIN: &str = env!("CARGO_BIN_EXE_creditmesh-under-test");
const COMPLAINTS: &str = "creditmesh.complaints.v1.ComplaintService";

/// `GET path` over plain HTTP/1.1: the status and the body.
pub async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: ops\r\nConnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The value of gauge `name` with `labels` in the scrape `text`, read by a Prometheus text
/// parser.
pub fn gauge(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("the metrics parse");
    scrape.samples.iter().find_map(|s| {
        let matches = s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
        match (matches, &s.value) {
            (true, prometheus_parse::Value::Gauge(v)) => Some(*v),
            (true, prometheus_parse::Value::Counter(v)) => Some(*v),
            (true, prometheus_parse::Value::Untyped(v)) => Some(*v),
            _ => None,
        }
    })
}

/// The operations port over a test mesh's services, until `stop`.
pub async fn port(t: &creditmesh_tests::TestMesh, stop: &CancellationToken) -> SocketAddr {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    creditmesh::ops::start(any, &t.mesh.services, |s| t.db_url(s), stop.clone())
        .await
        .unwrap()
}

/// Gauge `name` with `labels` as the operations port at `ops` reports it now.
pub async fn scrape(ops: SocketAddr, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    gauge(&get(ops, "/metrics").await?.1, name, labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operations_port_follows_the_database_and_shows_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cluster) = Cluster::init(dir.path()) else {
        eprintln!("ops: skipped, no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    cluster.start("");
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, TRUST_DOMAIN).unwrap();
    let (port, ops_port, dead_port) = (free_port(), free_port(), free_port());
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "pki_dir = \"{}\"\ndata_dir = \"{}\"\n[measures]\neffective_on = \"2026-01-01\"\n[database]\nurl = \"{}\"\n\
             [events]\npoll_interval_ms = 100\n[ops]\nlisten = \"127.0.0.1:{ops_port}\"\n\
             [supervision]\ncomplaint_acceptance_working_days = 3\n\
             [services.complaints]\nlisten = \"127.0.0.1:{port}\"\n\
             [backends.review]\nurl = \"https://127.0.0.1:{dead_port}\"\n",
            pki.display(),
            dir.path().join("data").display(),
            cluster.url("127.0.0.1", "sslmode=disable"),
        ),
    )
    .unwrap();
    let _serve = Command::new(BIN)
        .args(["serve", "--services", "complaints", "--config"])
        .arg(&config)
        .env_remove("CREDITMESH_DATABASE__URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ops = SocketAddr::from(([127, 0, 0, 1], ops_port));
    eventually("ready", Duration::from_secs(60), || async {
        (get(ops, "/readyz").await? == (200, "ready\n".into())).then_some(())
    })
    .await;
    assert_eq!(get(ops, "/livez").await.unwrap().0, 200);
    let service = SocketAddr::from(([127, 0, 0, 1], port));
    let health = HealthClient::new(mtls(service, &pki, "service-gateway").await);
    let status = |health: &HealthClient<_>| {
        let mut health = health.clone();
        async move {
            let answer = health
                .check(HealthCheckRequest {
                    service: COMPLAINTS.into(),
                })
                .await
                .ok()?;
            Some(answer.into_inner().status)
        }
    };
    assert_eq!(status(&health).await, Some(ServingStatus::Serving as i32));

    // Complaints submitted while review (the consumer of their events) is down: the backlog
    // for review rises with them, and its oldest event ages.
    let stop = CancellationToken::new();
    let backend = Backend {
        grpc_name: COMPLAINTS.into(),
        urls: vec![format!("https://127.0.0.1:{port}")],
        server_name: "complaints".into(),
        tenant: None,
    };
    let (_, public) = super::balancing::gateway_for(&pki, backend, &stop).await;
    let mut public = ComplaintServiceClient::new(server_tls(public, &pki).await);
    let review = [("service", "complaints"), ("consumer", "review")];
    let mut backlog = 0.0;
    for round in 1..=2 {
        for n in 0..5 {
            let id = format!("ops-{round}-{n}");
            public
                .submit_complaint(super::complaints::complaint(&id, ""))
                .await
                .unwrap();
        }
        let text = get(ops, "/metrics").await.unwrap().1;
        let now = gauge(&text, "creditmesh_outbox_backlog", &review)
            .unwrap_or_else(|| panic!("a backlog for review: {text}"));
        assert_eq!(now, f64::from(round * 5), "{text}");
        assert!(now > backlog, "the backlog rises: {backlog} then {now}");
        backlog = now;
        let age = gauge(&text, "creditmesh_outbox_oldest_age_seconds", &review).unwrap();
        assert!(age >= 0.0, "{text}");
        let ready = gauge(&text, "creditmesh_ready", &[("service", "complaints")]);
        assert_eq!(ready, Some(1.0), "{text}");
    }

    // Every call answered is counted by method, caller's tenant and status: the ten
    // complaints, and one refused for what it lacks.
    let mut refused = super::complaints::complaint("ops-refused", "");
    refused.subject.clear();
    let answer = public.submit_complaint(refused).await.unwrap_err();
    assert_eq!(answer.code(), tonic::Code::InvalidArgument, "{answer:?}");
    let text = get(ops, "/metrics").await.unwrap().1;
    let calls = |code| {
        let labels = [
            ("rpc_service", COMPLAINTS),
            ("rpc_method", "SubmitComplaint"),
            ("tenant", "public"),
            ("rpc_grpc_status_code", code),
        ];
        gauge(&text, "rpc_server_calls_total", &labels)
    };
    assert_eq!(calls("0"), Some(10.0), "{text}");
    assert_eq!(calls("3"), Some(1.0), "{text}");
    // The ten complaints are due to be accepted on the third working day from today: due
    // within three working days, not within one; nothing waits for the pool.
    let acceptance = |within| {
        let labels = [
            ("service", "complaints"),
            ("kind", "acceptance"),
            ("within", within),
        ];
        gauge(&text, "creditmesh_deadlines_due", &labels)
    };
    assert_eq!(acceptance("3"), Some(10.0), "{text}");
    assert_eq!(acceptance("1"), None, "{text}");
    let waiting = gauge(
        &text,
        "creditmesh_db_pool_waiting",
        &[("service", "complaints")],
    );
    assert_eq!(waiting, Some(0.0), "{text}");

    // PostgreSQL stops: unready within 5 s, gRPC health NOT_SERVING, alive all the while.
    cluster.stop();
    let stopped = std::time::Instant::now();
    eventually("unready", Duration::from_secs(5), || async {
        let (status, body) = get(ops, "/readyz").await?;
        (status == 503 && body.contains("complaints: database does not answer")).then_some(())
    })
    .await;
    eprintln!(
        "ops: unready {:?} after PostgreSQL stopped",
        stopped.elapsed()
    );
    assert_eq!(get(ops, "/livez").await.unwrap().0, 200);
    eventually("health not serving", Duration::from_secs(5), || async {
        (status(&health).await? == ServingStatus::NotServing as i32).then_some(())
    })
    .await;
    let text = get(ops, "/metrics").await.unwrap().1;
    let ready = gauge(&text, "creditmesh_ready", &[("service", "complaints")]);
    assert_eq!(ready, Some(0.0), "{text}");

    // Back: ready again, serving again, the backlog still there.
    cluster.start("");
    eventually("ready again", Duration::from_secs(30), || async {
        (get(ops, "/readyz").await?.0 == 200).then_some(())
    })
    .await;
    assert_eq!(status(&health).await, Some(ServingStatus::Serving as i32));
    let text = get(ops, "/metrics").await.unwrap().1;
    assert_eq!(
        gauge(&text, "creditmesh_outbox_backlog", &review),
        Some(backlog)
    );
    stop.cancel();
}
