//! The datapush service: non-public credit information from agencies (Art. 21-23, 27).
//!
//! The contract is complete; the methods not implemented yet answer `UNIMPLEMENTED`.

use creditmesh_proto::datapush::v1::data_push_service_server::{
    DataPushService, DataPushServiceServer,
};
use creditmesh_rpc::sink::{IgnoreEvents, with_sink};
use creditmesh_rpc::{ServiceDef, ServiceEnv};
use creditmesh_storage::Migration;
use tonic::service::Routes;

pub const NAME: &str = "datapush";

pub fn definition() -> ServiceDef {
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.datapush.v1.DataPushService",
        migrations: Vec::<Migration>::new,
        routes,
        background: creditmesh_rpc::service::no_background,
    }
}

struct Api;

impl DataPushService for Api {}

fn routes(env: ServiceEnv) -> Routes {
    let ServiceEnv { store, authn, .. } = env;
    let api = DataPushServiceServer::new(Api)
        .max_decoding_message_size(creditmesh_rpc::MAX_MESSAGE_BYTES);
    with_sink(Routes::new(api), store, authn, IgnoreEvents)
}
