//! `creditmesh bench gateway`: unary load over mutual TLS against one service directly and
//! through the gateway, in the same run, on persistent connections, for two calls: a read
//! from the database, and a call the backend refuses by validation alone (so that the proxy's
//! own cost dominates). Saturation mode finds each path's throughput; fixed-rate mode (open
//! loop, at half the slower path's saturation rate) measures what the gateway adds to latency.
//! Latencies go into HDR histograms.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use creditmesh_domain::SystemClock;
use creditmesh_pki::{ClientTls, TlsFiles};
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::complaints::v1::{SubmitComplaintRequest, TrackComplaintRequest};
use creditmesh_rpc::client::mtls_channel;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Mutex;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::mesh::{MeshOptions, start_mesh};

#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    pub seconds: u64,
    pub warmup_seconds: u64,
    pub concurrency: usize,
    pub connections: usize,
}

/// One path under test: a set of persistent channels and how to call on them.
#[derive(Clone)]
struct Path {
    channels: Vec<Channel>,
    /// Set when calling a backend directly: the principal the gateway would forward.
    forwarded_principal: bool,
    request: TrackComplaintRequest,
    /// The answer that counts as served.
    expect: tonic::Code,
}

impl Path {
    async fn call_owned(self, worker: usize) -> Result<(), tonic::Status> {
        self.call(worker).await
    }

    async fn call(&self, worker: usize) -> Result<(), tonic::Status> {
        let ch = self.channels[worker % self.channels.len()].clone();
        let mut req = tonic::Request::new(self.request.clone());
        if self.forwarded_principal {
            req.metadata_mut().insert(
                creditmesh_rpc::PRINCIPAL_HEADER,
                tonic::metadata::MetadataValue::from_static("public"),
            );
        }
        let answer = ComplaintServiceClient::new(ch).track_complaint(req).await;
        match answer {
            Ok(_) if self.expect == tonic::Code::Ok => Ok(()),
            Err(e) if e.code() == self.expect => Ok(()),
            Ok(_) => Err(tonic::Status::unknown(
                "served where a refusal was expected",
            )),
            Err(e) => Err(e),
        }
    }
}

pub(crate) struct Outcome {
    pub rps: f64,
    pub errors: u64,
    pub histogram: Histogram<u64>,
}

impl Outcome {
    pub fn empty() -> Self {
        Self {
            rps: 0.0,
            errors: 0,
            histogram: histogram(),
        }
    }

    /// Adds `other`'s latencies and errors to these.
    pub fn absorb(&mut self, other: &Outcome) {
        let _ = self.histogram.add(&other.histogram);
        self.errors += other.errors;
    }

