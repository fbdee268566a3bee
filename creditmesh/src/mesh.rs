//! Starting services and the gateway, together (`dev`, tests) or apart (`serve`, `gateway`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use creditmesh_domain::Clock;
use creditmesh_domain::calendar::Calendar;
use creditmesh_gateway::{Backend, GatewayConfig};
use creditmesh_pki::{ClientAuth, ClientTls, ServerTls, TlsFiles};
use creditmesh_rpc::client::Spread;
use creditmesh_rpc::connections::{Budget, ConnectionLimits, Connections};
use creditmesh_rpc::in_flight::InFlightLayer;
use creditmesh_rpc::listener::{bind_tls, spawn_reloader};
use creditmesh_rpc::relay::Relay;
use creditmesh_rpc::trace::ServerTraceLayer;
use creditmesh_rpc::{Authn, ServiceDef, ServiceEnv, ServiceStore};
use creditmesh_storage::{Blobs, Db, DbConfig, Infra};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

/// Each service's own configuration, as the binary assembled it from its sections.
#[derive(Clone, Default)]
pub struct Services {
    pub filing: creditmesh_filing::Config,
    pub review: creditmesh_review::Config,
    /// The register's witnesses, and whether this node is one (`[register]`).
    pub register: Arc<creditmesh_disclosure::RegisterConfig>,
    pub complaints: creditmesh_complaints::Config,
    /// What agencies may push and how it is kept (`[datapush]`).
    pub datapush: Arc<creditmesh_datapush::DataPushConfig>,
}

/// Every service, in a fixed order, each holding its own configuration.
pub fn all_services(services: &Services) -> Vec<ServiceDef> {
    vec![
        creditmesh_filing::definition(services.filing.clone()),
        creditmesh_review::definition(services.review.clone()),
        creditmesh_disclosure::definition(services.register.clone()),
        creditmesh_complaints::definition(services.complaints.clone()),
        creditmesh_datapush::definition(services.datapush.clone()),
    ]
}

/// Connects to a service's database and brings its schema up to date.
pub async fn open_database(def: &ServiceDef, cfg: &DbConfig) -> Result<Db> {
    let db = Db::connect(cfg)
        .await
        .with_context(|| format!("connecting the {} database", def.name))?;
    let applied = creditmesh_storage::migrate::run(&db, def.name, &def.all_migrations())
        .await
        .with_context(|| format!("migrating the {} database", def.name))?;
    tracing::debug!(service = def.name, applied, "schema up to date");
    Ok(db)
}

/// What every service of a process shares.
#[derive(Clone)]
pub struct Runtime {
    pub pki_dir: std::path::PathBuf,
    pub trust_domain: String,
    pub clock: Arc<dyn Clock>,
    pub calendar: Arc<Calendar>,
    /// A directory or `s3://bucket/prefix`.
    pub blob_store: String,
    /// Where uploads are staged until complete.
    pub staging_dir: std::path::PathBuf,
    pub measures: Option<creditmesh_domain::measures::Validity>,
    /// Each service's own configuration.
    pub services: Services,
}

/// A service listening on its own mTLS listener.
pub struct RunningService {
    pub name: &'static str,
    pub grpc_name: &'static str,
    pub addr: SocketAddr,
    pub store: ServiceStore,
    /// The listener's connections, and the calls it has served.
    pub connections: Arc<Connections>,
    /// The gRPC health the service reports (SERVING from its start).
    pub health: tonic_health::server::HealthReporter,
    /// What the service reports on the operations port beyond its calls and outbox.
    pub gauges: ReadGauges,
    pub(crate) server: Option<JoinHandle<()>>,
}

/// Reads a service's own gauges (its [`ServiceDef::gauges`] with what it runs with).
pub type ReadGauges = Arc<
    dyn Fn() -> futures::future::BoxFuture<'static, Vec<creditmesh_rpc::service::Gauge>>
        + Send
        + Sync,
>;

