//! The operations port of a `serve` or `gateway` process: plain HTTP, for the cluster's probes
//! and Prometheus, never exposed beyond the node. The gateway's has no services to watch: it
//! is ready once its listeners are bound, and its `/metrics` counts the calls it forwarded. `/livez` answers while the process runs;
//! `/readyz` only while every service's database answers (a service is started only once its
//! migrations are applied and its keys loaded); `/metrics` in the Prometheus text format: the
//! calls answered (`creditmesh_rpc::metrics`), readiness, outbox backlogs, the pool.
//! The gRPC health of each service follows the same readiness: NOT_SERVING while its
//! database does not answer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use creditmesh_rpc::ServiceStore;
use creditmesh_storage::sqlx::{self, AnyConnection, Connection};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::mesh::RunningService;

/// How often each service's database is asked, and how long it has to answer.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// One service of the process, as the operations port watches it.
#[derive(Clone)]
struct Watched {
    name: &'static str,
    grpc_names: [&'static str; 2],
    store: ServiceStore,
    /// The service's database, asked on a connection of the watch's own: a pool busy with
    /// calls is not a database that does not answer.
    url: String,
    health: HealthReporter,
    ready: Arc<AtomicBool>,
    gauges: crate::mesh::ReadGauges,
}

/// Starts the operations port on `listen` for `services`, each on the database at
/// `url_of(name)`, and the watch of their databases; both end with `stop`. The address bound.
pub async fn start(
    listen: SocketAddr,
    services: &[RunningService],
    url_of: impl Fn(&str) -> String,
    stop: CancellationToken,
) -> Result<SocketAddr> {
    let watched: Arc<[Watched]> = services
        .iter()
        .map(|s| Watched {
            name: s.name,
            grpc_names: [s.grpc_name, "creditmesh.events.v1.EventSinkService"],
            store: s.store.clone(),
            url: url_of(s.name),
            health: s.health.clone(),
            ready: Arc::new(AtomicBool::new(true)),
            gauges: s.gauges.clone(),
        })
        .collect();
    for w in watched.iter() {
        tokio::spawn(watch(w.clone(), stop.clone()));
    }
    let app = Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(watched);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the operations port on {listen}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "operations port stopped with an error");
        }
    });
    tracing::info!(%addr, "operations port listening (plain HTTP: /livez, /readyz, /metrics)");
    Ok(addr)
}

/// Asks the service's database every second; readiness and gRPC health follow its answer.
async fn watch(w: Watched, stop: CancellationToken) {
    let mut connection: Option<AnyConnection> = None;
    loop {
        let answered = tokio::time::timeout(ANSWER_WITHIN, async {
            if connection.is_none() {
                connection = Some(AnyConnection::connect(&w.url).await?);
            }
            let conn = connection.as_mut().expect("connected above");
            sqlx::query("SELECT 1").execute(conn).await.map(|_| ())
        })
        .await;
        let answered = match answered {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {ANSWER_WITHIN:?}")),
        };
        if answered.is_err() {
            // Connected afresh next time: this one may be broken.
            connection = None;
        }
        let ready = answered.is_ok();
        if w.ready.swap(ready, Ordering::Relaxed) != ready {
            let status = if let Err(why) = answered {
                tracing::warn!(service = w.name, error = %why, "database does not answer: not ready");
                ServingStatus::NotServing
            } else {
                tracing::info!(service = w.name, "database answers again: ready");
                ServingStatus::Serving
            };
            for name in w.grpc_names {
                w.health.set_service_status(name, status).await;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

async fn readyz(State(watched): State<Arc<[Watched]>>) -> impl IntoResponse {
    let unready: Vec<String> = watched
        .iter()
        .filter(|w| !w.ready.load(Ordering::Relaxed))
        .map(|w| format!("{}: database does not answer\n", w.name))
        .collect();
    if unready.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, unready.concat())
    }
}

type GaugeF64 = Gauge<f64, std::sync::atomic::AtomicU64>;
/// A service's own gauge, by its labels (the service's first).
type Labelled = Family<Vec<(String, String)>, GaugeF64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabels {
    service: String,
    consumer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    service: String,
    state: String,
}

/// The gauges, read when scraped: readiness, each consumer's outbox backlog and the age of
/// its oldest event, and the database pool's connections.
async fn metrics(State(watched): State<Arc<[Watched]>>) -> impl IntoResponse {
    let ready = Family::<ServiceLabel, Gauge>::default();
    let backlog = Family::<ConsumerLabels, Gauge>::default();
    let oldest = Family::<ConsumerLabels, GaugeF64>::default();
    let pool = Family::<PoolLabels, Gauge>::default();
    // The services' own, by name.
    let mut own: BTreeMap<&'static str, (&'static str, Labelled)> = BTreeMap::new();
    let pool_waiting = Family::<ServiceLabel, Gauge>::default();
    for w in watched.iter() {
        let now = w.store.clock.now_micros();
        let service = w.name.to_owned();
        let is_ready = w.ready.load(Ordering::Relaxed);
        ready
            .get_or_create(&ServiceLabel {
                service: service.clone(),
            })
            .set(i64::from(is_ready));
        let connections = w.store.db.pool().size();
        let idle = w.store.db.pool().num_idle() as u32;
        for (state, n) in [("in_use", connections.saturating_sub(idle)), ("idle", idle)] {
            pool.get_or_create(&PoolLabels {
                service: service.clone(),
                state: state.into(),
            })
            .set(i64::from(n));
        }
        let (_, waiting) = w.store.db.gate().snapshot();
        pool_waiting
            .get_or_create(&ServiceLabel {
                service: service.clone(),
            })
            .set(waiting.values().sum::<usize>() as i64);
        if !is_ready {
            continue;
        }
        if let Ok(reported) = tokio::time::timeout(ANSWER_WITHIN, (w.gauges)()).await {
            for g in reported {
                let (_, family) = own
                    .entry(g.name)
                    .or_insert_with(|| (g.help, Family::default()));
                let mut labels = vec![("service".to_owned(), service.clone())];
                labels.extend(g.labels.into_iter().map(|(k, v)| (k.to_owned(), v)));
                family.get_or_create(&labels).set(g.value);
            }
        }
        let Ok(Ok(waiting)) =
            tokio::time::timeout(ANSWER_WITHIN, w.store.infra.backlog(&w.store.db)).await
        else {
            continue;
        };
        for b in waiting {
            let labels = ConsumerLabels {
                service: service.clone(),
                consumer: b.consumer,
            };
            backlog.get_or_create(&labels).set(b.pending);
            let age = (now - b.oldest_occurred_at).max(0) as f64 / 1e6;
            oldest.get_or_create(&labels).set(age);
        }
    }
    let mut registry = Registry::default();
    creditmesh_rpc::metrics::register(&mut registry);
    registry.register(
        "creditmesh_ready",
        "Whether the service's database answers (1) or not (0)",
        ready,
    );
    registry.register(
        "creditmesh_outbox_backlog",
        "Events written and not yet acknowledged by the consumer",
        backlog,
    );
    registry.register(
        "creditmesh_outbox_oldest_age_seconds",
        "How long ago the oldest event not yet acknowledged by the consumer occurred",
        oldest,
    );
    registry.register(
        "creditmesh_db_pool_connections",
        "The database pool's open connections, in use or idle",
        pool,
    );
    registry.register(
        "creditmesh_db_pool_waiting",
        "Calls and jobs waiting for a database connection (the pool is busy)",
        pool_waiting,
    );
    for (name, (help, family)) in own {
        registry.register(name, help, family);
    }
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("encoding the metrics: {e}\n"),
        ),
    }
}
