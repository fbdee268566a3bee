//! The datapush service: non-public credit information pushed by filed agencies (Art. 20-23,
//! 27): the push stream, the catalog it is checked against, records sealed at rest, objections
//! and their deadlines, subject access with every use logged, correction notices to earlier
//! readers, and the retention purge.

mod agency_store;
mod case_store;
mod cases;
pub mod catalog;
pub mod config;
mod convert;
mod events;
mod grpc;
pub mod index;
mod jobs;
mod material_store;
mod materials;
mod objection_store;
mod objections;
mod push;
mod reads;
mod reindex;
mod rewrap;
mod schema;
pub mod seal;
mod state;
mod store;
mod subjects;
mod sweep_store;

use std::sync::Arc;

use creditmesh_proto::datapush::v1::data_push_service_server::DataPushServiceServer;
use creditmesh_rpc::sink::with_sink;
use creditmesh_rpc::{ServiceDef, ServiceEnv};
use tonic::service::Routes;

pub use config::{CategoryConfig, DataPushConfig, FieldConfig};

pub const NAME: &str = "datapush";

pub fn definition(config: Arc<DataPushConfig>) -> ServiceDef {
    let (background, gauges) = (config.clone(), config.clone());
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.datapush.v1.DataPushService",
        migrations: schema::migrations,
        routes: Box::new(move |env| routes(env, &config)),
        background: Box::new(move |env, stop| jobs::start(env, &background, stop)),
        gauges: Arc::new(move |env| read_gauges(env, gauges.clone())),
    }
}

fn routes(env: ServiceEnv, datapush: &DataPushConfig) -> Routes {
    let ServiceEnv {
        store,
        authn,
        pki_dir,
        calendar,
        ..
    } = env;
    // Configuration is checked at start (`creditmesh` validates the catalog); keys are read or
    // generated here, and a node that cannot has no business serving.
    let catalog = catalog::Catalog::from_config(&datapush.categories)
        .unwrap_or_else(|p| panic!("datapush catalog: {p:?}"));
    let keys =
        seal::Keys::load(datapush, &pki_dir).unwrap_or_else(|e| panic!("datapush keys: {e:#}"));
    let api = state::Api {
        store: store.clone(),
        authn: authn.clone(),
        catalog: Arc::new(catalog),
        keys: Arc::new(keys),
        calendar,
    };
    let server = DataPushServiceServer::new(api)
        .max_decoding_message_size(creditmesh_rpc::MAX_MESSAGE_BYTES);
    with_sink(Routes::new(server), store, authn, events::Events)
}

/// What is wrong with `[datapush]`, each with its key.
pub fn config_problems(cfg: &crate::config::DataPushConfig) -> Vec<(String, String)> {
    let mut problems = catalog::Catalog::from_config(&cfg.categories)
        .err()
        .unwrap_or_default();
    problems.extend(seal::config_problems(cfg));
    problems
}

/// How close the open objections to pushed records are to their deadlines, and how many
/// keyed hashes are left under an index key other than the current one.
fn read_gauges(
    env: ServiceEnv,
    config: Arc<DataPushConfig>,
) -> futures::future::BoxFuture<'static, Vec<creditmesh_rpc::service::Gauge>> {
    Box::pin(async move {
        let mut gauges = creditmesh_rpc::deadlines::reported(
            env.clone(),
            crate::objection_store::OPEN_DEADLINES,
        )
        .await;
        match index_gauges(&env, &config).await {
            Ok(more) => gauges.extend(more),
            Err(e) => tracing::warn!(error = %e, "index key gauges were not read"),
        }
        gauges
    })
}

async fn index_gauges(
    env: &ServiceEnv,
    config: &DataPushConfig,
) -> anyhow::Result<Vec<creditmesh_rpc::service::Gauge>> {
    let keys = seal::Keys::load(config, &env.pki_dir)?;
    let mut conn = env.store.db.acquire().await?;
    let stale = sweep_store::stale(&mut conn, keys.index_keys(), env.store.now()).await?;
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
