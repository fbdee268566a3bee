//! The disclosure service: the public register (Art. 7, 10, 15, 18, 19).
//!
//! The contract is complete; the methods not implemented yet answer `UNIMPLEMENTED`.

use creditmesh_proto::disclosure::v1::disclosure_service_server::{
    DisclosureService, DisclosureServiceServer,
};
use creditmesh_rpc::sink::{IgnoreEvents, with_sink};
use creditmesh_rpc::{ServiceDef, ServiceEnv};
use creditmesh_storage::Migration;
use tonic::service::Routes;

pub const NAME: &str = "disclosure";

pub fn definition() -> ServiceDef {
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.disclosure.v1.DisclosureService",
        migrations: Vec::<Migration>::new,
        routes,
        background: creditmesh_rpc::service::no_background,
    }
}

struct Api;

impl DisclosureService for Api {}

fn routes(env: ServiceEnv) -> Routes {
    let ServiceEnv { store, authn, .. } = env;
    let api = DisclosureServiceServer::new(Api)
        .max_decoding_message_size(creditmesh_rpc::MAX_MESSAGE_BYTES);
    with_sink(Routes::new(api), store, authn, IgnoreEvents)
}
