//! The datapush service: non-public credit information pushed by filed agencies (Art. 20-23,
//! 27): the push stream, the catalog it is checked against, records sealed at rest, objections
//! and their deadlines, subject access with every use logged, correction notices to earlier
//! readers, and the retention purge.

mod agencies;
mod cases;
pub mod catalog;
pub mod index;
mod jobs;
mod materials;
mod objection_store;
mod objections;
mod push;
mod reads;
mod reindex;
mod rewrap;
mod schema;
pub mod seal;
mod store;
mod subjects;

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
        background,
        gauges,
    }
}

#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) store: ServiceStore,
    pub(crate) authn: Authn,
    pub(crate) catalog: Arc<catalog::Catalog>,
    pub(crate) keys: Arc<seal::Keys>,
    pub(crate) calendar: Arc<creditmesh_domain::calendar::Calendar>,
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

    async fn find_records(
        &self,
        request: Request<FindRecordsRequest>,
    ) -> Result<Response<FindRecordsResponse>, Status> {
        reads::find_records(self, request).await
    }

    async fn file_objection(
        &self,
        request: Request<FileObjectionRequest>,
    ) -> Result<Response<FileObjectionResponse>, Status> {
        objections::file_objection(self, request).await
    }

    async fn upload_objection_material(
        &self,
        request: Request<Streaming<UploadObjectionMaterialRequest>>,
    ) -> Result<Response<UploadObjectionMaterialResponse>, Status> {
        materials::upload_objection_material(self, request).await
    }

    async fn read_objection_material(
        &self,
        request: Request<ReadObjectionMaterialRequest>,
    ) -> Result<Response<creditmesh_rpc::download::Download<ReadObjectionMaterialResponse>>, Status>
    {
        materials::read_objection_material(self, request).await
    }

    async fn resolve_objection(
        &self,
        request: Request<ResolveObjectionRequest>,
    ) -> Result<Response<ResolveObjectionResponse>, Status> {
        objections::resolve_objection(self, request).await
    }

    async fn list_objections(
        &self,
        request: Request<ListObjectionsRequest>,
    ) -> Result<Response<ListObjectionsResponse>, Status> {
        objections::list_objections(self, request).await
    }

    async fn add_subject_statement(
        &self,
        request: Request<AddSubjectStatementRequest>,
    ) -> Result<Response<AddSubjectStatementResponse>, Status> {
        objections::add_subject_statement(self, request).await
    }

    async fn issue_subject_access_code(
        &self,
        request: Request<IssueSubjectAccessCodeRequest>,
    ) -> Result<Response<IssueSubjectAccessCodeResponse>, Status> {
        objections::issue_subject_access_code(self, request).await
    }

    async fn get_subject_report(
        &self,
        request: Request<GetSubjectReportRequest>,
    ) -> Result<Response<GetSubjectReportResponse>, Status> {
        reads::get_subject_report(self, request).await
    }

    async fn record_agency_use(
        &self,
        request: Request<RecordAgencyUseRequest>,
    ) -> Result<Response<RecordAgencyUseResponse>, Status> {
        reads::record_agency_use(self, request).await
    }

    async fn list_correction_notices(
        &self,
        request: Request<ListCorrectionNoticesRequest>,
    ) -> Result<Response<ListCorrectionNoticesResponse>, Status> {
        reads::list_correction_notices(self, request).await
    }
}

fn routes(env: ServiceEnv) -> Routes {
    let ServiceEnv {
        store,
        authn,
        datapush,
        pki_dir,
        calendar,
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
        calendar,
    };
    let server = DataPushServiceServer::new(api)
        .max_decoding_message_size(creditmesh_rpc::MAX_MESSAGE_BYTES);
    with_sink(Routes::new(server), store, authn, Events)
}

/// The events datapush consumes: the register's changes, and the referrals departments
/// receive and decline.
struct Events;

#[tonic::async_trait]
impl creditmesh_rpc::sink::EventHandler for Events {
    async fn apply(
        &self,
        tx: &mut creditmesh_storage::Tx,
        event: &creditmesh_proto::events::v1::Event,
    ) -> Result<creditmesh_rpc::sink::Applied, creditmesh_domain::Error> {
        use creditmesh_proto::events::v1::{ReferralDeclined, ReferralReceived, RegisterChanged};
        let kind = event.r#type.as_str();
        if kind == RegisterChanged::TYPE {
            agencies::changed(tx, event).await
        } else if kind == ReferralReceived::TYPE {
            cases::received(tx, event).await
        } else if kind == ReferralDeclined::TYPE {
            cases::declined(tx, event).await
        } else {
            Ok(creditmesh_rpc::sink::Applied::Done)
        }
    }
}

fn background(env: ServiceEnv, stop: tokio_util::sync::CancellationToken) {
    let catalog = catalog::Catalog::from_config(&env.datapush.categories);
    let keys = seal::Keys::load(&env.datapush, &env.pki_dir);
    match (catalog, keys) {
        (Ok(catalog), Ok(keys)) => jobs::spawn(env, Arc::new(catalog), Arc::new(keys), stop),
        (Err(p), _) => {
            tracing::error!(problems = ?p, "datapush timers not started: catalog invalid")
        }
        (_, Err(e)) => tracing::error!(error = %e, "datapush timers not started: keys"),
    }
}

/// What is wrong with `[datapush]`, each with its key.
pub fn config_problems(cfg: &creditmesh_rpc::service::DataPushConfig) -> Vec<(String, String)> {
    let mut problems = catalog::Catalog::from_config(&cfg.categories)
        .err()
        .unwrap_or_default();
    problems.extend(seal::config_problems(cfg));
    problems
}

/// How close the open objections to pushed records are to their deadlines, and how many
/// keyed hashes are left under an index key other than the current one.
fn gauges(
    env: ServiceEnv,
) -> futures::future::BoxFuture<'static, Vec<creditmesh_rpc::service::Gauge>> {
    Box::pin(async move {
        let mut gauges = creditmesh_rpc::deadlines::reported(
            env.clone(),
            "SELECT tenant, 'objection' AS kind, deadline_due AS due FROM datapush_objection \
             WHERE status = 'open' AND deadline_due <> ''",
        )
        .await;
        match index_gauges(&env).await {
            Ok(more) => gauges.extend(more),
            Err(e) => tracing::warn!(error = %e, "index key gauges were not read"),
        }
        gauges
    })
}

async fn index_gauges(env: &ServiceEnv) -> anyhow::Result<Vec<creditmesh_rpc::service::Gauge>> {
    let keys = seal::Keys::load(&env.datapush, &env.pki_dir)?;
    let mut conn = env.store.db.acquire().await?;
    let stale = reindex::stale(&mut conn, keys.index_keys(), env.store.now()).await?;
    Ok(stale
        .into_iter()
        .map(|(kind, n)| creditmesh_rpc::service::Gauge {
            name: "creditmesh_datapush_index_stale",
            help: "Keyed hashes under an index key other than the current one (access codes: \
                   those still valid); 0 in every kind ends a rotation",
            labels: vec![("kind", kind.to_owned())],
            value: n as f64,
        })
        .collect())
}
