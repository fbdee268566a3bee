//! The disclosure service: the public register (Art. 7, 10, 12, 15, 18, 19), projected from
//! filing's events, each notice a leaf of a Merkle log with signed checkpoints.

mod api;
pub mod checkpoint;
pub mod cosign;
mod decisions;
pub mod log;
mod projection;
mod proofs;
mod reads;
mod schema;
mod store;
pub mod verify;
pub mod witness;

use std::sync::Arc;

use creditmesh_proto::disclosure::v1::disclosure_service_server::DisclosureServiceServer;
use creditmesh_rpc::sink::with_sink;
use creditmesh_rpc::{ServiceDef, ServiceEnv};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub const NAME: &str = "disclosure";

pub fn definition() -> ServiceDef {
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.disclosure.v1.DisclosureService",
        migrations: schema::migrations,
        routes,
        background,
    }
}

fn log_key(env: &ServiceEnv) -> Arc<checkpoint::LogKey> {
    let key = checkpoint::LogKey::load_or_create(&env.pki_dir, env.authn.trust_domain())
        .unwrap_or_else(|e| {
            panic!(
                "register log key in {}: {e}",
                env.pki_dir.join(checkpoint::KEY_FILE).display()
            )
        });
    Arc::new(key)
}

fn background(env: ServiceEnv, stop: CancellationToken) {
    let key = log_key(&env);
    tokio::spawn(checkpoint::run(env.store, key, stop));
}

fn routes(env: ServiceEnv) -> Routes {
    let key = log_key(&env);
    let ServiceEnv { store, authn, .. } = env;
    let api = DisclosureServiceServer::new(api::Api {
        store: store.clone(),
        authn: authn.clone(),
        key,
    })
    .max_decoding_message_size(creditmesh_rpc::MAX_MESSAGE_BYTES);
    with_sink(Routes::new(api), store, authn, projection::Handler)
}
