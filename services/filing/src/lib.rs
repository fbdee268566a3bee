//! The filing service: agencies file, change, report and deregister (Art. 6-8, 10-12, 18).

mod changes;
mod convert;
mod deregistration;
mod documents;
pub mod events;
mod grpc;
mod jobs;
mod model;
mod reads;
mod register;
mod reports;
mod schema;
mod state;
mod store;
mod submission;
mod validate;

use std::sync::Arc;

use creditmesh_domain::routing::ReviewRouting;
use creditmesh_proto::filing::v1::filing_service_server::FilingServiceServer;
use creditmesh_rpc::sink::with_sink;
use creditmesh_rpc::{ServiceDef, ServiceEnv};
use tonic::service::Routes;

pub use state::{MAX_DOCUMENT_BYTES, REVIEW_WORKING_DAYS};

pub const NAME: &str = "filing";

/// What the filing service runs with.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Who reviews a filing, by the division of its registered address (Art. 10).
    pub review_routing: Arc<ReviewRouting>,
}

pub fn definition(config: Config) -> ServiceDef {
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.filing.v1.FilingService",
        migrations: schema::migrations,
        routes: Box::new(move |env| routes(env, config.review_routing.clone())),
        background: Box::new(jobs::spawn),
        gauges: creditmesh_rpc::service::no_gauges(),
    }
}

fn routes(env: ServiceEnv, review_routing: Arc<ReviewRouting>) -> Routes {
    let api = state::Api::new(
        env.store.clone(),
        env.authn.clone(),
        env.calendar,
        env.blobs,
        review_routing,
        env.measures,
    );
    let server =
        FilingServiceServer::new(api).max_decoding_message_size(creditmesh_rpc::MAX_MESSAGE_BYTES);
    let handler = events::Handler {
        infra: env.store.infra.clone(),
    };
    with_sink(Routes::new(server), env.store, env.authn, handler)
}
