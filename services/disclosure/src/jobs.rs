//! The register's background work.

use creditmesh_rpc::{CallContext, ServiceEnv};
use tokio_util::sync::CancellationToken;

use crate::NAME;
use crate::config::RegisterConfig;

/// Starts the register's background work: notices in the old words corrected and records
/// masked again once, checkpoints signed and cosigned as the log grows.
pub fn spawn(env: ServiceEnv, register: &RegisterConfig, stop: CancellationToken) {
    let key = crate::log_key(&env);
    let mut cosigners = Vec::new();
    if !register.witnesses.is_empty() {
        let files = creditmesh_pki::TlsFiles::in_dir(&env.pki_dir, &format!("service-{NAME}"));
        match creditmesh_pki::ClientTls::client(files) {
            Ok(tls) => {
                for peer in &register.witnesses {
                    match crate::witnessing::Cosigner::connect(peer, tls.clone()) {
                        Ok(c) => cosigners.push(c),
                        Err(e) => tracing::error!(url = %peer.url, error = %e, "witness left out"),
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "no client identity to reach the witnesses"),
        }
    }
    let (store, trust_domain) = (env.store.clone(), env.authn.trust_domain().to_owned());
    tokio::spawn(async move {
        let ctx = CallContext::system(NAME, &trust_domain, "wording-correction");
        if let Err(e) = crate::wording::correct(&store, &ctx).await {
            tracing::warn!(error = %e, "notices in the old words not corrected");
        }
        let ctx = CallContext::system(NAME, &trust_domain, "remask");
        if let Err(e) = crate::remask::run(&store, &ctx).await {
            tracing::warn!(error = %e, "register records not masked again");
        }
    });
    tokio::spawn(crate::checkpoint::run(env.store, key, cosigners, stop));
}
