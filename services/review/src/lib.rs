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

pub fn definition() -> ServiceDef {
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.review.v1.ReviewService",
        migrations: schema::migrations,
        routes,
        background: jobs::spawn,
        gauges: deadline_gauges,
    }
}

fn routes(env: ServiceEnv) -> Routes {
    let ServiceEnv {
        store,
        authn,
        calendar,
        spot_check_percent,
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
