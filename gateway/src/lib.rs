//! The gateway: the one door into the mesh. Its node listener (mutual TLS) serves agencies,
//! regulators and departments; its public listener (server TLS) serves the public. It derives
//! the caller from the client certificate, strips any identity metadata the caller sent, and
//! forwards each call to the backend of its service over mutual TLS under its own identity.

mod caller;
mod cors;
mod gate;
mod health;
pub mod limits;
pub mod policy;
mod proxy;
mod replicas;
mod tiles;
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use creditmesh_domain::Tenant;
use creditmesh_pki::{ClientAuth, ClientTls, DelegationTls, ServerTls, TlsFiles};
use creditmesh_transport::coalesce::Coalesce;
use creditmesh_transport::connections::{Budget, Connections};
use creditmesh_transport::in_flight::InFlightLayer;
use creditmesh_transport::listener::{Accepted, TlsIncoming, bind_tls, spawn_reloader};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Server;

use crate::limits::Limits;
use crate::replicas::{PoolShape, Replicas, ReplicasSpec};

pub use limits::LimitsConfig;
pub use proxy::PUBLIC_SERVICES;

/// Where one service's backend is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Fully qualified gRPC service name.
    pub grpc_name: String,
    /// `https://host:port` each: every address they resolve to is a replica.
    pub urls: Vec<String>,
    /// DNS name the backend's certificate carries.
    pub server_name: String,
    /// Set for a backend serving one tenant's traffic; unset for the default backend.
    pub tenant: Option<Tenant>,
}

/// Which backend serves a call: the tenant's own when one is configured (a county's is its
/// prefecture's), else the default.
pub struct Routing {
    default: HashMap<String, Replicas>,
    by_tenant: HashMap<Tenant, HashMap<String, Replicas>>,
}

