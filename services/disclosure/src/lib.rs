//! The disclosure service: the public register (Art. 7, 10, 15, 18, 19).
//!
//! The contract is complete; the methods not implemented yet answer `UNIMPLEMENTED`.

use creditmesh_proto::disclosure::v1::disclosure_service_server::{
    DisclosureService, DisclosureServiceServer,
};
use creditmesh_proto::events::v1::event_sink_service_server::EventSinkServiceServer;
use creditmesh_rpc::sink::{EventSink, IgnoreEvents};
use creditmesh_rpc::{Authn, ServiceDef, ServiceStore};
use creditmesh_storage::Migration;
use tonic::service::Routes;

pub const NAME: &str = "disclosure";

pub fn definition() -> ServiceDef {
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.disclosure.v1.DisclosureService",
        migrations: Vec::<Migration>::new,
        routes,
    }
}

struct Api;

impl DisclosureService for Api {}

fn routes(store: ServiceStore, authn: Authn) -> Routes {
    Routes::new(DisclosureServiceServer::new(Api)).add_service(EventSinkServiceServer::new(
        EventSink::new(store, authn, IgnoreEvents),
    ))
}