    fn summary(&self) -> serde_json::Value {
        let q = |p: f64| self.histogram.value_at_quantile(p) as f64 / 1000.0;
        json!({
            "rps": (self.rps * 10.0).round() / 10.0,
            "errors": self.errors,
            "p50_ms": q(0.50),
            "p99_ms": q(0.99),
            "p999_ms": q(0.999),
        })
    }
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// Closed loop: `concurrency` workers call back to back for `length`.
async fn saturate(path: &Path, concurrency: usize, length: Duration) -> Outcome {
    let shared = Arc::new(Mutex::new((histogram(), 0u64, 0u64)));
    let deadline = Instant::now() + length;
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let path = path.clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                let (mut h, mut ok, mut errors) = (histogram(), 0u64, 0u64);
                while Instant::now() < deadline {
                    let started = Instant::now();
                    match path.call(w).await {
                        Ok(()) => {
                            ok += 1;
                            let _ = h.record(started.elapsed().as_micros() as u64);
                        }
                        Err(_) => errors += 1,
                    }
                }
                let mut s = shared.lock().await;
                let _ = s.0.add(&h);
                s.1 += ok;
                s.2 += errors;
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let (h, ok, errors) = Arc::try_unwrap(shared)
        .map(|m| m.into_inner())
        .unwrap_or_else(|_| (histogram(), 0, 0));
    Outcome {
        rps: ok as f64 / length.as_secs_f64(),
        errors,
        histogram: h,
    }
}

/// Every path warmed up, then saturated in turn in one-second slices, so that a change in
/// the machine's speed during the run (on a shared host, a third from one minute to the
/// next) falls on all paths alike rather than on whichever ran then.
async fn saturate_alternating(paths: &[&Path], opts: BenchOptions) -> Vec<Outcome> {
    for path in paths {
        saturate(
            path,
            opts.concurrency,
            Duration::from_secs(opts.warmup_seconds),
        )
        .await;
    }
    let slice = Duration::from_secs(1);
    let slices = opts.seconds.max(1);
    let mut outcomes: Vec<Outcome> = paths.iter().map(|_| Outcome::empty()).collect();
    for _ in 0..slices {
        for (path, outcome) in paths.iter().zip(outcomes.iter_mut()) {
            let o = saturate(path, opts.concurrency, slice).await;
            outcome.absorb(&o);
            outcome.rps += o.rps / slices as f64;
        }
    }
    outcomes
}

/// Open loop on every path in turn, in half-second slices, so that whatever else the machine
/// does in the meantime falls on all alike.
async fn fixed_rate_alternating(paths: &[&Path], rate: f64, opts: BenchOptions) -> Vec<Outcome> {
    let slice = Duration::from_millis(500);
    let slices = (opts.seconds * 2).max(1);
    let mut outcomes: Vec<Outcome> = paths.iter().map(|_| Outcome::empty()).collect();
    for _ in 0..slices {
        for (path, outcome) in paths.iter().zip(outcomes.iter_mut()) {
            let path = (*path).clone();
            let o = fixed_rate(move |i| path.clone().call_owned(i), rate, slice).await;
            outcome.absorb(&o);
            outcome.rps += o.rps / slices as f64;
        }
    }
    outcomes
}

/// Open loop: `call(i)` every `1 / rate` seconds for `length`, latency counted from the moment
/// the call was due, so that a stall is not hidden. The calls are issued from a thread of their
/// own that sleeps to each one's due time: tokio's timer has a resolution of a millisecond, and
/// paced by it, the calls due within one millisecond would go out together, each waiting
/// behind the others of its burst.
pub(crate) async fn fixed_rate<F, Fut>(call: F, rate: f64, length: Duration) -> Outcome
where
    F: Fn(usize) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let total = (rate * length.as_secs_f64()) as u64;
    let shared = Arc::new(Mutex::new((histogram(), 0u64, 0u64)));
    let start = Instant::now();
    let issuing = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            let mut calls = Vec::with_capacity(total as usize);
            for i in 0..total {
                let due = start + interval.mul_f64(i as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let shared = shared.clone();
                let answer = call(i as usize);
                calls.push(tokio::spawn(async move {
                    let result = answer.await;
                    let latency = due.elapsed().as_micros() as u64;
                    let mut s = shared.lock().await;
                    match result {
                        Ok(()) => {
                            let _ = s.0.record(latency);
                            s.1 += 1;
                        }
                        Err(_) => s.2 += 1,
                    }
                }));
            }
            calls
        })
    };
    let calls = issuing
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    for c in calls {
        let _ = c.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (h, ok, errors) = Arc::try_unwrap(shared)
        .map(|m| m.into_inner())
        .unwrap_or_else(|_| (histogram(), 0, 0));
    Outcome {
        rps: ok as f64 / elapsed,
        errors,
        histogram: h,
    }
}

fn channels(n: usize, url: &str, tls: &Arc<ClientTls>, name: &str) -> Result<Vec<Channel>> {
    (0..n)
        .map(|_| mtls_channel(url, tls.clone(), name))
        .collect()
}

