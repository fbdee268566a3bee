//! The filing service: agencies file, change, report and deregister (Art. 6-8, 10-12, 18).
//!
//! The contract is complete; the methods not implemented yet answer `UNIMPLEMENTED`.

use creditmesh_proto::events::v1::event_sink_service_server::EventSinkServiceServer;
use creditmesh_proto::filing::v1::filing_service_server::{FilingService, FilingServiceServer};
use creditmesh_rpc::sink::{EventSink, IgnoreEvents};
use creditmesh_rpc::{Authn, ServiceDef, ServiceStore};
use creditmesh_storage::Migration;
use tonic::service::Routes;

pub const NAME: &str = "filing";

pub fn definition() -> ServiceDef {
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.filing.v1.FilingService",
        migrations: Vec::<Migration>::new,
        routes,
    }
}

struct Api;

impl FilingService for Api {}

fn routes(store: ServiceStore, authn: Authn) -> Routes {
    Routes::new(FilingServiceServer::new(Api)).add_service(EventSinkServiceServer::new(
        EventSink::new(store, authn, IgnoreEvents),
    ))
}
