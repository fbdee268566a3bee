//! The gateway in front of a backend's replicas: calls spread evenly over them, a replica that
//! stops is set aside and probed back, a replica killed under load loses no call that was not
//! yet sent, and calls that may be replayed finish on another replica.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use creditmesh::mesh::{RunningService, all_services, start_service};
use creditmesh_gateway::{Backend, GatewayConfig};
use creditmesh_pki::TlsFiles;
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::{DocumentKind, ListFilingsRequest};
use creditmesh_storage::DbConfig;
use creditmesh_tests::free_port;
use creditmesh_tests::{Engine, TRUST_DOMAIN, eventually, fresh_database, mtls};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

crate::on_both_engines!(three_replicas_share_the_calls_and_one_that_stops_is_probed_back);

const BIN: &str = env!("CARGO_BIN_EXE_creditmesh-under-test");
const FILING: &str = "creditmesh.filing.v1.FilingService";

/// One replica of the filing service on `db`, at `listen`, stopped by its own token.
async fn filing_replica(
    db: &DbConfig,
    pki: &Path,
    dir: &Path,
    listen: SocketAddr,
) -> (RunningService, CancellationToken) {
    let runtime = creditmesh_tests::runtime(pki, dir);
    let defs = all_services(&runtime.services);
    let def = defs.iter().find(|d| d.name == "filing").unwrap();
    let stop = CancellationToken::new();
    let svc = start_service(def, db, &runtime, listen, stop.clone())
        .await
        .unwrap();
    (svc, stop)
}

/// A gateway on free ports whose filing backend is `urls`.
pub async fn gateway(pki: &Path, urls: Vec<String>, stop: &CancellationToken) -> SocketAddr {
    let backend = Backend {
        grpc_name: FILING.into(),
        urls,
        server_name: "filing".into(),
        tenant: None,
    };
    gateway_for(pki, backend, stop).await.0
}

/// A gateway on free ports in front of `backend` alone: its node and public addresses.
pub async fn gateway_for(
    pki: &Path,
    backend: Backend,
    stop: &CancellationToken,
) -> (SocketAddr, SocketAddr) {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let gw = creditmesh_gateway::start(
        GatewayConfig {
            node_listen: any,
            public_listen: any,
            trust_domain: TRUST_DOMAIN.into(),
            tls: TlsFiles::in_dir(pki, "service-gateway"),
            backends: vec![backend],
            limits: unlimited(),
            forwarder_token: None,
        },
        stop.clone(),
    )
    .await
    .unwrap();
    (gw.node_addr, gw.public_addr)
}

/// The default limits, without the agencies' rate (the load here is one agency's).
fn unlimited() -> creditmesh_gateway::LimitsConfig {
    let mut limits = creditmesh_gateway::LimitsConfig::default();
    limits.rate_per_second.agency = 0;
    limits
}

/// `n` calls of a read, `width` at a time; how many failed, with the first failure.
async fn reads(client: &FilingServiceClient<Channel>, n: usize, width: usize) -> (usize, String) {
    let next = Arc::new(AtomicUsize::new(0));
    let workers = (0..width).map(|_| {
        let mut client = client.clone();
        let next = next.clone();
        async move {
            let mut failed = (0, String::new());
            while next.fetch_add(1, Ordering::Relaxed) < n {
                if let Err(e) = client.list_filings(ListFilingsRequest::default()).await {
                    if failed.0 == 0 {
                        failed.1 = format!("{:?}: {}", e.code(), e.message());
                    }
                    failed.0 += 1;
                }
            }
            failed
        }
    });
    futures::future::join_all(workers)
        .await
        .into_iter()
        .fold((0, String::new()), |(n, first), (m, why)| {
            (n + m, if first.is_empty() { why } else { first })
        })
}

/// 3,000 reads through `client`, 24 at a time: none fails, and each of `replicas` serves
/// within 20 % of an even share (counted by its own listener).
async fn calls_spread_evenly(
    client: &FilingServiceClient<Channel>,
    replicas: &[(RunningService, CancellationToken)],
) {
    const CALLS: usize = 3_000;
    let before: Vec<u64> = replicas
        .iter()
        .map(|(s, _)| s.connections.calls())
        .collect();
    let (failed, why) = reads(client, CALLS, 24).await;
    assert_eq!(failed, 0, "{why}");
    let served: Vec<u64> = replicas
        .iter()
        .zip(&before)
        .map(|((s, _), b)| s.connections.calls() - b)
        .collect();
    assert_eq!(served.iter().sum::<u64>(), CALLS as u64, "{served:?}");
    let even = CALLS as f64 / replicas.len() as f64;
    for n in &served {
        assert!(
            (*n as f64 - even).abs() <= even * 0.2,
            "each replica within 20 % of an even share: {served:?}"
        );
    }
}