/// A mesh for a benchmark: a fresh PKI and database (a fresh PostgreSQL database on
/// `postgres`, SQLite otherwise), every limit but the connection caps off unless `limits`
/// says otherwise.
pub(crate) struct BenchMesh {
    pub mesh: crate::Mesh,
    pub pki: std::path::PathBuf,
    pub url: String,
    pub engine: &'static str,
    pub dir: std::path::PathBuf,
    drop_db: Option<(String, String)>,
}

/// Gateway limits with rates and call caps off.
pub(crate) fn unlimited() -> creditmesh_gateway::LimitsConfig {
    creditmesh_gateway::LimitsConfig {
        rate_per_second: creditmesh_gateway::limits::RateLimits::off(),
        max_concurrent_calls: 1 << 20,
        max_calls_per_tenant: 1 << 20,
        max_calls_per_caller: 1 << 20,
        ..Default::default()
    }
}

impl BenchMesh {
    pub async fn start(
        tag: &str,
        postgres: Option<&str>,
        db_connections: u32,
        poll_interval: Duration,
    ) -> Result<Self> {
        Self::start_limited(tag, postgres, db_connections, poll_interval, unlimited()).await
    }

    pub async fn start_limited(
        tag: &str,
        postgres: Option<&str>,
        db_connections: u32,
        poll_interval: Duration,
        limits: creditmesh_gateway::LimitsConfig,
    ) -> Result<Self> {
        use creditmesh_storage::sqlx::{self, Connection};
        let dir =
            std::env::temp_dir().join(format!("creditmesh-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pki = dir.join("pki");
        creditmesh_pki::ensure_dev_pki(&pki, creditmesh_pki::DEFAULT_TRUST_DOMAIN)?;
        let (url, engine, drop_db) = match postgres {
            Some(base) => {
                let name = format!("cmbench_{tag}_{}", std::process::id());
                let mut conn = sqlx::PgConnection::connect(base).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name}"
                )))
                .execute(&mut conn)
                .await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                let (head, _) = base.rsplit_once('/').context("a URL with a database")?;
                (
                    format!("{head}/{name}"),
                    "postgres",
                    Some((base.to_owned(), name)),
                )
            }
            None => (
                format!("sqlite://{}/db/{{service}}.sqlite", dir.display()),
                "sqlite",
                None,
            ),
        };
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let mesh = start_mesh(MeshOptions {
            runtime: crate::mesh::Runtime {
                pki_dir: pki.clone(),
                trust_domain: creditmesh_pki::DEFAULT_TRUST_DOMAIN.into(),
                clock: Arc::new(SystemClock),
                calendar: Arc::new(creditmesh_domain::calendar::Calendar::builtin()),
                blob_store: dir.join("blobs").display().to_string(),
                staging_dir: dir.join("staging"),
                spot_check_percent: [10, 5, 20, 50],
                complaint_acceptance_working_days: 5,
                review_routing: Default::default(),
                measures: None,
                register: Default::default(),
                notifications: Default::default(),
                referrals: Default::default(),
                datapush: Default::default(),
            },
            database: creditmesh_storage::DbConfig {
                url: url.clone(),
                max_connections: db_connections,
                ..Default::default()
            },
            node_listen: any,
            public_listen: any,
            poll_interval,
            limits,
        })
        .await?;
        Ok(Self {
            mesh,
            pki,
            url,
            engine,
            dir,
            drop_db,
        })
    }

    /// `n` channels to the node listener presenting the development certificate `name`.
    pub fn node(&self, n: usize, name: &str) -> Result<Vec<Channel>> {
        let tls = ClientTls::client(TlsFiles::in_dir(&self.pki, name))?;
        channels(
            n,
            &format!("https://{}", self.mesh.node_addr),
            &tls,
            "localhost",
        )
    }

    /// A channel to the public listener, trusting the development CA.
    pub fn public(&self) -> Result<Channel> {
        Ok(self.public_endpoint(None)?.connect_lazy())
    }

    /// The public listener as an endpoint trusting the development CA, connecting from
    /// `from` when given.
    pub fn public_endpoint(&self, from: Option<std::net::IpAddr>) -> Result<Endpoint> {
        let ca = std::fs::read_to_string(self.pki.join("ca.pem"))?;
        Ok(
            Endpoint::from_shared(format!("https://{}", self.mesh.public_addr))?
                .local_address(from)
                .connect_timeout(Duration::from_secs(5))
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(ca))
                        .domain_name("localhost"),
                )?,
        )
    }

    pub async fn stop(self) -> Result<()> {
        use creditmesh_storage::sqlx::{self, Connection};
        self.mesh.shutdown(Duration::from_secs(5)).await;
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((base, name)) = self.drop_db {
            let mut conn = sqlx::PgConnection::connect(&base).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await?;
        }
        Ok(())
    }
}

