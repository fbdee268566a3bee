//! The referral receiver: takes a referral from the platform's complaints service, keeps the
//! first copy, and answers every copy with the same receipt signed by this node's key.

use std::sync::Arc;

use creditmesh_domain::{Clock, PrincipalKind, Tenant};
use creditmesh_pki::receipt;
use creditmesh_proto::complaints::v1::referral_receiver_service_server::ReferralReceiverService;
use creditmesh_proto::complaints::v1::{
    ReceiveReferralRequest, ReceiveReferralResponse, Referral, ReferralReceipt,
};
use creditmesh_rpc::{Authn, status_from, timestamp};
use creditmesh_storage::Db;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::inbox::{self, Entry};

pub struct Receiver {
    pub(crate) db: Db,
    pub(crate) authn: Authn,
    pub(crate) signer: Arc<receipt::Signer>,
    pub(crate) department: String,
    pub(crate) tenant: Tenant,
    pub(crate) clock: Arc<dyn Clock>,
}

fn invalid(why: impl Into<String>) -> Status {
    Status::invalid_argument(why.into())
}

#[tonic::async_trait]
impl ReferralReceiverService for Receiver {
    async fn receive_referral(
        &self,
        request: Request<ReceiveReferralRequest>,
    ) -> Result<Response<ReceiveReferralResponse>, Status> {
        // Only the platform's complaints service delivers referrals.
        let peer = self.authn.service_peer(&request)?;
        if peer.kind != PrincipalKind::Service || peer.subject != "complaints" {
            return Err(Status::permission_denied(
                "only the complaints service delivers referrals",
            ));
        }
        let bytes = request.into_inner().referral;
        let referral = Referral::decode(bytes.as_slice())
            .map_err(|e| invalid(format!("referral: not an encoded referral: {e}")))?;
        if uuid::Uuid::parse_str(&referral.referral_id).is_err() {
            return Err(invalid("referral.referral_id: is not a referral id"));
        }
        let code = creditmesh_domain::department::code_of(referral.department);
        if code != Some(self.department.as_str())
            || referral.department_tenant != self.tenant.to_string()
        {
            return Err(Status::failed_precondition(format!(
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
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut conn = self.db.acquire().await.map_err(status_from)?;
        let first = inbox::insert_first(
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
        .await
        .map_err(status_from)?;
        let kept = inbox::find(&mut conn, &referral.referral_id)
            .await
            .map_err(status_from)?
            .ok_or_else(|| Status::internal("a referral just kept is missing"))?;
        if kept.sha256 != sha256 {
            tracing::warn!(referral_id = %kept.referral_id, "referral id received again with other content");
            return Err(Status::already_exists(format!(
                "referral {} was received before with other content",
                kept.referral_id
            )));
        }
        if first {
            tracing::info!(referral_id = %kept.referral_id, tracking_number = %referral.tracking_number, "referral received");
        }
        Ok(Response::new(ReceiveReferralResponse {
            duplicate: !first,
            receipt: Some(ReferralReceipt {
                referral_id: kept.referral_id,
                sha256: kept.sha256,
                received_at: Some(timestamp(kept.received_at)),
                signature: kept.signature,
                certificate: self.signer.certificate().to_vec(),
            }),
        }))
    }
}
