//! The filing service: agencies file, change, report and deregister (Art. 6-8, 10-12, 18).
//!
//! The contract is complete; the methods not implemented yet answer `UNIMPLEMENTED`.

use creditmesh_proto::filing::v1::filing_service_server::{FilingService, FilingServiceServer};
use creditmesh_rpc::sink::{IgnoreEvents, with_sink};
use creditmesh_rpc::{ServiceDef, ServiceEnv};
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

fn routes(env: ServiceEnv) -> Routes {
    let ServiceEnv { store, authn, .. } = env;
    let api =
        FilingServiceServer::new(Api).max_decoding_message_size(creditmesh_rpc::MAX_MESSAGE_BYTES);
    with_sink(Routes::new(api), store, authn, IgnoreEvents)
}
