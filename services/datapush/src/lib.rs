//! The datapush service: non-public credit information pushed by filed agencies (Art. 20-23,
//! 27): the push stream, the catalog it is checked against, and records sealed at rest.
//!
//! Objections, subject access, correction notices and retention are not built yet; those
//! methods answer `UNIMPLEMENTED`.

mod agencies;
pub mod catalog;
mod push;
mod reads;
mod schema;
pub mod seal;
mod store;

use std::sync::Arc;

use creditmesh_proto::datapush::v1::data_push_service_server::{
    DataPushService, DataPushServiceServer,
};
use creditmesh_proto::datapush::v1::*;
use creditmesh_rpc::sink::with_sink;
use creditmesh_rpc::{Authn, ServiceDef, ServiceEnv, ServiceStore};
use tonic::service::Routes;
use tonic::{Request, Response, Status, Streaming};

pub const NAME: &str = "datapush";

pub fn definition() -> ServiceDef {
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.datapush.v1.DataPushService",
        migrations: schema::migrations,
        routes,
        background: creditmesh_rpc::service::no_background,
    }
}

#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) store: ServiceStore,
    pub(crate) authn: Authn,
    pub(crate) catalog: Arc<catalog::Catalog>,
    pub(crate) keys: Arc<seal::Keys>,
}

#[tonic::async_trait]
impl DataPushService for Api {
    async fn push_records(
        &self,
        request: Request<Streaming<PushRecordsRequest>>,
    ) -> Result<Response<push::Acks>, Status> {
        push::push_records(self, request).await
    }

    async fn get_record(
        &self,
        request: Request<GetRecordRequest>,
    ) -> Result<Response<GetRecordResponse>, Status> {
        reads::get_record(self, request).await
    }
}

fn routes(env: ServiceEnv) -> Routes {
    let ServiceEnv {
        store,
        authn,
        datapush,
        pki_dir,
        ..
    } = env;
    // Configuration is checked at start (`creditmesh` validates the catalog); keys are read or
    // generated here, and a node that cannot has no business serving.
    let catalog = catalog::Catalog::from_config(&datapush.categories)
        .unwrap_or_else(|p| panic!("datapush catalog: {p:?}"));
    let keys =
        seal::Keys::load(&datapush, &pki_dir).unwrap_or_else(|e| panic!("datapush keys: {e:#}"));
    let api = Api {
        store: store.clone(),
        authn: authn.clone(),
        catalog: Arc::new(catalog),
        keys: Arc::new(keys),
    };
    let server = DataPushServiceServer::new(api)
        .max_decoding_message_size(creditmesh_rpc::MAX_MESSAGE_BYTES);
    with_sink(Routes::new(server), store, authn, agencies::Handler)
}

/// What is wrong with `[datapush]`, each with its key.
pub fn config_problems(cfg: &creditmesh_rpc::service::DataPushConfig) -> Vec<(String, String)> {
    let mut problems = catalog::Catalog::from_config(&cfg.categories)
        .err()
        .unwrap_or_default();
    problems.extend(seal::config_problems(cfg));
    problems
}