async fn three_replicas_share_the_calls_and_one_that_stops_is_probed_back(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut db) = fresh_database(engine, dir.path()).await else {
        return;
    };
    db.url = db.url.replace("{service}", "filing");
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, TRUST_DOMAIN).unwrap();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(filing_replica(&db, &pki, dir.path(), any).await);
    }
    let urls = replicas
        .iter()
        .map(|(svc, _)| format!("https://{}", svc.addr))
        .collect();
    let stop = CancellationToken::new();
    let node = gateway(&pki, urls, &stop).await;
    let client = FilingServiceClient::new(mtls(node, &pki, "agency").await);

    calls_spread_evenly(&client, &replicas).await;

    // One replica stops, and its address takes connections only to drop them: no call
    // fails, and the replica is set aside (tried again only by a few probes, not by calls).
    let (gone, gone_stop) = replicas.remove(1);
    let gone_addr = gone.addr;
    gone_stop.cancel();
    let hole = eventually(
        "the replica's port free",
        Duration::from_secs(10),
        || async { tokio::net::TcpListener::bind(gone_addr).await.ok() },
    )
    .await;
    let knocks = Arc::new(AtomicUsize::new(0));
    let counting = knocks.clone();
    let dropping = tokio::spawn(async move {
        while let Ok((socket, _)) = hole.accept().await {
            counting.fetch_add(1, Ordering::Relaxed);
            drop(socket);
        }
    });
    let (failed, why) = reads(&client, 600, 8).await;
    assert_eq!(failed, 0, "no call fails while a replica is down: {why}");
    let knocked = knocks.load(Ordering::Relaxed);
    assert!(
        knocked <= 20,
        "a replica that failed is set aside, not tried by every third call: {knocked} connections"
    );
    dropping.abort();
    let _ = dropping.await;

    // Back on the same address, a probe finds it serving and calls reach it again.
    let (back, _back_stop) = filing_replica(&db, &pki, dir.path(), gone_addr).await;
    eventually(
        "calls reach the replica again",
        Duration::from_secs(30),
        || async {
            reads(&client, 60, 4).await;
            (back.connections.calls() > 0).then_some(())
        },
    )
    .await;
    stop.cancel();
    for (_, s) in replicas {
        s.cancel();
    }
}