impl Routing {
    fn backend(&self, service: &str, tenant: Option<Tenant>) -> Option<&Replicas> {
        tenant
            .and_then(|t| self.by_tenant.get(&t.prefecture())?.get(service))
            .or_else(|| self.default.get(service))
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub node_listen: SocketAddr,
    pub public_listen: SocketAddr,
    pub trust_domain: String,
    /// The gateway's own identity: server certificate of both listeners and client
    /// certificate towards the backends.
    pub tls: TlsFiles,
    pub backends: Vec<Backend>,
    pub limits: LimitsConfig,
    /// The token with which the website names the visitor a public call is made for (see
    /// `creditmesh_pki::ensure_forwarder_token`); `None`, no forwarded address is believed.
    pub forwarder_token: Option<String>,
}

/// A running gateway.
pub struct Gateway {
    pub node_addr: SocketAddr,
    pub public_addr: SocketAddr,
    pub tasks: Vec<JoinHandle<()>>,
}

pub async fn start(cfg: GatewayConfig, stop: CancellationToken) -> Result<Gateway> {
    let cors = cors::layer(&cfg.limits.grpc_web_origins)?;
    let client_tls = ClientTls::client(cfg.tls.clone())?;
    spawn_reloader(client_tls.clone(), stop.clone());
    let mut routing = Routing {
        default: HashMap::new(),
        by_tenant: HashMap::new(),
    };
    let shape = PoolShape {
        connections: cfg.limits.backend_connections.max(1) as usize,
        calls_per_connection: cfg.limits.backend_calls_per_connection.max(1) as usize,
    };
    for b in &cfg.backends {
        let spec = ReplicasSpec {
            service: &b.grpc_name,
            urls: &b.urls,
            server_name: &b.server_name,
            tls: client_tls.clone(),
            shape,
        };
        let pool = Replicas::start(spec, stop.clone())
            .await
            .with_context(|| format!("backend {} at {}", b.grpc_name, b.urls.join(", ")))?;
        match b.tenant {
            Some(t) => routing
                .by_tenant
                .entry(t)
                .or_default()
                .insert(b.grpc_name.clone(), pool),
            None => routing.default.insert(b.grpc_name.clone(), pool),
        };
    }
    let routing = Arc::new(routing);

    let node_tls = ServerTls::server(
        cfg.tls.clone(),
        ClientAuth::Required {
            trust_domain: cfg.trust_domain.clone(),
        },
    )?;
    let public_tls = ServerTls::server(cfg.tls.clone(), ClientAuth::None)?;
    let delegation = DelegationTls::delegated(cfg.tls.clone(), &cfg.trust_domain)?;
    creditmesh_transport::listener::spawn_reloader(delegation.clone(), stop.clone());
    let budget = Budget::new(cfg.limits.connections.max_connections);
    let reserved = budget.total() * cfg.limits.node_reserved_percent.min(90) as usize / 100;
    tracing::info!(
        connections = budget.total(),
        reserved_for_node = reserved,
        "gateway connection places"
    );
    let node_connections = Connections::new(budget.clone(), &cfg.limits.connections, 0);
    let public_connections = Connections::new(budget, &cfg.limits.connections, reserved);
    let (node_addr, node_incoming) = bind_tls(
        cfg.node_listen,
        node_tls.clone(),
        node_connections.clone(),
        stop.clone(),
    )
    .await
    .with_context(|| format!("binding the node listener {}", cfg.node_listen))?;
    let (public_addr, public_incoming) = bind_tls(
        cfg.public_listen,
        public_tls,
        public_connections.clone(),
        stop.clone(),
    )
    .await
    .with_context(|| format!("binding the public listener {}", cfg.public_listen))?;

    let limits = Arc::new(Limits::new(&cfg.limits));
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(forget_idle_callers(
        limits.clone(),
        stop.clone(),
    )));
    let node_routes = routes(routing.clone(), false)?;
    let node = server(&cfg.limits)
        .layer(InFlightLayer::new(node_connections))
        .layer(gate::GateLayer::node(
            limits.clone(),
            &cfg.trust_domain,
            node_tls,
            delegation,
        ))
        .add_routes(node_routes)
        .serve_with_incoming_shutdown(coalesced(node_incoming), stop.clone().cancelled_owned());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = node.await {
            tracing::error!(error = %e, "gateway node listener failed");
        }
    }));
    // Browsers reach the public listener with gRPC-Web over HTTP/1.1 as well.
    let public_routes = routes(routing, true)?;
    let public = server(&cfg.limits)
        .accept_http1(true)
        .layer(InFlightLayer::new(public_connections))
        .layer(cors)
        .layer(tiles::GrpcWebExceptFiles)
        .layer(gate::GateLayer::with_forwarder(
            limits,
            &cfg.trust_domain,
            None,
            cfg.forwarder_token.as_deref().map(Arc::from),
        ))
        .add_routes(public_routes)
        .serve_with_incoming_shutdown(coalesced(public_incoming), stop.clone().cancelled_owned());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = public.await {
            tracing::error!(error = %e, "gateway public listener failed");
        }
    }));
    tracing::info!(%node_addr, %public_addr, "gateway listening");
    Ok(Gateway {
        node_addr,
        public_addr,
        tasks,
    })
}

/// A caller's connection writes the answers of the calls finished together in one system call.
fn coalesced(
    incoming: TlsIncoming,
) -> impl tokio_stream::Stream<Item = std::io::Result<Coalesce<Accepted>>> {
    tokio_stream::StreamExt::map(incoming, |accepted| accepted.map(Coalesce::new))
}

fn server(limits: &LimitsConfig) -> Server {
    Server::builder()
        // The gate refuses lists above the configured size with a gRPC status; HTTP/2 answers
        // a bare 431 only far beyond it.
        .http2_max_header_list_size(limits.max_header_list_bytes.saturating_mul(16))
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
}

async fn forget_idle_callers(limits: Arc<Limits>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => limits.forget_idle(),
        }
    }
}

/// Health, reflection and the proxy; the gate in front of them applies the same limits to all.
fn routes(routing: Arc<Routing>, public: bool) -> Result<Routes> {
    let health = health::HealthProxy::new(routing.clone(), public);
    let routes = Routes::new(tonic_health::pb::health_server::HealthServer::new(health));
    // The public listener lists only what the public may call.
    let listed = public.then(policy::public_services);
    let routes = creditmesh_transport::standard::add_reflection_listing(routes, listed.as_deref())?;
    let proxy = proxy::Proxy::new(routing.clone(), public);
    let mut router = routes.into_axum_router();
    if public {
        router = router.route(
            tiles::ROUTE,
            axum::routing::get(tiles::file).with_state(routing),
        );
    }
    Ok(Routes::from(router.fallback_service(proxy)))
}
