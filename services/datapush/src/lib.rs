//! The datapush service: non-public credit information from agencies (Art. 21-23, 27).
//!
//! The contract is complete; the methods not implemented yet answer `UNIMPLEMENTED`.

use creditmesh_proto::datapush::v1::data_push_service_server::{
    DataPushService, DataPushServiceServer,
};
use creditmesh_proto::events::v1::event_sink_service_server::EventSinkServiceServer;
use creditmesh_rpc::sink::{EventSink, IgnoreEvents};
use creditmesh_rpc::{Authn, ServiceDef, ServiceStore};
use creditmesh_storage::Migration;
use tonic::service::Routes;

pub const NAME: &str = "datapush";

pub fn definition() -> ServiceDef {
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.datapush.v1.DataPushService",
        migrations: Vec::<Migration>::new,
        routes,
    }
}

struct Api;

impl DataPushService for Api {}

fn routes(store: ServiceStore, authn: Authn) -> Routes {
    Routes::new(DataPushServiceServer::new(Api)).add_service(EventSinkServiceServer::new(
        EventSink::new(store, authn, IgnoreEvents),
    ))
}
