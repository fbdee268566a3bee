//! The complaints service (Art. 24): anyone complains about an agency; regulators triage.

mod api;
mod deadlines;
pub mod delivery;
pub mod evidence;
mod handling;
mod holders;
pub mod notify;
mod referral_store;
pub mod referrals;
mod schema;
mod store;

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
        background,
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
    let api = ComplaintServiceServer::new(api::Api::new(
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
        holders::Handler {
            referrals,
            contacts,
        },
    )
}

fn background(env: ServiceEnv, stop: tokio_util::sync::CancellationToken) {
    let sealing = env.clone();
    tokio::spawn(async move {
        let sealed = match creditmesh_pki::ContactKey::load(&sealing.pki_dir) {
            Ok(contacts) => referrals::seal_stored_contacts(&sealing.store, &contacts)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        match sealed {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                sealed = n,
                "complainants' contacts sealed in stored referrals"
            ),
            Err(e) => tracing::warn!(error = %e, "stored referrals' contacts were not sealed"),
        }
    });
    let recompute = env.clone();
    tokio::spawn(async move {
        match deadlines::recompute(&recompute).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(recomputed = n, "provisional complaint deadlines recomputed"),
            Err(e) => {
                tracing::warn!(error = %e, "provisional complaint deadlines were not recomputed")
            }
        }
    });
    match (
        notify::notifiers(&env.notifications),
        creditmesh_pki::ContactKey::load(&env.pki_dir),
    ) {
        (Ok(notifiers), Ok(contacts)) => {
            tokio::spawn(notify::run(
                env.store.clone(),
                notifiers,
                contacts,
                stop.clone(),
            ));
        }
        (Err(e), _) => {
            tracing::error!(error = %e, "complainants will not be told: notifications misconfigured")
        }
        (_, Err(e)) => {
            tracing::error!(error = %e, "nobody will be told: the contact key is missing")
        }
    }
    match delivery::Delivery::new(
        env.store.clone(),
        &env.pki_dir,
        env.authn.trust_domain(),
        &env.referrals,
        &stop,
    ) {
        Ok(d) => {
            tokio::spawn(delivery::run(std::sync::Arc::new(d), stop));
        }
        Err(e) => {
            tracing::error!(error = %e, "referrals will not be delivered: no client identity")
        }
    }
}

/// How close the complaints waiting to be accepted, and those accepted and being handled, are
/// to their deadlines.
fn deadline_gauges(
    env: ServiceEnv,
) -> futures::future::BoxFuture<'static, Vec<creditmesh_rpc::service::Gauge>> {
    creditmesh_rpc::deadlines::reported(
        env,
        "SELECT tenant, 'acceptance' AS kind, acceptance_due AS due FROM complaints_complaint \
         WHERE status = 'received' AND acceptance_due <> '' \
         UNION ALL SELECT tenant, 'handling', handling_due FROM complaints_complaint \
         WHERE status = 'accepted' AND handling_due <> ''",
    )
}