pub async fn gateway(
    opts: BenchOptions,
    limits: creditmesh_gateway::LimitsConfig,
    nginx: Option<&std::path::Path>,
) -> Result<serde_json::Value> {
    let backend_connections = limits.backend_connections;
    let backend_calls_per_connection = limits.backend_calls_per_connection;
    // Two connections per service: on two cores, more SQLite worker threads only add
    // context switches to both paths alike.
    let bench =
        BenchMesh::start_limited("gateway", None, 2, Duration::from_secs(1), limits).await?;
    let (mesh, pki) = (&bench.mesh, &bench.pki);
    let backend = mesh
        .services
        .iter()
        .find(|s| s.name == "complaints")
        .context("complaints service")?
        .addr;
    let nginx = match nginx {
        Some(binary) => {
            Some(crate::nginx::Nginx::start(binary, &bench.dir, pki, backend, "complaints").await?)
        }
        None => None,
    };

    // The gateway's own identity reaches the backend directly; an agency goes through the
    // gateway's node listener (and through nginx). All over mutual TLS.
    let as_gateway = ClientTls::client(TlsFiles::in_dir(pki, "service-gateway"))?;
    let direct_channels = channels(
        opts.connections,
        &format!("https://{backend}"),
        &as_gateway,
        "complaints",
    )?;
    let gateway_channels = bench.node(opts.connections, "agency")?;

    let mut seed = ComplaintServiceClient::new(gateway_channels[0].clone());
    let submitted = seed
        .submit_complaint(SubmitComplaintRequest {
            request_id: "bench".into(),
            agency_uscc: creditmesh_pki::DEMO_AGENCY_USCC.into(),
            complainant_contact: "bench@example.org".into(),
            subject: "benchmark".into(),
            description: "a complaint to read back".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let request = TrackComplaintRequest {
        tracking_number: submitted.tracking_number,
        access_code: submitted.access_code,
    };
    let direct = Path {
        channels: direct_channels,
        forwarded_principal: true,
        request: request.clone(),
        expect: tonic::Code::Ok,
    };
    let through = Path {
        channels: gateway_channels,
        forwarded_principal: false,
        request,
        expect: tonic::Code::Ok,
    };
    let via_nginx = match &nginx {
        Some(n) => {
            let tls = ClientTls::client(TlsFiles::in_dir(pki, "agency"))?;
            Some(Path {
                channels: channels(
                    opts.connections,
                    &format!("https://{}", n.addr),
                    &tls,
                    "localhost",
                )?,
                forwarded_principal: false,
                ..through.clone()
            })
        }
        None => None,
    };
    let refused = |p: &Path| Path {
        request: TrackComplaintRequest::default(),
        expect: tonic::Code::InvalidArgument,
        ..p.clone()
    };

    eprintln!("bench: the database read");
    let mut figures = compare(&direct, &through, via_nginx.as_ref(), opts).await;
    eprintln!("bench: the call refused by validation");
    figures["refused"] = compare(
        &refused(&direct),
        &refused(&through),
        via_nginx.as_ref().map(refused).as_ref(),
        opts,
    )
    .await;
    figures["refused"]["method"] = "TrackComplaint without a tracking number".into();

    drop(nginx);
    bench.stop().await?;
    figures["method"] = "creditmesh.complaints.v1.ComplaintService/TrackComplaint".into();
    figures["concurrency"] = opts.concurrency.into();
    figures["connections"] = opts.connections.into();
    figures["seconds"] = opts.seconds.into();
    figures["backend_connections"] = backend_connections.into();
    figures["backend_calls_per_connection"] = backend_calls_per_connection.into();
    Ok(figures)
}

/// Saturation and fixed rate on one call, directly, through the gateway and, when given,
/// through nginx.
async fn compare(
    direct: &Path,
    through: &Path,
    nginx: Option<&Path>,
    opts: BenchOptions,
) -> serde_json::Value {
    let mut paths = vec![direct, through];
    paths.extend(nginx);
    eprintln!(
        "bench: saturating each path in turn ({} × 1 s each)",
        opts.seconds
    );
    let mut saturated = saturate_alternating(&paths, opts).await.into_iter();
    let (direct_sat, gateway_sat) = (
        saturated.next().expect("direct"),
        saturated.next().expect("gateway"),
    );
    let nginx_sat = saturated.next();
    // Half load: half of what the slowest path sustains, so that every path has headroom
    // and the difference is what the proxy adds, not a queue.
    let rate = nginx_sat
        .iter()
        .fold(direct_sat.rps.min(gateway_sat.rps), |r, n| r.min(n.rps))
        / 2.0;
    eprintln!("bench: fixed rate {rate:.0}/s on each path in turn");
    let fixed = fixed_rate_alternating(&paths, rate, opts).await;
    let ms = |o: &Outcome, q: f64| o.histogram.value_at_quantile(q) as f64 / 1000.0;
    let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
    let ratio = |a: f64, b: f64| if b > 0.0 { round(a / b, 3) } else { 0.0 };
    let added = |o: &Outcome, q: f64| round(ms(o, q) - ms(&fixed[0], q), 3);
    let mut figures = json!({
        "direct_rps": round(direct_sat.rps, 1),
        "gateway_rps": round(gateway_sat.rps, 1),
        "ratio": ratio(gateway_sat.rps, direct_sat.rps),
        "direct_p50_ms": ms(&direct_sat, 0.5),
        "direct_p99_ms": ms(&direct_sat, 0.99),
        "direct_p999_ms": ms(&direct_sat, 0.999),
        "gateway_p50_ms": ms(&gateway_sat, 0.5),
        "gateway_p99_ms": ms(&gateway_sat, 0.99),
        "gateway_p999_ms": ms(&gateway_sat, 0.999),
        "fixed_rate_rps": round(rate, 1),
        "fixed_direct": fixed[0].summary(),
        "fixed_gateway": fixed[1].summary(),
        "added_p50_ms": added(&fixed[1], 0.5),
        "added_p99_ms": added(&fixed[1], 0.99),
        "errors": direct_sat.errors
            + gateway_sat.errors
            + nginx_sat.as_ref().map_or(0, |n| n.errors)
            + fixed.iter().map(|o| o.errors).sum::<u64>(),
    });
    if let Some(n) = &nginx_sat {
        figures["nginx_rps"] = round(n.rps, 1).into();
        figures["nginx_ratio"] = ratio(n.rps, direct_sat.rps).into();
        figures["gateway_vs_nginx"] = ratio(gateway_sat.rps, n.rps).into();
        figures["nginx_p50_ms"] = ms(n, 0.5).into();
        figures["nginx_p99_ms"] = ms(n, 0.99).into();
        figures["fixed_nginx"] = fixed[2].summary();
        figures["nginx_added_p50_ms"] = added(&fixed[2], 0.5).into();
        figures["nginx_added_p99_ms"] = added(&fixed[2], 0.99).into();
    }
    figures
}

pub struct DeliveryOptions {
    pub seconds: u64,
    /// Complaints submitted per second, open loop.
    pub rate: u64,
    /// A PostgreSQL server URL to run on (a fresh database is made there); SQLite otherwise.
    pub postgres: Option<String>,
}

/// `creditmesh bench delivery`: sustained writes (complaints, each an event for review) at a
/// fixed rate through the gateway, while the outbox relay delivers. Prints events produced and
/// delivered per second and the backlog, sampled every second.
pub async fn delivery(opts: DeliveryOptions) -> Result<serde_json::Value> {
    use creditmesh_storage::sqlx::{self, Connection};

    let bench = BenchMesh::start(
        "delivery",
        opts.postgres.as_deref(),
        4,
        Duration::from_millis(200),
    )
    .await?;
    let (url, engine) = (bench.url.clone(), bench.engine);
    let channels = bench.node(4, "agency")?;
    sqlx::any::install_default_drivers();
    let outbox_url = url.replace("{service}", "complaints");
    let mut probe = sqlx::AnyConnection::connect(&outbox_url).await?;
    let counts = async |conn: &mut sqlx::AnyConnection| -> Result<(i64, i64)> {
        let produced: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM complaints_outbox")
            .fetch_one(&mut *conn)
            .await?;
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM complaints_outbox WHERE delivered_at IS NULL")
                .fetch_one(&mut *conn)
                .await?;
        Ok((produced, produced - pending))
    };

    eprintln!(
        "bench: {} complaints/s for {}s on {engine}",
        opts.rate, opts.seconds
    );
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / opts.rate.max(1) as f64);
    let start = Instant::now();
    let producer = {
        let errors = errors.clone();
        let seconds = opts.seconds;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = 0u64;
            let mut calls = Vec::new();
            while start.elapsed() < Duration::from_secs(seconds) {
                tick.tick().await;
                n += 1;
                let mut client = ComplaintServiceClient::new(channels[n as usize % 4].clone());
                let errors = errors.clone();
                calls.push(tokio::spawn(async move {
                    let req = SubmitComplaintRequest {
                        request_id: format!("load-{n}"),
                        agency_uscc: creditmesh_pki::DEMO_AGENCY_USCC.into(),
                        complainant_contact: "bench@example.org".into(),
                        subject: "benchmark".into(),
                        description: format!("sustained write {n}"),
                        ..Default::default()
                    };
                    if client.submit_complaint(req).await.is_err() {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }));
            }
            for c in calls {
                let _ = c.await;
            }
        })
    };
    let mut samples = Vec::new();
    let mut max_backlog = 0;
    while !producer.is_finished() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (produced, delivered) = counts(&mut probe).await?;
        max_backlog = max_backlog.max(produced - delivered);
        samples.push((start.elapsed().as_secs_f64(), produced, delivered));
    }
    let load_seconds = start.elapsed().as_secs_f64();
    let (produced, delivered_at_end) = counts(&mut probe).await?;
    // How long the backlog takes to drain once the load stops.
    let drain_start = Instant::now();
    let mut delivered = delivered_at_end;
    while delivered < produced && drain_start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        delivered = counts(&mut probe).await?.1;
    }
    let drain_seconds = drain_start.elapsed().as_secs_f64();
    probe.close().await.ok();
    bench.stop().await?;
    let round = |x: f64| (x * 10.0).round() / 10.0;
    Ok(json!({
        "engine": engine,
        "offered_rate": opts.rate,
        "seconds": round(load_seconds),
        "produced": produced,
        "produced_per_s": round(produced as f64 / load_seconds),
        "delivered_during_load_per_s": round(delivered_at_end as f64 / load_seconds),
        "backlog_at_end": produced - delivered_at_end,
        "backlog_max": max_backlog,
        "drained": delivered >= produced,
        "drain_seconds": round(drain_seconds),
        "submit_errors": errors.load(std::sync::atomic::Ordering::Relaxed),
        "samples": samples.iter().map(|(t, p, d)| json!([round(*t), p, d])).collect::<Vec<_>>(),
    }))
}
