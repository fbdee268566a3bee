//! What each service crate hands the binary: its name, its tables and its routes.

use std::sync::Arc;

use creditmesh_domain::calendar::Calendar;
use creditmesh_storage::{Blobs, Infra, Migration};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::context::Authn;
use crate::store::ServiceStore;

/// Everything the binary needs to run one service: built by the service's `definition`
/// from its own configuration, which its routes, background work and gauges hold.
pub struct ServiceDef {
    /// Short name: table prefix, consumer name and certificate subject (`filing`, …).
    pub name: &'static str,
    /// Fully qualified gRPC service name, as health and the gateway know it.
    pub grpc_name: &'static str,
    /// The service's own migrations, numbered from 100.
    pub migrations: fn() -> Vec<Migration>,
    /// The business service and the event sink, ready to serve.
    pub routes: Box<dyn Fn(ServiceEnv) -> Routes + Send + Sync>,
    /// Starts the service's timers and jobs, which stop with the token.
    pub background: Box<dyn Fn(ServiceEnv, CancellationToken) + Send + Sync>,
    /// What an operator watches of the service beyond its calls and outbox, read from its
    /// database when the operations port is scraped.
    pub gauges: ReadGauges,
}

/// Reads a service's gauges with what it runs with.
pub type ReadGauges =
    Arc<dyn Fn(ServiceEnv) -> futures::future::BoxFuture<'static, Vec<Gauge>> + Send + Sync>;

/// One value a service reports on the operations port (`/metrics`), labelled by the service
/// and by `labels`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// A Prometheus name, `creditmesh_…`.
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// For services with nothing to report beyond their calls and outbox.
pub fn no_gauges() -> ReadGauges {
    Arc::new(|_| Box::pin(async { Vec::new() }))
}

/// What every service is given to run with; what one service alone needs is its own
/// configuration, held by its `ServiceDef`.
#[derive(Clone)]
pub struct ServiceEnv {
    pub store: ServiceStore,
    pub authn: Authn,
    /// The working-day calendar, built-in data with the operator's files.
    pub calendar: Arc<Calendar>,
    /// Where documents are kept.
    pub blobs: Blobs,
    /// The Measures' validity window (Art. 32); `None` while no effective date is configured.
    pub measures: Option<creditmesh_domain::measures::Validity>,
    /// The node's PKI directory (keys beside the certificates, such as the register's log key).
    pub pki_dir: std::path::PathBuf,
}

impl ServiceDef {
    /// Infrastructure tables first, then the service's own.
    pub fn all_migrations(&self) -> Vec<Migration> {
        let mut all = Infra::new(self.name).migrations();
        all.extend((self.migrations)());
        all
    }
}
