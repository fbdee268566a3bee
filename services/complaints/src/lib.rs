//! The complaints service (Art. 24): anyone complains about an agency; regulators triage.

mod convert;
pub mod delivery;
mod events;
pub mod evidence;
mod evidence_store;
mod grpc;
mod handling;
mod jobs;
mod notification_store;
pub mod notify;
mod referral_store;
pub mod referrals;
mod schema;
mod state;
mod store;
mod submission;
mod tracking;

use creditmesh_proto::complaints::v1::complaint_service_server::ComplaintServiceServer;
use creditmesh_rpc::sink::with_sink;
use creditmesh_rpc::{ServiceDef, ServiceEnv};
use tonic::service::Routes;

pub const NAME: &str = "complaints";

pub fn definition() -> ServiceDef {
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.complaints.v1.ComplaintService",
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
        complaint_acceptance_working_days,
        blobs,
        referrals,
        pki_dir,
        ..
    } = env;
    // Keys are checked at start (`serve` refuses without them); a node that cannot read its
    // contact key has no business taking what others are to be told.
    let contacts = std::sync::Arc::new(
        creditmesh_pki::ContactKey::load(&pki_dir)
            .unwrap_or_else(|e| panic!("complaints contact key: {e:#}")),
    );
    let api = ComplaintServiceServer::new(state::Api::new(
        store.clone(),
        authn.clone(),
        calendar,
        complaint_acceptance_working_days,
        blobs,
        referrals.clone(),
        contacts.clone(),
    ))
    .max_decoding_message_size(creditmesh_rpc::MAX_MESSAGE_BYTES);
    with_sink(
        Routes::new(api),
        store,
        authn,
        events::Handler {
            referrals,
            contacts,
        },
    )
}

/// How close the complaints waiting to be accepted, and those accepted and being handled, are
/// to their deadlines.
fn deadline_gauges(
    env: ServiceEnv,
) -> futures::future::BoxFuture<'static, Vec<creditmesh_rpc::service::Gauge>> {
    creditmesh_rpc::deadlines::reported(env, crate::store::OPEN_DEADLINES)
}
