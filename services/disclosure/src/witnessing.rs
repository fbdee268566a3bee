//! The two ends of witnessing over the mesh: a witness node serves `WitnessService` to the
//! register's own service; the register submits each new checkpoint to its witnesses and keeps
//! the cosignatures that verify.

use std::sync::Arc;

use crate::config::WitnessPeer;
use creditmesh_domain::{Error, PrincipalKind};
use creditmesh_proto::disclosure::v1::witness_service_client::WitnessServiceClient;
use creditmesh_proto::disclosure::v1::witness_service_server::WitnessService;
use creditmesh_proto::disclosure::v1::{AddCheckpointRequest, AddCheckpointResponse};
use creditmesh_rpc::{Authn, ServiceStore, edge};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::cosign::{CosignerKey, CosignerVerifier};
use crate::witness::{Refusal, add_checkpoint};
use crate::{log_store, witness_store};

/// The file of a witness node's cosigning key, beside its PKI.
pub const WITNESS_KEY_FILE: &str = "witness.key";

pub struct Witness {
    pub store: ServiceStore,
    pub authn: Authn,
    pub key: Arc<CosignerKey>,
    /// The verifier key of the log this node witnesses.
    pub log_vkey: String,
}

#[tonic::async_trait]
impl WitnessService for Witness {
    async fn add_checkpoint(
        &self,
        request: Request<AddCheckpointRequest>,
    ) -> Result<Response<AddCheckpointResponse>, Status> {
        let peer = self.authn.service_peer(&request)?;
        edge::read(self.cosign(peer, request.into_inner())).await
    }
}

impl Witness {
    /// Cosigns the checkpoint the register's service submits when it extends what this
    /// witness cosigned before; answers with its own size when the register is behind.
    async fn cosign(
        &self,
        peer: creditmesh_domain::Principal,
        req: AddCheckpointRequest,
    ) -> Result<AddCheckpointResponse, Error> {
        if peer.kind != PrincipalKind::Service || peer.subject != crate::NAME {
            return Err(Error::permission_denied(
                "only the register's service submits checkpoints",
            ));
        }
        if req.old_size < 0 {
            return Err(Error::invalid_field("old_size", "must not be negative"));
        }
        let answer = add_checkpoint(
            &self.store.db,
            &self.key,
            &self.log_vkey,
            req.old_size as u64,
            &req.proof,
            &req.checkpoint,
            self.store.now(),
        )
        .await;
        match answer {
            Ok(cosignature) => Ok(AddCheckpointResponse {
                cosignature,
                witness_size: 0,
            }),
            Err(Refusal::Conflict { size }) => Ok(AddCheckpointResponse {
                cosignature: String::new(),
                witness_size: size as i64,
            }),
            Err(Refusal::Fork(why)) => Err(Error::failed_precondition(format!(
                "refused, a fork: {why}"
            ))),
            Err(Refusal::Invalid(why)) => Err(Error::invalid_field("checkpoint", why)),
            Err(Refusal::Storage(e)) => Err(e.into()),
        }
    }
}

/// A witness as the register knows it.
pub struct Cosigner {
    pub verifier: CosignerVerifier,
    pub client: WitnessServiceClient<Channel>,
}

impl Cosigner {
    pub fn connect(
        peer: &WitnessPeer,
        tls: Arc<creditmesh_pki::ClientTls>,
    ) -> anyhow::Result<Self> {
        let verifier = CosignerVerifier::parse(&peer.verifier_key).map_err(anyhow::Error::msg)?;
        let server_name = if peer.server_name.is_empty() {
            crate::NAME
        } else {
            peer.server_name.as_str()
        };
        let channel = creditmesh_rpc::client::mtls_channel(&peer.url, tls, server_name)?;
        Ok(Self {
            verifier,
            client: WitnessServiceClient::new(channel),
        })
    }
}

/// Asks `cosigner` to cosign `newest` (the checkpoint without cosignatures), proving
/// consistency from what it cosigned last; keeps the cosignature once it verifies.
pub async fn submit(
    store: &ServiceStore,
    cosigner: &mut Cosigner,
    newest: &crate::checkpoint_store::Stored,
) -> Result<(), String> {
    let note = newest.note.as_str();
    let witness = cosigner.verifier.name().to_owned();
    // A connection is taken for each read and given back before any call to the witness.
    let conn = || async { store.db.acquire().await.map_err(|e| e.to_string()) };
    let mut from = witness_store::cosigned_size(&mut *conn().await?, &witness)
        .await
        .map_err(|e| e.to_string())?;
    if from == newest.size {
        return Ok(());
    }
    // Twice at most: once from what this register last saw the witness cosign, once more from
    // what the witness says it cosigned.
    for _ in 0..2 {
        if from > newest.size {
            return Err(format!(
                "witness {witness} has cosigned {from} notices, more than this register's {}",
                newest.size
            ));
        }
        let proof = if from == 0 {
            Vec::new()
        } else {
            log_store::prove_consistency(&mut *conn().await?, newest.size, from)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|h| h.0.to_vec())
                .collect()
        };
        let answer = cosigner
            .client
            .add_checkpoint(AddCheckpointRequest {
                old_size: from as i64,
                proof,
                checkpoint: note.to_owned(),
            })
            .await
            .map_err(|e| format!("witness {witness}: {}", e.message()))?
            .into_inner();
        if answer.cosignature.is_empty() {
            from = answer.witness_size.max(0) as u64;
            continue;
        }
        let line = if answer.cosignature.ends_with('\n') {
            answer.cosignature
        } else {
            format!("{}\n", answer.cosignature)
        };
        cosigner
            .verifier
            .verify(&crate::cosign::with_signatures(
                note,
                std::slice::from_ref(&line),
            ))
            .map_err(|e| format!("witness {witness}: {e}"))?;
        let mut tx = store.db.begin().await.map_err(|e| e.to_string())?;
        witness_store::keep_cosignature(&mut tx, newest.size, &witness, &line)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        return Ok(());
    }
    Err(format!(
        "witness {witness} keeps moving; trying again later"
    ))
}