/// Opens the database and starts serving one service; its relay starts separately, once
/// every consumer's address is known.
pub async fn start_service(
    def: &ServiceDef,
    db_cfg: &DbConfig,
    runtime: &Runtime,
    listen: SocketAddr,
    stop: CancellationToken,
) -> Result<RunningService> {
    let pki_dir = runtime.pki_dir.as_path();
    let trust_domain = runtime.trust_domain.as_str();
    let clock = runtime.clock.clone();
    let db = open_database(def, db_cfg).await?;
    let store = ServiceStore::new(db, Infra::new(def.name), clock);
    let tls = TlsFiles::in_dir(pki_dir, &format!("service-{}", def.name));
    let config = ServerTls::server(
        tls,
        ClientAuth::Required {
            trust_domain: trust_domain.to_owned(),
        },
    )
    .with_context(|| format!("tls identity of {}", def.name))?;
    let env = ServiceEnv {
        store: store.clone(),
        authn: Authn::new(trust_domain).with_revocations(config.clone()),
        calendar: runtime.calendar.clone(),
        blobs: Blobs::open(&runtime.blob_store, &runtime.staging_dir)
            .with_context(|| format!("blob store {}", runtime.blob_store))?,
        measures: runtime.measures,
        pki_dir: runtime.pki_dir.clone(),
    };
    (def.background)(env.clone(), stop.clone());
    let peers = creditmesh_rpc::PeerLayer::new(env.authn.clone());
    let lanes = creditmesh_rpc::LaneLayer::new(trust_domain);
    let calls = creditmesh_rpc::metrics::CallMetricsLayer::new(trust_domain);
    let gauges: ReadGauges = {
        let (read, env) = (def.gauges.clone(), env.clone());
        Arc::new(move || read(env.clone()))
    };
    let routes = (def.routes)(env);
    let (routes, health) = creditmesh_rpc::standard::add_health_and_reflection(
        routes,
        &[def.grpc_name, "creditmesh.events.v1.EventSinkService"],
    )
    .await?;
    // Only mesh nodes get past this listener's handshake; their pooled connections stay open.
    let limits = ConnectionLimits {
        max_per_address: 1024,
        idle_seconds: 3600,
        ..ConnectionLimits::default()
    };
    let budget = Budget::new(limits.max_connections);
    let connections = Connections::new(budget, &limits, 0);
    let (addr, incoming) = bind_tls(listen, config, connections.clone(), stop.clone())
        .await
        .with_context(|| format!("binding {} on {listen}", def.name))?;
    let name = def.name;
    let in_flight = InFlightLayer::new(connections.clone());
    let server = tokio::spawn(async move {
        // A service's callers are the gateway and relays, whose connections carry many
        // callers' streams at once: windows sized for that, so that HTTP/2's guard against
        // many small frames (half the connection window of framing overhead) has room while
        // a batch commits and the streams' frames wait to be read.
        let served = Server::builder()
            .http2_max_header_list_size(16 * 1024)
            .initial_connection_window_size(8 * 1024 * 1024)
            .initial_stream_window_size(1024 * 1024)
            .layer(in_flight)
            .layer(calls)
            .layer(peers)
            .layer(lanes)
            .layer(ServerTraceLayer { service: name })
            .layer(creditmesh_rpc::codec_status::CodecStatusLayer)
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stop.cancelled())
            .await;
        if let Err(e) = served {
            tracing::error!(service = name, error = %e, "service stopped with an error");
        }
    });
    tracing::info!(service = def.name, %addr, "service listening");
    Ok(RunningService {
        name: def.name,
        grpc_name: def.grpc_name,
        addr,
        store,
        connections,
        health,
        gauges,
        server: Some(server),
    })
}

/// Where one consumer service is reached: its URLs (every address they resolve to is a
/// replica) and the DNS name its certificate carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub urls: Vec<String>,
    pub server_name: String,
}

impl Target {
    /// One replica at `url`.
    pub fn at(url: String, server_name: &str) -> Self {
        Self {
            urls: vec![url],
            server_name: server_name.to_owned(),
        }
    }
}

/// Where a relay sends its events: each consumer service by name, and a tenant's own nodes
/// of a service by `(tenant, name)`, which take that tenant's events (as the gateway's
/// `tenant_backends` take its calls).
#[derive(Debug, Clone, Default)]
pub struct RelayTargets {
    pub default: HashMap<String, Target>,
    pub by_tenant: HashMap<(String, String), Target>,
}

/// How often a relay looks for due deliveries, and how long it holds what it claims.
#[derive(Debug, Clone, Copy)]
pub struct RelayTiming {
    pub poll_interval: Duration,
    pub lease: Duration,
}

impl RelayTiming {
    /// Polling every `poll_interval`, with the default lease.
    pub fn polling(poll_interval: Duration) -> Self {
        Self {
            poll_interval,
            lease: creditmesh_rpc::relay::LEASE,
        }
    }
}

/// Starts the outbox relay of `svc`, delivering to `targets`, spread over each consumer's
/// replicas.
pub async fn start_relay(
    svc: &RunningService,
    targets: &RelayTargets,
    pki_dir: &std::path::Path,
    timing: RelayTiming,
    stop: CancellationToken,
) -> Result<JoinHandle<()>> {
    let tls = ClientTls::client(TlsFiles::in_dir(pki_dir, &format!("service-{}", svc.name)))?;
    spawn_reloader(tls.clone(), stop.clone());
    let mut consumers = HashMap::new();
    for (name, t) in &targets.default {
        let spread = Spread::resolve(&t.urls, tls.clone(), &t.server_name, stop.clone())
            .await
            .with_context(|| format!("consumer {name}"))?;
        consumers.insert(name.clone(), spread);
    }
    let mut tenant_consumers = HashMap::new();
    for ((tenant, name), t) in &targets.by_tenant {
        let spread = Spread::resolve(&t.urls, tls.clone(), &t.server_name, stop.clone())
            .await
            .with_context(|| format!("consumer {name} of tenant {tenant}"))?;
        tenant_consumers.insert((tenant.clone(), name.clone()), spread);
    }
    let relay = Relay::new(svc.store.clone(), consumers, timing.poll_interval)
        .with_tenant_consumers(tenant_consumers)
        .with_lease(timing.lease);
    Ok(tokio::spawn(relay.run(stop)))
}

