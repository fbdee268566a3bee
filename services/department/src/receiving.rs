//! The referral receiver: takes a referral from the platform's complaints service, keeps the
//! first copy, and answers every copy with the same receipt signed by this node's key.

use std::sync::Arc;

use creditmesh_domain::{Clock, Error, PrincipalKind, Tenant};
use creditmesh_pki::receipt;
use creditmesh_proto::complaints::v1::{Referral, ReferralReceipt};
use creditmesh_proto::complaints::{v1, v2};
use creditmesh_rpc::{Authn, edge, timestamp};
use creditmesh_storage::Db;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::store::{self, Entry};

pub struct Receiver {
    pub(crate) db: Db,
    pub(crate) authn: Authn,
    pub(crate) signer: Arc<receipt::Signer>,
    pub(crate) department: String,
    pub(crate) tenant: Tenant,
    pub(crate) clock: Arc<dyn Clock>,
}

/// A v2 delivery: the referral's bytes as the complaints service encoded them.
pub(crate) async fn receive_v2(
    node: &Receiver,
    request: Request<v2::ReceiveReferralRequest>,
) -> Result<Response<v2::ReceiveReferralResponse>, Status> {
    let peer = node.authn.service_peer(&request)?;
    let bytes = request.into_inner().referral;
    edge::read(async {
        let (duplicate, receipt) = node.receive(&peer, bytes).await?;
        Ok(v2::ReceiveReferralResponse {
            duplicate,
            receipt: Some(receipt),
        })
    })
    .await
}

/// A v1 delivery: the referral as a message.
pub(crate) async fn receive_v1(
    node: &Receiver,
    request: Request<v1::ReceiveReferralRequest>,
) -> Result<Response<v1::ReceiveReferralResponse>, Status> {
    let peer = node.authn.service_peer(&request)?;
    let referral = request.into_inner().referral;
    edge::read(async {
        let referral = referral.ok_or_else(|| Error::invalid_field("referral", "is required"))?;
        let (duplicate, receipt) = node.receive(&peer, referral.encode_to_vec()).await?;
        Ok(v1::ReceiveReferralResponse {
            duplicate,
            receipt: Some(receipt),
        })
    })
    .await
}

impl Receiver {
    /// Keeps the first delivery of the encoded referral `bytes`; whether it was received
    /// before, and the receipt of its first delivery.
    async fn receive(
        &self,
        peer: &creditmesh_domain::Principal,
        bytes: Vec<u8>,
    ) -> Result<(bool, ReferralReceipt), Error> {
        if peer.kind != PrincipalKind::Service || peer.subject != "complaints" {
            return Err(Error::permission_denied(
                "only the complaints service delivers referrals",
            ));
        }
        let referral = Referral::decode(bytes.as_slice()).map_err(|e| {
            Error::invalid_field("referral", format!("not an encoded referral: {e}"))
        })?;
        if uuid::Uuid::parse_str(&referral.referral_id).is_err() {
            return Err(Error::invalid_field(
                "referral.referral_id",
                "is not a referral id",
            ));
        }
        let code = creditmesh_domain::department::code_of(referral.department);
        if code != Some(self.department.as_str())
            || referral.department_tenant != self.tenant.to_string()
        {
            return Err(Error::failed_precondition(format!(
                "referral {} is addressed to department {} of {}, not to this node ({} of {})",
                referral.referral_id,
                code.unwrap_or("unknown"),
                referral.department_tenant,
                self.department,
                self.tenant
            )));
        }
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let received_at = self.clock.now_micros();
        let statement = receipt::referral_statement(&referral.referral_id, &sha256, received_at);
        let signature = self
            .signer
            .sign(statement.as_bytes())
            .map_err(|e| Error::internal(e.to_string()))?;
        let mut conn = self.db.acquire().await?;
        let first = store::insert_first(
            &mut conn,
            &Entry {
                referral_id: referral.referral_id.clone(),
                payload: bytes,
                sha256: sha256.clone(),
                received_at,
                signature,
                status: "received".into(),
                answered_at: None,
                reason: String::new(),
            },
            &peer.to_string(),
        )
        .await?;
        let kept = store::find(&mut conn, &referral.referral_id)
            .await?
            .ok_or_else(|| Error::internal("a referral just kept is missing"))?;
        if kept.sha256 != sha256 {
            tracing::warn!(referral_id = %kept.referral_id, "referral id received again with other content");
            return Err(Error::new(
                creditmesh_domain::ErrorCode::AlreadyExists,
                format!(
                    "referral {} was received before with other content",
                    kept.referral_id
                ),
            ));
        }
        if first {
            tracing::info!(referral_id = %kept.referral_id, tracking_number = %referral.tracking_number, "referral received");
        }
        Ok((
            !first,
            ReferralReceipt {
                referral_id: kept.referral_id,
                sha256: kept.sha256,
                received_at: Some(timestamp(kept.received_at)),
                signature: kept.signature,
                certificate: self.signer.certificate().to_vec(),
            },
        ))
    }
}
