//! A mesh started for one benchmark, and what every benchmark measures with: open-loop
//! pacing, HDR histograms, outcomes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use creditmesh_domain::SystemClock;
use creditmesh_pki::{ClientTls, TlsFiles};
use creditmesh_rpc::client::mtls_channel;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Mutex;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use creditmesh::mesh::{MeshOptions, start_mesh};

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

    pub fn summary(&self) -> serde_json::Value {
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

pub(crate) fn channels(
    n: usize,
    url: &str,
    tls: &Arc<ClientTls>,
    name: &str,
) -> Result<Vec<Channel>> {
    (0..n)
        .map(|_| mtls_channel(url, tls.clone(), name))
        .collect()
}

/// A mesh for a benchmark: a fresh PKI and database (a fresh PostgreSQL database on
/// `postgres`, SQLite otherwise), every limit but the connection caps off unless `limits`
/// says otherwise.
pub(crate) struct BenchMesh {
    pub mesh: creditmesh::Mesh,
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
            runtime: creditmesh::mesh::Runtime {
                pki_dir: pki.clone(),
                trust_domain: creditmesh_pki::DEFAULT_TRUST_DOMAIN.into(),
                clock: Arc::new(SystemClock),
                calendar: Arc::new(creditmesh_domain::calendar::Calendar::builtin()),
                blob_store: dir.join("blobs").display().to_string(),
                staging_dir: dir.join("staging"),
                measures: None,
                services: creditmesh::mesh::Services {
                    review: creditmesh_review::Config {
                        spot_check_percent: [10, 5, 20, 50],
                    },
                    complaints: creditmesh_complaints::Config {
                        acceptance_working_days: 5,
                        ..Default::default()
                    },
                    ..Default::default()
                },
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
