//! The complaints service (Art. 24): anyone complains about an agency; regulators triage.

pub mod config;
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

pub use config::{Config, DepartmentPeer, NotificationsConfig, ReferralsConfig};

pub const NAME: &str = "complaints";

pub fn definition(config: Config) -> ServiceDef {
    let background = config.clone();
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.complaints.v1.ComplaintService",
        migrations: schema::migrations,
        routes: Box::new(move |env| routes(env, &config)),
        background: Box::new(move |env, stop| jobs::spawn(env, &background, stop)),
        gauges: std::sync::Arc::new(deadline_gauges),
    }
}

fn routes(env: ServiceEnv, config: &Config) -> Routes {
    let ServiceEnv {
        store,
        authn,
        calendar,
        blobs,
        pki_dir,
        ..
    } = env;
    let referrals = config.referrals.clone();
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
        config.acceptance_working_days,
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