/// One `serve --services filing` process on the shared configuration, listening on `port`.
fn serve_filing(dir: &Path, shared: &str, port: u16) -> Child {
    let config = dir.join(format!("filing-{port}.toml"));
    std::fs::write(
        &config,
        format!("{shared}[services.filing]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    Command::new(BIN)
        .args(["serve", "--services", "filing", "--config"])
        .arg(&config)
        .env_remove("CREDITMESH_DATABASE__URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Three `serve` processes of the filing service on one PostgreSQL database behind a
/// `gateway` process that knows them by a list of URLs, under a steady load of reads and
/// uploads; replicas are killed with SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_load_loses_no_call_not_yet_sent() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_database(Engine::Postgres, dir.path()).await else {
        return;
    };
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, TRUST_DOMAIN).unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let (node, public) = (free_port(), free_port());
    let shared = format!(
        "pki_dir = \"{}\"\ndata_dir = \"{}\"\n[measures]\neffective_on = \"2026-01-01\"\n[database]\nurl = \"{}\"\n",
        pki.display(),
        dir.path().join("data").display(),
        db.url
    );
    let mut replicas: Vec<Child> = Vec::new();
    for port in ports {
        replicas.push(serve_filing(dir.path(), &shared, port));
        // One at a time, so that each finds the schema its predecessor made.
        eventually("the replica listening", Duration::from_secs(60), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        })
        .await;
    }
    let urls = ports
        .iter()
        .map(|p| format!("\"https://127.0.0.1:{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let gateway_config = dir.path().join("gateway.toml");
    std::fs::write(
        &gateway_config,
        format!(
            "{shared}[node]\nlisten = \"127.0.0.1:{node}\"\n[public]\nlisten = \"127.0.0.1:{public}\"\n\
             [gateway.rate_per_second]\nagency = 0\n[backends.filing]\nurl = [{urls}]\n"
        ),
    )
    .unwrap();
    let _gateway = Command::new(BIN)
        .args(["gateway", "--config"])
        .arg(&gateway_config)
        .env_remove("CREDITMESH_DATABASE__URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = agency_through(node, &pki).await;

    // Under load, one replica is killed: the reads in flight on it are replayed on
    // another; an upload in flight on it may fail (it is sent once).
    let stop = CancellationToken::new();
    let load = tokio::spawn(steady_load(client.clone(), true, stop.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    kill(replicas.remove(1)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    let under_load = load.await.unwrap();
    assert!(
        under_load.reads_ok > 100 && under_load.uploads_ok > 100,
        "a steady load ran: {under_load:?}"
    );
    assert_eq!(
        under_load.reads_failed, 0,
        "every read succeeds: {under_load:?}"
    );
    assert!(
        under_load.uploads_failed <= 4,
        "at most the uploads in flight on the killed replica fail: {under_load:?}"
    );

    // Between calls, another is killed: the next calls the gateway would have sent to it
    // have not been sent, and go to the one left, every one of them (uploads only, which
    // are never replayed).
    kill(replicas.remove(1)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stop = CancellationToken::new();
    let load = tokio::spawn(steady_load(client, false, stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    let after = load.await.unwrap();
    assert!(after.uploads_ok > 100, "a steady load ran: {after:?}");
    assert_eq!(
        after.reads_failed + after.uploads_failed,
        0,
        "no call begun after the kill fails: {after:?}"
    );
}

/// An agency's client of the filing service through the gateway process whose node listener
/// is on `port`, once a call through it succeeds.
async fn agency_through(port: u16, pki: &Path) -> FilingServiceClient<Channel> {
    let node = SocketAddr::from(([127, 0, 0, 1], port));
    eventually("the gateway", Duration::from_secs(30), || async move {
        let mut c =
            FilingServiceClient::new(creditmesh_tests::try_mtls(node, pki, "agency").await.ok()?);
        c.list_filings(ListFilingsRequest::default()).await.ok()?;
        Some(c)
    })
    .await
}

async fn kill(mut replica: Child) {
    replica.start_kill().unwrap();
    replica.wait().await.unwrap();
}

/// Uploads from eight callers, half of them reading instead when `reads`, until `stop`.
async fn steady_load(
    client: FilingServiceClient<Channel>,
    reads: bool,
    stop: CancellationToken,
) -> Tally {
    let callers = (0..8).map(|i| {
        let mut client = client.clone();
        let stop = stop.clone();
        async move {
            let mut tally = Tally::default();
            let mut n = 0u64;
            while !stop.is_cancelled() {
                n += 1;
                if reads && i % 2 == 0 {
                    let read = client.list_filings(ListFilingsRequest::default()).await;
                    tally.count(read.map(|_| ()), true);
                } else {
                    let tag = format!("caller {i} upload {n} {}", fastrand::u64(..));
                    let bytes = super::filing::pdf(&tag);
                    let up =
                        super::filing::upload(&mut client, DocumentKind::FeeSchedule, bytes).await;
                    tally.count(up.map(|_| ()), false);
                }
            }
            tally
        }
    });
    futures::future::join_all(callers)
        .await
        .iter()
        .fold(Tally::default(), |a, b| a.plus(b))
}

#[derive(Debug, Default, Clone)]
struct Tally {
    reads_ok: usize,
    reads_failed: usize,
    uploads_ok: usize,
    uploads_failed: usize,
    first_failure: Option<String>,
}

impl Tally {
    fn count(&mut self, result: Result<(), tonic::Status>, read: bool) {
        if let Err(e) = &result {
            self.first_failure
                .get_or_insert_with(|| format!("{:?}: {}", e.code(), e.message()));
        }
        match (read, result.is_ok()) {
            (true, true) => self.reads_ok += 1,
            (true, false) => self.reads_failed += 1,
            (false, true) => self.uploads_ok += 1,
            (false, false) => self.uploads_failed += 1,
        }
    }

    fn plus(&self, o: &Tally) -> Tally {
        Tally {
            reads_ok: self.reads_ok + o.reads_ok,
            reads_failed: self.reads_failed + o.reads_failed,
            uploads_ok: self.uploads_ok + o.uploads_ok,
            uploads_failed: self.uploads_failed + o.uploads_failed,
            first_failure: self.first_failure.clone().or(o.first_failure.clone()),
        }
    }
}

/// Three replicas of the filing service, on 127.0.0.1, .2 and .3 at one port, known to a
/// `gateway` process by one name that resolves to all three addresses (its own /etc/hosts,
/// bind-mounted in a mount namespace of its own, as a headless Service's DNS name answers
/// in a cluster): the calls are spread within 20 % of even. As root (skipped otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_name_with_three_addresses_spreads_the_calls_evenly() {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("balancing: skipped, a mount namespace needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(mut db) = fresh_database(Engine::Postgres, dir.path()).await else {
        return;
    };
    db.url = db.url.replace("{service}", "filing");
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, TRUST_DOMAIN).unwrap();
    let port = free_port();
    let mut replicas = Vec::new();
    for host in 1..=3u8 {
        let listen = SocketAddr::from(([127, 0, 0, host], port));
        replicas.push(filing_replica(&db, &pki, dir.path(), listen).await);
    }
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n127.0.0.1 filing-replicas\n127.0.0.2 filing-replicas\n\
         127.0.0.3 filing-replicas\n",
    )
    .unwrap();
    let (node, public) = (free_port(), free_port());
    let gateway_config = dir.path().join("gateway.toml");
    std::fs::write(
        &gateway_config,
        format!(
            "pki_dir = \"{}\"\ndata_dir = \"{}\"\n[node]\nlisten = \"127.0.0.1:{node}\"\n\
             [public]\nlisten = \"127.0.0.1:{public}\"\n[gateway.rate_per_second]\nagency = 0\n\
             [backends.filing]\nurl = \"https://filing-replicas:{port}\"\n",
            pki.display(),
            dir.path().join("data").display(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
    let _gateway = Command::new("unshare")
        .args(["--mount", "--", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/hosts && exec "$2" gateway --config "$3""#)
        .arg("sh")
        .arg(&hosts)
        .arg(BIN)
        .arg(&gateway_config)
        .env_remove("CREDITMESH_DATABASE__URL")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = agency_through(node, &pki).await;

    calls_spread_evenly(&client, &replicas).await;
    for (_, s) in replicas {
        s.cancel();
    }
}
