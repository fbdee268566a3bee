//! The disclosure service: the public register (Art. 7, 10, 12, 15, 18, 19), projected from
//! filing's events, each notice a leaf of a Merkle log with signed checkpoints.

pub mod checkpoint;
mod checkpoint_store;
pub mod config;
mod convert;
pub mod cosign;
mod decisions;
mod events;
mod grpc;
mod jobs;
mod keyfile;
pub mod log;
mod log_store;
mod proofs;
mod reads;
mod remask;
mod schema;
mod state;
pub mod store;
mod validate;
pub mod verify;
pub mod witness;
mod witness_store;
pub mod witnessing;
mod wording;

use std::sync::Arc;

use creditmesh_proto::disclosure::v1::disclosure_service_server::DisclosureServiceServer;
use creditmesh_proto::disclosure::v1::witness_service_server::WitnessServiceServer;
use creditmesh_rpc::sink::with_sink;
use creditmesh_rpc::{ServiceDef, ServiceEnv};
use tonic::service::Routes;

pub use config::{RegisterConfig, WitnessPeer};

pub const NAME: &str = "disclosure";

pub fn definition(register: Arc<RegisterConfig>) -> ServiceDef {
    let background = register.clone();
    ServiceDef {
        name: NAME,
        grpc_name: "creditmesh.disclosure.v1.DisclosureService",
        migrations: schema::migrations,
        routes: Box::new(move |env| routes(env, register.clone())),
        background: Box::new(move |env, stop| jobs::spawn(env, &background, stop)),
        gauges: Arc::new(checkpoint::gauges),
    }
}

pub(crate) fn log_key(env: &ServiceEnv) -> Arc<checkpoint::LogKeys> {
    let key =
        checkpoint::LogKeys::load(&env.pki_dir, env.authn.trust_domain()).unwrap_or_else(|e| {
            panic!(
                "register log key in {}: {e}",
                env.pki_dir.join(checkpoint::KEY_FILE).display()
            )
        });
    Arc::new(key)
}

fn routes(env: ServiceEnv, register: Arc<RegisterConfig>) -> Routes {
    let key = log_key(&env);
    let witness = (!register.witness_of.is_empty()).then(|| witnessing::Witness {
        store: env.store.clone(),
        authn: env.authn.clone(),
        key: Arc::new(
            cosign::CosignerKey::load_or_create(
                &env.pki_dir,
                witnessing::WITNESS_KEY_FILE,
                &register.witness_name,
            )
            .unwrap_or_else(|e| panic!("witness key in {}: {e}", env.pki_dir.display())),
        ),
        log_vkey: register.witness_of.clone(),
    });
    let ServiceEnv { store, authn, .. } = env;
    let api = DisclosureServiceServer::new(state::Api {
        store: store.clone(),
        authn: authn.clone(),
        key,
        register,
    })
    .max_decoding_message_size(creditmesh_rpc::MAX_MESSAGE_BYTES);
    let mut routes = Routes::new(api);
    if let Some(w) = witness {
        tracing::info!(witness = w.key.name(), "this node witnesses the register");
        routes = routes.add_service(WitnessServiceServer::new(w));
    }
    with_sink(routes, store, authn, events::Handler)
}

/// Every problem with `[register]`, each naming its key.
pub fn register_config_problems(cfg: &RegisterConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, w) in cfg.witnesses.iter().enumerate() {
        if !w.url.starts_with("https://") {
            out.push((
                format!("register.witnesses[{i}].url"),
                "must be an https:// URL".into(),
            ));
        }
        if let Err(e) = cosign::CosignerVerifier::parse(&w.verifier_key) {
            out.push((format!("register.witnesses[{i}].verifier_key"), e));
        }
    }
    if cfg.cosignatures_required as usize > cfg.witnesses.len() {
        out.push((
            "register.cosignatures_required".into(),
            format!(
                "must not exceed the {} witnesses configured",
                cfg.witnesses.len()
            ),
        ));
    }
    if !cfg.witness_of.is_empty() {
        if let Err(e) = verify::verifiers(&cfg.witness_of) {
            out.push((
                "register.witness_of".into(),
                format!("not verifier keys: {e}"),
            ));
        }
        if let Err(e) = cosign::CosignerKey::new(&cfg.witness_name, [0; 32]) {
            out.push(("register.witness_name".into(), e));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::WitnessPeer;

    use super::*;

    #[test]
    fn register_settings_name_each_bad_key() {
        let cfg = RegisterConfig {
            witnesses: vec![WitnessPeer {
                url: "http://kashgar:7503".into(),
                server_name: String::new(),
                verifier_key: "not-a-key".into(),
            }],
            cosignatures_required: 2,
            witness_of: "nonsense".into(),
            witness_name: "has space".into(),
        };
        let keys: Vec<String> = register_config_problems(&cfg)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "register.witnesses[0].url",
                "register.witnesses[0].verifier_key",
                "register.cosignatures_required",
                "register.witness_of",
                "register.witness_name",
            ]
        );
        assert!(register_config_problems(&RegisterConfig::default()).is_empty());
    }
}
