//! The review service: regulators' reviews, supervision and each agency's credit file.

mod convert;
mod deciding;
mod draw;
mod events;
mod grpc;
mod handover_store;
mod inspection;
mod jobs;
mod listing;
mod party;
mod reads;
mod rectification;
mod revocation;
mod schema;
mod state;
mod store;
mod supervision_store;
mod task_store;
mod validate;

use creditmesh_proto::review::v1::review_service_server::ReviewServiceServer;
use creditmesh_rpc::sink::with_sink;
use creditmesh_rpc::{ServiceDef, ServiceEnv};
use tonic::service::Routes;

pub const NAME: &str = "review";

/// What the review service runs with.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Spot-check ratio per risk tier, in percent: unset, low, medium, high (Art. 14).
    pub spot_check_percent: [u32; 4],
}

pub fn definition(config: Config) -> ServiceDef {
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.review.v1.ReviewService",
        migrations: schema::migrations,
        routes: Box::new(move |env| routes(env, config.spot_check_percent)),
        background: Box::new(jobs::spawn),
        gauges: std::sync::Arc::new(deadline_gauges),
    }
}

fn routes(env: ServiceEnv, spot_check_percent: [u32; 4]) -> Routes {
    let ServiceEnv {
        store,
        authn,
        calendar,
        measures,
        ..
    } = env;
    let api = ReviewServiceServer::new(state::Api::new(
        store.clone(),
        authn.clone(),
        calendar.clone(),
        spot_check_percent,
        measures,
    ))
    .max_decoding_message_size(creditmesh_rpc::MAX_MESSAGE_BYTES);
    let infra = store.infra.clone();
    with_sink(
        Routes::new(api),
        store,
        authn,
        events::Handler { calendar, infra },
    )
}

/// How close the open reviews (by the task's kind) and rectification orders are to their
/// deadlines.
fn deadline_gauges(
    env: ServiceEnv,
) -> futures::future::BoxFuture<'static, Vec<creditmesh_rpc::service::Gauge>> {
    creditmesh_rpc::deadlines::reported(env, crate::store::OPEN_DEADLINES)
}