/// Everything needed to run the whole mesh in one process.
pub struct MeshOptions {
    pub runtime: Runtime,
    /// `{service}` in the URL is replaced by each service's name.
    pub database: DbConfig,
    pub node_listen: SocketAddr,
    pub public_listen: SocketAddr,
    pub poll_interval: Duration,
    pub limits: creditmesh_gateway::LimitsConfig,
}

/// The whole mesh in one process: every service on its own loopback mTLS listener, their
/// relays, and the gateway in front.
pub struct Mesh {
    pub node_addr: SocketAddr,
    pub public_addr: SocketAddr,
    pub services: Vec<RunningService>,
    gateway_stop: CancellationToken,
    services_stop: CancellationToken,
    gateway_tasks: Vec<JoinHandle<()>>,
    relays: Vec<JoinHandle<()>>,
}

/// Says at start-up under which validity of the Measures this process counts (Art. 32).
pub fn announce_measures(measures: Option<creditmesh_domain::measures::Validity>) {
    match measures {
        Some(v) => tracing::info!(measures = %v, "the Measures"),
        None => tracing::warn!(
            "the Measures' effective date is not configured ([measures] effective_on): no validity window is enforced"
        ),
    }
}

pub async fn start_mesh(opts: MeshOptions) -> Result<Mesh> {
    announce_measures(opts.runtime.measures);
    let services_stop = CancellationToken::new();
    let gateway_stop = CancellationToken::new();
    let mut services = Vec::new();
    for def in all_services(&opts.runtime.services) {
        let mut db = opts.database.clone();
        db.url = db.url.replace("{service}", def.name);
        services.push(
            start_service(
                &def,
                &db,
                &opts.runtime,
                SocketAddr::from(([127, 0, 0, 1], 0)),
                services_stop.clone(),
            )
            .await?,
        );
    }
    let backends: HashMap<String, Target> = services
        .iter()
        .map(|s| {
            let at = Target::at(format!("https://{}", s.addr), s.name);
            (s.name.to_owned(), at)
        })
        .collect();
    let targets = RelayTargets {
        default: backends,
        ..RelayTargets::default()
    };
    let mut relays = Vec::new();
    for svc in &services {
        relays.push(
            start_relay(
                svc,
                &targets,
                &opts.runtime.pki_dir,
                RelayTiming::polling(opts.poll_interval),
                services_stop.clone(),
            )
            .await?,
        );
    }
    let gateway = creditmesh_gateway::start(
        GatewayConfig {
            node_listen: opts.node_listen,
            public_listen: opts.public_listen,
            trust_domain: opts.runtime.trust_domain.clone(),
            tls: TlsFiles::in_dir(&opts.runtime.pki_dir, "service-gateway"),
            backends: services
                .iter()
                .map(|s| Backend {
                    grpc_name: s.grpc_name.to_owned(),
                    urls: vec![format!("https://{}", s.addr)],
                    server_name: s.name.to_owned(),
                    tenant: None,
                })
                .collect(),
            limits: opts.limits.clone(),
            forwarder_token: creditmesh_pki::read_forwarder_token(&opts.runtime.pki_dir)?,
        },
        gateway_stop.clone(),
    )
    .await?;
    Ok(Mesh {
        node_addr: gateway.node_addr,
        public_addr: gateway.public_addr,
        services,
        gateway_stop,
        services_stop,
        gateway_tasks: gateway.tasks,
        relays,
    })
}

impl Mesh {
    pub fn store(&self, service: &str) -> Option<&ServiceStore> {
        self.services
            .iter()
            .find(|s| s.name == service)
            .map(|s| &s.store)
    }

    /// Stops taking calls at the gateway, lets in-flight calls finish, then stops the
    /// services and relays and closes the databases. Calls still running after `grace` (a
    /// stream nobody closes) are cut off.
    pub async fn shutdown(mut self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        self.gateway_stop.cancel();
        join_until(self.gateway_tasks, deadline).await;
        self.services_stop.cancel();
        join_until(self.relays, deadline).await;
        join_until(
            self.services
                .iter_mut()
                .filter_map(|s| s.server.take())
                .collect(),
            deadline,
        )
        .await;
        for s in &self.services {
            s.store.db.close().await;
        }
    }
}

/// Waits for `tasks` until `deadline`, then aborts those still running.
pub async fn join_until(tasks: Vec<JoinHandle<()>>, deadline: tokio::time::Instant) {
    for mut t in tasks {
        if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
            tracing::warn!("cutting off calls still running after the shutdown grace period");
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use creditmesh_storage::migrate::Migration;

    #[test]
    fn every_service_leaves_row_security_nested() {
        for def in super::all_services(&super::Services::default()) {
            assert!(
                Migration::leave_nested_tenants(&def.all_migrations()),
                "{}'s migrations end with the flat tenant visibility: end them with \
                 Migration::nested_tenants",
                def.name
            );
        }
    }
}
